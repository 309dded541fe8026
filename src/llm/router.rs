//! [`Llm`]: the one way the pipeline asks a model. It picks the task's endpoint, holds the
//! concurrency caps, retries transient failures (an empty reply among them) with backoff,
//! falls back down the chain, keeps the complete part of a reply cut off at the output limit
//! and asks for the rest, asks again (twice at most) when a reply cannot be read, and meters
//! every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::cost::{PriceTable, cost_micros};
use super::json::strip_thinking;
use super::repair::{Joiner, MAX_FOLLOW_UPS, MAX_REPAIRS, Parts, Read, follow_up, read, repair};
use super::retry;
use super::{ChatModel, ChatReply, ChatRequest, LlmError, Meter, Usage};
use crate::backoff::Backoff;
use crate::config::{DEFAULT_ENDPOINT_NAME, LlmConfig, ProviderKind};
use crate::domain::Spent;
use crate::domain::Task;

/// Why no usable answer came back.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Every endpoint failed to answer at all; `transient` when trying later may work.
    #[error("no model answered: {}", summary(.0))]
    Failed(Vec<(String, LlmError)>),
    /// A model answered, but even after being asked again its replies could not be read.
    #[error("the model's replies could not be read ({model}): {reason}")]
    Unusable { model: String, reason: String },
}

fn summary(errors: &[(String, LlmError)]) -> String {
    errors
        .iter()
        .map(|(name, e)| format!("{name}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AskError {
    /// Worth running the job again later: some endpoint failed for a passing reason.
    pub fn is_transient(&self) -> bool {
        match self {
            AskError::Failed(errors) => errors.iter().any(|(_, e)| e.is_transient()),
            AskError::Unusable { .. } => false,
        }
    }
}

/// A parsed answer and who gave it.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub value: T,
    /// `provider/model` of the endpoint that answered.
    pub model: String,
    /// Set when `value` is only the complete part of a reply cut off at the output limit,
    /// because asking for the rest failed: why the rest is missing.
    pub incomplete: Option<String>,
    /// The name of the endpoint that answered.
    pub endpoint: String,
    /// The reply's text, when it answered the request as given (no repair, no ask for the
    /// rest): what a caller continuing the conversation adds as the model's turn.
    pub reply: Option<String>,
}

/// What one endpoint gave.
struct Got<T> {
    value: T,
    /// Why the value is only the complete part of a cut-off reply.
    incomplete: Option<String>,
    /// The reply's text, when the value came from the first reply.
    reply: Option<String>,
}

struct Slot {
    name: String,
    model: Arc<dyn ChatModel>,
    provider: ProviderKind,
    limit: Arc<Semaphore>,
}

/// Counts one model call and its latency by endpoint, model, task and outcome (`ok`, or the
/// error's kind), each a bounded set: endpoints and models are the configured ones.
fn record_call(
    slot: &Slot,
    task: Task,
    result: &Result<ChatReply, LlmError>,
    took: std::time::Duration,
) {
    let outcome = match result {
        Ok(reply) if strip_thinking(&reply.content).trim().is_empty() => "empty",
        Ok(_) => "ok",
        Err(e) if e.is_transient() => "transient_error",
        Err(_) => "error",
    };
    let labels = [
        ("endpoint", slot.name.clone()),
        ("model", slot.model.model().to_string()),
        ("task", task.label().to_string()),
        ("outcome", outcome.to_string()),
    ];
    metrics::counter!("critic_llm_calls_total", &labels).increment(1);
    metrics::histogram!("critic_llm_request_duration_seconds", &labels).record(took.as_secs_f64());
}

/// The models of all configured endpoints, and the rules for using them.
pub struct Llm {
    slots: Vec<Slot>,
    chains: HashMap<Task, Vec<usize>>,
    installations: Mutex<HashMap<u64, Arc<Semaphore>>>,
    per_installation: usize,
    max_retries: u32,
    max_retry_wait: Duration,
    backoff: Backoff,
    prices: PriceTable,
}

impl Llm {
    pub fn new(config: &LlmConfig) -> Result<Llm, LlmError> {
        let models = config
            .endpoints
            .iter()
            .map(|e| {
                Ok((
                    e.name.clone(),
                    e.provider,
                    e.max_concurrent,
                    super::connect(e)?,
                ))
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        Ok(Self::with_models(config, models))
    }

    /// Like [`Llm::new`] with ready clients: (endpoint name, provider, concurrency cap, model).
    pub fn with_models(
        config: &LlmConfig,
        models: Vec<(String, ProviderKind, usize, Arc<dyn ChatModel>)>,
    ) -> Llm {
        let slots: Vec<Slot> = models
            .into_iter()
            .map(|(name, provider, cap, model)| Slot {
                name,
                model,
                provider,
                limit: Arc::new(Semaphore::new(cap.max(1))),
            })
            .collect();
        let index = |name: &str| slots.iter().position(|s| s.name == name);
        let mut chains = HashMap::new();
        for task in Task::ALL {
            let primary = match task {
                Task::Review => &config.tasks.review,
                Task::Describe => &config.tasks.describe,
                Task::Improve => &config.tasks.improve,
                Task::Ask => &config.tasks.ask,
                Task::Tests => &config.tasks.tests,
                Task::Verify => &config.tasks.verify,
            }
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT_NAME);
            let mut chain: Vec<usize> = Vec::new();
            for name in std::iter::once(primary).chain(config.fallback.iter().map(String::as_str)) {
                if let Some(i) = index(name)
                    && !chain.contains(&i)
                {
                    chain.push(i);
                }
            }
            if chain.is_empty() && !slots.is_empty() {
                chain.push(0);
            }
            chains.insert(task, chain);
        }
        Llm {
            slots,
            chains,
            installations: Mutex::new(HashMap::new()),
            per_installation: config.max_concurrent_per_installation.max(1),
            max_retries: config.max_retries,
            max_retry_wait: config.max_retry_wait,
            backoff: retry::MODEL_CALLS,
            prices: PriceTable::new(&config.prices),
        }
    }

    /// Overrides the retry schedule (tests use short ones).
    pub fn with_backoff(mut self, backoff: Backoff) -> Llm {
        self.backoff = backoff;
        self
    }

    /// `provider/model` of the endpoint a task tries first.
    pub fn describe(&self, task: Task) -> String {
        self.chain(task)
            .first()
            .map(|s| s.model.describe())
            .unwrap_or_default()
    }

    /// The model name a task tries first (for token counting).
    pub fn model_name(&self, task: Task) -> &str {
        self.model_name_for(task, None)
    }

    /// Like [`Llm::model_name`], with a repository's choice of endpoint first.
    pub fn model_name_for(&self, task: Task, endpoint: Option<&str>) -> &str {
        self.chain_for(task, endpoint)
            .first()
            .map(|s| s.model.model())
            .unwrap_or_default()
    }

    /// The name of the endpoint a task tries first, with a repository's choice first.
    pub fn endpoint_for(&self, task: Task, endpoint: Option<&str>) -> Option<&str> {
        self.chain_for(task, endpoint)
            .first()
            .map(|s| s.name.as_str())
    }

    /// How many parameters the model a task tries first has (with a repository's choice of
    /// endpoint first), where its server says.
    pub async fn model_params(&self, task: Task, endpoint: Option<&str>) -> Option<u64> {
        let first = self
            .chain_for(task, endpoint)
            .first()
            .map(|s| s.model.clone())?;
        first.params().await
    }

    /// Whether input costs `endpoint` nothing but time: a server of one's own
    /// (`openai-compatible`) with no price set for its model.
    pub fn input_is_free(&self, endpoint: &str) -> bool {
        self.slots.iter().any(|s| {
            s.name == endpoint
                && s.provider == ProviderKind::OpenaiCompatible
                && self.prices.price(s.model.model()).is_none()
        })
    }

    /// Names of the configured endpoints (what a repository may choose from).
    pub fn endpoint_names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name.as_str()).collect()
    }

    fn chain(&self, task: Task) -> Vec<&Slot> {
        self.chain_for(task, None)
    }

    /// The task's chain, with `endpoint` moved to the front when it names one.
    fn chain_for(&self, task: Task, endpoint: Option<&str>) -> Vec<&Slot> {
        let mut chain: Vec<&Slot> = self
            .chains
            .get(&task)
            .into_iter()
            .flatten()
            .map(|&i| &self.slots[i])
            .collect();
        if let Some(first) = endpoint.and_then(|name| self.slots.iter().find(|s| s.name == name)) {
            chain.retain(|s| s.name != first.name);
            chain.insert(0, first);
        }
        chain
    }

    /// Asks for a JSON answer and parses it with `parse` (which also checks it: an `Err`
    /// is the reason, shown to the model when it is asked again).
    pub async fn ask<T>(
        &self,
        task: Task,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> Result<Answer<T>, AskError> {
        self.ask_on(task, None, installation, request, meter, parse)
            .await
    }

    /// Like [`Llm::ask`], trying `endpoint` first when given (a repository's choice of model).
    pub async fn ask_on<T>(
        &self,
        task: Task,
        endpoint: Option<&str>,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> Result<Answer<T>, AskError> {
        self.ask_chain(task, endpoint, installation, request, meter, &parse, None)
            .await
    }

    /// Like [`Llm::ask_on`], for answers that can be read in parts: the complete part of a
    /// reply cut off at the output limit is kept, the rest asked for, and the parts joined;
    /// when the rest cannot be had, the kept part is the answer (marked incomplete).
    pub async fn ask_in_parts<T: Parts>(
        &self,
        task: Task,
        endpoint: Option<&str>,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> Result<Answer<T>, AskError> {
        let joiner = Joiner::of();
        self.ask_chain(
            task,
            endpoint,
            installation,
            request,
            meter,
            &parse,
            Some(&joiner),
        )
        .await
    }

    /// Like [`Llm::ask_on`], from `endpoint` alone, with no fallback: for a request that only
    /// makes sense to that endpoint's model (its own conversation, continued).
    pub async fn ask_only<T>(
        &self,
        task: Task,
        endpoint: &str,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> Result<Answer<T>, AskError> {
        let slots = self.slots.iter().filter(|s| s.name == endpoint).collect();
        self.ask_slots(slots, task, installation, request, meter, &parse, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn ask_chain<T>(
        &self,
        task: Task,
        endpoint: Option<&str>,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: &impl Fn(&serde_json::Value) -> Result<T, String>,
        joiner: Option<&Joiner<T>>,
    ) -> Result<Answer<T>, AskError> {
        let slots = self.chain_for(task, endpoint);
        self.ask_slots(slots, task, installation, request, meter, parse, joiner)
            .await
    }

    /// Asks each of `slots` in turn until one answers.
    #[allow(clippy::too_many_arguments)]
    async fn ask_slots<T>(
        &self,
        slots: Vec<&Slot>,
        task: Task,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: &impl Fn(&serde_json::Value) -> Result<T, String>,
        joiner: Option<&Joiner<T>>,
    ) -> Result<Answer<T>, AskError> {
        let mut failures = Vec::new();
        let mut unusable = None;
        for slot in slots {
            match self
                .ask_slot(slot, task, installation, request, meter, parse, joiner)
                .await
            {
                Ok(Got {
                    value,
                    incomplete,
                    reply,
                }) => {
                    if let Some(why) = &incomplete {
                        tracing::warn!(endpoint = %slot.name, task = task.label(), %why, "using the complete part of a cut-off reply");
                    }
                    return Ok(Answer {
                        value,
                        model: slot.model.describe(),
                        incomplete,
                        endpoint: slot.name.clone(),
                        reply,
                    });
                }
                Err(SlotError::Call(e)) => {
                    tracing::warn!(endpoint = %slot.name, task = task.label(), error = %e, "model call failed");
                    failures.push((slot.name.clone(), e));
                }
                Err(SlotError::Unusable(reason)) => {
                    tracing::warn!(endpoint = %slot.name, task = task.label(), %reason, "model reply unusable after asking again");
                    unusable.get_or_insert((slot.model.describe(), reason));
                }
            }
        }
        match unusable {
            // A transient failure elsewhere is worth a later retry more than giving up.
            Some(_) if failures.iter().any(|(_, e)| e.is_transient()) => {
                Err(AskError::Failed(failures))
            }
            Some((model, reason)) => Err(AskError::Unusable { model, reason }),
            None => Err(AskError::Failed(failures)),
        }
    }

    /// One endpoint's answer, and why it is incomplete if it is. After the first reply come
    /// at most [`MAX_FOLLOW_UPS`] asks for the rest of a cut-off answer and [`MAX_REPAIRS`]
    /// repairs of an unreadable one; each repair shows the model only its latest bad reply.
    #[allow(clippy::too_many_arguments)]
    async fn ask_slot<T>(
        &self,
        slot: &Slot,
        task: Task,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
        parse: &impl Fn(&serde_json::Value) -> Result<T, String>,
        joiner: Option<&Joiner<T>>,
    ) -> Result<Got<T>, SlotError> {
        // The conversation a repair is added to: the request, or the ask for the rest.
        let mut base = request.clone();
        let mut next = request.clone();
        let mut kept: Option<T> = None;
        let (mut follow_ups, mut repairs) = (0, 0);
        let reason = loop {
            let reply = match self.call(slot, task, installation, &next, meter).await {
                Ok(reply) => reply,
                Err(e) => {
                    return match kept {
                        Some(value) => Ok(Got {
                            value,
                            incomplete: Some(format!("asking for the rest failed: {e}")),
                            reply: None,
                        }),
                        // Retried as failed calls, and still nothing: a model that answers
                        // badly, not a server that is down for a while.
                        None if matches!(e, LlmError::EmptyReply) => Err(SlotError::Unusable(
                            format!("{e}, every time it was called"),
                        )),
                        None => Err(SlotError::Call(e)),
                    };
                }
            };
            match read(&reply, parse, joiner) {
                Read::Whole(value) => {
                    let first = follow_ups == 0 && repairs == 0;
                    let value = match (kept, joiner) {
                        (Some(part), Some(joiner)) => (joiner.join)(part, value),
                        _ => value,
                    };
                    return Ok(Got {
                        value,
                        incomplete: None,
                        reply: first.then_some(reply.content),
                    });
                }
                Read::Part { value, shown } => {
                    kept = Some(match (kept.take(), joiner) {
                        (Some(part), Some(joiner)) => (joiner.join)(part, value),
                        _ => value,
                    });
                    if follow_ups == MAX_FOLLOW_UPS {
                        break "the reply was cut off at the output token limit again".to_string();
                    }
                    follow_ups += 1;
                    tracing::info!(endpoint = %slot.name, "reply cut off at the output limit; kept its complete part, asking for the rest");
                    base = follow_up(
                        request,
                        &shown,
                        super::repair::repeats_itself(&reply.content),
                    );
                    next = base.clone();
                }
                Read::Bad(why) => {
                    if repairs == MAX_REPAIRS {
                        break why;
                    }
                    repairs += 1;
                    tracing::info!(endpoint = %slot.name, reason = %why, repairs, "asking the model again");
                    next = repair(&base, &reply, &why, repairs == MAX_REPAIRS);
                    // Once a reply looped, every later ask stays against repeats.
                    base.against_repeats |= next.against_repeats;
                }
            }
        };
        match kept {
            Some(value) => Ok(Got {
                value,
                incomplete: Some(reason),
                reply: None,
            }),
            None => Err(SlotError::Unusable(reason)),
        }
    }

    /// One call with retries; every reply is metered.
    async fn call(
        &self,
        slot: &Slot,
        task: Task,
        installation: u64,
        request: &ChatRequest,
        meter: &Meter,
    ) -> Result<ChatReply, LlmError> {
        let per_installation = self.installation_limit(installation);
        let mut attempt = 0;
        loop {
            let result = {
                // Installation first, so one installation's queue cannot hold the
                // endpoint's permits while it waits for its own.
                let _install = per_installation.acquire().await;
                let _endpoint = slot.limit.acquire().await;
                let started = std::time::Instant::now();
                let result = slot.model.complete(request).await;
                record_call(slot, task, &result, started.elapsed());
                result
            };
            let e = match result {
                Ok(reply) => {
                    // Paid for even when empty.
                    meter.record(self.spent(slot, task, request, &reply));
                    if !strip_thinking(&reply.content).trim().is_empty() {
                        return Ok(reply);
                    }
                    LlmError::EmptyReply
                }
                Err(e) => e,
            };
            if !e.is_transient() || attempt >= self.max_retries {
                return Err(e);
            }
            if let Some(wait) = e.retry_after()
                && wait > self.max_retry_wait
            {
                tracing::warn!(endpoint = %slot.name, ?wait, "server asks for a longer pause than llm.max_retry_wait_secs");
                return Err(e);
            }
            let delay = retry::delay(&self.backoff, attempt, e.retry_after());
            tracing::info!(endpoint = %slot.name, attempt, ?delay, error = %e, "retrying model call");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn installation_limit(&self, installation: u64) -> Arc<Semaphore> {
        let mut map = self.installations.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(installation)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_installation)))
            .clone()
    }

    fn spent(&self, slot: &Slot, task: Task, request: &ChatRequest, reply: &ChatReply) -> Spent {
        let (usage, estimated) = match reply.usage {
            Some(u) => (u, false),
            // Roughly four characters a token: enough for budgets on servers that report
            // nothing (those are mostly local and free anyway).
            None => {
                let prompt: usize = request.system.len()
                    + request.turns.iter().map(|t| t.content.len()).sum::<usize>();
                (
                    Usage {
                        prompt_tokens: (prompt / 4) as u64,
                        output_tokens: (reply.content.len() / 4) as u64,
                        cached_tokens: 0,
                    },
                    true,
                )
            }
        };
        let price = self
            .prices
            .price(slot.model.model())
            .or_else(|| self.prices.price(&reply.model));
        let unpriced = price.is_none() && slot.provider != ProviderKind::OpenaiCompatible;
        if unpriced {
            tracing::warn!(model = %slot.model.model(), "no price known for this model; its cost counts as 0 (set llm.prices)");
        }
        Spent {
            endpoint: slot.name.clone(),
            model: reply.model.clone(),
            task: task.label(),
            usage,
            cost_micros: price.map(|p| cost_micros(&usage, &p)).unwrap_or(0),
            estimated,
            unpriced,
        }
    }
}

enum SlotError {
    Call(LlmError),
    Unusable(String),
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::Price;
    use crate::config::llm::TaskModels;
    use crate::llm::BoxFuture;
    use crate::llm::Turn;

    type Script = VecDeque<Result<ChatReply, LlmError>>;

    /// An in-memory model: answers from a script, records requests and peak concurrency.
    struct Scripted {
        name: String,
        script: Mutex<Script>,
        requests: Mutex<Vec<ChatRequest>>,
        in_flight: AtomicUsize,
        peak: AtomicUsize,
        delay: Duration,
    }

    impl Scripted {
        fn new(name: &str, script: Vec<Result<ChatReply, LlmError>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                name: name.into(),
                script: Mutex::new(script.into()),
                requests: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                delay: Duration::ZERO,
            })
        }

        fn slow(name: &str, delay: Duration) -> Arc<Scripted> {
            let mut s = Scripted::new(name, Vec::new());
            Arc::get_mut(&mut s).expect("fresh").delay = delay;
            s
        }

        fn requests(&self) -> Vec<ChatRequest> {
            self.requests.lock().expect("lock").clone()
        }
    }

    impl ChatModel for Scripted {
        fn complete<'a>(
            &'a self,
            request: &'a ChatRequest,
        ) -> BoxFuture<'a, Result<ChatReply, LlmError>> {
            Box::pin(async move {
                self.requests.lock().expect("lock").push(request.clone());
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.script
                    .lock()
                    .expect("lock")
                    .pop_front()
                    .unwrap_or_else(|| Ok(reply("{\"ok\": true}")))
            })
        }

        fn describe(&self) -> String {
            format!("fake/{}", self.name)
        }

        fn model(&self) -> &str {
            &self.name
        }
    }

    fn reply(content: &str) -> ChatReply {
        ChatReply {
            content: content.into(),
            usage: Some(Usage {
                prompt_tokens: 1000,
                output_tokens: 100,
                cached_tokens: 0,
            }),
            truncated: false,
            model: "gpt-4.1-2025-04-14".into(),
        }
    }

    fn status(status: u16, retry_after: Option<Duration>) -> LlmError {
        LlmError::Status {
            status,
            message: "scripted".into(),
            retry_after,
        }
    }

    fn config(fallback: &[&str]) -> LlmConfig {
        LlmConfig {
            endpoints: Vec::new(),
            tasks: TaskModels {
                describe: Some("cheap".into()),
                ..TaskModels::default()
            },
            fallback: fallback.iter().map(|s| s.to_string()).collect(),
            prices: Default::default(),
            monthly_budget_usd: None,
            max_concurrent_per_installation: 2,
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
            is_default: false,
        }
    }

    fn llm(config: &LlmConfig, models: &[(&str, Arc<Scripted>)]) -> Llm {
        Llm::with_models(
            config,
            models
                .iter()
                .map(|(name, m)| {
                    let m: Arc<dyn ChatModel> = m.clone();
                    (name.to_string(), ProviderKind::Openai, 8, m)
                })
                .collect(),
        )
    }

    fn ok_json(v: &serde_json::Value) -> Result<serde_json::Value, String> {
        match v.get("ok") {
            Some(_) => Ok(v.clone()),
            None => Err("reply has no `ok` field".into()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_then_succeeds() {
        let m = Scripted::new(
            "gpt-4.1",
            vec![
                Err(status(429, Some(Duration::from_secs(20)))),
                Err(status(529, None)),
                Ok(reply("{\"ok\": 1}")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let meter = Meter::new();
        let start = tokio::time::Instant::now();
        let answer = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &meter,
                ok_json,
            )
            .await
            .expect("answer");
        let waited = start.elapsed();
        // 20 s asked for (plus at most 250 ms jitter), then one backoff of at most 1 s.
        assert!(waited >= Duration::from_secs(20), "{waited:?}");
        assert!(waited <= Duration::from_millis(21_250), "{waited:?}");
        assert_eq!(answer.value["ok"], 1);
        assert_eq!(answer.model, "fake/gpt-4.1");
        assert_eq!(m.requests().len(), 3);
        // Only the successful call used tokens; it is priced from the built-in table.
        let calls = meter.calls();
        assert_eq!(calls.len(), 1);
        // 1000 * $2 + 100 * $8 per million = 2800 micro-USD.
        assert_eq!(calls[0].cost_micros, 2800);
        assert_eq!(calls[0].task, "review");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_gives_up_as_transient() {
        let m = Scripted::new("m", (0..10).map(|_| Err(status(503, None))).collect());
        let llm = llm(&config(&[]), &[("default", m.clone())]).with_backoff(Backoff {
            base: Duration::from_secs(1),
            ..retry::MODEL_CALLS
        });
        let start = tokio::time::Instant::now();
        let err = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect_err("always 503");
        // Three retries: waits within [1/4, 1] * 1, 2 and 4 s.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(1750) && waited <= Duration::from_secs(7),
            "{waited:?}"
        );
        assert_eq!(m.requests().len(), 4, "one call and three retries");
        assert!(err.is_transient(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_is_not_waited_for_and_the_fallback_answers() {
        let primary = Scripted::new(
            "big",
            vec![Err(status(429, Some(Duration::from_secs(3600))))],
        );
        let local = Scripted::new("local", vec![Ok(reply("{\"ok\": \"local\"}"))]);
        let llm = llm(
            &config(&["local"]),
            &[("default", primary.clone()), ("local", local.clone())],
        );
        let start = tokio::time::Instant::now();
        let answer = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect("fallback");
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(answer.value["ok"], "local");
        assert_eq!(answer.model, "fake/local");
        assert_eq!(primary.requests().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ask_only_asks_that_endpoint_and_no_fallback() {
        let primary = Scripted::new("gone", vec![Err(status(404, None))]);
        let local = Scripted::new("local", vec![Ok(reply("{\"ok\": \"local\"}"))]);
        let llm = llm(
            &config(&["local"]),
            &[("default", primary.clone()), ("local", local.clone())],
        );
        let request = ChatRequest::new("s", "u");
        let err = llm
            .ask_only(Task::Verify, "default", 1, &request, &Meter::new(), ok_json)
            .await
            .expect_err("no fallback");
        assert!(
            matches!(err, AskError::Failed(ref f) if f.len() == 1),
            "{err}"
        );
        assert_eq!(primary.requests().len(), 1);
        assert!(local.requests().is_empty(), "the fallback is not asked");
        // An endpoint that is not configured: nothing asked, an error.
        assert!(
            llm.ask_only(Task::Verify, "nowhere", 1, &request, &Meter::new(), ok_json)
                .await
                .is_err()
        );
        assert!(local.requests().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried_but_fall_back() {
        let primary = Scripted::new("gone", vec![Err(status(404, None))]);
        let other = Scripted::new("other", vec![Err(status(401, None))]);
        let llm = llm(
            &config(&["other"]),
            &[("default", primary.clone()), ("other", other.clone())],
        );
        let err = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect_err("both fail");
        assert_eq!(primary.requests().len(), 1);
        assert_eq!(other.requests().len(), 1);
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(
            text.contains("default: ") && text.contains("other: "),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_use_their_endpoint() {
        let big = Scripted::new("big", Vec::new());
        let cheap = Scripted::new("cheap", Vec::new());
        let llm = llm(
            &config(&[]),
            &[("default", big.clone()), ("cheap", cheap.clone())],
        );
        let meter = Meter::new();
        llm.ask(
            Task::Describe,
            1,
            &ChatRequest::new("s", "u"),
            &meter,
            ok_json,
        )
        .await
        .expect("describe");
        llm.ask(
            Task::Review,
            1,
            &ChatRequest::new("s", "u"),
            &meter,
            ok_json,
        )
        .await
        .expect("review");
        assert_eq!((big.requests().len(), cheap.requests().len()), (1, 1));
        assert_eq!(llm.endpoint_names(), ["default", "cheap"]);
        assert_eq!(llm.describe(Task::Describe), "fake/cheap");
        assert_eq!(llm.model_name(Task::Review), "big");
        // A repository's choice goes first; an unknown name changes nothing.
        llm.ask_on(
            Task::Review,
            Some("cheap"),
            1,
            &ChatRequest::new("s", "u"),
            &meter,
            ok_json,
        )
        .await
        .expect("review on cheap");
        assert_eq!((big.requests().len(), cheap.requests().len()), (1, 2));
        assert_eq!(llm.model_name_for(Task::Review, Some("cheap")), "cheap");
        assert_eq!(llm.model_name_for(Task::Review, Some("nope")), "big");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unparseable_reply_is_asked_again_with_the_reason() {
        let m = Scripted::new(
            "m",
            vec![
                Ok(reply("Sure! The code looks great.")),
                Ok(reply("```json\n{\"ok\": 2}\n```")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let meter = Meter::new();
        let answer = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "review this"),
                &meter,
                ok_json,
            )
            .await
            .expect("second reply parses");
        assert_eq!(answer.value["ok"], 2);
        let second = &m.requests()[1];
        assert_eq!(second.turns.len(), 3);
        assert_eq!(second.turns[0], Turn::user("review this"));
        assert_eq!(
            second.turns[1],
            Turn::assistant("Sure! The code looks great.")
        );
        assert!(
            second.turns[2].content.contains("no JSON object"),
            "{:?}",
            second.turns[2]
        );
        assert_eq!(meter.calls().len(), 2, "both calls were paid for");
    }

    #[tokio::test(start_paused = true)]
    async fn thrice_unusable_is_a_permanent_unusable_error() {
        let mut cut = reply("{\"ok\": [1, 2,");
        cut.truncated = true;
        let m = Scripted::new(
            "m",
            vec![
                Ok(cut),
                Ok(reply("{\"nope\": 1}")),
                Ok(reply("{\"nope\": 2}")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let err = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect_err("unusable");
        match &err {
            AskError::Unusable { model, reason } => {
                assert_eq!(model, "fake/m");
                assert!(reason.contains("no `ok` field"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
        assert_eq!(m.requests().len(), 3, "the first call and two repairs");
        let correction = &m.requests()[1].turns[2].content;
        assert!(
            correction.contains("cut off at the output limit"),
            "{correction}"
        );
    }

    /// A test answer read in parts: `{"items": [numbers]}`.
    #[derive(Debug, PartialEq)]
    struct Items(Vec<i64>);

    impl Parts for Items {
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        fn join(mut self, later: Items) -> Items {
            for i in later.0 {
                if !self.0.contains(&i) {
                    self.0.push(i);
                }
            }
            self
        }
    }

    fn items(v: &serde_json::Value) -> Result<Items, String> {
        v.get("items")
            .and_then(|i| serde_json::from_value(i.clone()).ok())
            .map(Items)
            .ok_or_else(|| "reply has no `items` list".into())
    }

    fn cut(content: &str) -> ChatReply {
        ChatReply {
            truncated: true,
            ..reply(content)
        }
    }

    async fn ask_items(llm: &Llm, request: &ChatRequest) -> Result<Answer<Items>, AskError> {
        llm.ask_in_parts(Task::Review, None, 1, request, &Meter::new(), items)
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_reply_keeps_its_complete_part_and_asks_only_for_the_rest() {
        let m = Scripted::new(
            "m",
            vec![
                Ok(cut("```json\n{\"items\": [1, 2, 3")),
                Ok(reply("{\"items\": [3, 4]}")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("joined");
        assert_eq!(answer.value, Items(vec![1, 2, 3, 4]));
        assert_eq!(answer.incomplete, None);
        let second = &m.requests()[1];
        assert_eq!(second.turns.len(), 3);
        assert_eq!(second.turns[1], Turn::assistant("{\"items\":[1,2]}"));
        assert!(
            second.turns[2]
                .content
                .contains("only what is still missing"),
            "{:?}",
            second.turns[2]
        );
        assert_eq!(second.step_down, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_that_loops_is_not_shown_again_and_the_next_ask_is_against_repeats() {
        let looping = format!(
            "{{\"summary\": \"{}",
            "The function reads the length of the buffer before it checks it. ".repeat(12)
        );
        let m = Scripted::new("m", vec![Ok(cut(&looping)), Ok(reply("{\"items\": [7]}"))]);
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("second reply");
        assert_eq!(answer.value, Items(vec![7]));
        let [first, second] = &m.requests()[..] else {
            panic!("two requests: {:?}", m.requests());
        };
        assert!(!first.against_repeats);
        assert!(second.against_repeats);
        assert!(
            second
                .turns
                .iter()
                .all(|t| t.role != crate::llm::Role::Assistant),
            "the loop is not shown to the model again: {:?}",
            second.turns
        );
        assert!(second.turns[1].content.contains("repeated the same text"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_reply_that_loops_keeps_its_part_and_asks_for_the_rest_against_repeats() {
        // The first items are complete; the next one loops until the limit.
        let looping = format!(
            "{{\"items\": [1, 2, \"{}",
            "The value is read before the lock is taken. ".repeat(12)
        );
        let m = Scripted::new(
            "m",
            vec![Ok(cut(&looping)), Ok(reply("{\"items\": [2, 3]}"))],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("joined");
        assert_eq!(
            answer.value,
            Items(vec![1, 2, 3]),
            "the kept part joined once"
        );
        let second = &m.requests()[1];
        assert!(second.against_repeats);
        // Only the complete part is shown, never the looping tail.
        assert_eq!(second.turns[1], Turn::assistant("{\"items\":[1,2]}"));
    }

    #[test]
    fn loops_are_told_from_long_replies() {
        use super::super::repair::repeats_itself;
        let sentence = "The change adds a check for a null pointer before it is used";
        assert!(repeats_itself(&format!(
            "{sentence}. {sentence}. {sentence}."
        )));
        assert!(repeats_itself(&format!(
            "{{\"body\": \"{}",
            "and the ".repeat(20)
        )));
        assert!(!repeats_itself(&format!("{sentence}. {sentence}.")));
        // A long, honest review repeats its keys and short values, not its sentences.
        let finding = |n: u32| {
            format!(
                "{{\n  \"path\": \"src/a.rs\",\n  \"line\": {n},\n  \"severity\": \"warning\",\n  \"category\": \"maintainability\",\n  \"suggestion\": null,\n  \"body\": \"Line {n} reads the value before the lock is taken.\"\n}}"
            )
        };
        let review: Vec<String> = (1..=6).map(finding).collect();
        assert!(!repeats_itself(&review.join(",\n")));
        assert!(!repeats_itself(""));
    }

    #[tokio::test(start_paused = true)]
    async fn the_kept_part_is_the_answer_when_the_rest_never_comes() {
        // The rest is cut off too: both complete parts are kept, nothing more is asked.
        let m = Scripted::new(
            "m",
            vec![
                Ok(cut("{\"items\": [1, 2, 3")),
                Ok(cut("{\"items\": [5, 6")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("kept part");
        assert_eq!(answer.value, Items(vec![1, 2, 5]));
        assert!(answer.incomplete.expect("incomplete").contains("again"));
        assert_eq!(m.requests().len(), 2);

        // The rest is unreadable, twice repaired: the kept part stays.
        let m = Scripted::new(
            "m",
            vec![
                Ok(cut("{\"items\": [7, 8")),
                Ok(reply("I found nothing else.")),
                Ok(reply("Nothing else, really.")),
                Ok(reply("{\"nope\": 1}")),
            ],
        );
        let llm = self::llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("kept part");
        assert_eq!(answer.value, Items(vec![7]));
        assert!(
            answer
                .incomplete
                .expect("incomplete")
                .contains("no `items`"),
            "the last reason"
        );
        assert_eq!(m.requests().len(), 4);

        // The ask for the rest fails outright: the kept part stays.
        let m = Scripted::new(
            "m",
            vec![Ok(cut("{\"items\": [9, 10")), Err(status(400, None))],
        );
        let llm = self::llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("kept part");
        assert_eq!(answer.value, Items(vec![9]));
        assert!(answer.incomplete.expect("incomplete").contains("400"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_reply_with_no_complete_item_is_repaired_not_kept() {
        let m = Scripted::new(
            "m",
            vec![Ok(cut("{\"items\": [12")), Ok(reply("{\"items\": [1]}"))],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let answer = ask_items(&llm, &ChatRequest::new("s", "u"))
            .await
            .expect("repaired");
        assert_eq!(answer.value, Items(vec![1]));
        assert!(
            m.requests()[1].turns[2]
                .content
                .contains("report fewer items")
        );
        // Without parts (plain `ask`), a cut-off reply is never read in parts.
        let m = Scripted::new(
            "m",
            vec![
                Ok(cut("{\"ok\": 1, \"more\": [1, 2")),
                Ok(reply("{\"ok\": 2}")),
            ],
        );
        let llm = self::llm(&config(&[]), &[("default", m.clone())]);
        let answer = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect("second");
        assert_eq!(
            (answer.value["ok"].clone(), answer.incomplete),
            (2.into(), None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_second_repair_steps_the_mode_down_and_spells_out_the_schema() {
        let m = Scripted::new(
            "m",
            vec![
                Ok(reply("prose")),
                Ok(reply("{\"nope\": 1}")),
                Ok(reply("{\"ok\": 3}")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let schema = Arc::new(crate::llm::OutputSchema {
            name: "ok",
            description: "d",
            schema: serde_json::json!({"type": "object", "required": ["ok"]}),
        });
        let request = ChatRequest::new("s", "u").with_schema(schema);
        let answer = llm
            .ask(Task::Review, 1, &request, &Meter::new(), ok_json)
            .await
            .expect("third reply parses");
        assert_eq!(answer.value["ok"], 3);
        let sent = m.requests();
        let steps: Vec<u8> = sent.iter().map(|r| r.step_down).collect();
        assert_eq!(steps, [0, 0, 1]);
        // Each repair shows only the latest bad reply.
        assert_eq!(sent[2].turns.len(), 3);
        assert_eq!(sent[2].turns[1], Turn::assistant("{\"nope\": 1}"));
        assert!(!sent[1].turns[2].content.contains("JSON Schema"));
        assert!(
            sent[2].turns[2].content.contains("\"required\":[\"ok\"]"),
            "{}",
            sent[2].turns[2].content
        );
    }

    #[tokio::test(start_paused = true)]
    async fn empty_replies_are_retried_as_failed_calls_not_repaired() {
        let m = Scripted::new(
            "m",
            vec![
                Ok(reply("")),
                Ok(reply("  <think>hmm</think>\n ")),
                Ok(reply("{\"ok\": 1}")),
            ],
        );
        let llm = llm(&config(&[]), &[("default", m.clone())]);
        let meter = Meter::new();
        llm.ask(
            Task::Review,
            1,
            &ChatRequest::new("s", "u"),
            &meter,
            ok_json,
        )
        .await
        .expect("third call answers");
        let sent = m.requests();
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|r| r.turns.len() == 1), "no correction");
        assert_eq!(meter.calls().len(), 3, "empty replies are paid for too");

        // Only empty replies: the model is unusable, not a server to try again later.
        let m = Scripted::new("m", (0..10).map(|_| Ok(reply(""))).collect());
        let llm = self::llm(&config(&[]), &[("default", m.clone())]);
        let err = llm
            .ask(
                Task::Review,
                1,
                &ChatRequest::new("s", "u"),
                &Meter::new(),
                ok_json,
            )
            .await
            .expect_err("never answers");
        assert!(
            matches!(&err, AskError::Unusable { reason, .. } if reason.contains("empty")),
            "{err}"
        );
        assert!(!err.is_transient());
        assert_eq!(m.requests().len(), 4, "one call and three retries");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped_per_installation_and_per_endpoint() {
        let m = Scripted::slow("m", Duration::from_secs(1));
        let llm = Arc::new(llm(&config(&[]), &[("default", m.clone())]));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..6u64 {
            let llm = llm.clone();
            // Installation 1 asks five times at once; installation 2 once.
            let installation = if i == 5 { 2 } else { 1 };
            set.spawn(async move {
                llm.ask(
                    Task::Review,
                    installation,
                    &ChatRequest::new("s", "u"),
                    &Meter::new(),
                    ok_json,
                )
                .await
                .map(|_| ())
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task").expect("answer");
        }
        // Two for installation 1 (its cap) plus one for installation 2.
        assert_eq!(m.peak.load(Ordering::SeqCst), 3);

        let mut config = config(&[]);
        config.max_concurrent_per_installation = 100;
        let m = Scripted::slow("m", Duration::from_secs(1));
        let dyn_m: Arc<dyn ChatModel> = m.clone();
        let llm = Arc::new(Llm::with_models(
            &config,
            vec![("default".into(), ProviderKind::Openai, 3, dyn_m)],
        ));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..8u64 {
            let llm = llm.clone();
            set.spawn(async move {
                llm.ask(
                    Task::Review,
                    i,
                    &ChatRequest::new("s", "u"),
                    &Meter::new(),
                    ok_json,
                )
                .await
                .map(|_| ())
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task").expect("answer");
        }
        assert_eq!(m.peak.load(Ordering::SeqCst), 3, "the endpoint's cap");
    }

    #[tokio::test(start_paused = true)]
    async fn metering_estimates_missing_usage_and_prices_from_settings() {
        let mut no_usage = reply("{\"ok\": true}");
        no_usage.usage = None;
        no_usage.model = "my-model".into();
        let m = Scripted::new("my-model", vec![Ok(no_usage)]);
        let mut config = config(&[]);
        config.prices.insert(
            "my-model".into(),
            Price {
                input: 1000.0,
                output: 1000.0,
                cached_input: None,
            },
        );
        let llm = llm(&config, &[("default", m)]);
        let meter = Meter::new();
        llm.ask(
            Task::Review,
            1,
            &ChatRequest::new("s".repeat(400), "u".repeat(400)),
            &meter,
            ok_json,
        )
        .await
        .expect("answer");
        let call = &meter.calls()[0];
        assert!(call.estimated);
        assert_eq!(call.usage.prompt_tokens, 200);
        assert_eq!(call.usage.output_tokens, 3);
        assert_eq!(call.cost_micros, 203_000);
        assert!(!call.unpriced);
    }
    #[test]
    fn input_is_free_only_on_an_unpriced_server_of_ones_own() {
        let mut config = config(&[]);
        config.prices.insert(
            "priced".into(),
            Price {
                input: 1.0,
                output: 1.0,
                cached_input: None,
            },
        );
        let model = |name: &str| -> Arc<dyn ChatModel> { Scripted::new(name, vec![]) };
        let llm = Llm::with_models(
            &config,
            vec![
                (
                    "local".into(),
                    ProviderKind::OpenaiCompatible,
                    1,
                    model("qwen"),
                ),
                (
                    "gateway".into(),
                    ProviderKind::OpenaiCompatible,
                    1,
                    model("priced"),
                ),
                ("hosted".into(), ProviderKind::Anthropic, 1, model("qwen")),
            ],
        );
        assert!(llm.input_is_free("local"));
        assert!(
            !llm.input_is_free("gateway"),
            "a price is set for its model"
        );
        assert!(!llm.input_is_free("hosted"), "a hosted API bills input");
        assert!(!llm.input_is_free("nowhere"));
        assert_eq!(llm.endpoint_for(Task::Review, None), Some("local"));
        assert_eq!(
            llm.endpoint_for(Task::Review, Some("hosted")),
            Some("hosted")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_carries_its_reply_only_when_the_first_reply_gave_it() {
        let m = Scripted::new("m", vec![Ok(reply("{\"ok\": 1}"))]);
        let first = llm(&config(&[]), &[("default", m)]);
        let request = ChatRequest::new("s", "u");
        let answer = first
            .ask(Task::Review, 1, &request, &Meter::new(), ok_json)
            .await
            .expect("answer");
        assert_eq!(answer.reply.as_deref(), Some("{\"ok\": 1}"));
        assert_eq!(answer.endpoint, "default");
        // Asked again after an unreadable reply: the conversation is not the request's.
        let m = Scripted::new("m", vec![Ok(reply("not json")), Ok(reply("{\"ok\": 2}"))]);
        let repaired = llm(&config(&[]), &[("default", m)]);
        let answer = repaired
            .ask(Task::Review, 1, &request, &Meter::new(), ok_json)
            .await
            .expect("answer");
        assert_eq!(answer.value["ok"], 2);
        assert_eq!(answer.reply, None);
    }
}
