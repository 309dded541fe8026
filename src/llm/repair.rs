//! Reading a model's reply, and what to ask next: a whole answer is done; the complete part
//! of a reply cut off at the output limit is kept and the rest asked for; an unreadable
//! reply is shown to the model with the reason.

use super::{ChatReply, ChatRequest, Turn, extract_json, prefix, truncate};

/// An answer that can be read in parts: the complete part of a reply cut off at the output
/// limit, then the rest, asked for on its own.
pub trait Parts: Sized {
    /// Holds nothing worth keeping: a cut-off reply that finished no item is a bad reply.
    fn is_empty(&self) -> bool;
    /// This part with a later one added, what both hold kept once.
    fn join(self, later: Self) -> Self;
}

/// How the router joins parts, for answers that are [`Parts`].
pub(super) struct Joiner<T> {
    pub(super) is_empty: fn(&T) -> bool,
    pub(super) join: fn(T, T) -> T,
}

impl<T: Parts> Joiner<T> {
    pub(super) fn of() -> Joiner<T> {
        Joiner {
            is_empty: T::is_empty,
            join: T::join,
        }
    }
}

/// Asks after the first reply, by kind. A cut-off reply's rest is asked for once: a model
/// that runs into the limit twice is not going to finish, and its complete parts are kept.
/// The rest is asked for rather than the whole again with a larger limit: a small model
/// that degenerates (one sentence repeated until the limit) does so at any limit, so more
/// room only costs more tokens, while a shorter task ("only what is missing") ends sooner.
pub(super) const MAX_FOLLOW_UPS: u32 = 1;
/// Repairs of an unreadable reply; the last one loosens the structured-output mode.
pub(super) const MAX_REPAIRS: u32 = 2;

/// What a reply turned out to be.
pub(super) enum Read<T> {
    Whole(T),
    /// The complete part of a cut-off reply, and that part as JSON (shown to the model when
    /// asking for the rest).
    Part {
        value: T,
        shown: String,
    },
    /// Unreadable, and why.
    Bad(String),
}

pub(super) fn read<T>(
    reply: &ChatReply,
    parse: &impl Fn(&serde_json::Value) -> Result<T, String>,
    joiner: Option<&Joiner<T>>,
) -> Read<T> {
    let why = match extract_json(&reply.content)
        .map_err(|e| e.to_string())
        .and_then(|v| parse(&v))
    {
        Ok(value) => return Read::Whole(value),
        Err(why) => why,
    };
    if !reply.truncated {
        return Read::Bad(why);
    }
    if let Some(joiner) = joiner
        && let Some(part) = prefix::complete_part(&reply.content)
        && let Ok(value) = parse(&part)
        && !(joiner.is_empty)(&value)
    {
        return Read::Part {
            value,
            shown: part.to_string(),
        };
    }
    Read::Bad(format!(
        "the reply was cut off at the output token limit ({why})"
    ))
}

/// Whether a reply degenerated into repeating itself, as small models do until the output
/// limit: the same run of text (8 to 400 characters, whitespace aside) three times at its
/// end, or one sentence of 40 characters or more three times anywhere.
pub(crate) fn repeats_itself(text: &str) -> bool {
    let flat: Vec<char> = text
        .split_whitespace()
        .flat_map(|w| w.chars().chain([' ']))
        .collect();
    let len = flat.len();
    let tail_repeats = (8..=400).take_while(|p| 3 * p <= len).any(|p| {
        let a = &flat[len - p..];
        a == &flat[len - 2 * p..len - p] && a == &flat[len - 3 * p..len - 2 * p]
    });
    if tail_repeats {
        return true;
    }
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    text.split(['.', '!', '?', '\n'])
        .map(str::trim)
        .filter(|s| s.len() >= 40)
        .any(|s| {
            let n = seen.entry(s).or_insert(0);
            *n += 1;
            *n >= 3
        })
}

/// The request again, with the complete part of the cut-off reply as the model's turn and
/// an ask for only what is missing; against repeats when the reply `looped` (its complete
/// part ends before the unfinished item where the loop is, so that part is safe to show).
pub(super) fn follow_up(request: &ChatRequest, shown: &str, looped: bool) -> ChatRequest {
    let mut next = request.clone();
    next.against_repeats |= looped;
    next.turns.push(Turn::assistant(shown));
    next.turns.push(Turn::user(
        "Your reply was cut off at the output token limit. Its complete part, above, is kept. Answer with a new JSON object in the same required shape holding only what is still missing: the items you have not reported yet (an empty list if there are none) and any field that was cut off. Keep each item short and never repeat a sentence.",
    ));
    next
}

/// `base` with the unreadable reply and a correction; the `last` repair loosens the
/// structured-output mode one step and spells the schema out in the prompt instead.
/// A reply that repeated itself is not shown again (it would prime the same loop): the model
/// is told so and asked afresh, against repeats.
pub(super) fn repair(base: &ChatRequest, reply: &ChatReply, why: &str, last: bool) -> ChatRequest {
    let mut next = base.clone();
    let looped = reply.truncated && repeats_itself(&reply.content);
    let mut text = if looped {
        next.against_repeats = true;
        "Your previous reply repeated the same text over and over until it was cut off at the output limit, so it could not be used. Answer again with only the JSON object, exactly in the required shape, and nothing else. Write every sentence once, keep each field short, and stop when the object is complete.".to_string()
    } else {
        next.turns
            .push(Turn::assistant(truncate(&reply.content, 8000)));
        format!(
            "Your reply could not be used: {why}\n\nAnswer again with only the JSON object, exactly in the required shape, and nothing else."
        )
    };
    if reply.truncated && !looped {
        text.push_str(" Your reply was cut off at the output limit: report fewer items, keep each one short and never repeat a sentence.");
    }
    if last {
        next.step_down = 1;
        if let Some(schema) = &next.schema {
            text.push_str(&format!(
                "\n\nThe JSON object must follow this JSON Schema:\n{}",
                schema.schema
            ));
        }
    }
    next.turns.push(Turn::user(text));
    next
}
