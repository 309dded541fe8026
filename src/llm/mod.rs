//! Talking to a model: the [`ChatModel`] seam, an OpenAI-compatible client, and the tolerant
//! JSON extraction that lets small local models' chatty replies still be used.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::LlmSettings;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model call timed out after {0:?}")]
    Timeout(Duration),
    #[error("model server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("model server unreachable: {0}")]
    Transport(String),
    #[error("model reply unusable: {0}")]
    BadReply(String),
}

impl LlmError {
    /// Worth trying again later.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Timeout(_) | LlmError::Transport(_) => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::BadReply(_) => true,
        }
    }
}

/// One request: a system part, a user part, and whether JSON is wanted.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub system: String,
    pub user: String,
    pub json: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ChatReply {
    pub content: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub finish_reason: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any model Critic can ask. Providers implement this; the pipeline sees only this.
pub trait ChatModel: Send + Sync {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>>;
    /// `provider/model`, for the summary and logs.
    fn describe(&self) -> String;
}

/// OpenAI Chat Completions, and the servers that copy it (Ollama, vLLM, llama.cpp, LiteLLM).
pub struct OpenAiCompatible {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    max_tokens: u32,
    temperature: f32,
}

impl OpenAiCompatible {
    pub fn new(settings: &LlmSettings, api_key: Option<SecretString>) -> Result<Self, LlmError> {
        let timeout = Duration::from_secs(settings.timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        Ok(OpenAiCompatible {
            http,
            endpoint: format!(
                "{}/chat/completions",
                settings.base_url.as_str().trim_end_matches('/')
            ),
            model: settings.model.clone(),
            api_key,
            timeout,
            max_tokens: settings.max_output_tokens,
            temperature: settings.temperature,
        })
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let mut body = serde_json::json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        });
        if request.json {
            body["response_format"] = serde_json::json!({"type": "json_object"});
        }
        let mut req = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(LlmError::Status {
                status: status.as_u16(),
                body: truncate(&text, 500),
            });
        }
        let parsed: CompletionResponse = serde_json::from_str(&text).map_err(|e| {
            LlmError::BadReply(format!(
                "not a chat completion ({e}): {}",
                truncate(&text, 200)
            ))
        })?;
        let choice = parsed
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::BadReply("no choices in reply".into()))?;
        Ok(ChatReply {
            content: choice.message.content.unwrap_or_default(),
            prompt_tokens: parsed.usage.as_ref().map(|u| u.prompt_tokens),
            completion_tokens: parsed.usage.as_ref().map(|u| u.completion_tokens),
            finish_reason: choice.finish_reason,
        })
    }

    fn transport(&self, e: reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout(self.timeout)
        } else {
            LlmError::Transport(e.to_string())
        }
    }
}

impl ChatModel for OpenAiCompatible {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>> {
        Box::pin(self.call(request))
    }

    fn describe(&self) -> String {
        format!("openai-compatible/{}", self.model)
    }
}

#[derive(Deserialize)]
struct CompletionResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Finds the JSON object in a reply: the whole text, a fenced block, or the outermost
/// `{...}` inside surrounding chatter.
pub fn extract_json(text: &str) -> Result<serde_json::Value, LlmError> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
        return Ok(v);
    }
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let after = after
            .split_once('\n')
            .map(|(_, rest)| rest)
            .unwrap_or(after);
        if let Some(end) = after.find("```")
            && let Ok(v) = serde_json::from_str(after[..end].trim())
        {
            return Ok(v);
        }
    }
    if let (Some(start), Some(end)) = (trimmed.find('{'), trimmed.rfind('}'))
        && start < end
        && let Ok(v) = serde_json::from_str(&trimmed[start..=end])
    {
        return Ok(v);
    }
    Err(LlmError::BadReply(format!(
        "no JSON object in reply: {}",
        truncate(trimmed, 200)
    )))
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
        ] {
            assert_eq!(extract_json(text).expect(text)["a"], 1, "{text}");
        }
        assert!(matches!(
            extract_json("I cannot help with that"),
            Err(LlmError::BadReply(_))
        ));
        assert!(extract_json("{\"a\": ").is_err());
    }

    #[test]
    fn transient_errors() {
        assert!(
            LlmError::Status {
                status: 503,
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            LlmError::Status {
                status: 429,
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            !LlmError::Status {
                status: 401,
                body: String::new()
            }
            .is_transient()
        );
        assert!(LlmError::Timeout(Duration::from_secs(1)).is_transient());
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
