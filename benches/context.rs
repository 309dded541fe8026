//! Building the context for a very large PR: 3,000 files and 100,000 changed lines, file
//! contents served from memory. Targets: under 1 s wall, under 300 MB peak memory.
//!
//! `cargo bench --bench context` — criterion reports the time of one whole build (choose the
//! files worth fetching, then filter, number, redact, add scopes, count tokens, plan chunks);
//! the peak RSS of the process is printed at the end.

use std::collections::HashMap;
use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use critic::context::assemble::{
    ChangedFileInput, ContextSettings, FetchCandidate, assemble, files_to_fetch,
};
use critic::context::budget::Tokenizer;
use critic::context::filter::FileFilter;
use critic::diff::FilePatch;
use critic::domain::FileStatus;

const FILES: usize = 3_000;
const CHANGED_LINES: usize = 100_000;

/// One synthetic Rust file of ~120 lines with two changed regions, and its patch.
fn file(i: usize, changed: usize) -> (String, String, String) {
    let path = format!("crates/part{}/src/module_{i}.rs", i % 40);
    let mut head = String::new();
    for f in 0..8 {
        let _ = writeln!(head, "/// Computes step {f} of module {i}.");
        let _ = writeln!(head, "pub fn step_{f}(input: &[u64]) -> u64 {{");
        for l in 0..12 {
            let _ = writeln!(
                head,
                "    let v{l} = input.iter().map(|x| x * {l} + {f}).sum::<u64>();"
            );
        }
        let _ = writeln!(head, "    v0 + v11\n}}\n");
    }
    // Added lines replace lines inside step_2 and step_5: half the change in each hunk.
    let half = changed / 2;
    let mut patch = String::new();
    for (start, n) in [(35u32, half), (80u32, changed - half)] {
        let _ = writeln!(
            patch,
            "@@ -{start},{} +{start},{} @@ pub fn step() {{",
            n + 2,
            n + 2
        );
        let _ = writeln!(patch, "     let a = 1;");
        for k in 0..n {
            let _ = writeln!(patch, "+    let changed_{k} = compute(input, {k}) + 1;");
        }
        for k in 0..n {
            let _ = writeln!(patch, "-    let old_{k} = compute(input, {k});");
        }
        let _ = writeln!(patch, "     let b = 2;");
    }
    (path, patch.trim_end().to_string(), head)
}

fn build(c: &mut Criterion) {
    let per_file = CHANGED_LINES.div_ceil(FILES * 2); // added and removed lines both count
    let files: Vec<(String, String, String)> =
        (0..FILES).map(|i| file(i, per_file.max(1))).collect();
    let patches: Vec<FilePatch> = files
        .iter()
        .map(|(_, p, _)| FilePatch::parse(p).expect("patch"))
        .collect();
    let contents: HashMap<&str, &[u8]> = files
        .iter()
        .map(|(p, _, h)| (p.as_str(), h.as_bytes()))
        .collect();
    let changed: usize = patches
        .iter()
        .flat_map(|p| &p.hunks)
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind != critic::diff::LineKind::Context)
        .count();
    println!(
        "synthetic PR: {} files, {changed} changed lines",
        files.len()
    );
    let settings = ContextSettings {
        budget_tokens: 12_000,
        max_chunks: 4,
        extra_lines: 3,
        max_scope_lines: 200,
    };
    let filter = FileFilter::default();
    let tokenizer = Tokenizer::for_model("gpt-4o");

    let mut group = c.benchmark_group("context");
    group.sample_size(10);
    group.bench_function("3000 files, 100k changed lines", |b| {
        b.iter(|| {
            let fetch = files_to_fetch(
                files.iter().map(|(p, patch, _)| FetchCandidate {
                    path: p,
                    status: FileStatus::Modified,
                    patch_bytes: Some(patch.len()),
                    changed_lines: (per_file * 2) as u64,
                }),
                &filter,
                settings.budget_tokens * settings.max_chunks,
            );
            let fetched: HashMap<&str, &[u8]> = fetch
                .iter()
                .filter_map(|p| contents.get_key_value(p.as_str()).map(|(k, v)| (*k, *v)))
                .collect();
            let inputs: Vec<ChangedFileInput<'_>> = files
                .iter()
                .zip(&patches)
                .map(|((p, _, _), patch)| ChangedFileInput {
                    path: p,
                    status: FileStatus::Modified,
                    previous_path: None,
                    patch: Some(patch),
                    changed_lines: (per_file * 2) as u64,
                    head: fetched.get(p.as_str()).copied(),
                })
                .collect();
            black_box(assemble(&inputs, &filter, &settings, tokenizer))
        })
    });
    group.finish();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        println!(
            "peak memory of the benchmark process: {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}

criterion_group!(benches, build);
criterion_main!(benches);
