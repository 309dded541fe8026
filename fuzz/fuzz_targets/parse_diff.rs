//! Fuzzes Critic's diff parser: no input may panic it, take more than linear time, or yield
//! hunks whose lines disagree with their headers.
//!
//! ```sh
//! cargo install cargo-fuzz
//! mkdir -p fuzz/corpus/parse_diff
//! for d in ../shared/data/scenarios/*/; do cp "$d/pr.diff" "fuzz/corpus/parse_diff/$(basename "$d")"; done
//! RUSTC_BOOTSTRAP=1 cargo fuzz run parse_diff -- -dict=fuzz/parse_diff.dict -timeout=5
//! ```
//!
//! `RUSTC_BOOTSTRAP=1` lets the stable toolchain accept the nightly flags cargo-fuzz passes
//! (`-Zsanitizer=address`). A slow input shows as a libFuzzer timeout.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The module is compiled here on its own (it depends only on serde and thiserror), so the
// fuzz build does not instrument the whole of Critic (sqlx, octocrab, tree-sitter...).
#[path = "../../src/diff/mod.rs"]
#[allow(dead_code, unused_imports)]
mod diff;

use diff::{FilePatch, LineKind, RawPatch, Side, parse_diff};

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = parse_diff(data) {
        for f in &files {
            check(&f.patch);
            assert!(!f.path.as_bytes().is_empty());
            if f.binary.is_some() {
                assert!(f.patch.is_empty());
            }
        }
    }
    if let Ok(patch) = RawPatch::parse(data) {
        check(&patch);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = FilePatch::parse(text)
    {
        // Quotes taken from the input itself, so that some are found.
        let snippet = text.lines().nth(2).unwrap_or("x");
        if let Some(m) = p.find_snippet(snippet, Some(3)) {
            assert!(m.start <= m.end);
            assert!(p.hunks[m.hunk].shows(Side::Right, m.start));
            assert!(p.hunks[m.hunk].shows(Side::Right, m.end));
        }
    }
});

/// The parser's promises: each hunk's lines fill exactly its header's ranges, the text model
/// and the numbered form agree, and the queries answer for every shown line.
fn check(patch: &RawPatch) {
    let text = patch.to_file_patch();
    assert_eq!(text.hunks.len(), patch.hunks().len());
    for (i, h) in patch.hunks().iter().enumerate() {
        let lines = patch.lines(h);
        let old: Vec<u32> = lines.iter().filter_map(|l| l.old).collect();
        let new: Vec<u32> = lines.iter().filter_map(|l| l.new).collect();
        assert!(old.iter().copied().eq(h.old_start..h.old_start + h.old_len));
        assert!(new.iter().copied().eq(h.new_start..h.new_start + h.new_len));
        for l in lines {
            assert_eq!(l.old.is_some(), l.kind != LineKind::Added);
            assert_eq!(l.new.is_some(), l.kind != LineKind::Removed);
            if let Some(n) = l.new {
                assert_eq!(text.hunk_of(Side::Right, n), Some(i));
            }
            if let Some(n) = l.old {
                assert_eq!(patch.hunk_of(Side::Left, n), Some(i));
            }
        }
        if h.new_len > 1 {
            let (start, end) = (h.new_start, h.new_start + h.new_len - 1);
            assert!(text.is_commentable_range(Side::Right, start, end));
            assert_eq!(text.clamp_range(Side::Right, 0, end), Some((start, end)));
        }
    }
    assert_eq!(text.numbered(), patch.numbered());
    // Applying to an arbitrary old file may fail, but never panics.
    let _ = patch.apply(patch.as_bytes());
}
