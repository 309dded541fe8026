//! `critic review` on a large local change: the release binary reviews the change between two
//! commits of a git repository you name, against the fake model answering at once, so what is
//! measured is Critic's own work (git, parsing the diff, filters, scopes, redaction, tokens,
//! chunks, prompts, validation, placing, rendering). Prints the wall time, the model requests
//! and the binary's peak RSS (GNU time's `%M`: `/usr/bin/time` must be installed).
//!
//! `CRITIC_BENCH_REPO=PATH CRITIC_BENCH_BASE=REV CRITIC_BENCH_HEAD=REV cargo bench --bench
//! review_local` (a bare repository will do: `fetch github:tokio-rs/axum`, then
//! `axum-v0.7.0`..`axum-v0.8.0` is 354 files and 21,300 changed lines). Runs three times.

#![recursion_limit = "512"]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::llm::{FakeLlm, Reply};

fn main() {
    let Ok(repo) = std::env::var("CRITIC_BENCH_REPO") else {
        eprintln!(
            "set CRITIC_BENCH_REPO (and CRITIC_BENCH_BASE, CRITIC_BENCH_HEAD) to a git repository"
        );
        return;
    };
    let base = std::env::var("CRITIC_BENCH_BASE").unwrap_or_else(|_| "HEAD~1".into());
    let head = std::env::var("CRITIC_BENCH_HEAD").unwrap_or_else(|_| "HEAD".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let llm = rt.block_on(FakeLlm::start());
    llm.respond_with(Reply::finding_on_first_added_line);
    let runs = if std::env::args().any(|a| a == "--bench") {
        3
    } else {
        1
    };
    for run in 1..=runs {
        let started = Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "peak_kb=%M"])
            .arg(env!("CARGO_BIN_EXE_critic"))
            .args([
                "review", &repo, "--base", &base, "--head", &head, "--format", "json",
            ])
            .env("CRITIC_LLM__BASE_URL", llm.url())
            .env("CRITIC_LLM__MODEL", "fake-model")
            .env("CRITIC_LLM__API_KEY", "sk-bench")
            .output()
            .expect("run critic under /usr/bin/time");
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak_kb: f64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("peak_kb="))
            .and_then(|kb| kb.trim().parse().ok())
            .unwrap_or(0.0);
        let status = out.status.code().unwrap_or(-1);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let requests = llm.received().len();
        println!(
            "run {run}: exit {status}, {:.2} s, peak RSS {:.1} MB, {} files, {} findings, {} model requests so far, {} input tokens",
            elapsed.as_secs_f64(),
            peak_kb / 1024.0,
            report["files"],
            report["findings"].as_array().map_or(0, Vec::len),
            requests,
            report["usage"]["input"],
        );
    }
}
