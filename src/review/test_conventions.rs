//! Suggested tests (`/test`, `review.suggest_tests`, `critic eval --tests`): the repository's test conventions shown to the model (the framework, where each
//! changed file's tests go, and the opening of an existing test file as the style to follow),
//! and the suggested tests checked before they are posted: each must parse in its language
//! (asked for once more with the errors, then left out with a note), and a name that an
//! existing test in the target file already has is renamed.

use std::collections::HashMap;
use std::fmt::Write;

use super::source::{Source, SourceError};
use super::tasks::TestSuggestion;
use crate::context::scope::syntax_errors;
use crate::context::test_layout::{TestTarget, target_for};

/// Manifests that say which framework a repository uses.
const MANIFESTS: &[&str] = &[
    "package.json",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "pytest.ini",
    "requirements.txt",
    "requirements-dev.txt",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
];
/// Manifests and test files read for one `/test`, at most.
const MAX_READS: usize = 12;
/// Lines of an existing test file shown as the style to follow.
const STYLE_LINES: usize = 40;

/// What `/test` knows of the repository's tests.
#[derive(Debug, Default)]
pub struct TestConventions {
    /// (changed file, where its tests go).
    targets: Vec<(String, TestTarget)>,
    /// Existing test files read, by path.
    existing: HashMap<String, String>,
}

impl TestConventions {
    /// Reads the tree, the manifests the changed files need and their existing test files.
    pub async fn read(
        source: &impl Source,
        changed: &[String],
    ) -> Result<TestConventions, SourceError> {
        let tree = source.tree().await?;
        let files: Vec<String> = tree.files.into_iter().map(|(p, _)| p).collect();
        let mut texts: HashMap<String, String> = HashMap::new();
        let wanted: Vec<&String> = files
            .iter()
            .filter(|f| {
                let name = f.rsplit('/').next().unwrap_or(f);
                MANIFESTS.contains(&name)
                    && changed.iter().any(|c| {
                        let dir = f.rsplit_once('/').map_or("", |(d, _)| d);
                        dir.is_empty() || c.starts_with(&format!("{dir}/"))
                    })
            })
            .take(MAX_READS / 2)
            .collect();
        for path in wanted {
            if let Some(bytes) = source.file(path).await? {
                texts.insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        // Whether Python tests are `unittest.TestCase` classes shows only in the tests.
        if changed.iter().any(|c| c.ends_with(".py")) {
            let samples: Vec<&String> = files
                .iter()
                .filter(|f| {
                    let name = f.rsplit('/').next().unwrap_or(f);
                    name.starts_with("test_") && name.ends_with(".py")
                })
                .take(2)
                .collect();
            for path in samples {
                if let Some(bytes) = source.file(path).await? {
                    texts.insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        let read = |p: &str| texts.get(p).cloned();
        let mut targets = Vec::new();
        for c in changed {
            if let Some(t) = target_for(c, &files, &read) {
                targets.push((c.clone(), t));
            }
        }
        let mut existing = HashMap::new();
        for (_, t) in &targets {
            if existing.len() >= MAX_READS / 2 {
                break;
            }
            if t.exists
                && !existing.contains_key(&t.path)
                && let Some(bytes) = source.file(&t.path).await?
            {
                existing.insert(t.path.clone(), String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(TestConventions { targets, existing })
    }

    /// [`TestConventions::read`], or none when the repository cannot be read: best effort,
    /// as the model still sees the change and its tests are still checked.
    pub async fn read_or_none(source: &impl Source, changed: &[String]) -> TestConventions {
        TestConventions::read(source, changed)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the repository's test conventions were not read");
                TestConventions::default()
            })
    }

    /// Reads a tests reply: the first reply's tests must all parse (else the model is shown
    /// the errors and asked again); of the answer to that, those that do not are left out.
    pub fn validator(
        &self,
    ) -> impl Fn(&serde_json::Value) -> Result<(Vec<TestSuggestion>, Vec<String>), String> + '_
    {
        let first = std::sync::atomic::AtomicBool::new(true);
        move |v| {
            let tests = super::tasks::parse_tests(v)?;
            let strict = first.swap(false, std::sync::atomic::Ordering::Relaxed);
            self.check(tests, strict)
        }
    }

    /// The conventions for the prompt (redacted: test files may hold secrets); empty when
    /// nothing is known.
    pub fn prompt_text(&self) -> String {
        let mut out = String::new();
        for (changed, t) in &self.targets {
            let place = if t.inline {
                "in the file itself (a `#[cfg(test)] mod tests`)".to_string()
            } else if t.exists {
                format!("in `{}` (exists)", t.path)
            } else {
                format!("in `{}` (a new file)", t.path)
            };
            let _ = writeln!(out, "- `{changed}`: {}, {place}", t.framework.name());
        }
        let mut shown = 0;
        for (path, text) in &self.existing {
            if shown == 2
                || self
                    .targets
                    .iter()
                    .any(|(_, t)| t.inline && &t.path == path)
            {
                continue;
            }
            let head: String = text
                .lines()
                .take(STYLE_LINES)
                .collect::<Vec<_>>()
                .join("\n");
            let head = crate::context::redact::redact(&head).text;
            let _ = write!(
                out,
                "\nThe start of `{path}`, the style to follow:\n```\n{head}\n```\n"
            );
            shown += 1;
        }
        out
    }

    /// The suggested tests as they can be posted. `strict` (the first answer): any test that
    /// does not parse fails the answer, so the model is asked again with the errors. Not
    /// strict (the answer to that): such tests are left out and named in the notes. Each
    /// test's path is where it belongs, and a name the target file has already is renamed.
    pub fn check(
        &self,
        tests: Vec<TestSuggestion>,
        strict: bool,
    ) -> Result<(Vec<TestSuggestion>, Vec<String>), String> {
        let mut kept = Vec::new();
        let mut notes = Vec::new();
        let mut broken = Vec::new();
        for mut t in tests {
            t.path = self.place(&t.path);
            if let Some(errors) = parse_errors(&t.path, &t.code) {
                broken.push(format!(
                    "test `{}` for `{}` does not parse ({errors} syntax error(s))",
                    t.name, t.path
                ));
                notes.push(format!(
                    "`{}` was left out: its code did not parse as {}, even when asked again.",
                    t.name,
                    t.path.rsplit_once('.').map_or("code", |(_, e)| e)
                ));
                continue;
            }
            if let Some(existing) = self.existing.get(&t.path) {
                rename_on_clash(&mut t, existing, &kept);
            }
            kept.push(t);
        }
        if strict && !broken.is_empty() {
            return Err(format!(
                "{}. Answer again with every test's code complete and valid in its language.",
                broken.join("; ")
            ));
        }
        Ok((kept, notes))
    }

    /// Where a suggested test goes: the model's path when it is a known test target or an
    /// existing file; else the one target when the change has one.
    fn place(&self, said: &str) -> String {
        let said = said.trim().trim_start_matches("./");
        let known =
            self.targets.iter().any(|(_, t)| t.path == said) || self.existing.contains_key(said);
        match self.targets.as_slice() {
            [(_, only)] if !known && !only.inline => only.path.clone(),
            _ => said.to_string(),
        }
    }
}

/// Syntax errors in a test's code on its own, for the languages Critic parses; `None` when
/// it parses (or the language is not one Critic knows). Java and Kotlin methods are parsed
/// inside a class and Go functions after a package clause, as they stand in their files.
fn parse_errors(path: &str, code: &str) -> Option<usize> {
    let lower = path.to_ascii_lowercase();
    let wrapped = if lower.ends_with(".java") && !code.contains("class ") {
        format!("class Wrapper {{\n{code}\n}}\n")
    } else if lower.ends_with(".go") && !code.trim_start().starts_with("package ") {
        format!("package wrapper\n{code}\n")
    } else {
        code.to_string()
    };
    let lines = u32::try_from(wrapped.lines().count().max(1)).unwrap_or(u32::MAX);
    match syntax_errors(path, &wrapped, 1..=lines) {
        Some(0) | None => None,
        Some(n) => Some(n),
    }
}

/// Whether `name` is defined as a test in `text` (a function or method of that name, or a
/// JavaScript test titled so).
fn defines(text: &str, name: &str) -> bool {
    [
        format!("fn {name}("),
        format!("def {name}("),
        format!("func {name}("),
        format!("void {name}("),
        format!("fun {name}("),
        format!("'{name}'"),
        format!("\"{name}\""),
    ]
    .iter()
    .any(|pattern| text.contains(pattern.as_str()))
}

/// Renames `t` when its name clashes with a test in the target file (or one kept already):
/// `name_2`, `name_3`, ... (`Name2` for Go's `TestName`, whose names take no underscore by
/// convention), in the name and where the code defines it.
fn rename_on_clash(t: &mut TestSuggestion, existing: &str, kept: &[TestSuggestion]) {
    let name = t.name.trim().to_string();
    let taken = |n: &str| defines(existing, n) || kept.iter().any(|k| k.name == n);
    if name.is_empty() || !taken(&name) {
        return;
    }
    let go = t.path.ends_with(".go");
    let Some(new) = (2..100)
        .map(|i| {
            if go {
                format!("{name}{i}")
            } else {
                format!("{name}_{i}")
            }
        })
        .find(|n| !taken(n))
    else {
        return;
    };
    // The definition itself, not a longer name that starts the same (`name_helper`).
    for (before, after) in [
        ("fn ", "("),
        ("def ", "("),
        ("func ", "("),
        ("void ", "("),
        ("fun ", "("),
        ("'", "'"),
        ("\"", "\""),
    ] {
        let from = format!("{before}{name}{after}");
        if t.code.contains(&from) {
            t.code = t.code.replacen(&from, &format!("{before}{new}{after}"), 1);
            break;
        }
    }
    t.name = new;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::test_layout::Framework;

    fn test(path: &str, name: &str, code: &str) -> TestSuggestion {
        TestSuggestion {
            path: path.into(),
            name: name.into(),
            covers: "it".into(),
            code: code.into(),
        }
    }

    fn conventions() -> TestConventions {
        TestConventions {
            targets: vec![(
                "pkg/pager.py".into(),
                TestTarget {
                    framework: Framework::Pytest,
                    path: "tests/test_pager.py".into(),
                    exists: true,
                    inline: false,
                },
            )],
            existing: HashMap::from([(
                "tests/test_pager.py".to_string(),
                "from pkg.pager import pages\n\ndef test_pages_rounds_up():\n    assert pages(11, 10) == 2\n"
                    .to_string(),
            )]),
        }
    }

    #[test]
    fn tests_that_do_not_parse_are_asked_again_then_left_out() {
        let c = conventions();
        let good = test(
            "tests/test_pager.py",
            "test_zero",
            "def test_zero():\n    assert pages(0, 10) == 0\n",
        );
        let bad = test(
            "tests/test_pager.py",
            "test_bad",
            "def test_bad(:\n    assert (\n",
        );
        let err = c
            .check(vec![good.clone(), bad.clone()], true)
            .expect_err("strict");
        assert!(
            err.contains("test `test_bad`") && err.contains("does not parse"),
            "{err}"
        );
        let (kept, notes) = c.check(vec![good, bad], false).expect("lenient");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "test_zero");
        assert!(notes[0].contains("`test_bad` was left out"), "{notes:?}");
    }

    #[test]
    fn a_clashing_name_is_renamed_and_the_path_is_where_tests_go() {
        let c = conventions();
        let t = test(
            "test_pager.py",
            "test_pages_rounds_up",
            "def test_pages_rounds_up():\n    assert pages(21, 10) == 3\n",
        );
        let helper = test(
            "tests/test_pager.py",
            "test_pages_rounds_up",
            "def test_pages_rounds_up_helper():\n    return 1\n\n\ndef test_pages_rounds_up():\n    assert pages(1, 10) == 1\n",
        );
        let (kept, _) = c.check(vec![t.clone(), t, helper], true).expect("parses");
        assert!(
            kept[2].code.contains("def test_pages_rounds_up_helper():")
                && kept[2].code.contains("def test_pages_rounds_up_4():"),
            "only the definition is renamed: {}",
            kept[2].code
        );
        assert_eq!(kept[0].path, "tests/test_pager.py", "the one target");
        assert_eq!(kept[0].name, "test_pages_rounds_up_2");
        assert!(
            kept[0].code.starts_with("def test_pages_rounds_up_2():"),
            "{}",
            kept[0].code
        );
        assert_eq!(
            kept[1].name, "test_pages_rounds_up_3",
            "nor with one kept already"
        );
    }

    #[test]
    fn java_and_go_tests_parse_as_they_stand_in_their_files() {
        assert_eq!(
            parse_errors(
                "src/test/java/a/PagerTest.java",
                "@Test\nvoid roundsUp() {\n    assertEquals(2, Pager.pages(11, 10));\n}\n"
            ),
            None
        );
        assert_eq!(
            parse_errors(
                "pkg/pager_test.go",
                "func TestPages(t *testing.T) {\n\tif pages(11, 10) != 2 {\n\t\tt.Fatal()\n\t}\n}\n"
            ),
            None
        );
        assert!(parse_errors("pkg/pager_test.go", "func TestPages(t *testing.T) {\n").is_some());
        assert!(parse_errors("tests/a.rs", "#[test]\nfn a() { let x = ; }\n").is_some());
        assert_eq!(
            parse_errors("README.md", "not code ("),
            None,
            "a language Critic does not parse"
        );
    }

    #[test]
    fn the_prompt_names_the_framework_the_place_and_shows_the_style() {
        let text = conventions().prompt_text();
        assert!(
            text.contains("- `pkg/pager.py`: pytest, in `tests/test_pager.py` (exists)"),
            "{text}"
        );
        assert!(text.contains("def test_pages_rounds_up():"), "{text}");
    }
}
