//! Finding quoted code in a patch. Models often cite a line a few off from the code they
//! quote; the quote is the better witness, so the poster can move the finding to it.

use super::{FilePatch, LineKind, Side};

/// Where a quoted snippet sits: right-side (new-file) lines `start..=end`, all in one hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnippetMatch {
    pub hunk: usize,
    pub start: u32,
    pub end: u32,
    /// Every line matched whole; otherwise the first and last lines of the snippet were
    /// parts of lines (the end of the first line, the start of the last, or a piece of one).
    pub exact: bool,
}

impl SnippetMatch {
    /// The side the lines are on: quotes are looked for among the lines the model may cite.
    pub fn side(&self) -> Side {
        Side::Right
    }
}

/// A one-line quote with fewer non-space characters than this matches too much when taken as
/// a piece of a line.
const MIN_PARTIAL: usize = 4;

pub(super) fn find(patch: &FilePatch, snippet: &str, near: Option<u32>) -> Option<SnippetMatch> {
    let lines: Vec<&str> = snippet.lines().filter(|l| !l.trim().is_empty()).collect();
    // A quote copied from the numbered form (`   12 +code`) is looked for without its numbers
    // first, when every line has one; code that merely starts with a number still matches
    // as it is.
    let unnumbered: Option<Vec<&str>> = lines.iter().map(|l| strip_number(l)).collect();
    unnumbered
        .and_then(|u| find_keys(patch, &keys(&u), near))
        .or_else(|| find_keys(patch, &keys(&lines), near))
}

fn find_keys(patch: &FilePatch, wanted: &[String], near: Option<u32>) -> Option<SnippetMatch> {
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(SnippetMatch, u32)> = None;
    for (hunk_index, hunk) in patch.hunks.iter().enumerate() {
        // The lines the model may cite, blank ones left out on both sides.
        let shown: Vec<(u32, String)> = hunk
            .lines
            .iter()
            .filter(|l| l.kind != LineKind::Removed)
            .filter_map(|l| Some((l.new?, squeeze(&l.text))))
            .filter(|(_, key)| !key.is_empty())
            .collect();
        for window in shown.windows(wanted.len()) {
            let Some(exact) = matches(window, wanted) else {
                continue;
            };
            let (start, end) = (window[0].0, window[window.len() - 1].0);
            let distance = near.map_or(0, |n| {
                if n < start {
                    start - n
                } else {
                    n.saturating_sub(end)
                }
            });
            let found = SnippetMatch {
                hunk: hunk_index,
                start,
                end,
                exact,
            };
            let better = match &best {
                None => true,
                Some((b, d)) => {
                    (exact, std::cmp::Reverse(distance)) > (b.exact, std::cmp::Reverse(*d))
                }
            };
            if better {
                best = Some((found, distance));
            }
        }
    }
    best.map(|(m, _)| m)
}

/// Whether the hunk lines in `window` hold the snippet: `Some(true)` line for line,
/// `Some(false)` with a partial first or last line, `None` not at all.
fn matches(window: &[(u32, String)], wanted: &[String]) -> Option<bool> {
    let last = wanted.len() - 1;
    let mut exact = true;
    for (i, ((_, line), want)) in window.iter().zip(wanted).enumerate() {
        if line == want {
            continue;
        }
        let partial = match (i == 0, i == last) {
            (true, true) => want.chars().count() >= MIN_PARTIAL && line.contains(want.as_str()),
            (true, false) => line.ends_with(want.as_str()),
            (false, true) => line.starts_with(want.as_str()),
            (false, false) => false,
        };
        if !partial {
            return None;
        }
        exact = false;
    }
    Some(exact)
}

/// The lines without whitespace, blank ones dropped.
fn keys(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| squeeze(l))
        .filter(|k| !k.is_empty())
        .collect()
}

/// `   12 +code` or `   12  code` → `code`.
fn strip_number(line: &str) -> Option<&str> {
    let rest = line.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = rest[digits..].strip_prefix(' ')?;
    rest.strip_prefix('+').or_else(|| rest.strip_prefix(' '))
}

/// The text without any whitespace: quotes differ from the code in indentation and spacing.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "@@ -1,5 +1,7 @@ fn main()\n fn main() {\n-    let x = 1;\n+    let x = compute(1,\n+        2);\n     let y = x / 0;\n+    println!(\"{y}\");\n \n     done();\n@@ -40,2 +42,2 @@\n     let y = x / 0;\n-    old();\n+    new();\n";

    fn patch() -> FilePatch {
        FilePatch::parse(PATCH).expect("parse")
    }

    #[test]
    fn finds_a_line_whatever_its_spacing() {
        let m = patch().find_snippet("let y = x/0;", None).expect("found");
        assert_eq!((m.hunk, m.start, m.end, m.exact), (0, 4, 4, true));
    }

    #[test]
    fn prefers_the_match_nearest_the_cited_line() {
        let m = patch()
            .find_snippet("let y = x / 0;", Some(40))
            .expect("found");
        assert_eq!((m.hunk, m.start), (1, 42));
        let m = patch()
            .find_snippet("let y = x / 0;", Some(6))
            .expect("found");
        assert_eq!((m.hunk, m.start), (0, 4));
    }

    #[test]
    fn multi_line_snippets_skip_removed_and_blank_lines() {
        let m = patch()
            .find_snippet("fn main() {\n  let x = compute(1,\n 2);\n", None)
            .expect("found");
        assert_eq!((m.start, m.end, m.exact), (1, 3, true));
        let m = patch()
            .find_snippet("println!(\"{y}\");\n\ndone();", None)
            .expect("found");
        assert_eq!((m.start, m.end), (5, 7));
    }

    #[test]
    fn partial_first_and_last_lines() {
        let m = patch()
            .find_snippet("compute(1,\n        2", None)
            .expect("found");
        assert_eq!((m.start, m.end, m.exact), (2, 3, false));
        let m = patch().find_snippet("= x / 0", Some(1)).expect("found");
        assert_eq!((m.start, m.exact), (4, false));
    }

    #[test]
    fn quotes_from_the_numbered_form_lose_their_numbers() {
        let m = patch()
            .find_snippet("    2 +    let x = compute(1,\n    3 +        2);", None)
            .expect("found");
        assert_eq!((m.start, m.end), (2, 3));
        let code = FilePatch::parse("@@ -1 +1 @@\n-1 + 2\n+1 + 2 + 3\n").expect("parse");
        let m = code.find_snippet("1 + 2 + 3", None).expect("found");
        assert_eq!(
            (m.start, m.exact),
            (1, true),
            "a number that is code is kept"
        );
    }

    #[test]
    fn removed_code_and_short_fragments_are_not_found() {
        assert_eq!(patch().find_snippet("let x = 1;", None), None);
        assert_eq!(patch().find_snippet("old();", None), None);
        assert_eq!(patch().find_snippet("x", None), None);
        assert_eq!(patch().find_snippet("  \n ", None), None);
    }
}
