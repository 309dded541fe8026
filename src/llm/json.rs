//! Finding the JSON object in a model's reply. Servers that ignore the schema are normal:
//! small local models wrap JSON in fences, chatter around it, or think aloud first.

use super::{LlmError, truncate};

/// The JSON in `text`: the whole text or a fenced block (an object, or a bare list some
/// small models send), else the first `{...}` object inside surrounding chatter;
/// `<think>` blocks of reasoning models are skipped.
pub fn extract_json(text: &str) -> Result<serde_json::Value, LlmError> {
    let text = strip_thinking(text);
    let trimmed = text.trim();
    if let Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
        serde_json::from_str(trimmed)
    {
        return Ok(v);
    }
    let mut rest = trimmed;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body = after
            .split_once('\n')
            .map(|(_, body)| body)
            .unwrap_or(after);
        let Some(end) = body.find("```") else { break };
        if let Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
            serde_json::from_str(body[..end].trim())
        {
            return Ok(v);
        }
        rest = &body[end + 3..];
    }
    // Each `{` in turn, parsed as a stream so trailing chatter does not matter.
    for (start, _) in trimmed.match_indices('{') {
        let mut stream =
            serde_json::Deserializer::from_str(&trimmed[start..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v @ serde_json::Value::Object(_))) = stream.next() {
            return Ok(v);
        }
    }
    Err(LlmError::BadReply(format!(
        "no JSON object in reply: {}",
        truncate(trimmed, 200)
    )))
}

pub(crate) fn strip_thinking(text: &str) -> std::borrow::Cow<'_, str> {
    match (text.find("<think>"), text.find("</think>")) {
        (Some(start), Some(end)) if start < end => {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..start]);
            out.push_str(&text[end + "</think>".len()..]);
            out.into()
        }
        // Some servers strip the opening tag.
        (None, Some(end)) => text[end + "</think>".len()..].into(),
        _ => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_json_from_chatter_and_fences() {
        for text in [
            r#"{"a":1}"#,
            "```json\n{\"a\":1}\n```",
            "Sure! Here is the review:\n```\n{\"a\":1}\n```\nHope it helps.",
            "Here you go: {\"a\":1} -- done",
            "Here you go: {\"a\":1} and {\"b\":2}",
            "<think>the user wants {json}</think>\n{\"a\":1}",
            "reasoning... {maybe}</think>{\"a\":1}",
            "```text\nnot json\n```\n```json\n{\"a\":1}\n```",
            "I think {this} is it: {\"a\":1}",
        ] {
            assert_eq!(extract_json(text).expect(text)["a"], 1, "{text}");
        }
    }

    #[test]
    fn a_bare_list_is_accepted_whole_or_fenced() {
        assert!(extract_json("[1, 2]").expect("list").is_array());
        assert!(
            extract_json("```json\n[{\"a\": 1}]\n```")
                .expect("list")
                .is_array()
        );
    }

    #[test]
    fn no_object_is_an_error() {
        for text in [
            "I cannot help with that",
            "{\"a\": ",
            "42",
            "",
            "```json\n```",
        ] {
            assert!(
                matches!(extract_json(text), Err(LlmError::BadReply(_))),
                "{text}"
            );
        }
    }
}
