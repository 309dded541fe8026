//! What Critic's metrics cost: the calls one delivery and one review job make, with the
//! Prometheus recorder installed as `critic serve` installs it, and one scrape's rendering
//! of a registry as large as a busy server's (every event, outcome, job kind, two models,
//! three tasks, a hundred installations' rate limits).
//!
//! `cargo bench --bench metrics` — criterion reports the time per iteration; BENCHMARKS.md
//! sets it against the CPU a delivery costs in `benches/load.rs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// The series a busy server holds.
fn populate() {
    for event in [
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "push",
    ] {
        for outcome in ["accepted", "duplicate", "ignored", "bad_signature"] {
            metrics::counter!("critic_deliveries_total", "event" => event, "outcome" => outcome)
                .increment(1);
        }
    }
    for kind in ["review", "command", "reply"] {
        metrics::histogram!("critic_job_duration_seconds", "kind" => kind).record(1.0);
        for outcome in ["done", "skipped", "retry", "dead"] {
            metrics::counter!("critic_jobs_total", "kind" => kind, "outcome" => outcome)
                .increment(1);
        }
    }
    for model in ["gpt-4o", "qwen2.5-coder:7b"] {
        for task in ["review", "describe", "ask"] {
            for outcome in ["ok", "transient_error", "error"] {
                let labels = [
                    ("endpoint", "default".to_string()),
                    ("model", model.to_string()),
                    ("task", task.to_string()),
                    ("outcome", outcome.to_string()),
                ];
                metrics::counter!("critic_llm_calls_total", &labels).increment(1);
                metrics::histogram!("critic_llm_request_duration_seconds", &labels).record(3.0);
            }
        }
    }
    for installation in 0..100 {
        metrics::gauge!("critic_github_rate_limit_remaining", "installation" => installation.to_string())
            .set(4000.0);
    }
}

fn metrics(c: &mut Criterion) {
    let handle = critic::telemetry::handle().expect("the recorder installs");
    populate();
    // What the webhook handler records per delivery.
    c.bench_function("one delivery's metrics", |b| {
        b.iter(|| {
            metrics::counter!("critic_deliveries_total", "event" => black_box("pull_request"), "outcome" => "accepted")
                .increment(1);
        })
    });
    // What a review job records: its duration and outcome, one model call, tokens and cost,
    // about a dozen GitHub calls with their rate limit, the review's counts.
    c.bench_function("one review job's metrics", |b| {
        b.iter(|| {
            metrics::histogram!("critic_job_duration_seconds", "kind" => "review").record(black_box(2.5));
            metrics::counter!("critic_jobs_total", "kind" => "review", "outcome" => "done").increment(1);
            let labels = [
                ("endpoint", "default".to_string()),
                ("model", "gpt-4o".to_string()),
                ("task", "review".to_string()),
                ("outcome", "ok".to_string()),
            ];
            metrics::counter!("critic_llm_calls_total", &labels).increment(1);
            metrics::histogram!("critic_llm_request_duration_seconds", &labels).record(3.0);
            for kind in ["input", "output", "cached"] {
                metrics::counter!("critic_llm_tokens_total", "model" => "gpt-4o".to_string(), "kind" => kind)
                    .increment(1000);
            }
            metrics::counter!("critic_llm_cost_micro_usd_total", "model" => "gpt-4o".to_string()).increment(10);
            for _ in 0..12 {
                metrics::counter!("critic_github_calls_total", "outcome" => "ok").increment(1);
                metrics::gauge!("critic_github_rate_limit_remaining", "installation" => 42u64.to_string())
                    .set(4000.0);
            }
            metrics::counter!("critic_reviews_posted_total").increment(1);
            metrics::counter!("critic_findings_total", "place" => "inline").increment(3);
            metrics::counter!("critic_findings_total", "place" => "body").increment(1);
            metrics::counter!("critic_threads_refused_total").increment(0);
        })
    });
    c.bench_function("render a scrape", |b| b.iter(|| black_box(handle.render())));
}

criterion_group!(benches, metrics);
criterion_main!(benches);
