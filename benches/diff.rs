//! Diff parsing throughput on the largest real diff (`jq-1.5..1.7.diff`, 6.9 MB, 320 files,
//! in the test data's `diffs/`: `CRITIC_TEST_DATA`, else `../shared/data`): the target is at
//! least 200 MB/s on one core.
//!
//! `cargo bench --bench diff` — criterion reports the throughput in bytes per second. Also
//! measured: the GitHub-`patch` path (the text model) and the numbered form of the prompt.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use critic::diff::{FilePatch, parse_diff};

// Where the tests find the real diffs (`CRITIC_TEST_DATA`, else `../shared/data`).
#[path = "../src/test_env.rs"]
#[allow(dead_code)]
mod test_env;

fn jq_diff() -> Vec<u8> {
    let path = test_env::required_data("diffs").join("jq-1.5..1.7.diff");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parsing(c: &mut Criterion) {
    let input = jq_diff();
    let files = parse_diff(&input).expect("the jq diff parses");
    // Each file's hunks as GitHub's `patch` field would hold them.
    let patches: Vec<String> = files
        .iter()
        .filter(|f| !f.patch.is_empty())
        .map(|f| String::from_utf8_lossy(f.patch.as_bytes()).into_owned())
        .collect();
    let patch_bytes: usize = patches.iter().map(String::len).sum();

    let mut group = c.benchmark_group("jq-1.5..1.7");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("parse_diff", |b| {
        b.iter(|| parse_diff(black_box(&input)).map(|f| f.len()))
    });
    group.throughput(Throughput::Bytes(patch_bytes as u64));
    group.bench_function("FilePatch::parse, every file", |b| {
        b.iter(|| {
            patches
                .iter()
                .map(|p| FilePatch::parse(black_box(p)).map_or(0, |p| p.hunks.len()))
                .sum::<usize>()
        })
    });
    group.bench_function("numbered form, every file", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|f| black_box(f.patch.numbered()).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
