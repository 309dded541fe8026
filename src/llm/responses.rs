//! OpenAI Responses API (`POST /responses`): OpenAI's newer interface, the one its reasoning
//! models are documented against. Stateless here: every call sends the whole conversation
//! and `store: false`, so nothing of a review is kept at OpenAI.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Client};
use super::openai::{InputDetails, is_reasoning_model};
use super::{BoxFuture, ChatModel, ChatReply, ChatRequest, LlmError, Usage};
use crate::config::{Endpoint, StructuredOutput};

pub struct Responses {
    client: Client,
    model: String,
    api_key: Option<SecretString>,
    max_tokens: u32,
    temperature: f32,
    structured: StructuredOutput,
}

impl Responses {
    pub fn new(endpoint: &Endpoint) -> Result<Self, LlmError> {
        let base = endpoint.base_url.as_str().trim_end_matches('/');
        Ok(Responses {
            client: Client::new(endpoint, format!("{base}/responses"))?,
            model: endpoint.model.clone(),
            api_key: endpoint.api_key.clone(),
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
        let input: Vec<Value> = request
            .turns
            .iter()
            .map(|t| {
                json!({
                    "role": t.role.label(),
                    "content": t.content,
                })
            })
            .collect();
        let mut body = json!({
            "model": self.model,
            "instructions": request.system,
            "input": input,
            "max_output_tokens": self.max_tokens,
            // Critic keeps its own record; nothing needs to live on at OpenAI.
            "store": false,
            "stream": false,
        });
        if !is_reasoning_model(&self.model) {
            // Reasoning models accept only their default temperature.
            body["temperature"] = json!(self.temperature);
        }
        if let Some(schema) = &request.schema {
            match super::stepped_down(self.structured, request.step_down) {
                // The Responses API flattens Chat Completions' `json_schema` wrapper into
                // `text.format` itself.
                StructuredOutput::JsonSchema
                | StructuredOutput::Grammar
                | StructuredOutput::Auto => {
                    body["text"] = json!({
                        "format": {
                            "type": "json_schema",
                            "name": schema.name,
                            "description": schema.description,
                            "schema": super::strict_schema(&schema.schema),
                            "strict": true,
                        }
                    })
                }
                StructuredOutput::JsonObject => {
                    body["text"] = json!({"format": {"type": "json_object"}})
                }
                StructuredOutput::Prompt => {}
            }
        }
        body
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let mut req = self.client.post(&self.body(request));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let text = self.client.send(req).await?;
        parse_reply(&text, &self.model)
    }
}

/// Reads a response object: the text of its `message` items (reasoning items are skipped),
/// with `status` deciding between a reply, a truncated reply, a refusal and an error.
pub(crate) fn parse_reply(text: &str, requested_model: &str) -> Result<ChatReply, LlmError> {
    let parsed: Response = http::parse_json(text, "a response object")?;
    let status = parsed.status.as_deref().unwrap_or("completed");
    let reason = parsed
        .incomplete_details
        .as_ref()
        .and_then(|d| d.reason.as_deref());
    match status {
        "completed" | "incomplete" => {}
        "failed" => {
            let Some(err) = parsed.error else {
                return Err(LlmError::BadReply(
                    "response failed without an error".into(),
                ));
            };
            let code = err.code.unwrap_or_default();
            // The body came with a 200, so the status is Critic's reading of the code: only
            // OpenAI's own trouble is worth retrying.
            let status = match code.as_str() {
                "server_error" => 500,
                "rate_limit_exceeded" => 429,
                _ => 400,
            };
            let message = err
                .message
                .unwrap_or_else(|| "error without a message".into());
            return Err(LlmError::Status {
                status,
                message: if code.is_empty() || message.contains(&code) {
                    message
                } else {
                    format!("{code}: {message}")
                },
                retry_after: None,
            });
        }
        other => {
            return Err(LlmError::BadReply(format!(
                "response not finished: status {other}"
            )));
        }
    }
    if reason == Some("content_filter") {
        return Err(LlmError::Refused(
            "the provider's content filter stopped the reply".into(),
        ));
    }
    let mut content = String::new();
    let mut messages = 0;
    for item in parsed.output.into_iter().filter(|i| i.kind == "message") {
        messages += 1;
        for part in item.content {
            match part.kind.as_str() {
                "output_text" => content.push_str(&part.text.unwrap_or_default()),
                "refusal" => {
                    return Err(LlmError::Refused(
                        part.refusal
                            .filter(|r| !r.is_empty())
                            .unwrap_or_else(|| "refused without a reason".into()),
                    ));
                }
                _ => {}
            }
        }
    }
    let truncated = status == "incomplete";
    // An incomplete reply may have spent its whole budget reasoning and hold no message.
    if messages == 0 && !truncated {
        return Err(LlmError::BadReply(
            "no message in the response output".into(),
        ));
    }
    Ok(ChatReply {
        content,
        usage: parsed.usage.map(|u| Usage {
            prompt_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cached_tokens: InputDetails::cached(u.input_tokens_details),
        }),
        truncated,
        model: http::answered_model(parsed.model, requested_model),
    })
}

impl ChatModel for Responses {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>> {
        Box::pin(self.call(request))
    }

    fn describe(&self) -> String {
        format!("openai-responses/{}", self.model)
    }

    fn model(&self) -> &str {
        &self.model
    }
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    output: Vec<OutputItem>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    error: Option<ResponseError>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
}

#[derive(Deserialize)]
struct OutputItem {
    #[serde(rename = "type", default)]
    kind: String,
    /// Only `message` items have content parts; reasoning items carry a summary instead.
    #[serde(default)]
    content: Vec<ContentPart>,
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct ResponseError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openais_documented_reply() {
        let body = r#"{
  "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
  "object": "response",
  "created_at": 1741476542,
  "status": "completed",
  "error": null,
  "incomplete_details": null,
  "instructions": null,
  "max_output_tokens": null,
  "model": "gpt-4.1-2025-04-14",
  "output": [
    {
      "type": "message",
      "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
      "status": "completed",
      "role": "assistant",
      "content": [
        {
          "type": "output_text",
          "text": "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool that reflected the stars.",
          "annotations": []
        }
      ]
    }
  ],
  "parallel_tool_calls": true,
  "previous_response_id": null,
  "reasoning": {"effort": null, "summary": null},
  "store": true,
  "temperature": 1.0,
  "text": {"format": {"type": "text"}},
  "tool_choice": "auto",
  "tools": [],
  "top_p": 1.0,
  "truncation": "disabled",
  "usage": {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 123
  },
  "user": null,
  "metadata": {}
}"#;
        let r = parse_reply(body, "gpt-4.1").expect("reply");
        assert!(
            r.content.starts_with("In a peaceful grove"),
            "{}",
            r.content
        );
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 36,
                output_tokens: 87,
                cached_tokens: 0
            })
        );
        assert!(!r.truncated);
        assert_eq!(r.model, "gpt-4.1-2025-04-14");
    }

    #[test]
    fn skips_reasoning_items_and_joins_text_parts() {
        let body = r#"{
  "id": "resp_1", "object": "response", "status": "completed", "model": "o4-mini-2025-04-16",
  "output": [
    {"id": "rs_1", "type": "reasoning", "content": [], "summary": []},
    {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
     "content": [{"type": "output_text", "text": "{\"findings\": ", "annotations": []},
                 {"type": "output_text", "text": "[]}", "annotations": []}]}
  ],
  "usage": {"input_tokens": 75, "input_tokens_details": {"cached_tokens": 64},
            "output_tokens": 1186, "output_tokens_details": {"reasoning_tokens": 1024},
            "total_tokens": 1261}
}"#;
        let r = parse_reply(body, "o4-mini").expect("reply");
        assert_eq!(r.content, "{\"findings\": []}");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 75,
                output_tokens: 1186,
                cached_tokens: 64
            })
        );
        assert_eq!(r.model, "o4-mini-2025-04-16");
    }

    #[test]
    fn incomplete_at_max_output_tokens_is_a_truncated_reply() {
        let partial = r#"{"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
  "output": [{"type": "message", "role": "assistant", "status": "incomplete",
              "content": [{"type": "output_text", "text": "{\"findings\": [\"a"}]}],
  "usage": {"input_tokens": 5, "output_tokens": 1000}}"#;
        let r = parse_reply(partial, "gpt-4.1").expect("reply");
        assert!(r.truncated);
        assert_eq!(r.content, "{\"findings\": [\"a");
        assert_eq!(r.model, "gpt-4.1", "falls back to the requested model");
        // A reasoning model can spend the whole budget thinking and say nothing.
        let thought_only = r#"{"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
  "output": [{"type": "reasoning", "summary": []}]}"#;
        let r = parse_reply(thought_only, "o3").expect("reply");
        assert!(r.truncated);
        assert_eq!(r.content, "");
        assert_eq!(r.usage, None);
    }

    #[test]
    fn refusals() {
        let refused = r#"{"status": "completed", "output": [{"type": "message", "role": "assistant",
  "content": [{"type": "refusal", "refusal": "I'm sorry, I cannot assist with that request."}]}]}"#;
        match parse_reply(refused, "m") {
            Err(LlmError::Refused(why)) => assert!(why.contains("cannot assist"), "{why}"),
            other => panic!("{other:?}"),
        }
        let filtered = r#"{"status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "output": []}"#;
        assert!(matches!(
            parse_reply(filtered, "m"),
            Err(LlmError::Refused(_))
        ));
    }

    #[test]
    fn failed_and_unusable_responses() {
        let failed = |code: &str| {
            format!(
                r#"{{"status": "failed", "output": [], "error": {{"code": "{code}", "message": "Something went wrong."}}}}"#
            )
        };
        match parse_reply(&failed("server_error"), "m") {
            Err(e @ LlmError::Status { status: 500, .. }) => {
                assert!(e.is_transient());
                assert!(
                    e.to_string()
                        .contains("server_error: Something went wrong."),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_reply(&failed("invalid_prompt"), "m") {
            Err(e @ LlmError::Status { status: 400, .. }) => assert!(!e.is_transient()),
            other => panic!("{other:?}"),
        }
        match parse_reply(&failed("rate_limit_exceeded"), "m") {
            Err(e @ LlmError::Status { status: 429, .. }) => assert!(e.is_transient()),
            other => panic!("{other:?}"),
        }
        for body in [
            r#"{"status": "failed", "output": []}"#,
            r#"{"status": "in_progress", "output": []}"#,
            r#"{"status": "completed", "output": [{"type": "reasoning", "summary": []}]}"#,
            r#"{"status": "completed", "output": ["#,
        ] {
            assert!(
                matches!(parse_reply(body, "m"), Err(LlmError::BadReply(_))),
                "{body}"
            );
        }
    }
}
