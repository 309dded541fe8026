//! Tests on the real diffs of the test data (`crate::test_env`; read in place, never copied):
//! skipped, and saying so, on a machine without them.

use std::path::{Path, PathBuf};

use super::*;

/// The real diffs' folder, or `None`: the test is skipped.
fn diffs() -> Option<PathBuf> {
    crate::test_env::data("diffs")
}

fn read(diffs: &Path, name: &str) -> Vec<u8> {
    let path = diffs.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const AXUM: &str = "axum-v0.4.0..v0.8.0.diff";
const FMT: &str = "fmt-7.0.0..9.1.0.diff";
const JQ: &str = "jq-1.5..1.7.diff";

/// What the README and `grep` say each real diff holds.
struct Expected {
    name: &'static str,
    files: usize,
    added: usize,
    deleted: usize,
    renamed: usize,
    binary: usize,
    no_newline: usize,
}

const EXPECTED: [Expected; 3] = [
    Expected {
        name: AXUM,
        files: 515,
        added: 312,
        deleted: 40,
        renamed: 16,
        binary: 1,
        no_newline: 2,
    },
    Expected {
        name: FMT,
        files: 131,
        added: 41,
        deleted: 24,
        renamed: 2,
        binary: 0,
        no_newline: 0,
    },
    Expected {
        name: JQ,
        files: 320,
        added: 193,
        deleted: 63,
        renamed: 36,
        binary: 5,
        no_newline: 7,
    },
];

fn count(files: &[FileDiff], status: FileStatus) -> usize {
    files.iter().filter(|f| f.status == status).count()
}

#[test]
fn real_diffs_have_their_files_statuses_and_hunks() {
    let Some(diffs) = diffs() else { return };
    for e in &EXPECTED {
        let input = read(&diffs, e.name);
        let files = parse_diff(&input).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(files.len(), e.files, "{}", e.name);
        assert_eq!(count(&files, FileStatus::Added), e.added, "{}", e.name);
        assert_eq!(count(&files, FileStatus::Deleted), e.deleted, "{}", e.name);
        assert_eq!(count(&files, FileStatus::Renamed), e.renamed, "{}", e.name);
        assert_eq!(count(&files, FileStatus::Copied), 0, "{}", e.name);
        let modified = e.files - e.added - e.deleted - e.renamed;
        assert_eq!(count(&files, FileStatus::Modified), modified, "{}", e.name);
        let binary = files.iter().filter(|f| f.binary.is_some()).count();
        assert_eq!(binary, e.binary, "{}", e.name);

        // Hunk headers are the only lines that start with `@@`: hunk lines start with ` `,
        // `+`, `-` or `\`.
        let headers = input
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"@@ -"))
            .count();
        let hunks: usize = files.iter().map(|f| f.patch.hunks().len()).sum();
        assert_eq!(hunks, headers, "{}", e.name);

        let mut no_newline = 0;
        for f in &files {
            for h in f.patch.hunks() {
                let lines = f.patch.lines(h);
                let old: Vec<u32> = lines.iter().filter_map(|l| l.old).collect();
                let new: Vec<u32> = lines.iter().filter_map(|l| l.new).collect();
                let old_expected: Vec<u32> = (h.old_start..h.old_start + h.old_len).collect();
                let new_expected: Vec<u32> = (h.new_start..h.new_start + h.new_len).collect();
                assert_eq!(old, old_expected, "{} {}", e.name, f.path);
                assert_eq!(new, new_expected, "{} {}", e.name, f.path);
                no_newline += lines.iter().filter(|l| l.no_newline).count();
            }
            if f.binary.is_some() {
                assert!(f.patch.is_empty(), "{}", f.path);
            }
        }
        assert_eq!(no_newline, e.no_newline, "{}", e.name);
    }
}

#[test]
fn jq_renames_binaries_and_crlf() {
    let Some(diffs) = diffs() else { return };
    let files = parse_diff(&read(&diffs, JQ)).expect("parses");
    let find = |path: &str| {
        files
            .iter()
            .find(|f| f.path.as_bytes() == path.as_bytes())
            .unwrap_or_else(|| panic!("{path} is in the diff"))
    };

    let pure = find("src/bytecode.c");
    assert_eq!(pure.status, FileStatus::Renamed);
    assert_eq!(
        pure.previous_path.as_ref().map(|p| p.to_string()),
        Some("bytecode.c".into())
    );
    assert_eq!(pure.similarity, Some(100));
    assert!(pure.patch.is_empty());

    let changed = find("src/bytecode.h");
    assert_eq!(changed.similarity, Some(96));
    assert!(!changed.patch.is_empty());

    let pdf = find("src/decNumber/decnumber.pdf");
    assert_eq!(
        (pdf.status, pdf.binary),
        (FileStatus::Added, Some(Binary::Differs))
    );

    // CRLF files: the `\r` is content in the bytes and gone from the text.
    let crlf: Vec<&RawLine> = files
        .iter()
        .flat_map(|f| f.patch.all_lines().iter().map(move |l| (f, l)))
        .filter(|(f, l)| f.patch.bytes(l).ends_with(b"\r"))
        .map(|(_, l)| l)
        .collect();
    assert!(crlf.len() > 10_000, "{}", crlf.len());
    let with_crlf = files
        .iter()
        .find(|f| {
            f.patch
                .all_lines()
                .iter()
                .any(|l| f.patch.bytes(l).ends_with(b"\r"))
        })
        .expect("a CRLF file");
    let p = with_crlf.file_patch();
    assert!(
        p.hunks
            .iter()
            .flat_map(|h| &h.lines)
            .all(|l| !l.text.ends_with('\r'))
    );
}

#[test]
fn file_patches_from_a_whole_diff_answer_like_github_patches() {
    let Some(diffs) = diffs() else { return };
    let input = read(&diffs, AXUM);
    let files = parse_diff(&input).expect("parses");
    for f in files.iter().filter(|f| !f.patch.is_empty()) {
        // GitHub's `patch` field is the hunks' text: the same model either way.
        let text = String::from_utf8(f.patch.as_bytes().to_vec()).expect("axum is UTF-8");
        let github = FilePatch::parse(&text).expect("parses");
        assert_eq!(github, f.file_patch(), "{}", f.path);
        assert_eq!(github.numbered(), f.patch.numbered(), "{}", f.path);
        for (i, h) in f.patch.hunks().iter().enumerate() {
            assert_eq!(github.hunk_of(Side::Right, h.new_start + h.new_len / 2), {
                if h.new_len > 0 { Some(i) } else { None }
            });
            assert_eq!(
                f.patch.hunk_of(Side::Left, h.old_start),
                (h.old_len > 0).then_some(i)
            );
        }
    }
}

/// What the prompt shows for a file: the header line the review template writes, then the
/// numbered hunks.
fn prompt_form(files: &[FileDiff]) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&format!("## {} ({})\n", f.path, f.status.as_str()));
        if f.patch.is_empty() {
            out.push_str("(no textual diff)\n");
        } else {
            out.push_str(&f.patch.numbered());
        }
    }
    out
}

/// Numbers cost tokens; the budget is 1.3 times the raw diff (o200k, as the models in use
/// count them).
#[test]
fn numbered_form_costs_at_most_1_3x_the_raw_diff() {
    let Some(diffs) = diffs() else { return };
    let bpe = tiktoken_rs::o200k_base().expect("o200k_base loads");
    let ratios: Vec<(&str, usize, usize)> = std::thread::scope(|s| {
        let jobs: Vec<_> = [AXUM, FMT, JQ]
            .into_iter()
            .map(|name| {
                let (bpe, diffs) = (&bpe, &diffs);
                s.spawn(move || {
                    let input = read(diffs, name);
                    let files = parse_diff(&input).expect("parses");
                    let raw = bpe.encode_ordinary(&String::from_utf8_lossy(&input)).len();
                    let numbered = bpe.encode_ordinary(&prompt_form(&files)).len();
                    (name, raw, numbered)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("tokenizer thread"))
            .collect()
    });
    for (name, raw, numbered) in ratios {
        let ratio = numbered as f64 / raw as f64;
        println!("{name}: raw {raw} tokens, numbered {numbered} tokens, {ratio:.3}x");
        assert!(ratio <= 1.3, "{name}: {ratio:.3}x");
        assert!(ratio > 0.8, "{name}: {ratio:.3}x: lines went missing");
    }
}

/// Inputs built to make a careless parser quadratic: each is megabytes, so anything worse
/// than linear takes minutes; a linear parser takes a fraction of a second even unoptimised.
#[test]
fn pathological_inputs_take_linear_time() {
    const N: usize = 400_000;
    let mut big = b"@@ -1,1000000 +1,1000000 @@\n".to_vec();
    big.extend(b" x\n".repeat(1_000_000));
    let inputs: [(&str, Vec<u8>); 8] = [
        // Many spaces and slashes in one `diff --git` line: the name split.
        (
            "spaces",
            [b"diff --git a/x".as_slice(), &b" /x".repeat(N)].concat(),
        ),
        // An unterminated quoted name.
        (
            "quote",
            [b"diff --git \"a/".as_slice(), &b"\\303".repeat(N)].concat(),
        ),
        // An unquoted name followed by many quotes.
        (
            "quotes",
            [b"diff --git a/x ".as_slice(), &b"\"b ".repeat(N), b"\""].concat(),
        ),
        // Lines that each start a plain diff's lookahead.
        ("minus", b"--- x\n+++ y\n".repeat(N)),
        // One hunk of a million lines, then many empty hunks.
        ("hunk", big),
        ("hunks", b"@@ -0,0 +0,0 @@\n".repeat(N)),
        // Markers without lines, header lines without files.
        (
            "markers",
            [b"@@ -1 +1 @@\n".as_slice(), &b"\\ x\n".repeat(N), b" x\n"].concat(),
        ),
        (
            "headers",
            [
                b"diff --git a/x b/x\n".as_slice(),
                &b"index 1..2\n".repeat(N),
            ]
            .concat(),
        ),
    ];
    for (name, input) in &inputs {
        let started = std::time::Instant::now();
        let _ = parse_diff(input);
        let _ = RawPatch::parse(input);
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(5),
            "{name}: {} bytes took {took:?}",
            input.len()
        );
    }
}
