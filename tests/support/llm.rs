//! A fake OpenAI-compatible model server (`POST /v1/chat/completions`) whose replies a test
//! scripts. It records every request it was sent. `GET /v1/models` answers 404, as a server
//! that does not list its models, unless a test has it list one as llama.cpp does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Chat {
    pub headers: HeaderMap,
    pub body: Value,
}

impl Chat {
    /// The path and new-side number of the first added line the review prompt shows (its
    /// files are `## PATH (...)` headings over numbered hunk lines): what a scripted model
    /// that "read the prompt" comments on.
    pub fn first_added_line(&self) -> Option<(String, u32)> {
        let prompt = self.message("user");
        let mut path = None;
        for line in prompt.lines() {
            if let Some(rest) = line.strip_prefix("## ") {
                path = rest.rsplit_once(" (").map(|(p, _)| p.to_string());
                continue;
            }
            if let (Some(p), Some((num, rest))) = (&path, line.trim_start().split_once(' '))
                && rest.starts_with('+')
                && let Ok(number) = num.parse::<u32>()
            {
                return Some((p.clone(), number));
            }
        }
        None
    }

    /// A request of the verify pass (`review::verify`), not a review or a command: a call of
    /// its own, or the review's conversation continued with the verify ask.
    pub fn is_verify(&self) -> bool {
        self.message("system")
            .contains("checking another reviewer's findings")
            || self.continues_review()
    }

    /// A verify request that continues the review's conversation: after the model's reply
    /// comes the verify ask (and, when the verdicts are asked for again, more turns).
    pub fn continues_review(&self) -> bool {
        self.continued_ask().is_some()
    }

    fn continued_ask(&self) -> Option<String> {
        self.contents("user")
            .into_iter()
            .skip(1)
            .find(|c| c.starts_with("Before your findings are posted"))
    }

    /// The finding ids a verify request shows: `### Finding N:` in a call of its own, `N. `
    /// opening a line of the ask in a continued conversation.
    pub fn finding_ids(&self) -> Vec<u64> {
        let continued = self.continued_ask();
        let ask = match &continued {
            Some(ask) => ask.clone(),
            None => self.message("user"),
        };
        let continued = continued.is_some();
        ask.lines()
            .filter_map(|l| match continued {
                false => l.strip_prefix("### Finding ")?.split(':').next(),
                true => l.split_once(". ").map(|(n, _)| n),
            })
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// The roles of the request's messages, in order.
    pub fn roles(&self) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["role"].as_str().map(str::to_string))
            .collect()
    }

    /// Content of the last message with this role.
    pub fn last_message(&self, role: &str) -> String {
        self.contents(role).pop().unwrap_or_default()
    }

    /// Contents of the messages with this role, in order.
    fn contents(&self, role: &str) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str().map(str::to_string))
            .collect()
    }

    /// Content of the (first) message with this role.
    pub fn message(&self, role: &str) -> String {
        self.contents(role).into_iter().next().unwrap_or_default()
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// A successful chat completion whose assistant message is `content`, shaped like
    /// OpenAI's documented example.
    pub fn content(content: &str) -> Reply {
        Reply::finished(content, "stop")
    }

    /// A reply that ran into the output token limit (`finish_reason: length`), as
    /// llama.cpp, vLLM and OpenAI send it.
    pub fn cut_off(content: &str) -> Reply {
        Reply::finished(content, "length")
    }

    fn finished(content: &str, finish_reason: &str) -> Reply {
        let body = json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1741569952,
            "model": "gpt-4.1-2025-04-14",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": finish_reason
            }],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
            "service_tier": "default"
        });
        Reply {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A reply whose content is this JSON value.
    pub fn json(value: Value) -> Reply {
        Reply::content(&value.to_string())
    }

    /// A review with one warning on the first added line the prompt shows (none when it
    /// shows no added line).
    pub fn finding_on_first_added_line(chat: &Chat) -> Reply {
        Reply::findings(match chat.first_added_line() {
            Some((path, line)) => json!([
                {"path": path, "line": line, "severity": "warning", "category": "bug", "body": "Check this added line."}
            ]),
            None => json!([]),
        })
    }

    /// A verify reply with these verdicts.
    pub fn verdicts(verdicts: Value) -> Reply {
        Reply::json(json!({ "verdicts": verdicts }))
    }

    /// What a verifier that agrees with everything says: every finding real, confidence 9,
    /// its fix right. The fake's default answer to a verify request.
    pub fn all_real(chat: &Chat) -> Reply {
        let verdicts: Vec<Value> = chat
            .finding_ids()
            .into_iter()
            .map(|id| json!({"id": id, "verdict": "real", "confidence": 9, "fix_ok": true}))
            .collect();
        Reply::verdicts(Value::Array(verdicts))
    }

    /// A review with a summary and these findings.
    pub fn findings(findings: Value) -> Reply {
        Reply::json(json!({"summary": "The change looks focused.", "findings": findings}))
    }

    pub fn error(status: u16) -> Reply {
        let body = json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}});
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Responder = Arc<dyn Fn(&Chat) -> Reply + Send + Sync>;

/// Review and command requests, and apart from them the verify pass's requests (so a test
/// that scripts a review need not script its verification: by default every finding is
/// confirmed, see [`Reply::all_real`]).
#[derive(Default)]
struct Inner {
    queue: VecDeque<Reply>,
    responder: Option<Responder>,
    received: Vec<Chat>,
    verify_queue: VecDeque<Reply>,
    verify_responder: Option<Responder>,
    verify_received: Vec<Chat>,
    /// What `GET /v1/models` answers; None: 404.
    models: Option<Value>,
    /// Times `GET /v1/models` was asked.
    models_asked: usize,
}

#[derive(Clone)]
pub struct FakeLlm {
    url: String,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl FakeLlm {
    pub async fn start() -> FakeLlm {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let changed = Arc::new(Notify::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake llm");
        let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let fake = FakeLlm {
            url,
            inner,
            changed,
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .route("/v1/models", get(models))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake llm serves");
        });
        fake
    }

    /// Base URL to give Critic as `llm.base_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lists one model of `params` parameters as llama.cpp's server does (`owned_by` and
    /// `meta` as its `GET /v1/models` answers, from the server `../shared/tools/local-model`
    /// runs): llama.cpp serves one model whatever a client calls it.
    pub fn list_as_llama_cpp(&self, params: u64) {
        self.inner.lock().expect("lock").models = Some(json!({
            "models": [{"name": "local", "model": "local", "type": "model"}],
            "object": "list",
            "data": [{
                "id": "local",
                "aliases": ["local"],
                "tags": [],
                "object": "model",
                "created": 1796643470,
                "owned_by": "llamacpp",
                "meta": {
                    "vocab_type": 2,
                    "n_vocab": 151936,
                    "n_ctx": 8192,
                    "n_ctx_train": 32768,
                    "n_embd": 1536,
                    "n_params": params,
                    "size": params / 16 * 10,
                }
            }]
        }));
    }

    /// Times `GET /v1/models` was asked.
    pub fn models_asked(&self) -> usize {
        self.inner.lock().expect("lock").models_asked
    }

    /// Answers the next request with `reply` (queued replies go first, in order).
    pub fn push(&self, reply: Reply) {
        self.inner.lock().expect("lock").queue.push_back(reply);
    }

    /// Answers every request not served from the queue.
    pub fn respond_with(&self, f: impl Fn(&Chat) -> Reply + Send + Sync + 'static) {
        self.inner.lock().expect("lock").responder = Some(Arc::new(f));
    }

    /// Review and command requests (not the verify pass's).
    pub fn received(&self) -> Vec<Chat> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// Answers the next verify request with `reply`.
    pub fn push_verify(&self, reply: Reply) {
        self.inner
            .lock()
            .expect("lock")
            .verify_queue
            .push_back(reply);
    }

    /// Answers every verify request not served from its queue.
    pub fn verify_with(&self, f: impl Fn(&Chat) -> Reply + Send + Sync + 'static) {
        self.inner.lock().expect("lock").verify_responder = Some(Arc::new(f));
    }

    /// The verify pass's requests.
    pub fn verify_received(&self) -> Vec<Chat> {
        self.inner.lock().expect("lock").verify_received.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Chat> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "fake LLM got {} request(s), expected {n} within {timeout:?}",
                    self.received().len()
                );
            }
        }
    }
}

async fn models(State(fake): State<FakeLlm>) -> Response {
    let listed = {
        let mut inner = fake.inner.lock().expect("lock");
        inner.models_asked += 1;
        inner.models.clone()
    };
    match listed {
        Some(list) => (StatusCode::OK, axum::Json(list)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"error":{"message":"File Not Found","type":"not_found_error","code":404}}"#,
        )
            .into_response(),
    }
}

async fn complete(State(fake): State<FakeLlm>, headers: HeaderMap, body: String) -> Response {
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{{\"error\":{{\"message\":\"bad json: {e}\"}}}}"),
            )
                .into_response();
        }
    };
    let chat = Chat { headers, body };
    let reply = {
        let mut inner = fake.inner.lock().expect("lock");
        if chat.is_verify() {
            inner.verify_received.push(chat.clone());
            match inner.verify_queue.pop_front() {
                Some(r) => r,
                None => match &inner.verify_responder {
                    Some(f) => f(&chat),
                    None => Reply::all_real(&chat),
                },
            }
        } else {
            inner.received.push(chat.clone());
            match inner.queue.pop_front() {
                Some(r) => r,
                None => match &inner.responder {
                    Some(f) => f(&chat),
                    None => Reply::findings(json!([])),
                },
            }
        }
    };
    fake.changed.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/json")], reply.body).into_response()
}
