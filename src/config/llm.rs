//! Model settings: the `[llm]` endpoint, named extra endpoints, which endpoint each task
//! uses, the fallback chain, prices and the monthly budget.
//!
//! ```toml
//! [llm]                         # the endpoint named "default"
//! provider = "openai"
//! model = "gpt-4.1"
//! api_key_file = "/etc/critic/openai-key"
//! fallback = ["local"]          # tried in order when a task's endpoint fails
//!
//! [llm.tasks]
//! describe = "mini"             # cheaper model for summaries and descriptions
//!
//! [llm.endpoints.mini]          # inherits everything it does not set from [llm]
//! model = "gpt-4.1-mini"
//!
//! [llm.endpoints.local]
//! provider = "openai-compatible"
//! base_url = "http://127.0.0.1:11434/v1"
//! model = "qwen2.5-coder:7b"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, secret_from};

/// The wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions as copied by Ollama, vLLM, llama.cpp, LiteLLM, OpenRouter.
    OpenaiCompatible,
    /// OpenAI's own Chat Completions.
    Openai,
    /// OpenAI's Responses API.
    OpenaiResponses,
    /// Anthropic Messages.
    Anthropic,
    /// Azure OpenAI: deployment URLs, `api-key` header, `api-version`.
    Azure,
}

impl ProviderKind {
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiResponses => "openai-responses",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Azure => "azure",
        }
    }

    fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenaiCompatible => Some(DEFAULT_BASE_URL),
            ProviderKind::Openai | ProviderKind::OpenaiResponses => {
                Some("https://api.openai.com/v1")
            }
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Azure => None,
        }
    }

    /// How a schema is asked for when settings do not say: the hosted APIs enforce JSON
    /// schemas; a compatible server is asked what it is (many accept only `json_object`, or
    /// nothing, and one that rejects a mode is stepped down at run time anyway).
    fn default_structured(self) -> StructuredOutput {
        match self {
            ProviderKind::OpenaiCompatible => StructuredOutput::Auto,
            _ => StructuredOutput::JsonSchema,
        }
    }
}

/// How a reply's JSON shape is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    /// `response_format: json_schema` (OpenAI, Azure, vLLM, llama.cpp, recent Ollama), the
    /// Responses API's `text.format`, or a forced tool call (Anthropic).
    JsonSchema,
    /// `response_format: json_object`: valid JSON, shape described in the prompt.
    JsonObject,
    /// Nothing on the wire; the prompt describes the shape and the reply is parsed tolerantly.
    Prompt,
    /// llama.cpp's `grammar`: the schema as a grammar that keeps the JSON on one line (one
    /// space after a colon or comma at most), so the model cannot spend output tokens on line
    /// breaks and indentation (a fifth of a small model's review under `json_schema`). For
    /// llama.cpp servers only; elsewhere it is `json_schema`.
    Grammar,
    /// Ask the server what it is, once (`GET /models`, whose entries llama.cpp and vLLM
    /// mark as theirs): llama.cpp gets `grammar`, vLLM `json_schema`, any other server
    /// `json_object`. The default for `openai-compatible`; elsewhere it is `json_schema`.
    Auto,
}

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434/v1";
pub const DEFAULT_MODEL: &str = "qwen2.5-coder:7b";
pub const DEFAULT_ENDPOINT_NAME: &str = "default";

/// Fields an endpoint may set; a named endpoint inherits the unset ones from `[llm]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub provider: Option<ProviderKind>,
    /// API base (`https://api.openai.com/v1`; for Azure `https://RESOURCE.openai.azure.com`).
    pub base_url: Option<url::Url>,
    /// Model name; for Azure, the deployment name.
    pub model: Option<String>,
    pub api_key: Option<SecretString>,
    pub api_key_file: Option<PathBuf>,
    /// Azure's `api-version` query parameter.
    pub api_version: Option<String>,
    pub structured_output: Option<StructuredOutput>,
    /// Timeout of one model call, seconds.
    pub timeout_secs: Option<u64>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Calls in flight at once to this endpoint, across all installations.
    pub max_concurrent: Option<usize>,
}

/// Which endpoint each task uses (by name; `default` is `[llm]` itself).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskModels {
    pub review: Option<String>,
    pub describe: Option<String>,
    pub improve: Option<String>,
    pub ask: Option<String>,
    pub tests: Option<String>,
    pub verify: Option<String>,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Input tokens served from the provider's prompt cache; `input` when not set.
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    // The default endpoint's fields (serde's `flatten` cannot deny unknown fields).
    pub provider: Option<ProviderKind>,
    pub base_url: Option<url::Url>,
    pub model: Option<String>,
    pub api_key: Option<SecretString>,
    pub api_key_file: Option<PathBuf>,
    pub api_version: Option<String>,
    pub structured_output: Option<StructuredOutput>,
    pub timeout_secs: Option<u64>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub max_concurrent: Option<usize>,
    /// Endpoints tried in order after a task's own endpoint fails.
    #[serde(default)]
    pub fallback: Vec<String>,
    #[serde(default)]
    pub tasks: TaskModels,
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointSettings>,
    /// Prices by model name (longest matching prefix wins), over the built-in table.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// Spend per installation per calendar month (UTC), USD; automatic reviews stop there.
    pub monthly_budget_usd: Option<f64>,
    /// Calls in flight at once for one installation, over all endpoints.
    pub max_concurrent_per_installation: usize,
    /// Retries of one call on 429, 5xx, timeouts and dropped connections.
    pub max_retries: u32,
    /// A `Retry-After` longer than this is not waited for in the job: the endpoint counts
    /// as failed (the fallback is tried, then the job retries later).
    pub max_retry_wait_secs: u64,
}

/// One endpoint with every field resolved and checked.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub provider: ProviderKind,
    pub base_url: url::Url,
    pub model: String,
    pub api_key: Option<SecretString>,
    pub api_version: String,
    pub structured_output: StructuredOutput,
    pub timeout: Duration,
    pub max_output_tokens: u32,
    pub temperature: f32,
    pub max_concurrent: usize,
}

/// The model settings after loading.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `default` first, then the named endpoints.
    pub endpoints: Vec<Endpoint>,
    pub tasks: TaskModels,
    pub fallback: Vec<String>,
    pub prices: BTreeMap<String, Price>,
    pub monthly_budget_usd: Option<f64>,
    pub max_concurrent_per_installation: usize,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    /// Nothing configured: the local-Ollama default is in use.
    pub is_default: bool,
}

impl LlmConfig {
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The default endpoint (always present).
    pub fn default_endpoint(&self) -> &Endpoint {
        &self.endpoints[0]
    }
}

const AZURE_API_VERSION: &str = "2024-10-21";

impl LlmSettings {
    fn endpoint(&self) -> EndpointSettings {
        EndpointSettings {
            provider: self.provider,
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key: self.api_key.clone(),
            api_key_file: self.api_key_file.clone(),
            api_version: self.api_version.clone(),
            structured_output: self.structured_output,
            timeout_secs: self.timeout_secs,
            max_output_tokens: self.max_output_tokens,
            temperature: self.temperature,
            max_concurrent: self.max_concurrent,
        }
    }
}

pub(super) fn resolve(s: &LlmSettings) -> Result<LlmConfig, ConfigError> {
    let root = &s.endpoint();
    let is_default = root.provider.unwrap_or(ProviderKind::OpenaiCompatible)
        == ProviderKind::OpenaiCompatible
        && root.base_url.is_none()
        && root.model.is_none();
    let mut endpoints = vec![resolve_endpoint(DEFAULT_ENDPOINT_NAME, "llm", root, None)?];
    for (name, e) in &s.endpoints {
        if name == DEFAULT_ENDPOINT_NAME || name.is_empty() {
            return Err(ConfigError::invalid(
                &format!("llm.endpoints.{name}"),
                "this name is reserved for [llm] itself; pick another",
            ));
        }
        endpoints.push(resolve_endpoint(
            name,
            &format!("llm.endpoints.{name}"),
            e,
            Some(root),
        )?);
    }
    let known = |name: &str| endpoints.iter().any(|e| e.name == name);
    let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
    for (task, name) in [
        ("review", &s.tasks.review),
        ("describe", &s.tasks.describe),
        ("improve", &s.tasks.improve),
        ("ask", &s.tasks.ask),
        ("tests", &s.tasks.tests),
        ("verify", &s.tasks.verify),
    ] {
        if let Some(name) = name
            && !known(name)
        {
            return Err(ConfigError::invalid(
                &format!("llm.tasks.{task}"),
                format!("no endpoint named `{name}` (known: {})", names.join(", ")),
            ));
        }
    }
    for name in &s.fallback {
        if !known(name) {
            return Err(ConfigError::invalid(
                "llm.fallback",
                format!("no endpoint named `{name}` (known: {})", names.join(", ")),
            ));
        }
    }
    for (model, price) in &s.prices {
        let ok = [price.input, price.output, price.cached_input.unwrap_or(0.0)]
            .iter()
            .all(|p| p.is_finite() && *p >= 0.0);
        if !ok {
            return Err(ConfigError::invalid(
                &format!("llm.prices.{model}"),
                "prices must be zero or more (USD per million tokens)",
            ));
        }
    }
    if let Some(b) = s.monthly_budget_usd
        && !(b.is_finite() && b >= 0.0)
    {
        return Err(ConfigError::invalid(
            "llm.monthly_budget_usd",
            "must be zero or more",
        ));
    }
    if s.max_concurrent_per_installation == 0 {
        return Err(ConfigError::invalid(
            "llm.max_concurrent_per_installation",
            "must be at least 1",
        ));
    }
    Ok(LlmConfig {
        endpoints,
        tasks: s.tasks.clone(),
        fallback: s.fallback.clone(),
        prices: s.prices.clone(),
        monthly_budget_usd: s.monthly_budget_usd,
        max_concurrent_per_installation: s.max_concurrent_per_installation,
        max_retries: s.max_retries,
        max_retry_wait: Duration::from_secs(s.max_retry_wait_secs),
        is_default,
    })
}

fn resolve_endpoint(
    name: &str,
    key: &str,
    e: &EndpointSettings,
    parent: Option<&EndpointSettings>,
) -> Result<Endpoint, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    macro_rules! pick {
        ($field:ident) => {
            e.$field
                .clone()
                .or_else(|| parent.and_then(|p| p.$field.clone()))
        };
    }
    let provider = pick!(provider).unwrap_or(ProviderKind::OpenaiCompatible);
    // A named endpoint of another provider must not inherit the parent's URL or key.
    let same_provider = parent
        .map(|p| p.provider.unwrap_or(ProviderKind::OpenaiCompatible) == provider)
        .unwrap_or(true);
    let base_url = match (&e.base_url, parent) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(p)) if same_provider => p.base_url.clone(),
        _ => None,
    };
    let base_url = match base_url {
        Some(u) => u,
        None => match provider.default_base_url() {
            Some(u) => url::Url::parse(u)
                .map_err(|err| ConfigError::invalid(&k("base_url"), err.to_string()))?,
            None => {
                return Err(ConfigError::invalid(
                    &k("base_url"),
                    "required for Azure: https://RESOURCE.openai.azure.com",
                ));
            }
        },
    };
    if !matches!(base_url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            &k("base_url"),
            "must be an http(s) URL",
        ));
    }
    let model = match (&e.model, parent) {
        (Some(m), _) => Some(m.clone()),
        (None, Some(p)) if same_provider => p.model.clone(),
        _ => None,
    };
    let model = match model {
        Some(m) => m,
        None if provider == ProviderKind::OpenaiCompatible => DEFAULT_MODEL.to_string(),
        None => {
            return Err(ConfigError::invalid(
                &k("model"),
                format!("required for provider `{}`", provider.label()),
            ));
        }
    };
    if model.trim().is_empty() {
        return Err(ConfigError::invalid(&k("model"), "must not be empty"));
    }
    let api_key = if e.api_key.is_some() || e.api_key_file.is_some() || !same_provider {
        secret_from(
            &k("api_key"),
            e.api_key.clone(),
            e.api_key_file.as_deref(),
            true,
        )?
    } else {
        match parent {
            Some(p) => secret_from(
                "llm.api_key",
                p.api_key.clone(),
                p.api_key_file.as_deref(),
                true,
            )?,
            None => None,
        }
    };
    if matches!(provider, ProviderKind::Anthropic | ProviderKind::Azure) && api_key.is_none() {
        return Err(ConfigError::invalid(
            &k("api_key"),
            format!("required for provider `{}`", provider.label()),
        ));
    }
    let timeout_secs = pick!(timeout_secs).unwrap_or(120);
    if timeout_secs == 0 {
        return Err(ConfigError::invalid(
            &k("timeout_secs"),
            "must be at least 1",
        ));
    }
    let max_output_tokens = pick!(max_output_tokens).unwrap_or(4096);
    if max_output_tokens == 0 {
        return Err(ConfigError::invalid(
            &k("max_output_tokens"),
            "must be at least 1",
        ));
    }
    let temperature = pick!(temperature).unwrap_or(0.1);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ConfigError::invalid(
            &k("temperature"),
            "must be between 0 and 2",
        ));
    }
    let max_concurrent = pick!(max_concurrent).unwrap_or(8);
    if max_concurrent == 0 {
        return Err(ConfigError::invalid(
            &k("max_concurrent"),
            "must be at least 1",
        ));
    }
    let structured_output = match (&e.structured_output, parent) {
        (Some(s), _) => *s,
        (None, Some(p)) if same_provider => {
            p.structured_output.unwrap_or(provider.default_structured())
        }
        _ => provider.default_structured(),
    };
    Ok(Endpoint {
        name: name.to_string(),
        provider,
        base_url,
        model,
        api_key,
        api_version: pick!(api_version).unwrap_or_else(|| AZURE_API_VERSION.to_string()),
        structured_output,
        timeout: Duration::from_secs(timeout_secs),
        max_output_tokens,
        temperature,
        max_concurrent,
    })
}
