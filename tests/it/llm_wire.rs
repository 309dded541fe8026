//! Each provider against a local server speaking its wire format: the request Critic sends
//! (URL, headers, body) and how it reads documented replies and errors.

use std::sync::Arc;
use std::time::Duration;

use critic::config::{Endpoint, ProviderKind, StructuredOutput};
use critic::llm::{ChatModel, ChatRequest, LlmError, OutputSchema, connect};
use serde_json::json;

use crate::support::wire::{Received, Scripted, WireFake};

pub fn endpoint(provider: ProviderKind, base_url: &str, model: &str) -> Endpoint {
    Endpoint {
        name: "default".into(),
        provider,
        base_url: base_url.parse().expect("url"),
        model: model.into(),
        api_key: Some("sk-test-key".to_string().into()),
        api_version: "2024-10-21".into(),
        structured_output: StructuredOutput::JsonSchema,
        timeout: Duration::from_secs(5),
        max_output_tokens: 1000,
        temperature: 0.1,
        max_concurrent: 4,
    }
}

pub fn schema() -> Arc<OutputSchema> {
    Arc::new(OutputSchema {
        name: "review",
        description: "Findings",
        schema: json!({"type": "object", "additionalProperties": false, "required": ["findings"],
            "properties": {"findings": {"type": "array", "items": {"type": "string"}}}}),
    })
}

pub fn request() -> ChatRequest {
    ChatRequest::new("You are a reviewer.", "Review this.").with_schema(schema())
}

pub fn model(e: &Endpoint) -> Arc<dyn ChatModel> {
    connect(e).expect("client")
}

#[tokio::test]
async fn openai_chat_request_shape_and_documented_reply() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"findings\": []}", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}},
        "service_tier": "default"
    })));
    let m = model(&endpoint(
        ProviderKind::Openai,
        &format!("{}/v1", fake.url()),
        "gpt-4.1",
    ));
    let reply = m.complete(&request()).await.expect("reply");
    assert_eq!(reply.content, "{\"findings\": []}");
    let usage = reply.usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.output_tokens,
            usage.cached_tokens
        ),
        (19, 10, 4)
    );
    let got = &fake.received()[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some("Bearer sk-test-key"));
    assert!(
        got.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let body = got.json();
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are a reviewer."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Review this."})
    );
    assert_eq!(body["max_completion_tokens"], 1000);
    assert!(body.get("max_tokens").is_none());
    assert!(
        body.get("frequency_penalty").is_none(),
        "no penalty on a first ask"
    );
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["name"], "review");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"],
        schema().schema
    );
}

#[tokio::test]
async fn azure_uses_deployment_url_api_key_header_and_api_version() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({
        "id": "chatcmpl-6v7mkQj980V1yBec6ETrKPRqFjNw9",
        "object": "chat.completion",
        "created": 1679072642,
        "model": "gpt-4o-2024-08-06",
        "usage": {"prompt_tokens": 58, "completion_tokens": 68, "total_tokens": 126},
        "choices": [{"message": {"role": "assistant", "content": "{\"findings\": [\"x\"]}"}, "finish_reason": "stop", "index": 0}]
    })));
    let m = model(&endpoint(
        ProviderKind::Azure,
        fake.url(),
        "review-deployment",
    ));
    let reply = m.complete(&request()).await.expect("reply");
    assert_eq!(reply.model, "gpt-4o-2024-08-06");
    let got = &fake.received()[0];
    assert_eq!(
        got.path(),
        "/openai/deployments/review-deployment/chat/completions"
    );
    assert_eq!(got.query(), "api-version=2024-10-21");
    assert_eq!(got.header("api-key"), Some("sk-test-key"));
    assert_eq!(
        got.header("authorization"),
        None,
        "Azure keys go in api-key only"
    );
    assert!(got.json().get("model").is_none());
}

#[tokio::test]
async fn grammar_mode_sends_llama_cpps_grammar_on_one_line_and_steps_down_when_refused() {
    let fake = WireFake::start().await;
    fake.push(chat_ok());
    // A server that does not know `grammar` says so: the schema is used from then on.
    fake.push(Scripted::json(400, json!({"error": {"code": 400, "message": "Unsupported param: grammar", "type": "invalid_request_error"}})));
    fake.push(chat_ok());
    let mut e = endpoint(
        ProviderKind::OpenaiCompatible,
        &format!("{}/v1", fake.url()),
        "qwen2.5-coder-1.5b",
    );
    e.structured_output = StructuredOutput::Grammar;
    let m = model(&e);
    m.complete(&request()).await.expect("grammar");
    m.complete(&request()).await.expect("stepped down");
    let got = fake.received();
    let first = got[0].json();
    assert!(first.get("response_format").is_none(), "{first}");
    let grammar = first["grammar"].as_str().expect("a grammar");
    assert!(
        grammar.starts_with(r#"root ::= "{" "\"findings\"" ":" sp root-findings "}""#),
        "{grammar}"
    );
    assert!(
        grammar.contains(r#"root-findings ::= "[" ( string ( "," sp string )* )? "]""#),
        "{grammar}"
    );
    assert_eq!(got[2].json()["response_format"]["type"], "json_schema");
    assert!(got[2].json().get("grammar").is_none());
    // OpenAI itself has no grammar: the schema.
    let fake = WireFake::start().await;
    fake.push(chat_ok());
    let e = openai_asking(&fake, StructuredOutput::Grammar);
    let listed = ChatRequest::new("s", "u").with_schema(Arc::new(OutputSchema {
        name: "verify",
        description: "Verdicts",
        schema: json!({"type": "object", "additionalProperties": false, "required": ["v"],
            "properties": {"v": {"type": "array", "minItems": 1, "items": {"type": "integer"}}}}),
    }));
    model(&e).complete(&listed).await.expect("schema");
    let got = fake.received();
    let body = got[0].json();
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert!(body.get("grammar").is_none());
    let v = &body["response_format"]["json_schema"]["schema"]["properties"]["v"];
    assert!(
        v.get("minItems").is_none(),
        "OpenAI's strict mode gets no minItems: {v}"
    );
}

#[tokio::test]
async fn auto_mode_asks_the_server_what_it_is_once() {
    // llama.cpp lists its models as its own: asked through a grammar from then on.
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({"object": "list", "data": [{"id": "qwen2.5-coder-1.5b", "object": "model", "created": 1796643470, "owned_by": "llamacpp"}]})));
    let got = asked_twice(&fake).await;
    assert_eq!(got.len(), 3, "the server is asked once");
    assert_eq!(
        (got[0].method.as_str(), got[0].path()),
        ("GET", "/v1/models")
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer sk-test-key"));
    for call in &got[1..] {
        assert_eq!(call.path(), "/v1/chat/completions");
        assert!(call.json()["grammar"].is_string(), "{}", call.body);
        assert!(call.json().get("response_format").is_none());
    }
    // vLLM: its schema mode.
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({"object": "list", "data": [{"id": "Qwen/Qwen2.5-Coder-7B-Instruct", "object": "model", "created": 1733000000, "owned_by": "vllm", "root": "Qwen/Qwen2.5-Coder-7B-Instruct", "parent": null, "max_model_len": 32768}]})));
    fake.push(chat_ok());
    model(&auto_endpoint(&fake, "Qwen/Qwen2.5-Coder-7B-Instruct"))
        .complete(&request())
        .await
        .expect("vllm");
    let got = fake.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].json()["response_format"]["type"], "json_schema");
    // A server without a model list (404): `json_object`, as before, and not asked again.
    let fake = WireFake::start().await;
    fake.push(Scripted::json(
        404,
        json!({"error": {"message": "Not Found", "type": "not_found_error"}}),
    ));
    let got = asked_twice(&fake).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[1].json()["response_format"]["type"], "json_object");
    assert_eq!(got[2].json()["response_format"]["type"], "json_object");
    // OpenAI itself is never asked: its schema mode.
    let fake = WireFake::start().await;
    fake.push(chat_ok());
    let e = openai_asking(&fake, StructuredOutput::Auto);
    model(&e).complete(&request()).await.expect("openai");
    let got = fake.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["response_format"]["type"], "json_schema");
}

#[tokio::test]
async fn auto_mode_asks_again_after_the_server_could_not_be_reached() {
    // A model list slower than the detection's 10 s would make this test slow; a list cut
    // off mid-way is a transport failure just the same.
    let fake = WireFake::start().await;
    fake.push(
        Scripted::raw(
            200,
            r#"{"object": "list", "data": [{"id": "m", "owned_by": "llamacpp"}]}"#,
        )
        .cut(10),
    );
    fake.push(chat_ok());
    fake.push(Scripted::json(
        200,
        json!({"object": "list", "data": [{"id": "m", "owned_by": "llamacpp"}]}),
    ));
    fake.push(chat_ok());
    let m = model(&quick_auto_endpoint(&fake, "m"));
    m.complete(&request())
        .await
        .expect("first, without knowing the server");
    tokio::time::sleep(ASK_SPACING).await;
    m.complete(&request()).await.expect("second");
    let got = fake.received();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[1].json()["response_format"]["type"], "json_object");
    assert_eq!(got[2].path(), "/v1/models", "asked again");
    assert!(got[3].json()["grammar"].is_string());
}

#[tokio::test]
async fn auto_mode_outlasts_a_proxys_bad_moment_and_steps_down_from_what_it_found() {
    let listed = || {
        Scripted::json(
            200,
            json!({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "llamacpp"}]}),
        )
    };
    let fake = WireFake::start().await;
    // A proxy in front of llama.cpp answers 503 while it restarts: not taken for an answer.
    fake.push(Scripted::json(
        503,
        json!({"error": {"message": "upstream unavailable"}}),
    ));
    fake.push(chat_ok());
    fake.push(listed());
    // The grammar is refused (a server that does not take one): the schema from then on.
    fake.push(Scripted::json(400, json!({"error": {"code": 400, "message": "\"grammar\" is not supported", "type": "invalid_request_error"}})));
    fake.push(chat_ok());
    fake.push(chat_ok());
    let m = model(&quick_auto_endpoint(&fake, "m"));
    m.complete(&request()).await.expect("first");
    tokio::time::sleep(ASK_SPACING).await;
    m.complete(&request()).await.expect("second");
    m.complete(&request()).await.expect("third");
    let got = fake.received();
    let asked: Vec<(&str, &str)> = got.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        asked,
        [
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/chat/completions"),
        ]
    );
    assert_eq!(got[1].json()["response_format"]["type"], "json_object");
    assert!(got[3].json()["grammar"].is_string());
    assert_eq!(got[4].json()["response_format"]["type"], "json_schema");
    assert_eq!(got[5].json()["response_format"]["type"], "json_schema");
    // A model list that never comes is given up after three tries: `json_object` for good.
    let fake = WireFake::start().await;
    for _ in 0..3 {
        fake.push(Scripted::json(
            502,
            json!({"error": {"message": "bad gateway"}}),
        ));
        fake.push(chat_ok());
    }
    fake.push(chat_ok());
    let m = model(&quick_auto_endpoint(&fake, "m"));
    for _ in 0..4 {
        m.complete(&request()).await.expect("answered");
        tokio::time::sleep(ASK_SPACING).await;
    }
    let got = fake.received();
    assert_eq!(got.len(), 7, "three tries, then no more: {got:?}");
    assert_eq!(got[6].path(), "/v1/chat/completions");
    assert_eq!(got[6].json()["response_format"]["type"], "json_object");
}

/// [`auto_endpoint`] with a 300 ms timeout: after a failed ask of what the server is, it is
/// asked again no sooner than an ask may take, so these tests wait [`ASK_SPACING`].
fn quick_auto_endpoint(fake: &WireFake, model: &str) -> Endpoint {
    let mut e = auto_endpoint(fake, model);
    e.timeout = Duration::from_millis(300);
    e
}

const ASK_SPACING: Duration = Duration::from_millis(350);

/// An `openai-compatible` endpoint on `fake` for `model`, left to ask what the server is.
fn auto_endpoint(fake: &WireFake, model: &str) -> Endpoint {
    let mut e = endpoint(
        ProviderKind::OpenaiCompatible,
        &format!("{}/v1", fake.url()),
        model,
    );
    e.structured_output = StructuredOutput::Auto;
    e
}

/// OpenAI itself on `fake`, with structured output set to `mode`.
fn openai_asking(fake: &WireFake, mode: StructuredOutput) -> Endpoint {
    let mut e = endpoint(
        ProviderKind::Openai,
        &format!("{}/v1", fake.url()),
        "gpt-4o",
    );
    e.structured_output = mode;
    e
}

#[tokio::test]
async fn the_models_size_comes_from_the_same_one_ask() {
    let listed = || {
        Scripted::json(
            200,
            json!({"object": "list", "data": [{"id": "qwen2.5-coder-1.5b", "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx": 8192, "n_params": 1_777_088_000u64}}]}),
        )
    };
    // Read with the server's kind: the chat that follows has its grammar, asked no more.
    let fake = WireFake::start().await;
    fake.push(listed());
    fake.push(chat_ok());
    let m = model(&auto_endpoint(&fake, "qwen2.5-coder-1.5b"));
    assert_eq!(m.params().await, Some(1_777_088_000));
    assert_eq!(m.params().await, Some(1_777_088_000));
    m.complete(&request()).await.expect("chat");
    let got = fake.received();
    assert_eq!(got.len(), 2, "the server is asked once: {got:?}");
    assert!(got[1].json()["grammar"].is_string(), "{}", got[1].body);
    // A mode set by hand holds; the list is still read once, for the size.
    let fake = WireFake::start().await;
    fake.push(listed());
    fake.push(chat_ok());
    let mut e = auto_endpoint(&fake, "qwen2.5-coder-1.5b");
    e.structured_output = StructuredOutput::JsonSchema;
    let m = model(&e);
    assert_eq!(m.params().await, Some(1_777_088_000));
    m.complete(&request()).await.expect("chat");
    let got = fake.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].json()["response_format"]["type"], "json_schema");
    // A list that cannot be read now (503, a server loading its model): no size yet, and the
    // review's call that follows at once asks no more (one try for the review, not one for
    // each of its calls); a later review asks again.
    let fake = WireFake::start().await;
    fake.push(Scripted::json(
        503,
        json!({"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}),
    ));
    fake.push(chat_ok());
    fake.push(listed());
    let m = model(&quick_auto_endpoint(&fake, "qwen2.5-coder-1.5b"));
    assert_eq!(m.params().await, None);
    m.complete(&request()).await.expect("chat");
    assert_eq!(m.params().await, None);
    let got = fake.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].json()["response_format"]["type"], "json_object");
    tokio::time::sleep(ASK_SPACING).await;
    assert_eq!(m.params().await, Some(1_777_088_000));
    assert_eq!(fake.received().len(), 3);
    // Calls made together share one ask.
    let fake = WireFake::start().await;
    fake.push(listed());
    let m = model(&auto_endpoint(&fake, "qwen2.5-coder-1.5b"));
    let (a, b) = tokio::join!(m.params(), m.params());
    assert_eq!((a, b), (Some(1_777_088_000), Some(1_777_088_000)));
    assert_eq!(fake.received().len(), 1);
    // OpenAI itself says nothing of its models' sizes and is not asked.
    let fake = WireFake::start().await;
    let m = model(&openai_asking(&fake, StructuredOutput::Auto));
    assert_eq!(m.params().await, None);
    assert!(fake.received().is_empty());
}

/// Two calls to an `auto` endpoint on `fake` (whose model list is scripted already), each
/// answered with [`chat_ok`]; what the fake received.
async fn asked_twice(fake: &WireFake) -> Vec<Received> {
    fake.push(chat_ok());
    fake.push(chat_ok());
    let m = model(&auto_endpoint(fake, "qwen2.5-coder-1.5b"));
    m.complete(&request()).await.expect("first");
    m.complete(&request()).await.expect("second");
    fake.received()
}

/// A chat completion answering no findings.
fn chat_ok() -> Scripted {
    Scripted::json(
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": "{\"findings\":[]}"}, "finish_reason": "stop"}]}),
    )
}

#[tokio::test]
async fn compatible_server_without_schema_support_is_stepped_down_once() {
    let fake = WireFake::start().await;
    // llama.cpp-style rejection of an unsupported response_format, then plain success.
    fake.push(Scripted::json(400, json!({"error": {"code": 400, "message": "response_format type json_schema is not supported", "type": "invalid_request_error"}})));
    fake.push(Scripted::json(200, json!({"choices": [{"message": {"role": "assistant", "content": "{\"findings\": []}"}, "finish_reason": "stop"}]})));
    fake.push(Scripted::json(200, json!({"choices": [{"message": {"role": "assistant", "content": "{\"findings\": []}"}, "finish_reason": "stop"}]})));
    let m = model(&endpoint(
        ProviderKind::OpenaiCompatible,
        &format!("{}/v1", fake.url()),
        "llama3",
    ));
    let reply = m.complete(&request()).await.expect("stepped down");
    assert!(reply.usage.is_none(), "no usage from this server");
    m.complete(&request()).await.expect("second call");
    let got = fake.received();
    assert_eq!(got.len(), 3, "the rejected mode is not tried again");
    assert_eq!(got[0].json()["response_format"]["type"], "json_schema");
    assert_eq!(got[1].json()["response_format"]["type"], "json_object");
    assert_eq!(got[2].json()["response_format"]["type"], "json_object");
    assert_eq!(
        got[1].json()["max_tokens"],
        1000,
        "compatible servers get max_tokens"
    );
}

#[tokio::test]
async fn openai_errors_are_typed_with_retry_after() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(401, json!({"error": {"message": "Incorrect API key provided: sk-test-key.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})));
    fake.push(Scripted::json(404, json!({"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}})));
    fake.push(Scripted::json(429, json!({"error": {"message": "Rate limit reached for gpt-4.1 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}})).header("retry-after", "3"));
    fake.push(Scripted::json(500, json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}})));
    fake.push(Scripted::json(200, json!({"choices": [{"message": {"content": "{\"findings\": [\"a\", "}, "finish_reason": "length"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1000}})));
    fake.push(
        Scripted::json(
            200,
            json!({"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}),
        )
        .cut(20),
    );
    fake.push(
        Scripted::raw(502, "<html><body>502 Bad Gateway</body></html>")
            .header("content-type", "text/html"),
    );
    let m = model(&endpoint(
        ProviderKind::Openai,
        &format!("{}/v1", fake.url()),
        "gpt-4.1",
    ));
    let r = request();
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 401, .. }) => {
            assert!(!e.is_transient());
            assert!(e.to_string().contains("Incorrect API key"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 404, .. }) => {
            assert!(e.to_string().contains("gpt-9"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 429, .. }) => {
            assert!(e.is_transient());
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 500, .. }) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
    let cut = m
        .complete(&r)
        .await
        .expect("a reply cut by max tokens is still a reply");
    assert!(cut.truncated);
    match m.complete(&r).await {
        Err(e) => assert!(e.is_transient(), "truncated body: {e:?}"),
        Ok(r) => panic!("a truncated body must not parse: {r:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 502, .. }) => {
            assert!(e.to_string().contains("Bad Gateway"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({})).delayed(Duration::from_secs(3)));
    let mut e = endpoint(
        ProviderKind::OpenaiCompatible,
        &format!("{}/v1", fake.url()),
        "m",
    );
    e.timeout = Duration::from_millis(300);
    match model(&e).complete(&request()).await {
        Err(e @ LlmError::Timeout(_)) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn asking_again_after_a_loop_sends_a_frequency_penalty_except_to_reasoning_models() {
    let fake = WireFake::start().await;
    for _ in 0..2 {
        fake.push(Scripted::json(
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}]}),
        ));
    }
    let mut again = request();
    again.against_repeats = true;
    for name in ["gpt-4.1", "o4-mini"] {
        let m = model(&endpoint(
            ProviderKind::Openai,
            &format!("{}/v1", fake.url()),
            name,
        ));
        m.complete(&again).await.expect("reply");
    }
    let sent = fake.received();
    assert_eq!(sent[0].json()["frequency_penalty"], 0.5);
    assert!(
        sent[1].json().get("frequency_penalty").is_none(),
        "reasoning models take no penalty"
    );
}
