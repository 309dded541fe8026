//! Load benchmark: signed deliveries to a running `critic serve` (the release binary), with
//! the fake GitHub and fake model in this process so the workers really run.
//!
//! `cargo bench --bench load` — prints throughput, p50/p99 acknowledgement latency, RSS idle
//! and under load, and the time Critic itself adds to one review. Loopback only; bounded in
//! count and time. Without `--bench` (as under `cargo test --benches`) it runs a tiny smoke.

#![recursion_limit = "512"]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Stdio;

use axum::body::Bytes;
use critic::domain::JobState;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::app::{INSTALLATION, REPO, SECRET, World, payload, signature};
use support::github::{PullFile, PullRequest, scenario_dirs};
use support::llm::Reply;

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time the process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn pr_event(number: u64, head_sha: &str) -> serde_json::Value {
    let mut v = payload("pull_request.opened.2.json");
    v["number"] = number.into();
    v["pull_request"]["number"] = number.into();
    v["pull_request"]["head"]["sha"] = head_sha.into();
    v["repository"]["full_name"] = REPO.into();
    v["installation"]["id"] = INSTALLATION.into();
    v
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scenarios = support::test_env::required_data("scenarios");
    let (deliveries, concurrency, prs) = if full {
        (20_000usize, 8usize, 200u64)
    } else {
        (200, 4, 10)
    };
    // The open-loop phase: this many deliveries at `rate` per second.
    let (rate, rate_count) = if full {
        (2_000u32, 10_000usize)
    } else {
        (200, 100)
    };

    let world = World::new().await;
    world
        .llm
        .respond_with(|_| Reply::findings(serde_json::json!([])));
    let patch = "@@ -1,3 +1,4 @@\n a\n+b\n c\n d";
    for n in 1..=prs {
        world.github.add_pull(
            REPO,
            PullRequest {
                number: n,
                head_sha: format!("{n:0>40}"),
                ..Default::default()
            },
        );
        world
            .github
            .set_pull_files(REPO, n, vec![PullFile::from_patch("src/lib.rs", patch)]);
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // Critic's defaults, coalescing window included, unless this process's environment sets
    // them: any `CRITIC_...` setting given to the benchmark goes to the server (not the
    // benchmark's own `CRITIC_BENCH_...`, nor `CRITIC_TEST_...` and `CRITIC_LOG`)
    // (`CRITIC_REVIEW__COALESCE_SECS=0` reviews every delivery's job at once).
    let coalesce = "CRITIC_REVIEW__COALESCE_SECS";
    let mut options = world
        .options()
        .set("CRITIC_SERVER__LISTEN", &format!("127.0.0.1:{port}"))
        .unset(coalesce);
    for (key, value) in std::env::vars() {
        let ours = ["CRITIC_BENCH_", "CRITIC_TEST_", "CRITIC_LOG"];
        if key.starts_with("CRITIC_") && !ours.iter().any(|p| key.starts_with(p)) {
            options = options.set(&key, &value);
        }
    }
    let mut env = options.env;
    // `CRITIC_BENCH_LOG=critic=debug` shows the server's own logs (timings of each review).
    let log = std::env::var("CRITIC_BENCH_LOG").ok();
    let show_log = log.is_some();
    env.push(("CRITIC_LOG".into(), log.unwrap_or_else(|| "error".into())));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("serve")
        .env_clear()
        .envs(env)
        .stdout(if show_log {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn critic");
    let pid = child.id().expect("pid");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let started = Instant::now();
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "critic did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kb(pid, "VmRSS:");

    // Bodies are signed ahead of time so the client measures Critic, not its own HMAC.
    let total = deliveries + rate_count;
    let bodies: Arc<Vec<(String, Bytes, String)>> = Arc::new(
        (0..total)
            .map(|i| {
                let n = (i as u64 % prs) + 1;
                let body = serde_json::to_vec(&pr_event(n, &format!("{n:0>40}"))).expect("json");
                let sig = signature(SECRET, &body);
                (format!("load-{i}"), Bytes::from(body), sig)
            })
            .collect(),
    );
    let perf = std::env::var_os("CRITIC_BENCH_PERF").map(|out| {
        std::process::Command::new("perf")
            .args(["record", "-g", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf")
    });

    // Phase 1, throughput: `concurrency` connections send back to back.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_time(pid);
    let load_start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, bodies, next) = (http.clone(), base.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= deliveries {
                    break;
                }
                let (id, body, sig) = &bodies[i];
                let t = Instant::now();
                send(&http, &base, id, body, sig).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = load_start.elapsed();
    let server_cpu = cpu_time(pid) - cpu_before;
    lat.sort();
    let throughput = deliveries as f64 / elapsed.as_secs_f64();

    // Phase 2, latency at a fixed rate: one delivery every 1/rate s whatever the answers do
    // (open loop), timed from its scheduled start.
    // The schedule is kept by a thread of its own with the OS's microsecond sleeps: tokio's
    // timer wheel has a 1 ms resolution, so a 0.5 ms interval on it would start most sends up
    // to a millisecond late and count the client's own lag as Critic's.
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let rate_start = Instant::now();
    let runtime = tokio::runtime::Handle::current();
    let scheduler = {
        let (http, base, bodies) = (http.clone(), base.clone(), bodies.clone());
        std::thread::spawn(move || {
            let mut sends = Vec::with_capacity(rate_count);
            for (k, i) in (deliveries..total).enumerate() {
                let scheduled = rate_start + period * k as u32;
                if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (http, base, bodies) = (http.clone(), base.clone(), bodies.clone());
                sends.push(runtime.spawn(async move {
                    let (id, body, sig) = &bodies[i];
                    send(&http, &base, id, body, sig).await;
                    scheduled.elapsed()
                }));
            }
            sends
        })
    };
    let sends = tokio::task::spawn_blocking(move || scheduler.join().expect("scheduler"))
        .await
        .expect("scheduler");
    let mut rate_lat = Vec::with_capacity(rate_count);
    for t in sends {
        rate_lat.push(t.await.expect("send"));
    }
    let rate_elapsed = rate_start.elapsed();
    // `CRITIC_BENCH_TIMELINE=1` names the 50 ms stretches of the fixed-rate phase in which
    // some delivery took over 5 ms: whether slow answers come alone or in clusters (a stall).
    if std::env::var_os("CRITIC_BENCH_TIMELINE").is_some() {
        let per_bucket = (rate / 20).max(1) as usize;
        for (b, chunk) in rate_lat.chunks(per_bucket).enumerate() {
            let slow = chunk.iter().filter(|d| d.as_micros() > 5000).count();
            if slow > 0 {
                let max = chunk.iter().max().copied().unwrap_or_default();
                eprintln!(
                    "at {:>5} ms: {slow} over 5 ms, the slowest {:.2} ms",
                    b * 50,
                    ms(max)
                );
            }
        }
    }
    rate_lat.sort();
    if let Some(perf) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait_with_output();
    }
    let load_rss = rss_kb(pid, "VmHWM:");

    // Let the workers finish the load's jobs so the next phase measures one review alone.
    let store = critic::store::Store::connect(&world.db_url())
        .await
        .expect("store");
    let drain_start = Instant::now();
    loop {
        let jobs = store.jobs().await.expect("jobs");
        if jobs.iter().all(|j| j.state.is_final()) {
            break;
        }
        assert!(
            drain_start.elapsed() < Duration::from_secs(300),
            "queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = drain_start.elapsed();
    let jobs = store.jobs().await.expect("jobs");
    let ran = jobs.iter().filter(|j| j.state == JobState::Done).count();
    let rows = jobs.len();

    // The time Critic adds to one review: deliveries one at a time, fakes answering at once,
    // from the delivery sent to the run's summary comment stored by the fake GitHub (the
    // last thing a run writes: settings, check run, review and summary are all in).
    let dirs = scenario_dirs(&scenarios);
    let sample: Vec<_> = dirs.iter().take(if full { 40 } else { 3 }).collect();
    let mut review_times = Vec::new();
    let mut slowest = Vec::new();
    for (i, dir) in sample.iter().enumerate() {
        let number = 10_000 + i as u64;
        let s = world.github.load_scenario(dir, REPO, number, INSTALLATION);
        let body = serde_json::to_vec(&pr_event(number, &s.head_sha)).expect("json");
        let sig = signature(SECRET, &body);
        let t = Instant::now();
        let resp = http
            .post(format!("{base}/webhook"))
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", format!("review-{i}"))
            .header("x-hub-signature-256", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("deliver");
        assert_eq!(resp.status(), 202);
        world
            .github
            .wait_for_summary(REPO, number, &s.head_sha, Duration::from_secs(120))
            .await;
        review_times.push(t.elapsed());
        slowest.push((t.elapsed(), s.name.clone(), s.files.len()));
    }
    review_times.sort();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(40), child.wait()).await;

    println!(
        "deliveries: {deliveries} over {concurrency} connections in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!("throughput: {throughput:.0} deliveries/s acknowledged");
    println!(
        "ack latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 1.0))
    );
    println!(
        "at a fixed {rate}/s ({rate_count} deliveries, {:.0}/s achieved): ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rate_count as f64 / rate_elapsed.as_secs_f64(),
        ms(percentile(&rate_lat, 0.50)),
        ms(percentile(&rate_lat, 0.99)),
        ms(percentile(&rate_lat, 1.0))
    );
    println!(
        "critic's CPU during the load: {:.2} s ({:.0} µs per delivery, workers included)",
        server_cpu.as_secs_f64(),
        server_cpu.as_secs_f64() * 1e6 / deliveries as f64
    );
    println!(
        "queue drained {:.2} s after the last acknowledgement; review jobs run {ran} (rows in the queue {rows}) for {total} deliveries",
        drained_in.as_secs_f64()
    );
    println!(
        "rss: idle {:.1} MB, peak under load {:.1} MB",
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0
    );
    println!(
        "review overhead (delivery -> summary posted, fakes answer at once, {} real PRs): p50 {:.1} ms, p99 {:.1} ms",
        review_times.len(),
        ms(percentile(&review_times, 0.5)),
        ms(percentile(&review_times, 0.99))
    );
    for (took, name, files) in slowest.iter().take(3) {
        println!("  slowest: {name} ({files} files) {:.1} ms", ms(*took));
    }
}

async fn send(http: &reqwest::Client, base: &str, id: &str, body: &Bytes, sig: &str) {
    let resp = http
        .post(format!("{base}/webhook"))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sig)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("deliver");
    assert_eq!(resp.status(), 202);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
