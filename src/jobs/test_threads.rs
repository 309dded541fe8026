//! A suggested test for a test file the pull request changes is offered on that file as a
//! one-click suggestion: right after the last test the pull request wrote there (a function
//! or method ending on a changed line), indented like it, and only when the file still
//! parses with the test in place. Any other test is answered as code to paste, under the
//! path where it belongs.

use std::fmt::Write;

use crate::context::scope::{ScopeKind, ScopeOptions, enclosing_scopes, syntax_errors};
use crate::diff::LineKind;
use crate::domain::Side;
use crate::github::{Installation, NewReview, ReviewComment};
use crate::poster::markdown::fence_for;
use crate::review::PrFile;
use crate::review::source::Source;
use crate::review::tasks::TestSuggestion;

use super::error::JobError;
use super::notes::footer;
use super::plan::PrRef;

/// Tests placed as one suggestion on their test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    pub path: String,
    pub tests: Vec<TestSuggestion>,
    /// The changed line the suggestion replaces (with itself, then the test).
    pub line: u32,
    /// The thread's text: what the test covers, and the suggestion.
    pub comment: String,
}

/// The tests posted as suggestions, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Offered {
    pub placed: Vec<Placed>,
    /// The review holding them.
    pub link: Option<String>,
    /// An earlier attempt at the same request posted the review at `link` (the job was run
    /// again after it): not posted twice, this attempt's tests go as code.
    pub earlier: bool,
}

impl Offered {
    /// The tests placed as suggestions.
    pub fn tests(&self) -> usize {
        self.placed.iter().map(|p| p.tests.len()).sum()
    }
}

/// Where `tests` (all for `file`) can go as one suggestion on `file`, whose text at the pull
/// request's head is `head`; None when no changed line ends a test there, or when the file
/// would not parse with the tests in place (or is in a language Critic cannot parse, so
/// could not check).
pub(super) fn place(tests: &[TestSuggestion], file: &PrFile, head: &str) -> Option<Placed> {
    let patch = file.patch.as_ref()?;
    let path = file.file.filename.as_str();
    let lines: Vec<&str> = head.lines().collect();
    let total = u32::try_from(lines.len()).ok()?.max(1);
    let errors_before = syntax_errors(path, head, 1..=total)?;
    let mut added: Vec<u32> = patch
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind == LineKind::Added)
        .filter_map(|l| l.new)
        .collect();
    added.sort_unstable();
    added.dedup();
    let whole = ScopeOptions {
        extra: 0,
        max_lines: u32::MAX,
    };
    let code: Vec<String> = tests
        .iter()
        .map(|t| insertable(path, &t.code))
        .collect::<Option<_>>()?;
    for &line in added.iter().rev() {
        let Some(scope) = enclosing_scopes(path, head, line..=line, &whole)
            .into_iter()
            .find(|s| s.end == line && matches!(s.kind, ScopeKind::Function | ScopeKind::Method))
        else {
            continue;
        };
        let at = |n: u32| n.checked_sub(1).and_then(|i| lines.get(i as usize));
        let (Some(first), Some(anchor)) = (at(scope.start), at(line)) else {
            continue;
        };
        let text: Vec<&str> = (scope.start..=scope.end).filter_map(at).copied().collect();
        if !is_test(path, &scope.label, &scope.outer, &text) {
            continue;
        }
        let indent: String = first.chars().take_while(|c| c.is_whitespace()).collect();
        // PEP 8 keeps two blank lines between top-level definitions; elsewhere one.
        let gap = if path.ends_with(".py") && indent.is_empty() {
            "\n\n\n"
        } else {
            "\n\n"
        };
        let code = code
            .iter()
            .map(|c| reindent(c, &indent))
            .collect::<Vec<_>>()
            .join(gap);
        if code.trim().is_empty() {
            return None;
        }
        let replacement = format!("{anchor}{gap}{code}");
        let mut with_test: Vec<&str> = lines[..line as usize - 1].to_vec();
        with_test.extend(replacement.lines());
        with_test.extend(&lines[line as usize..]);
        let with_test = with_test.join("\n") + "\n";
        let grown = u32::try_from(replacement.lines().count()).ok()? - 1;
        let new_lines = (line + 1)..=(line + grown);
        if syntax_errors(path, &with_test, new_lines) != Some(0)
            || syntax_errors(path, &with_test, 1..=(total + grown))
                .is_none_or(|n| n > errors_before)
        {
            continue;
        }
        let fence = fence_for(&replacement);
        let named: String = tests
            .iter()
            .map(|t| format!("- **{}**: {}\n", t.name.trim(), t.covers.trim()))
            .collect();
        let comment = format!(
            "Suggested test(s):\n{named}\n{fence}suggestion\n{replacement}\n{fence}\n\n<sub>Added after the test this pull request ends on line {line}; apply as it is or edit first.</sub>"
        );
        return Some(Placed {
            path: path.to_string(),
            tests: tests.to_vec(),
            line,
            comment,
        });
    }
    None
}

/// Whether the function or method `label` (inside `outer`, with its lines `text`) is a test:
/// a test is only put after another test, never after the code it tests (where a Rust
/// `#[test]` in an `impl` would not compile, and a reader would not look for it).
fn is_test(path: &str, label: &str, outer: &[String], text: &[&str]) -> bool {
    let name = label.rsplit(' ').next().unwrap_or(label);
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    let attributes = || {
        text.iter()
            .take_while(|l| !l.contains(name))
            .any(|l| l.trim_start().starts_with("#[") && l.contains("test"))
    };
    match ext {
        // A free function with a test attribute (in a test module or a tests/ file).
        "rs" => {
            label.starts_with("fn ")
                && !outer.iter().any(|o| o.starts_with("impl "))
                && attributes()
        }
        "py" => name.starts_with("test"),
        "go" => label.starts_with("func Test") || label.starts_with("func Benchmark"),
        "java" | "kt" => text.iter().take_while(|l| !l.contains(name)).any(|l| {
            l.trim_start().starts_with("@Test") || l.trim_start().starts_with("@ParameterizedTest")
        }),
        _ => false,
    }
}

/// The test's code as it can go in the middle of its file, or None: a Go package clause is
/// dropped (the file has one), and code that brings imports (Go, Java, Kotlin, JavaScript's
/// `import` or `require`) is not placed, as imports belong at the top of the file.
fn insertable(path: &str, code: &str) -> Option<String> {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    let kept: Vec<&str> = code
        .lines()
        .filter(|l| !(ext == "go" && l.trim_start().starts_with("package ")))
        .collect();
    let imports = kept.iter().any(|l| {
        let t = l.trim_start();
        match ext {
            "go" | "java" | "kt" => t.starts_with("import "),
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" => {
                t.starts_with("import ") || t.contains("require(")
            }
            _ => false,
        }
    });
    (!imports).then(|| kept.join("\n"))
}

/// The code without its common indentation, then indented by `indent` (blank lines left
/// empty).
fn reindent(code: &str, indent: &str) -> String {
    let common = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    code.trim_matches('\n')
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{indent}{}", l.get(common..).unwrap_or(l.trim_start()))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Places the tests of each test file the pull request changes (reading those files at
/// head), all of one file in one suggestion; returns the placed ones and the rest.
pub(super) async fn place_all(
    source: &impl Source,
    files: &[PrFile],
    tests: Vec<TestSuggestion>,
) -> (Vec<Placed>, Vec<TestSuggestion>) {
    let mut by_file: Vec<(&PrFile, Vec<TestSuggestion>)> = Vec::new();
    let mut rest = Vec::new();
    for test in tests {
        match files
            .iter()
            .find(|f| f.file.filename == test.path && f.patch.is_some())
        {
            Some(file) => match by_file.iter_mut().find(|(f, _)| std::ptr::eq(*f, file)) {
                Some((_, group)) => group.push(test),
                None => by_file.push((file, vec![test])),
            },
            None => rest.push(test),
        }
    }
    let mut placed = Vec::new();
    for (file, group) in by_file {
        // A file that cannot be read is no reason to lose the tests: they go as code.
        let head = match source.file(&file.file.filename).await {
            Ok(bytes) => bytes.and_then(|b| String::from_utf8(b).ok()),
            Err(e) => {
                tracing::warn!(error = %e, path = %file.file.filename, "test file not read; its tests go as code");
                None
            }
        };
        match head.and_then(|h| place(&group, file, &h)) {
            Some(p) => placed.push(p),
            None => rest.extend(group),
        }
    }
    (placed, rest)
}

/// Posts the placed tests as one review of suggestions on `head`. A review GitHub refuses
/// (422: a line it will not take) or that cannot be posted is not an error: those tests are
/// then answered as code to paste, returned as the second value.
///
/// `request` names what asked (a command's key, or the first review): a review this request
/// posted already, before its job was run again, is not posted twice.
pub(super) async fn offer(
    gh: &Installation,
    pr: PrRef<'_>,
    head: &str,
    placed: Vec<Placed>,
    (request, bot): (&str, &str),
) -> Result<(Offered, Vec<TestSuggestion>), JobError> {
    if placed.is_empty() {
        return Ok((Offered::default(), Vec::new()));
    }
    let marker = format!("<!-- critic:tests {request} -->");
    let earlier = gh
        .reviews(pr.repo, pr.number)
        .await
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|r| {
            r.user.as_ref().is_some_and(|u| u.login == bot)
                && r.body.as_deref().is_some_and(|b| b.contains(&marker))
        });
    if let Some(r) = earlier {
        return Ok((
            Offered {
                placed: Vec::new(),
                link: r.html_url,
                earlier: true,
            },
            placed.into_iter().flat_map(|p| p.tests).collect(),
        ));
    }
    let comments = placed
        .iter()
        .map(|p| ReviewComment {
            path: p.path.clone(),
            line: p.line,
            side: Side::Right,
            start_line: None,
            start_side: None,
            body: p.comment.clone(),
        })
        .collect();
    let review = NewReview::comment(
        head.to_string(),
        format!(
            "{marker}\nCritic suggests {} test(s) in the test files this pull request changes, ready to apply.",
            placed.iter().map(|p| p.tests.len()).sum::<usize>()
        ),
        comments,
    );
    match gh.create_review(pr.repo, pr.number, &review).await {
        Ok(r) => Ok((
            Offered {
                placed,
                link: r.html_url,
                earlier: false,
            },
            Vec::new(),
        )),
        // Refused (422) or failed: the tests are not lost, they go as code to paste. A
        // failure that may have posted the review is looked for by `create_review` first.
        Err(e) => {
            tracing::warn!(error = %e, "the test suggestions were not posted; answering them as code");
            Ok((
                Offered::default(),
                placed.into_iter().flat_map(|p| p.tests).collect(),
            ))
        }
    }
}

/// Suggested tests as a comment; `heading` says what asked for them (`` `/test` ``). Those
/// `offered` as suggestions on their test files are named with a link; the rest are shown
/// as code to paste, under the path where they belong.
pub(super) fn render_tests(
    heading: &str,
    tests: &[TestSuggestion],
    offered: &Offered,
    notes: &[String],
    model: &str,
) -> String {
    let notes: String = notes.iter().map(|n| format!("\n- {n}")).collect();
    let count = tests.len() + offered.tests();
    if count == 0 {
        return format!(
            "{heading}: no test to suggest for this change.{notes}{}",
            footer(model)
        );
    }
    let mut out = format!("{heading}: {count} suggested test(s).\n");
    let review = offered
        .link
        .as_deref()
        .map_or("a review".to_string(), |l| format!("[a review]({l})"));
    if offered.earlier {
        let _ = writeln!(
            out,
            "\nAn earlier attempt at this request offered tests as suggestions in {review}; this attempt's are below, as code."
        );
    }
    if !offered.placed.is_empty() {
        let _ = writeln!(
            out,
            "\nReady to apply, as suggestions in {review} on the test files this pull request changes:"
        );
        for p in &offered.placed {
            for t in &p.tests {
                let _ = writeln!(
                    out,
                    "- **{}** in `{}`, after line {}: {}",
                    t.name.trim(),
                    p.path,
                    p.line,
                    t.covers.trim()
                );
            }
        }
    }
    for t in tests {
        let _ = writeln!(
            out,
            "\n**{}** in `{}`: {}\n",
            t.name.trim(),
            t.path,
            t.covers.trim()
        );
        let fence = fence_for(&t.code);
        let _ = writeln!(out, "{fence}{}\n{}\n{fence}", language_of(&t.path), t.code);
    }
    out.push_str(&notes);
    out.push_str(&footer(model));
    out
}

fn language_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e).unwrap_or("") {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" | "mts" | "cts" => "typescript",
        "go" => "go",
        "java" => "java",
        "kt" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
        "rb" => "ruby",
        "cs" => "csharp",
        "php" => "php",
        "swift" => "swift",
        "sh" => "bash",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::ChangedFile;

    #[test]
    fn code_fences_cannot_be_closed_by_the_code() {
        let t = TestSuggestion {
            path: "tests/a.rs".into(),
            name: "parses_empty".into(),
            covers: "the empty input".into(),
            code: "// ````\nassert!(parse(\"\").is_err());".into(),
        };
        let text = render_tests("`/test`", &[t], &Offered::default(), &[], "m");
        assert!(text.contains("`````rust\n"), "{text}");
    }

    fn pr_file(path: &str, patch: &str) -> PrFile {
        let file: ChangedFile = serde_json::from_value(serde_json::json!({
            "filename": path, "status": "modified", "additions": 1, "deletions": 0,
            "changes": 1, "patch": patch
        }))
        .expect("file");
        PrFile::from_github(file)
    }

    fn test(path: &str, code: &str) -> TestSuggestion {
        TestSuggestion {
            path: path.into(),
            name: "parses_empty".into(),
            covers: "an empty input".into(),
            code: code.into(),
        }
    }

    const RUST_TESTS: &str = "pub fn parse(s: &str) -> usize {\n    s.len()\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn parses_one() {\n        assert_eq!(parse(\"a\"), 1);\n    }\n\n    #[test]\n    fn parses_two() {\n        assert_eq!(parse(\"ab\"), 2);\n    }\n}\n";
    // The pull request added `parses_two` (lines 14-17).
    const RUST_PATCH: &str = "@@ -12,3 +12,8 @@ mod tests {\n     }\n+\n+    #[test]\n+    fn parses_two() {\n+        assert_eq!(parse(\"ab\"), 2);\n+    }\n }";

    #[test]
    fn a_test_goes_after_the_last_test_the_pull_request_wrote_indented_like_it() {
        let file = pr_file("src/lib.rs", RUST_PATCH);
        let t = test(
            "src/lib.rs",
            "#[test]\nfn parses_empty() {\n    assert_eq!(parse(\"\"), 0);\n}",
        );
        let placed = place(&[t], &file, RUST_TESTS).expect("placed");
        assert_eq!(placed.line, 17, "the closing brace of parses_two");
        assert!(
            placed.comment.contains(
                "```suggestion\n    }\n\n    #[test]\n    fn parses_empty() {\n        assert_eq!(parse(\"\"), 0);\n    }\n```"
            ),
            "{}",
            placed.comment
        );
    }

    #[test]
    fn no_suggestion_where_the_test_would_not_parse_or_no_test_ends_on_a_changed_line() {
        let file = pr_file("src/lib.rs", RUST_PATCH);
        let broken = test(
            "src/lib.rs",
            "#[test]\nfn parses_empty() {\n    let x = ;\n}",
        );
        assert_eq!(place(&[broken], &file, RUST_TESTS), None);
        // Only a blank line and a statement inside a test changed: nothing ends there.
        let inside = pr_file(
            "src/lib.rs",
            "@@ -9,4 +9,5 @@ mod tests {\n     #[test]\n     fn parses_one() {\n+        let _ = 0;\n         assert_eq!(parse(\"a\"), 1);\n     }",
        );
        let good = test("src/lib.rs", "#[test]\nfn parses_empty() {}");
        assert_eq!(place(&[good], &inside, RUST_TESTS), None);
    }

    #[test]
    fn a_test_goes_only_after_a_test_never_after_the_code_it_tests() {
        // The pull request added `helper` (a plain function) and a method in an impl.
        let head = "pub struct P;\n\nimpl P {\n    pub fn size(&self) -> u32 {\n        1\n    }\n}\n\npub fn helper() -> u32 {\n    2\n}\n";
        let file = pr_file(
            "src/lib.rs",
            "@@ -1,2 +1,11 @@\n pub struct P;\n \n+impl P {\n+    pub fn size(&self) -> u32 {\n+        1\n+    }\n+}\n+\n+pub fn helper() -> u32 {\n+    2\n+}",
        );
        let t = test("src/lib.rs", "#[test]\nfn parses_empty() {}");
        assert_eq!(place(&[t], &file, head), None);
    }

    #[test]
    fn go_tests_lose_their_package_clause_and_imports_keep_them_out() {
        let head = "package pager\n\nimport \"testing\"\n\nfunc TestOne(t *testing.T) {\n\tif P() != 1 {\n\t\tt.Fatal(\"one\")\n\t}\n}\n";
        let file = pr_file(
            "pager_test.go",
            "@@ -3,0 +4,6 @@\n+\n+func TestOne(t *testing.T) {\n+\tif P() != 1 {\n+\t\tt.Fatal(\"one\")\n+\t}\n+}",
        );
        let plain = test(
            "pager_test.go",
            "package pager\n\nfunc TestTwo(t *testing.T) {}",
        );
        let placed = place(&[plain], &file, head).expect("placed");
        assert_eq!(placed.line, 9);
        assert!(!placed.comment.contains("package"), "{}", placed.comment);
        assert!(
            placed
                .comment
                .contains("}\n\nfunc TestTwo(t *testing.T) {}\n```"),
            "{}",
            placed.comment
        );
        let importing = test(
            "pager_test.go",
            "import \"fmt\"\n\nfunc TestThree(t *testing.T) { fmt.Println() }",
        );
        assert_eq!(
            place(&[importing], &file, head),
            None,
            "imports belong at the top"
        );
    }

    #[test]
    fn python_methods_are_indented_into_their_class() {
        let head = "import unittest\n\n\nclass TestParse(unittest.TestCase):\n    def test_one(self):\n        self.assertEqual(parse('a'), 1)\n\n    def test_two(self):\n        self.assertEqual(parse('ab'), 2)\n";
        let file = pr_file(
            "tests/test_parse.py",
            "@@ -6,3 +6,6 @@ class TestParse(unittest.TestCase):\n         self.assertEqual(parse('a'), 1)\n+\n+    def test_two(self):\n+        self.assertEqual(parse('ab'), 2)",
        );
        let t = test(
            "tests/test_parse.py",
            "def test_empty(self):\n    self.assertEqual(parse(''), 0)",
        );
        let placed = place(&[t], &file, head).expect("placed");
        assert_eq!(placed.line, 9);
        assert!(
            placed.comment.contains(
                "        self.assertEqual(parse('ab'), 2)\n\n    def test_empty(self):\n        self.assertEqual(parse(''), 0)\n```"
            ),
            "{}",
            placed.comment
        );
    }

    #[test]
    fn reindent_keeps_relative_indentation() {
        assert_eq!(
            reindent("  fn a() {\n      b();\n\n  }\n", "    "),
            "    fn a() {\n        b();\n\n    }"
        );
    }
}
