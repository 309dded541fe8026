//! Anthropic Messages (`POST /v1/messages`). A schema is asked for as one forced tool call:
//! the API has no JSON response mode, but a tool's `input_schema` is followed and its input
//! arrives as a parsed JSON object.

use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Client};
use super::{BoxFuture, ChatModel, ChatReply, ChatRequest, LlmError, Role, Turn, Usage, truncate};
use crate::config::{Endpoint, StructuredOutput};

/// The API version every request names; the reply shape below is this version's.
const API_VERSION: &str = "2023-06-01";

/// Anthropic rejects empty or blank text in any message but a final assistant one; a
/// re-ask after an empty reply would otherwise fail with a 400.
const EMPTY_TURN: &str = "(empty)";

pub struct Messages {
    client: Client,
    model: String,
    /// `x-api-key`, marked sensitive so it never shows in debug output.
    api_key: HeaderValue,
    max_tokens: u32,
    temperature: f32,
    structured: StructuredOutput,
}

impl Messages {
    pub fn new(endpoint: &Endpoint) -> Result<Self, LlmError> {
        let base = endpoint.base_url.as_str().trim_end_matches('/');
        // Settings require a key for Anthropic; an endpoint built by hand may still lack one.
        let key = endpoint
            .api_key
            .as_ref()
            .ok_or_else(|| LlmError::Setup("anthropic: an api_key is required".into()))?;
        let mut api_key = HeaderValue::from_str(key.expose_secret())
            .map_err(|_| LlmError::Setup("anthropic: the api_key is not a valid header".into()))?;
        api_key.set_sensitive(true);
        Ok(Messages {
            client: Client::new(endpoint, format!("{base}/messages"))?,
            model: endpoint.model.clone(),
            api_key,
            max_tokens: endpoint.max_output_tokens,
            temperature: endpoint.temperature,
            structured: endpoint.structured_output,
        })
    }

    /// The endpoint's URL (for logs and tests).
    pub fn url(&self) -> &str {
        self.client.url()
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            // Required by Anthropic, unlike OpenAI.
            "max_tokens": self.max_tokens,
            // Settings allow up to 2 (OpenAI's range); Anthropic rejects anything over 1.
            "temperature": self.temperature.min(1.0),
            "system": request.system,
            "messages": messages(&request.turns),
        });
        if let Some(schema) = &request.schema
            && matches!(
                super::stepped_down(self.structured, request.step_down),
                StructuredOutput::JsonSchema | StructuredOutput::Grammar | StructuredOutput::Auto
            )
        {
            body["tools"] = json!([{
                "name": schema.name,
                "description": schema.description,
                "input_schema": schema.schema,
            }]);
            // Forced, so the reply is the tool call and nothing else.
            body["tool_choice"] = json!({"type": "tool", "name": schema.name});
        }
        body
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let req = self
            .client
            .post(&self.body(request))
            .header("x-api-key", self.api_key.clone())
            .header("anthropic-version", API_VERSION);
        let text = self.client.send(req).await?;
        parse_reply(&text, &self.model)
    }
}

/// The conversation as Anthropic wants it: strictly alternating roles (adjacent turns of
/// one role are joined), each turn's content a non-blank string. An assistant turn holding
/// an earlier tool call's JSON goes back as plain text, which needs no tool-result pairing.
fn messages(turns: &[Turn]) -> Vec<Value> {
    let mut merged: Vec<(Role, String)> = Vec::new();
    for turn in turns {
        let content = if turn.content.trim().is_empty() {
            EMPTY_TURN
        } else {
            turn.content.as_str()
        };
        match merged.last_mut() {
            Some((role, text)) if *role == turn.role => {
                text.push_str("\n\n");
                text.push_str(content);
            }
            _ => merged.push((turn.role, content.to_string())),
        }
    }
    merged
        .into_iter()
        .map(|(role, content)| {
            json!({
                "role": role.label(),
                "content": content,
            })
        })
        .collect()
}

/// Reads a Messages reply: a tool call's input as JSON text when there is one, else the
/// text blocks joined.
pub(crate) fn parse_reply(text: &str, requested_model: &str) -> Result<ChatReply, LlmError> {
    let parsed: Reply = http::parse_json(text, "a Messages reply")?;
    // Proxies (and the API itself, mid-stream) can deliver an error event with a 200.
    if parsed.kind.as_deref() == Some("error") {
        let overloaded = parsed
            .error
            .as_ref()
            .and_then(|e| e.kind.as_deref())
            .is_some_and(|k| k == "overloaded_error");
        return Err(LlmError::Status {
            status: if overloaded { 529 } else { 500 },
            message: http::error_message(text),
            retry_after: None,
        });
    }
    let Some(blocks) = parsed.content else {
        return Err(LlmError::BadReply(format!(
            "no content in reply: {}",
            truncate(text, 200)
        )));
    };
    let tool_input = blocks
        .iter()
        .find(|b| b.kind == "tool_use")
        .and_then(|b| b.input.as_ref());
    let content = match tool_input {
        Some(input) => serde_json::to_string(input)
            .map_err(|e| LlmError::BadReply(format!("tool input not serialisable: {e}")))?,
        None => blocks
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect(),
    };
    let stop = parsed.stop_reason.as_deref().unwrap_or_default();
    if stop == "refusal" {
        return Err(LlmError::Refused(if content.trim().is_empty() {
            "the model declined to answer (stop_reason: refusal)".into()
        } else {
            truncate(&content, 500)
        }));
    }
    Ok(ChatReply {
        content,
        usage: parsed.usage.map(|u| {
            let cache_read = u.cache_read_input_tokens.unwrap_or(0);
            // Anthropic counts cached and cache-writing input apart from `input_tokens`.
            Usage {
                prompt_tokens: u.input_tokens
                    + cache_read
                    + u.cache_creation_input_tokens.unwrap_or(0),
                output_tokens: u.output_tokens,
                cached_tokens: cache_read,
            }
        }),
        // `model_context_window_exceeded` also stops mid-answer, at the context limit.
        truncated: matches!(stop, "max_tokens" | "model_context_window_exceeded"),
        model: http::answered_model(parsed.model, requested_model),
    })
}

impl ChatModel for Messages {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>> {
        Box::pin(self.call(request))
    }

    fn describe(&self) -> String {
        format!("anthropic/{}", self.model)
    }

    fn model(&self) -> &str {
        &self.model
    }
}

#[derive(Deserialize)]
struct Reply {
    /// `message`, or `error` for an error object.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    content: Option<Vec<Block>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<ReplyUsage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// One content block; kinds other than `text` and `tool_use` (thinking) are skipped.
#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct ReplyUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::ProviderKind;
    use crate::llm::OutputSchema;

    fn endpoint(structured: StructuredOutput) -> Endpoint {
        Endpoint {
            name: "default".into(),
            provider: ProviderKind::Anthropic,
            base_url: "https://api.anthropic.com/v1".parse().expect("url"),
            model: "claude-sonnet-4-5".into(),
            api_key: Some("sk-ant-test".to_string().into()),
            api_version: String::new(),
            structured_output: structured,
            timeout: Duration::from_secs(5),
            max_output_tokens: 2000,
            temperature: 1.5,
            max_concurrent: 1,
        }
    }

    fn schema() -> Arc<OutputSchema> {
        Arc::new(OutputSchema {
            name: "review",
            description: "Findings",
            schema: json!({"type": "object", "properties": {"findings": {"type": "array"}}}),
        })
    }

    #[test]
    fn reads_anthropics_documented_text_reply() {
        let body = r#"{
  "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "model": "claude-sonnet-4-5-20250929",
  "role": "assistant",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "type": "message",
  "usage": {"input_tokens": 2095, "output_tokens": 503}
}"#;
        let r = parse_reply(body, "claude-sonnet-4-5").expect("reply");
        assert_eq!(r.content, "Hi! My name is Claude.");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 2095,
                output_tokens: 503,
                cached_tokens: 0
            })
        );
        assert!(!r.truncated);
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    }

    #[test]
    fn reads_a_tool_use_reply_as_json_text() {
        // The tool-use guide's example: a text block, then the call.
        let body = r#"{
  "id": "msg_01Aq9w938a90dw8q",
  "model": "claude-opus-4-1-20250805",
  "stop_reason": "tool_use",
  "role": "assistant",
  "content": [
    {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
     "input": {"location": "San Francisco, CA", "unit": "celsius"}}
  ]
}"#;
        let r = parse_reply(body, "claude-opus-4-1").expect("reply");
        let input: Value = serde_json::from_str(&r.content).expect("json text");
        assert_eq!(
            input,
            json!({"location": "San Francisco, CA", "unit": "celsius"})
        );
        assert_eq!(r.usage, None, "this example carries no usage");
        assert!(!r.truncated);
    }

    #[test]
    fn usage_counts_cached_and_cache_writing_input() {
        let body = r#"{"type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
  "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
  "usage": {"input_tokens": 21, "cache_creation_input_tokens": 188, "cache_read_input_tokens": 1500, "output_tokens": 393}}"#;
        let u = parse_reply(body, "m").expect("reply").usage.expect("usage");
        assert_eq!(
            u,
            Usage {
                prompt_tokens: 21 + 188 + 1500,
                output_tokens: 393,
                cached_tokens: 1500
            }
        );
        let nulls = r#"{"type": "message", "content": [], "stop_reason": "end_turn",
  "usage": {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": null, "cache_read_input_tokens": null}}"#;
        let u = parse_reply(nulls, "m")
            .expect("reply")
            .usage
            .expect("usage");
        assert_eq!((u.prompt_tokens, u.cached_tokens), (5, 0));
    }

    #[test]
    fn max_tokens_refusal_and_errors_in_200() {
        let cut = r#"{"type": "message", "content": [{"type": "text", "text": "{\"findings\": [\"a"}],
  "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 2000}}"#;
        let r = parse_reply(cut, "claude-haiku-4-5").expect("a cut reply is still a reply");
        assert!(r.truncated);
        assert_eq!(r.model, "claude-haiku-4-5");
        let refused = r#"{"type": "message", "content": [], "stop_reason": "refusal",
  "usage": {"input_tokens": 10, "output_tokens": 0}}"#;
        assert!(matches!(
            parse_reply(refused, "m"),
            Err(LlmError::Refused(_))
        ));
        let overloaded =
            r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#;
        match parse_reply(overloaded, "m") {
            Err(e @ LlmError::Status { status: 529, .. }) => {
                assert!(e.is_transient());
                assert!(e.to_string().contains("Overloaded"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let api = r#"{"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}"#;
        assert!(matches!(
            parse_reply(api, "m"),
            Err(LlmError::Status { status: 500, .. })
        ));
        assert!(matches!(
            parse_reply("{\"content\": [", "m"),
            Err(LlmError::BadReply(_))
        ));
        assert!(matches!(
            parse_reply("{\"type\": \"message\"}", "m"),
            Err(LlmError::BadReply(_))
        ));
    }

    #[test]
    fn body_forces_the_schema_tool_and_keeps_turns_alternating() {
        let m = Messages::new(&endpoint(StructuredOutput::JsonSchema)).expect("client");
        assert_eq!(m.url(), "https://api.anthropic.com/v1/messages");
        assert_eq!(m.describe(), "anthropic/claude-sonnet-4-5");
        let mut request = ChatRequest::new("sys", "review").with_schema(schema());
        request.turns.push(Turn::assistant("{\"findings\": 3}"));
        request.turns.push(Turn::user("findings must be an array"));
        let body = m.body(&request);
        assert_eq!(body["max_tokens"], 2000);
        assert_eq!(body["temperature"], 1.0, "clamped to Anthropic's range");
        assert_eq!(body["system"], "sys");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "review"},
                {"role": "assistant", "content": "{\"findings\": 3}"},
                {"role": "user", "content": "findings must be an array"},
            ])
        );
        assert_eq!(body["tools"][0]["name"], "review");
        assert_eq!(body["tools"][0]["input_schema"], schema().schema);
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": "review"})
        );
    }

    #[test]
    fn a_stepped_down_call_sends_no_tool() {
        let m = Messages::new(&endpoint(StructuredOutput::JsonSchema)).expect("client");
        let mut request = ChatRequest::new("sys", "review").with_schema(schema());
        request.step_down = 1;
        let body = m.body(&request);
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    }

    #[test]
    fn other_modes_send_no_tools_and_blank_turns_are_filled() {
        let m = Messages::new(&endpoint(StructuredOutput::Prompt)).expect("client");
        let mut request = ChatRequest::new("sys", "a").with_schema(schema());
        request.turns.push(Turn::user("b"));
        request.turns.push(Turn::assistant("  "));
        request.turns.push(Turn::user("again"));
        let body = m.body(&request);
        assert!(body.get("tools").is_none());
        assert!(body.get("tool_choice").is_none());
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "a\n\nb"},
                {"role": "assistant", "content": EMPTY_TURN},
                {"role": "user", "content": "again"},
            ])
        );
    }

    #[test]
    fn needs_a_key() {
        let mut e = endpoint(StructuredOutput::JsonSchema);
        e.api_key = None;
        assert!(matches!(Messages::new(&e), Err(LlmError::Setup(_))));
    }
}
