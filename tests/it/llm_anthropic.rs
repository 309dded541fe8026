//! Anthropic Messages against a local server speaking its wire format: the request Critic
//! sends (path, headers, body) and how it reads Anthropic's documented replies and errors.

use std::time::Duration;

use critic::config::{ProviderKind, StructuredOutput};
use critic::llm::{ChatRequest, LlmError, Turn};
use serde_json::{Value, json};

use crate::llm_wire::{endpoint, model, request, schema};
use crate::support::wire::{Scripted, WireFake};

fn anthropic(fake: &WireFake) -> critic::config::Endpoint {
    endpoint(
        ProviderKind::Anthropic,
        &format!("{}/v1", fake.url()),
        "claude-sonnet-4-5",
    )
}

/// Anthropic's error body, as its errors page shows it.
fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

#[tokio::test]
async fn request_shape_and_documented_tool_use_reply() {
    let fake = WireFake::start().await;
    // The tool-use guide's reply shape, with the prompt-caching guide's usage fields.
    fake.push(Scripted::json(200, json!({
        "id": "msg_01Aq9w938a90dw8q",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "review", "input": {"findings": ["unchecked index"]}}],
        "usage": {"input_tokens": 21, "cache_creation_input_tokens": 188, "cache_read_input_tokens": 1500, "output_tokens": 393}
    })));
    let m = model(&anthropic(&fake));
    assert_eq!(m.describe(), "anthropic/claude-sonnet-4-5");
    assert_eq!(m.model(), "claude-sonnet-4-5");
    let reply = m.complete(&request()).await.expect("reply");
    let content: Value = serde_json::from_str(&reply.content).expect("tool input as JSON text");
    assert_eq!(content, json!({"findings": ["unchecked index"]}));
    assert_eq!(reply.model, "claude-sonnet-4-5-20250929");
    assert!(!reply.truncated);
    let usage = reply.usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.output_tokens,
            usage.cached_tokens
        ),
        (21 + 188 + 1500, 393, 1500)
    );

    let got = &fake.received()[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("sk-test-key"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.header("authorization"),
        None,
        "Anthropic keys go in x-api-key only"
    );
    let body = got.json();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 1000);
    let temperature = body["temperature"].as_f64().expect("temperature");
    assert!((temperature - 0.1).abs() < 1e-6, "{temperature}");
    assert_eq!(body["system"], "You are a reviewer.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Review this."}])
    );
    assert_eq!(
        body["tools"],
        json!([{"name": "review", "description": "Findings", "input_schema": schema().schema}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "review"})
    );
    for openai_only in ["response_format", "stream", "max_completion_tokens"] {
        assert!(body.get(openai_only).is_none(), "{openai_only}");
    }
}

#[tokio::test]
async fn text_modes_send_no_tools_and_read_documented_text_reply() {
    let fake = WireFake::start().await;
    // The Messages reference's example reply.
    fake.push(Scripted::json(
        200,
        json!({
            "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "model": "claude-sonnet-4-5-20250929",
            "role": "assistant",
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "type": "message",
            "usage": {"input_tokens": 2095, "output_tokens": 503}
        }),
    ));
    fake.push(Scripted::json(200, json!({
        "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "{\"findings\": "}, {"type": "text", "text": "[]}"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 4}
    })));
    let m = model(&anthropic(&fake));
    let reply = m
        .complete(&ChatRequest::new("Be brief.", "Hello"))
        .await
        .expect("free text");
    assert_eq!(reply.content, "Hi! My name is Claude.");
    let usage = reply.usage.expect("usage");
    assert_eq!((usage.prompt_tokens, usage.cached_tokens), (2095, 0));

    let mut e = anthropic(&fake);
    e.structured_output = StructuredOutput::Prompt;
    let reply = model(&e).complete(&request()).await.expect("prompt mode");
    assert_eq!(
        reply.content, "{\"findings\": []}",
        "text blocks are joined"
    );

    for got in fake.received() {
        let body = got.json();
        assert!(body.get("tools").is_none(), "{body}");
        assert!(body.get("tool_choice").is_none(), "{body}");
    }
}

#[tokio::test]
async fn a_reask_sends_alternating_plain_text_turns() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({
        "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "review", "input": {"findings": []}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 40, "output_tokens": 12}
    })));
    let mut r = request();
    r.turns.push(Turn::assistant("{\"findings\": \"none\"}"));
    r.turns
        .push(Turn::user("`findings` must be an array. Answer again."));
    model(&anthropic(&fake)).complete(&r).await.expect("reply");
    let body = fake.received()[0].json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Review this."},
            {"role": "assistant", "content": "{\"findings\": \"none\"}"},
            {"role": "user", "content": "`findings` must be an array. Answer again."},
        ])
    );
    assert_eq!(
        body["tool_choice"]["name"], "review",
        "the re-ask still forces the tool"
    );
}

#[tokio::test]
async fn anthropic_errors_are_typed_with_retry_after() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(
        401,
        error("authentication_error", "invalid x-api-key"),
    ));
    fake.push(Scripted::json(
        404,
        error("not_found_error", "model: claude-9-opus"),
    ));
    fake.push(
        Scripted::json(429, error("rate_limit_error", "This request would exceed the rate limit for your organization of 50 requests per minute."))
            .header("retry-after", "7"),
    );
    fake.push(Scripted::json(
        500,
        error("api_error", "Internal server error"),
    ));
    fake.push(Scripted::json(529, error("overloaded_error", "Overloaded")));
    fake.push(Scripted::json(200, error("overloaded_error", "Overloaded")));
    fake.push(Scripted::json(
        200,
        json!({
            "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "{\"findings\": [\"a\", "}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 5, "output_tokens": 1000}
        }),
    ));
    fake.push(Scripted::json(
        200,
        json!({
            "type": "message", "role": "assistant", "content": [], "stop_reason": "refusal",
            "usage": {"input_tokens": 5, "output_tokens": 0}
        }),
    ));
    fake.push(
        Scripted::json(200, json!({"type": "message", "content": [{"type": "text", "text": "{}"}], "stop_reason": "end_turn"}))
            .cut(20),
    );
    let m = model(&anthropic(&fake));
    let r = request();
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 401, .. }) => {
            assert!(!e.is_transient());
            assert!(
                e.to_string()
                    .contains("authentication_error: invalid x-api-key"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 404, .. }) => {
            assert!(!e.is_transient());
            assert!(e.to_string().contains("claude-9-opus"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 429, .. }) => {
            assert!(e.is_transient());
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 500, .. }) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 529, .. }) => {
            assert!(e.is_transient());
            assert!(
                e.to_string().contains("overloaded_error: Overloaded"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 529, .. }) => assert!(e.is_transient()),
        other => panic!("an error object in a 200 is still an error: {other:?}"),
    }
    let cut = m
        .complete(&r)
        .await
        .expect("a reply cut by max_tokens is still a reply");
    assert!(cut.truncated);
    assert_eq!(cut.content, "{\"findings\": [\"a\", ");
    match m.complete(&r).await {
        Err(e @ LlmError::Refused(_)) => assert!(!e.is_transient()),
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e) => assert!(e.is_transient(), "truncated body: {e:?}"),
        Ok(r) => panic!("a truncated body must not parse: {r:?}"),
    }
    assert_eq!(
        fake.received().len(),
        9,
        "one HTTP call per complete, no retries here"
    );
}

#[tokio::test]
async fn a_slow_anthropic_server_times_out() {
    let fake = WireFake::start().await;
    fake.push(
        Scripted::json(
            200,
            json!({"type": "message", "content": [], "stop_reason": "end_turn"}),
        )
        .delayed(Duration::from_secs(3)),
    );
    let mut e = anthropic(&fake);
    e.timeout = Duration::from_millis(300);
    match model(&e).complete(&request()).await {
        Err(e @ LlmError::Timeout(_)) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
}
