//! The complete part of JSON cut off mid-way. A reply that ran into the output limit (often
//! a small model repeating one sentence until it stops) still begins with items it finished;
//! those are worth keeping rather than throwing the whole reply away.

use serde_json::Value;

/// How many starts (`{` or `[` in chatter before the JSON) are tried, and how many cut points
/// of one start are parsed, before giving up: bounds the work on long, brace-heavy replies.
const MAX_STARTS: usize = 32;
const MAX_CUTS: usize = 64;

/// The JSON that `text` begins (after any chatter) but never finishes, closed after its
/// last complete part: members of the outer object (or elements of an outer list) that were
/// finished, and the finished elements of lists directly inside it. An unfinished element
/// (a finding cut mid-way), an unfinished string or number, and an unfinished nested object
/// are dropped whole, never half-kept; a list cut before its first element ends is left out,
/// so a cut reply never reads as an empty list. None when the JSON is complete (nothing was
/// cut) or nothing of it is complete.
pub fn complete_part(text: &str) -> Option<Value> {
    let text = super::json::strip_thinking(text);
    let text = text.as_ref();
    // Braces in chatter before the JSON close again (`{this}`); the first container that
    // stays open to the end is the cut-off JSON, and the only one read.
    text.char_indices()
        .filter(|(_, c)| matches!(c, '{' | '['))
        .take(MAX_STARTS)
        .find_map(|(start, _)| from_start(&text[start..]))
        .flatten()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
}

struct Frame {
    kind: Kind,
    /// In an object: the next string is a key.
    expect_key: bool,
}

/// A place the text can be cut and closed: the byte length kept and the closers to append.
struct Cut {
    end: usize,
    closers: String,
}

/// `text` starts with `{` or `[`. Scans it for the places right after a complete part; if
/// the outer container never closes, the longest such prefix that parses wins (`Some`, even
/// when nothing parses). None when the container closes: this start was not the cut JSON.
fn from_start(text: &str) -> Option<Option<Value>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut cuts: Vec<Cut> = Vec::new();
    let mut in_string = false;
    let mut string_is_key = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for (i, c) in text.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if !string_is_key {
                    completed(&stack, &mut cuts, i + 1);
                }
            }
            continue;
        }
        let delimiter = c.is_whitespace() || matches!(c, ',' | ':' | '}' | ']');
        if in_scalar && delimiter {
            in_scalar = false;
            completed(&stack, &mut cuts, i);
        }
        match c {
            '{' | '[' => stack.push(Frame {
                kind: if c == '{' { Kind::Object } else { Kind::Array },
                expect_key: c == '{',
            }),
            '}' | ']' => {
                stack.pop();
                if stack.is_empty() {
                    // The JSON is whole: not a cut-off reply (or not JSON at all).
                    return None;
                }
                completed(&stack, &mut cuts, i + 1);
            }
            '"' => {
                in_string = true;
                string_is_key = stack
                    .last()
                    .is_some_and(|f| f.kind == Kind::Object && f.expect_key);
            }
            ':' => {
                if let Some(f) = stack.last_mut() {
                    f.expect_key = false;
                }
            }
            ',' => {
                if let Some(f) = stack.last_mut() {
                    f.expect_key = f.kind == Kind::Object;
                }
            }
            c if c.is_whitespace() => {}
            _ => in_scalar = true,
        }
    }
    Some(cuts.iter().rev().take(MAX_CUTS).find_map(|cut| {
        let mut closed = String::with_capacity(cut.end + cut.closers.len());
        closed.push_str(&text[..cut.end]);
        closed.push_str(&cut.closers);
        serde_json::from_str::<Value>(&closed).ok()
    }))
}

/// A value ended at `end` inside the innermost open frame: a cut point when that frame is
/// the outer container, or a list directly inside it.
fn completed(stack: &[Frame], cuts: &mut Vec<Cut>, end: usize) {
    let keep = match stack {
        [_] => true,
        [_, inner] => inner.kind == Kind::Array,
        _ => false,
    };
    if keep {
        let closers = stack
            .iter()
            .rev()
            .map(|f| match f.kind {
                Kind::Object => '}',
                Kind::Array => ']',
            })
            .collect();
        cuts.push(Cut { end, closers });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEAD: &str =
        r#"{"summary": "Adds x.", "findings": [{"path": "a.rs", "line": 1, "body": "one"}, "#;

    fn bodies(v: &Value) -> Vec<&str> {
        v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["body"].as_str())
            .collect()
    }

    #[test]
    fn cut_mid_string_keeps_the_elements_before() {
        let v = complete_part(&format!(
            r#"{HEAD}{{"path": "a.rs", "line": 2, "body": "It repeats. It repeats. It rep"#
        ))
        .expect("a complete part");
        assert_eq!(bodies(&v), ["one"]);
        assert_eq!(v["summary"], "Adds x.");
    }

    #[test]
    fn cut_mid_object_and_mid_key_drop_the_unfinished_element() {
        for tail in [
            r#"{"path": "a.rs", "line": 2"#,
            r#"{"path": "a.rs", "line": 2,"#,
            r#"{"path": "a.rs", "li"#,
            r#"{"path": "a.rs", "line": 2, "body":"#,
            r#"{"path": "a.rs", "line": 2, "body": null, "nested": {"a": [1, {"#,
            r#"{"#,
            "",
            "  ",
        ] {
            let v = complete_part(&format!("{HEAD}{tail}")).expect(tail);
            assert_eq!(bodies(&v), ["one"], "{tail}");
        }
    }

    #[test]
    fn cut_after_a_complete_element_keeps_it() {
        let v = complete_part(
            r#"{"summary": "s", "findings": [{"path": "a.rs", "line": 1, "body": "one"}, {"path": "a.rs", "line": 2, "body": "two"}"#,
        )
        .expect("complete part");
        assert_eq!(bodies(&v), ["one", "two"]);
    }

    #[test]
    fn cut_mid_array_of_scalars_drops_an_unfinished_number() {
        let v = complete_part(r#"{"ok": [1, 2, 34"#).expect("complete part");
        assert_eq!(v, json!({"ok": [1, 2]}));
        let v = complete_part(r#"["a", "b", "c"#).expect("complete part");
        assert_eq!(v, json!(["a", "b"]));
    }

    #[test]
    fn an_unfinished_summary_is_dropped_and_finished_fields_kept() {
        let v = complete_part(r#"{"findings": [], "summary": "Adds"#).expect("complete part");
        assert_eq!(v, json!({"findings": []}));
        let v = complete_part(
            r#"{"summary": "s", "walkthrough": [{"path": "a.rs", "change": "c"}], "findings": [{"path"#,
        )
        .expect("complete part");
        assert_eq!(v["walkthrough"][0]["change"], "c");
        assert_eq!(v.get("findings"), None, "never read as an empty list");
        assert_eq!(v["summary"], "s");
    }

    #[test]
    fn braces_and_escaped_quotes_inside_strings_are_text() {
        let v = complete_part(
            r#"{"findings": [{"path": "a.rs", "body": "use \"{\" and ]}] here \\"}, {"path": "b.rs", "body": "open \" { ["#,
        )
        .expect("complete part");
        assert_eq!(bodies(&v), [r#"use "{" and ]}] here \"#]);
    }

    #[test]
    fn chatter_and_a_fence_before_the_json_are_skipped() {
        let v = complete_part(&format!(
            "<think>maybe {{x}}</think>Sure! {{here}} it is:\n```json\n{HEAD}{{\"path\": \"b"
        ))
        .expect("complete part");
        assert_eq!(bodies(&v), ["one"]);
    }

    #[test]
    fn whole_json_and_text_without_json_have_no_cut_part() {
        for text in [
            r#"{"findings": []}"#,
            r#"```json
{"findings": [{"body": "x"}]}
```"#,
            "no json here",
            "",
            "{",
            r#"{"summ"#,
            r#"{"summary": "never ends"#,
            r#"{"summary": "see [1, 2, 3"#,
        ] {
            assert_eq!(complete_part(text), None, "{text}");
        }
    }

    #[test]
    fn deep_values_are_kept_whole_with_their_element() {
        let v = complete_part(
            r#"{"findings": [{"path": "a.rs", "body": "x", "meta": {"tags": ["a", {"b": 1}]}}, {"#,
        )
        .expect("complete part");
        assert_eq!(v["findings"][0]["meta"]["tags"][1]["b"], 1);
    }

    #[test]
    fn repeated_sentences_until_the_limit_lose_nothing_finished() {
        let degenerate = "The function does not handle errors. ".repeat(400);
        let text = format!(r#"{HEAD}{{"path": "a.rs", "line": 3, "body": "{degenerate}"#);
        let v = complete_part(&text).expect("complete part");
        assert_eq!(bodies(&v), ["one"]);
    }
}
