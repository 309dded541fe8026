//! Talking to models. Providers implement [`ChatModel`]: one call, no retries, each speaking
//! its own wire format. [`Llm`] is what the pipeline uses: it picks the endpoint for a task,
//! caps concurrent calls, retries transient failures, falls back to the next endpoint, asks
//! again when a reply cannot be parsed, and meters tokens and cost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub mod anthropic;
pub mod cost;
pub mod gbnf;
mod http;
pub mod json;
pub mod openai;
pub mod prefix;
pub mod repair;
pub mod responses;
pub mod retry;
pub mod router;

pub use crate::domain::{Spent, Usage};
pub use cost::Meter;
pub use json::extract_json;
pub use repair::Parts;
pub use router::{AskError, Llm};

use crate::config::{Endpoint, ProviderKind, StructuredOutput};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model call timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status; `message` is the provider's own words.
    #[error("model server answered {status}: {message}")]
    Status {
        status: u16,
        message: String,
        /// From `Retry-After` (or `retry-after-ms`), when the server said when to come back.
        retry_after: Option<Duration>,
    },
    #[error("model server unreachable: {0}")]
    Transport(String),
    /// A well-formed reply with nothing in it: a failed call, retried like a 5xx, not a
    /// bad answer to show the model.
    #[error("the model sent an empty reply")]
    EmptyReply,
    /// The HTTP exchange worked but the body is not the provider's reply shape (a truncated
    /// body, an HTML error page from a proxy).
    #[error("model reply unusable: {0}")]
    BadReply(String),
    /// The model refused (OpenAI `refusal`, Anthropic `stop_reason: refusal`).
    #[error("model refused: {0}")]
    Refused(String),
    #[error("cannot build the model client: {0}")]
    Setup(String),
}

impl LlmError {
    /// Worth the same call again after a pause: 408, 409, 429, 5xx (Anthropic's 529
    /// overloaded among them), timeouts, dropped connections and truncated bodies.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Timeout(_)
            | LlmError::Transport(_)
            | LlmError::BadReply(_)
            | LlmError::EmptyReply => true,
            LlmError::Status { status, .. } => matches!(*status, 408 | 409 | 429) || *status >= 500,
            LlmError::Refused(_) | LlmError::Setup(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Who said a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role's name on the wire, the same for every provider.
    pub fn label(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

impl Turn {
    pub fn user(content: impl Into<String>) -> Turn {
        Turn {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Turn {
        Turn {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// The JSON shape a task wants back, as a JSON Schema. Written so that OpenAI's strict mode
/// accepts it: every property required (optional ones nullable), no additional properties.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// `[a-zA-Z0-9_-]+`: the schema name (OpenAI) or tool name (Anthropic).
    pub name: &'static str,
    pub description: &'static str,
    pub schema: serde_json::Value,
}

/// One request: a system part, the conversation so far, and the shape wanted back.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub system: String,
    /// Starts with the user's turn; a re-ask adds the model's reply and a correction.
    pub turns: Vec<Turn>,
    /// None: free text.
    pub schema: Option<Arc<OutputSchema>>,
    /// Steps below the endpoint's structured-output mode for this call (schema, object,
    /// prompt): a last repair round loosens the mode, since constrained decoding is where
    /// some small models loop.
    pub step_down: u8,
    /// Ask the server to penalise repeated tokens (`frequency_penalty`, where the API has
    /// it): set when asking again after a reply that repeated itself until the output limit,
    /// the way small models fail.
    pub against_repeats: bool,
}

impl ChatRequest {
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> ChatRequest {
        ChatRequest {
            system: system.into(),
            turns: vec![Turn::user(user)],
            schema: None,
            step_down: 0,
            against_repeats: false,
        }
    }

    pub fn with_schema(mut self, schema: Arc<OutputSchema>) -> ChatRequest {
        self.schema = Some(schema);
        self
    }

    /// The first user turn: the prompt itself.
    pub fn user(&self) -> &str {
        self.turns
            .iter()
            .find(|t| t.role == Role::User)
            .map(|t| t.content.as_str())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ChatReply {
    /// The text, or for a tool call the tool's input as JSON text.
    pub content: String,
    /// None when the server reports no usage (some compatible servers).
    pub usage: Option<Usage>,
    /// The reply stopped at the output token limit, so it is probably incomplete.
    pub truncated: bool,
    /// The model that answered, as the server names it (falls back to the requested one).
    pub model: String,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One model behind one endpoint. Implementations make exactly one HTTP call per
/// `complete`; retries, fallbacks and limits live in [`Llm`].
pub trait ChatModel: Send + Sync {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>>;
    /// `provider/model`, for the summary and logs.
    fn describe(&self) -> String;
    /// The model name as configured (for prices and token counting).
    fn model(&self) -> &str;
    /// How many parameters the model has, where its server says (llama.cpp does); asked
    /// of the server at most once it has answered.
    fn params(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async { None })
    }
}

/// The client for one configured endpoint.
pub fn connect(endpoint: &Endpoint) -> Result<Arc<dyn ChatModel>, LlmError> {
    Ok(match endpoint.provider {
        ProviderKind::OpenaiCompatible | ProviderKind::Openai | ProviderKind::Azure => {
            Arc::new(openai::ChatCompletions::new(endpoint)?)
        }
        ProviderKind::OpenaiResponses => Arc::new(responses::Responses::new(endpoint)?),
        ProviderKind::Anthropic => Arc::new(anthropic::Messages::new(endpoint)?),
    })
}

/// A schema as OpenAI's strict mode takes it for sure: without `minItems`, which only
/// narrows what a reply may be (it is there for llama.cpp, where a small model held to a
/// grammar otherwise closes a list it should fill).
pub(crate) fn strict_schema(schema: &serde_json::Value) -> serde_json::Value {
    match schema {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "minItems")
            .map(|(k, v)| (k.clone(), strict_schema(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.iter().map(strict_schema).collect(),
        other => other.clone(),
    }
}

/// The mode one call asks in: the endpoint's, loosened `steps` times.
pub(crate) fn stepped_down(mode: StructuredOutput, steps: u8) -> StructuredOutput {
    (0..steps).fold(mode, |mode, _| match mode {
        StructuredOutput::JsonSchema | StructuredOutput::Grammar | StructuredOutput::Auto => {
            StructuredOutput::JsonObject
        }
        StructuredOutput::JsonObject | StructuredOutput::Prompt => StructuredOutput::Prompt,
    })
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        let status = |s| LlmError::Status {
            status: s,
            message: String::new(),
            retry_after: None,
        };
        for s in [408, 409, 429, 500, 502, 503, 529] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!status(s).is_transient(), "{s}");
        }
        assert!(LlmError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(LlmError::Transport("reset".into()).is_transient());
        assert!(LlmError::EmptyReply.is_transient());
        assert!(!LlmError::Refused("no".into()).is_transient());
    }

    #[test]
    fn openais_schema_drops_min_items_only() {
        let schema = serde_json::json!({"type": "object", "properties": {"v": {"type": "array", "minItems": 1, "items": {"type": "integer"}}}});
        let strict = strict_schema(&schema);
        assert_eq!(
            strict,
            serde_json::json!({"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"}}}})
        );
    }

    #[test]
    fn modes_step_down_to_the_prompt_and_stay_there() {
        use StructuredOutput::*;
        assert_eq!(stepped_down(JsonSchema, 0), JsonSchema);
        assert_eq!(stepped_down(JsonSchema, 1), JsonObject);
        assert_eq!(stepped_down(JsonSchema, 2), Prompt);
        assert_eq!(stepped_down(JsonObject, 1), Prompt);
        assert_eq!(stepped_down(Prompt, 3), Prompt);
        assert_eq!(stepped_down(Grammar, 0), Grammar);
        assert_eq!(stepped_down(Grammar, 1), JsonObject);
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
