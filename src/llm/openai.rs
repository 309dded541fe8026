//! OpenAI Chat Completions, as spoken by OpenAI, Azure OpenAI and the servers that copy it
//! (Ollama, vLLM, llama.cpp's server, LiteLLM, OpenRouter).

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Client};
use super::{BoxFuture, ChatModel, ChatReply, ChatRequest, LlmError, Usage};
use crate::config::{Endpoint, ProviderKind, StructuredOutput};

pub struct ChatCompletions {
    client: Client,
    provider: ProviderKind,
    model: String,
    api_key: Option<SecretString>,
    max_tokens: u32,
    temperature: f32,
    /// The structured-output mode in use; stepped down (schema, object, prompt) when a
    /// compatible server rejects it, and remembered so later calls do not pay for it again.
    /// `Auto` until the server has said what it is.
    structured: AtomicU8,
    /// Where a compatible server lists its models (and says whose they are).
    models_url: String,
    /// How long the model list may take: at most the endpoint's own timeout.
    detect_timeout: std::time::Duration,
    /// What the server said of itself. Held while it is asked, so that calls made together
    /// share one ask.
    learning: tokio::sync::Mutex<Learning>,
}

/// What a compatible server said of itself, or why it is not known yet.
#[derive(Default)]
struct Learning {
    /// Set once the server answered (or was taken for one that does not say): the model's
    /// parameters, where it listed them.
    said: Option<Option<u64>>,
    /// Asks that failed for a passing reason; after [`MAX_DETECT_TRIES`] the server is taken
    /// for one that does not say what it is.
    failures: u8,
    /// After a failed ask, none before this: a review's several calls, made within moments,
    /// spend one try, not one each.
    not_before: Option<Instant>,
}

impl ChatCompletions {
    pub fn new(endpoint: &Endpoint) -> Result<Self, LlmError> {
        let base = endpoint.base_url.as_str().trim_end_matches('/');
        let url = match endpoint.provider {
            ProviderKind::Azure => {
                let mut url = endpoint.base_url.clone();
                url.path_segments_mut()
                    .map_err(|()| LlmError::Setup("llm.base_url cannot be a base".into()))?
                    .pop_if_empty()
                    .extend([
                        "openai",
                        "deployments",
                        &endpoint.model,
                        "chat",
                        "completions",
                    ]);
                url.query_pairs_mut()
                    .append_pair("api-version", &endpoint.api_version);
                url.to_string()
            }
            _ => format!("{base}/chat/completions"),
        };
        let structured = match (endpoint.structured_output, endpoint.provider) {
            (StructuredOutput::Auto, ProviderKind::OpenaiCompatible) => StructuredOutput::Auto,
            (StructuredOutput::Auto, _) => StructuredOutput::JsonSchema,
            (mode, _) => mode,
        };
        Ok(ChatCompletions {
            client: Client::new(endpoint, url)?,
            provider: endpoint.provider,
            model: endpoint.model.clone(),
            api_key: endpoint.api_key.clone(),
            max_tokens: endpoint.max_output_tokens,
            temperature: endpoint.temperature,
            structured: AtomicU8::new(mode_code(structured)),
            models_url: format!("{base}/models"),
            detect_timeout: DETECT_TIMEOUT.min(endpoint.timeout),
            learning: tokio::sync::Mutex::new(Learning::default()),
        })
    }

    /// The endpoint's URL (for logs and tests).
    pub fn url(&self) -> &str {
        self.client.url()
    }

    fn body(&self, request: &ChatRequest, mode: StructuredOutput) -> Value {
        let mut messages = vec![json!({"role": "system", "content": request.system})];
        messages.extend(request.turns.iter().map(|t| {
            json!({
                "role": t.role.label(),
                "content": t.content,
            })
        }));
        let mut body = json!({ "messages": messages, "stream": false });
        if self.provider != ProviderKind::Azure {
            // Azure routes by deployment in the URL; the body's model is ignored there.
            body["model"] = json!(self.model);
        }
        match self.provider {
            // OpenAI deprecated `max_tokens`, and its reasoning models reject it.
            ProviderKind::Openai | ProviderKind::Azure => {
                body["max_completion_tokens"] = json!(self.max_tokens)
            }
            _ => body["max_tokens"] = json!(self.max_tokens),
        }
        if !is_reasoning_model(&self.model) {
            // Reasoning models accept only their default temperature (and no penalties).
            body["temperature"] = json!(self.temperature);
            if request.against_repeats {
                body["frequency_penalty"] = json!(FREQUENCY_PENALTY);
            }
        }
        if let Some(schema) = &request.schema {
            let mode = match mode {
                StructuredOutput::Grammar if self.provider == ProviderKind::OpenaiCompatible => {
                    match super::gbnf::compact_grammar(&schema.schema) {
                        Ok(grammar) => {
                            body["grammar"] = json!(grammar);
                            return body;
                        }
                        Err(why) => {
                            tracing::debug!(%why, "no grammar for this schema; asking with it");
                            StructuredOutput::JsonSchema
                        }
                    }
                }
                StructuredOutput::Grammar => StructuredOutput::JsonSchema,
                other => other,
            };
            match mode {
                StructuredOutput::JsonSchema | StructuredOutput::Grammar => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {
                            "name": schema.name,
                            "description": schema.description,
                            "schema": match self.provider {
                                ProviderKind::Openai | ProviderKind::Azure => {
                                    super::strict_schema(&schema.schema)
                                }
                                _ => schema.schema.clone(),
                            },
                            "strict": true,
                        }
                    })
                }
                // `call` sends `Auto` (a server not yet asked what it is) as `json_object`.
                StructuredOutput::JsonObject | StructuredOutput::Auto => {
                    body["response_format"] = json!({"type": "json_object"})
                }
                StructuredOutput::Prompt => {}
            }
        }
        body
    }

    /// What this server is, from its model list: llama.cpp and vLLM mark each model as
    /// theirs (`owned_by`), and llama.cpp says how large it is. None when it could not be
    /// asked this time (down, timed out, a 5xx or 429 from a proxy in front of it): asked
    /// again by a later call, which meanwhile uses `json_object`, up to
    /// [`MAX_DETECT_TRIES`] times.
    async fn detect(&self, learning: &mut Learning) -> Option<(StructuredOutput, Option<u64>)> {
        let mut req = self
            .client
            .get(&self.models_url)
            .timeout(self.detect_timeout);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let (mode, params) = match self.client.send(req).await {
            Ok(text) => (
                mode_for_models(&text, &self.model),
                params_for_models(&text, &self.model),
            ),
            Err(e) if e.is_transient() => {
                learning.failures += 1;
                tracing::debug!(error = %e, failures = learning.failures, "could not ask the model server what it is");
                if learning.failures < MAX_DETECT_TRIES {
                    learning.not_before = Some(Instant::now() + self.detect_timeout);
                    return None;
                }
                (StructuredOutput::JsonObject, None)
            }
            // No model list (404), or not for us: a server that does not say what it is.
            Err(_) => (StructuredOutput::JsonObject, None),
        };
        tracing::info!(model = %self.model, structured_output = ?mode, ?params, "asked the model server what it is");
        Some((mode, params))
    }

    /// What the server said of itself: asks it ([`ChatCompletions::detect`]) unless it has
    /// answered, or an ask failed a moment ago; keeps the structured-output mode where it is
    /// still `Auto`. The model's parameters, where the server said.
    async fn learn(&self) -> Option<u64> {
        let mut learning = self.learning.lock().await;
        if let Some(params) = learning.said {
            return params;
        }
        if learning.not_before.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let (mode, params) = self.detect(&mut learning).await?;
        learning.said = Some(params);
        // A step-down made meanwhile (from `json_object`) is not undone.
        let _ = self.structured.compare_exchange(
            mode_code(StructuredOutput::Auto),
            mode_code(mode),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        params
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        if request.schema.is_some()
            && code_mode(self.structured.load(Ordering::Relaxed)) == StructuredOutput::Auto
        {
            self.learn().await;
        }
        loop {
            let read = self.structured.load(Ordering::Relaxed);
            let mode = match code_mode(read) {
                // The server could not be asked what it is: what most servers take.
                StructuredOutput::Auto => StructuredOutput::JsonObject,
                mode => mode,
            };
            let mode = super::stepped_down(mode, request.step_down);
            match self.call_once(request, mode).await {
                Err(LlmError::Status {
                    status: 400 | 422,
                    message,
                    ..
                }) if request.schema.is_some()
                    && self.provider == ProviderKind::OpenaiCompatible
                    && mode != StructuredOutput::Prompt
                    && mentions_response_format(&message) =>
                {
                    let next = match mode {
                        StructuredOutput::Grammar => StructuredOutput::JsonSchema,
                        StructuredOutput::JsonSchema => StructuredOutput::JsonObject,
                        _ => StructuredOutput::Prompt,
                    };
                    tracing::warn!(
                        model = %self.model, from = ?mode, to = ?next, %message,
                        "the server rejected the structured-output mode; stepping down"
                    );
                    // From what this call read: a detection or another step-down that landed
                    // meanwhile is not undone (the loop asks again with it).
                    let _ = self.structured.compare_exchange(
                        read,
                        mode_code(next),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        request: &ChatRequest,
        mode: StructuredOutput,
    ) -> Result<ChatReply, LlmError> {
        let mut req = self.client.post(&self.body(request, mode));
        if let Some(key) = &self.api_key {
            req = match self.provider {
                ProviderKind::Azure => req.header("api-key", key.expose_secret()),
                _ => req.bearer_auth(key.expose_secret()),
            };
        }
        let text = self.client.send(req).await?;
        parse_reply(&text, &self.model)
    }
}

/// Reads a chat completion body.
pub(crate) fn parse_reply(text: &str, requested_model: &str) -> Result<ChatReply, LlmError> {
    let parsed: Completion = http::parse_json(text, "a chat completion")?;
    // OpenRouter and some proxies answer 200 with an error object instead of choices.
    if parsed.choices.is_empty() {
        if let Some(err) = parsed.error {
            let status = err
                .code
                .as_ref()
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(502);
            return Err(LlmError::Status {
                status,
                message: err
                    .message
                    .unwrap_or_else(|| "error without a message".into()),
                retry_after: None,
            });
        }
        return Err(LlmError::BadReply("no choices in reply".into()));
    }
    let choice = parsed.choices.into_iter().next().unwrap_or_default();
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
        return Err(LlmError::Refused(refusal));
    }
    let finish = choice.finish_reason.as_deref().unwrap_or_default();
    if finish == "content_filter" {
        return Err(LlmError::Refused(
            "the provider's content filter stopped the reply".into(),
        ));
    }
    Ok(ChatReply {
        content: choice.message.content.unwrap_or_default(),
        usage: parsed.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cached_tokens: InputDetails::cached(u.prompt_tokens_details),
        }),
        truncated: finish == "length",
        model: http::answered_model(parsed.model, requested_model),
    })
}

impl ChatModel for ChatCompletions {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatReply, LlmError>> {
        Box::pin(self.call(request))
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.provider.label(), self.model)
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn params(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            if self.provider != ProviderKind::OpenaiCompatible {
                return None;
            }
            self.learn().await
        })
    }
}

/// `frequency_penalty` when asking again after a reply that looped: enough to break a
/// repeated sentence (OpenAI's range is -2 to 2), little enough to leave the JSON alone.
const FREQUENCY_PENALTY: f32 = 0.5;

/// How long a compatible server may take to list its models.
const DETECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Calls that may each try to read the model list before the server is taken for one that
/// does not say what it is: a list that never answers costs at most this many waits.
const MAX_DETECT_TRIES: u8 = 3;

/// The structured-output mode for `model` on a server whose `GET /models` answered `text`:
/// llama.cpp (`owned_by: "llamacpp"`) takes a grammar, which holds a small model to
/// one-line JSON (see BENCHMARKS.md); vLLM (`"vllm"`) enforces JSON schemas; what other
/// servers take is not known (a gateway such as LiteLLM names its own backends), so they get
/// `json_object` and are stepped down if they refuse it. The entry for `model` (by id or
/// alias) decides when the list has one; a gateway may list several backends' models.
fn mode_for_models(text: &str, model: &str) -> StructuredOutput {
    let listed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let models: &[Value] = listed["data"].as_array().map_or(&[], Vec::as_slice);
    let owner = models
        .iter()
        .find(|m| names(m, model))
        .or_else(|| models.first())
        .and_then(|m| m["owned_by"].as_str());
    match owner {
        Some("llamacpp") => StructuredOutput::Grammar,
        Some("vllm") => StructuredOutput::JsonSchema,
        _ => StructuredOutput::JsonObject,
    }
}

/// The parameters of `model` on a server whose `GET /models` answered `text`, where its
/// entry says (llama.cpp's `meta.n_params`). A server listing one model serves that one
/// whatever it is called; in a longer list only the model's own entry counts.
fn params_for_models(text: &str, model: &str) -> Option<u64> {
    let listed: Value = serde_json::from_str(text).ok()?;
    let models = listed["data"].as_array()?;
    let entry = match models.as_slice() {
        [only] => only,
        many => many.iter().find(|m| names(m, model))?,
    };
    entry["meta"]["n_params"].as_u64().filter(|&p| p > 0)
}

/// Whether a listed model is `model`, by id or alias.
fn names(listed: &Value, model: &str) -> bool {
    listed["id"].as_str() == Some(model)
        || listed["aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(model)))
}

/// OpenAI's o-series and gpt-5 models take no `temperature`.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model);
    m.starts_with("o1") || m.starts_with("o3") || m.starts_with("o4") || m.starts_with("gpt-5")
}

fn mentions_response_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("response_format")
        || m.contains("json_schema")
        || m.contains("response format")
        || m.contains("grammar")
}

fn mode_code(mode: StructuredOutput) -> u8 {
    match mode {
        StructuredOutput::JsonSchema => 0,
        StructuredOutput::JsonObject => 1,
        StructuredOutput::Prompt => 2,
        StructuredOutput::Grammar => 3,
        StructuredOutput::Auto => 4,
    }
}

fn code_mode(code: u8) -> StructuredOutput {
    match code {
        0 => StructuredOutput::JsonSchema,
        1 => StructuredOutput::JsonObject,
        3 => StructuredOutput::Grammar,
        4 => StructuredOutput::Auto,
        _ => StructuredOutput::Prompt,
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Choice {
    #[serde(default)]
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<InputDetails>,
}

/// The input tokens' details, alike in both of OpenAI's APIs (Chat Completions'
/// `prompt_tokens_details`, Responses' `input_tokens_details`).
#[derive(Deserialize)]
pub(crate) struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl InputDetails {
    /// How many input tokens the prompt cache served; 0 when the server does not say.
    pub(crate) fn cached(details: Option<InputDetails>) -> u64 {
        details.and_then(|d| d.cached_tokens).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_model_list_says_how_to_ask() {
        // llama.cpp's server (b6000s), as it answers `GET /v1/models`.
        let llama_cpp = r#"{"models":[{"name":"qwen2.5-coder-1.5b","model":"qwen2.5-coder-1.5b","modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],"capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"","families":[""],"parameter_size":"","quantization_level":""}}],"object":"list","data":[{"id":"qwen2.5-coder-1.5b","aliases":["qwen2.5-coder-1.5b"],"tags":[],"object":"model","created":1796643470,"owned_by":"llamacpp","meta":{"vocab_type":2,"n_vocab":151936,"n_ctx":8192,"n_ctx_train":32768,"n_embd":1536,"n_params":1777088000,"size":1111370240}}]}"#;
        assert_eq!(
            mode_for_models(llama_cpp, "qwen2.5-coder-1.5b"),
            StructuredOutput::Grammar
        );
        // Asked for a model it does not list (an alias set elsewhere): the server's kind.
        assert_eq!(
            mode_for_models(llama_cpp, "coder"),
            StructuredOutput::Grammar
        );
        let vllm = r#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-Coder-7B-Instruct","object":"model","created":1733000000,"owned_by":"vllm","root":"Qwen/Qwen2.5-Coder-7B-Instruct","parent":null,"max_model_len":32768,"permission":[]}]}"#;
        assert_eq!(
            mode_for_models(vllm, "Qwen/Qwen2.5-Coder-7B-Instruct"),
            StructuredOutput::JsonSchema
        );
        // A gateway listing several backends' models: the configured model's entry decides.
        let gateway = r#"{"object":"list","data":[{"id":"small","object":"model","owned_by":"llamacpp"},{"id":"gpt-4o","object":"model","owned_by":"openai"}]}"#;
        assert_eq!(
            mode_for_models(gateway, "gpt-4o"),
            StructuredOutput::JsonObject
        );
        assert_eq!(mode_for_models(gateway, "small"), StructuredOutput::Grammar);
        let ollama = r#"{"object":"list","data":[{"id":"qwen2.5-coder:7b","object":"model","created":1733000000,"owned_by":"library"}]}"#;
        assert_eq!(
            mode_for_models(ollama, "qwen2.5-coder:7b"),
            StructuredOutput::JsonObject
        );
        assert_eq!(
            mode_for_models("<html>not found</html>", "m"),
            StructuredOutput::JsonObject
        );
        assert_eq!(
            mode_for_models(r#"{"data": "x"}"#, "m"),
            StructuredOutput::JsonObject
        );
    }

    #[test]
    fn a_servers_model_list_says_how_large_the_model_is_where_it_can() {
        let llama_cpp = r#"{"object":"list","data":[{"id":"qwen2.5-coder-1.5b","aliases":["qwen2.5-coder-1.5b"],"owned_by":"llamacpp","meta":{"n_ctx":8192,"n_params":1777088000,"size":1111370240}}]}"#;
        assert_eq!(
            params_for_models(llama_cpp, "qwen2.5-coder-1.5b"),
            Some(1_777_088_000)
        );
        // One model listed: that is the one served, whatever Critic calls it.
        assert_eq!(params_for_models(llama_cpp, "coder"), Some(1_777_088_000));
        // Several: only the model's own entry counts.
        let two = r#"{"data":[{"id":"small","meta":{"n_params":1500000000}},{"id":"big","owned_by":"x"}]}"#;
        assert_eq!(params_for_models(two, "small"), Some(1_500_000_000));
        assert_eq!(params_for_models(two, "big"), None);
        assert_eq!(params_for_models(two, "other"), None);
        let vllm = r#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-Coder-7B-Instruct","owned_by":"vllm","max_model_len":32768}]}"#;
        assert_eq!(
            params_for_models(vllm, "Qwen/Qwen2.5-Coder-7B-Instruct"),
            None
        );
        assert_eq!(params_for_models("<html>not found</html>", "m"), None);
        assert_eq!(
            params_for_models(r#"{"data":[{"id":"m","meta":{"n_params":0}}]}"#, "m"),
            None
        );
    }

    #[test]
    fn reads_openais_documented_reply() {
        let body = r#"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I assist you today?", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "default"
}"#;
        let r = parse_reply(body, "gpt-4.1").expect("reply");
        assert_eq!(r.content, "Hello! How can I assist you today?");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 19,
                output_tokens: 10,
                cached_tokens: 0
            })
        );
        assert!(!r.truncated);
        assert_eq!(r.model, "gpt-4.1-2025-04-14");
    }

    #[test]
    fn length_refusal_no_usage_and_errors_in_200() {
        let cut = r#"{"choices":[{"message":{"content":"{\"findings\":[{\"pa"},"finish_reason":"length"}]}"#;
        let r = parse_reply(cut, "llama3").expect("reply");
        assert!(r.truncated);
        assert_eq!(r.usage, None, "compatible servers may send no usage");
        assert_eq!(r.model, "llama3");
        let refused = r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
        assert!(matches!(
            parse_reply(refused, "m"),
            Err(LlmError::Refused(_))
        ));
        let openrouter =
            r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min"}}"#;
        match parse_reply(openrouter, "m") {
            Err(e @ LlmError::Status { status: 429, .. }) => assert!(e.is_transient()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_reply("{\"choices\": [", "m"),
            Err(LlmError::BadReply(_))
        ));
    }

    #[test]
    fn reasoning_models() {
        for m in ["o1", "o3-mini", "o4-mini", "gpt-5", "openai/gpt-5-mini"] {
            assert!(is_reasoning_model(m), "{m}");
        }
        for m in ["gpt-4.1", "gpt-4o", "qwen2.5-coder:7b"] {
            assert!(!is_reasoning_model(m), "{m}");
        }
    }
}
