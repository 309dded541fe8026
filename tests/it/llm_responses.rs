//! The OpenAI Responses provider against a local server speaking its wire format: the
//! request Critic sends and how it reads OpenAI's documented replies and errors.

use std::time::Duration;

use critic::config::{ProviderKind, StructuredOutput};
use critic::llm::{ChatRequest, LlmError, Turn};
use serde_json::{Value, json};

use crate::llm_wire::{endpoint, model, request, schema};
use crate::support::wire::{Scripted, WireFake};

/// OpenAI's documented reply to `POST /responses`, with the text Critic asked for.
fn documented_reply(text: &str) -> Value {
    json!({
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1741476542,
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": "gpt-4.1-2025-04-14",
        "output": [{
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
        }],
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 12},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123
        },
        "user": null,
        "metadata": {}
    })
}

fn responses_model(
    fake: &WireFake,
    model_name: &str,
) -> std::sync::Arc<dyn critic::llm::ChatModel> {
    model(&endpoint(
        ProviderKind::OpenaiResponses,
        &format!("{}/v1", fake.url()),
        model_name,
    ))
}

#[tokio::test]
async fn request_shape_and_documented_reply() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, documented_reply("{\"findings\": []}")));
    let m = responses_model(&fake, "gpt-4.1");
    assert_eq!(m.describe(), "openai-responses/gpt-4.1");
    assert_eq!(m.model(), "gpt-4.1");
    let mut r = request();
    r.turns.push(Turn::assistant("{\"findings\": ["));
    r.turns.push(Turn::user("That was not JSON. Answer again."));
    let reply = m.complete(&r).await.expect("reply");
    assert_eq!(reply.content, "{\"findings\": []}");
    assert!(!reply.truncated);
    assert_eq!(reply.model, "gpt-4.1-2025-04-14");
    let usage = reply.usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.output_tokens,
            usage.cached_tokens
        ),
        (36, 87, 12)
    );

    let got = fake.received();
    assert_eq!(got.len(), 1);
    let got = &got[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/v1/responses");
    assert_eq!(got.header("authorization"), Some("Bearer sk-test-key"));
    assert!(
        got.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let body = got.json();
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["instructions"], "You are a reviewer.");
    assert_eq!(
        body["input"],
        json!([
            {"role": "user", "content": "Review this."},
            {"role": "assistant", "content": "{\"findings\": ["},
            {"role": "user", "content": "That was not JSON. Answer again."},
        ])
    );
    assert_eq!(body["max_output_tokens"], 1000);
    assert_eq!(body["store"], false);
    assert!(
        body["temperature"]
            .as_f64()
            .is_some_and(|t| (t - 0.1).abs() < 1e-6)
    );
    assert_eq!(
        body["text"]["format"],
        json!({
            "type": "json_schema",
            "name": "review",
            "description": "Findings",
            "schema": schema().schema,
            "strict": true,
        })
    );
    for chat_only in [
        "messages",
        "response_format",
        "max_tokens",
        "max_completion_tokens",
    ] {
        assert!(
            body.get(chat_only).is_none(),
            "{chat_only} is Chat Completions only"
        );
    }
}

#[tokio::test]
async fn reasoning_model_gets_no_temperature_and_its_reasoning_is_skipped() {
    let fake = WireFake::start().await;
    // OpenAI's reasoning guide: a reasoning item, then the message.
    fake.push(Scripted::json(200, json!({
        "id": "resp_67ccd7eca01881908ff0b5146584e408072912b2993db808",
        "object": "response",
        "created_at": 1741477868,
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "model": "o4-mini-2025-04-16",
        "output": [
            {"type": "reasoning", "id": "rs_6820f383d7c08191846711c5df8233bc0ac5ba57aafcbac7", "summary": []},
            {"type": "message", "id": "msg_67ccd7f7b5848190a6f3e95d809f6b44072912b2993db808", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "{\"findings\": [\"off by one\"]}", "annotations": []}]}
        ],
        "reasoning": {"effort": "medium", "summary": null},
        "store": false,
        "usage": {"input_tokens": 81, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1035,
                  "output_tokens_details": {"reasoning_tokens": 832}, "total_tokens": 1116}
    })));
    let m = responses_model(&fake, "o4-mini");
    let reply = m.complete(&request()).await.expect("reply");
    assert_eq!(reply.content, "{\"findings\": [\"off by one\"]}");
    assert_eq!(reply.usage.map(|u| u.output_tokens), Some(1035));
    let body = fake.received()[0].json();
    assert_eq!(body["model"], "o4-mini");
    assert!(
        body.get("temperature").is_none(),
        "reasoning models take no temperature"
    );
    assert_eq!(body["max_output_tokens"], 1000);
    assert_eq!(body["store"], false);
}

#[tokio::test]
async fn structured_output_modes() {
    let fake = WireFake::start().await;
    for _ in 0..3 {
        fake.push(Scripted::json(200, documented_reply("{}")));
    }
    let mut e = endpoint(
        ProviderKind::OpenaiResponses,
        &format!("{}/v1/", fake.url()),
        "gpt-4.1",
    );
    e.structured_output = StructuredOutput::JsonObject;
    model(&e).complete(&request()).await.expect("json_object");
    e.structured_output = StructuredOutput::Prompt;
    model(&e).complete(&request()).await.expect("prompt");
    e.structured_output = StructuredOutput::JsonSchema;
    model(&e)
        .complete(&ChatRequest::new("sys", "free text"))
        .await
        .expect("no schema");
    let got = fake.received();
    assert_eq!(
        got[0].target, "/v1/responses",
        "a trailing slash is not doubled"
    );
    assert_eq!(
        got[0].json()["text"],
        json!({"format": {"type": "json_object"}})
    );
    assert!(
        got[1].json().get("text").is_none(),
        "prompt mode sends no format"
    );
    assert!(
        got[2].json().get("text").is_none(),
        "free text sends no format"
    );
}

#[tokio::test]
async fn errors_are_typed_with_retry_after() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(401, json!({"error": {"message": "Incorrect API key provided: sk-test-key. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})));
    fake.push(Scripted::json(404, json!({"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}})));
    fake.push(Scripted::json(429, json!({"error": {"message": "Rate limit reached for gpt-4.1 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}})).header("retry-after", "7"));
    fake.push(Scripted::json(500, json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}})));
    fake.push(Scripted::json(200, json!({
        "id": "resp_1", "object": "response", "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "id": "msg_1", "status": "incomplete", "role": "assistant",
                    "content": [{"type": "output_text", "text": "{\"findings\": [\"a\", ", "annotations": []}]}],
        "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1000, "total_tokens": 1005}
    })));
    fake.push(Scripted::json(200, documented_reply("{}")).cut(40));
    fake.push(Scripted::json(200, json!({
        "id": "resp_2", "object": "response", "status": "failed",
        "error": {"code": "server_error", "message": "The model failed to generate a response."},
        "output": []
    })));
    let m = responses_model(&fake, "gpt-4.1");
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
            assert!(!e.is_transient());
            assert!(e.to_string().contains("gpt-9"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 429, .. }) => {
            assert!(e.is_transient());
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
            assert!(e.to_string().contains("Rate limit reached"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 500, .. }) => {
            assert!(e.is_transient());
            assert_eq!(e.retry_after(), None);
        }
        other => panic!("{other:?}"),
    }
    let cut = m
        .complete(&r)
        .await
        .expect("a reply cut by max_output_tokens is still a reply");
    assert!(cut.truncated);
    assert_eq!(cut.content, "{\"findings\": [\"a\", ");
    assert_eq!(cut.usage.map(|u| u.output_tokens), Some(1000));
    match m.complete(&r).await {
        Err(e) => assert!(e.is_transient(), "truncated body: {e:?}"),
        Ok(r) => panic!("a truncated body must not parse: {r:?}"),
    }
    match m.complete(&r).await {
        Err(e @ LlmError::Status { status: 500, .. }) => {
            assert!(e.is_transient());
            assert!(e.to_string().contains("failed to generate"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.received().len(),
        7,
        "one HTTP call per complete, no retries"
    );
}

#[tokio::test]
async fn refusal_is_not_retried() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, json!({
        "id": "resp_3", "object": "response", "status": "completed", "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "id": "msg_3", "status": "completed", "role": "assistant",
                    "content": [{"type": "refusal", "refusal": "I'm sorry, I cannot assist with that request."}]}],
        "usage": {"input_tokens": 30, "output_tokens": 10, "total_tokens": 40}
    })));
    match responses_model(&fake, "gpt-4.1").complete(&request()).await {
        Err(e @ LlmError::Refused(_)) => {
            assert!(!e.is_transient());
            assert!(e.to_string().contains("cannot assist"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let fake = WireFake::start().await;
    fake.push(Scripted::json(200, documented_reply("{}")).delayed(Duration::from_secs(3)));
    let mut e = endpoint(
        ProviderKind::OpenaiResponses,
        &format!("{}/v1", fake.url()),
        "gpt-4.1",
    );
    e.timeout = Duration::from_millis(300);
    match model(&e).complete(&request()).await {
        Err(e @ LlmError::Timeout(_)) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
}
