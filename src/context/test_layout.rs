//! Where a changed file's tests belong and how they are written in this repository: the test
//! framework (from the repository's own files: `Cargo.toml`, `package.json`, `pyproject.toml`,
//! `conftest.py`, `pom.xml`, ...) and the test file that matches the changed file, an
//! existing one when there is one, else the path the language's convention gives. What the
//! tests task shows the model as the style to follow, and where a suggested test is posted.
//!
//! Pure: the caller gives the repository's file list and a way to read a manifest.

use std::collections::HashSet;

/// A test, by its path: test folders and the usual test file names.
pub fn is_test(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let in_tests = lower.split('/').rev().skip(1).any(|dir| {
        matches!(
            dir,
            "test" | "tests" | "testing" | "__tests__" | "spec" | "specs" | "testdata"
        )
    });
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let stem = name.split('.').next().unwrap_or(name);
    // JUnit's and .NET's `PagerTest.java`, `PagerTests.cs`: the capital marks the word.
    let original = path.rsplit('/').next().unwrap_or(path);
    let class_test = [".java", ".kt", ".cs"].iter().any(|ext| {
        original
            .strip_suffix(ext)
            .is_some_and(|s| s.ends_with("Test") || s.ends_with("Tests"))
    });
    in_tests
        || class_test
        || name.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || name.contains(".test.")
        || name.contains(".spec.")
}

/// A test framework, as the suggested tests must be written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `#[test]` functions, run by `cargo test`.
    CargoTest,
    Pytest,
    Unittest,
    Jest,
    Vitest,
    Mocha,
    /// Node's built-in `node:test`.
    NodeTest,
    /// `func TestX(t *testing.T)`, run by `go test`.
    GoTest,
    JUnit5,
    JUnit4,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::CargoTest => "Rust's built-in tests (cargo test)",
            Framework::Pytest => "pytest",
            Framework::Unittest => "unittest",
            Framework::Jest => "Jest",
            Framework::Vitest => "Vitest",
            Framework::Mocha => "Mocha",
            Framework::NodeTest => "node:test",
            Framework::GoTest => "Go's testing package (go test)",
            Framework::JUnit5 => "JUnit 5",
            Framework::JUnit4 => "JUnit 4",
        }
    }
}

/// Where tests for one changed file go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTarget {
    pub framework: Framework,
    /// The test file: an existing one, or the conventional path for a new one.
    pub path: String,
    pub exists: bool,
    /// Tests go inside the changed file itself (Rust's `#[cfg(test)] mod tests`).
    pub inline: bool,
}

/// Reads a file of the repository (a manifest) by path; `None` when absent or unreadable.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where the tests of `changed` belong, for a repository with `files`; `None` for a file that
/// is not code Critic knows how to test, or is itself a test.
pub fn target_for(changed: &str, files: &[String], read: ReadFile<'_>) -> Option<TestTarget> {
    let known: HashSet<&str> = files.iter().map(String::as_str).collect();
    let (dir, name) = match changed.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", changed),
    };
    let (stem, ext) = name.rsplit_once('.')?;
    let join = |dir: &str, name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };
    // A test file of its own: the first candidate that exists, else `new`, to be created.
    let separate = |framework: Framework, candidates: Vec<String>, new: String| {
        let found = candidates.into_iter().find(|c| known.contains(c.as_str()));
        Some(TestTarget {
            framework,
            exists: found.is_some() || known.contains(new.as_str()),
            path: found.unwrap_or(new),
            inline: false,
        })
    };
    match ext {
        "rs" => {
            if dir.split('/').any(|d| d == "tests" || d == "benches") {
                return None;
            }
            // The crate's root: the nearest folder above with a Cargo.toml.
            let root = ancestors(dir)
                .find(|d| known.contains(join(d, "Cargo.toml").as_str()))
                .unwrap_or("");
            let integration = join(root, &format!("tests/{stem}.rs"));
            if known.contains(integration.as_str()) {
                return Some(TestTarget {
                    framework: Framework::CargoTest,
                    path: integration,
                    exists: true,
                    inline: false,
                });
            }
            // Rust's convention: unit tests in the file's own `mod tests`.
            Some(TestTarget {
                framework: Framework::CargoTest,
                path: changed.to_string(),
                exists: true,
                inline: true,
            })
        }
        "py" => {
            if stem.starts_with("test_") || stem.ends_with("_test") || stem == "conftest" {
                return None;
            }
            let framework = python_framework(&known, read);
            let test_name = format!("test_{stem}.py");
            let candidates = ancestors(dir)
                .flat_map(|up| {
                    ["", "tests/", "test/"].map(|folder| join(up, &format!("{folder}{test_name}")))
                })
                .collect();
            separate(framework, candidates, format!("tests/{test_name}"))
        }
        "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => {
            if name.contains(".test.")
                || name.contains(".spec.")
                || dir.split('/').any(|d| d == "__tests__")
            {
                return None;
            }
            let framework = js_framework(&known, dir, read);
            let mut candidates = Vec::new();
            for kind in ["test", "spec"] {
                candidates.push(join(dir, &format!("{stem}.{kind}.{ext}")));
                candidates.push(join(dir, &format!("__tests__/{stem}.{kind}.{ext}")));
            }
            candidates.push(join(dir, &format!("__tests__/{stem}.{ext}")));
            for up in ancestors(dir) {
                for folder in ["test", "tests"] {
                    candidates.push(join(up, &format!("{folder}/{stem}.test.{ext}")));
                    candidates.push(join(up, &format!("{folder}/{stem}.{ext}")));
                }
            }
            separate(
                framework,
                candidates,
                join(dir, &format!("{stem}.test.{ext}")),
            )
        }
        "go" => {
            if stem.ends_with("_test") {
                return None;
            }
            separate(
                Framework::GoTest,
                Vec::new(),
                join(dir, &format!("{stem}_test.go")),
            )
        }
        "java" | "kt" => {
            let (root, package) = changed
                .split_once("src/main/java/")
                .or_else(|| changed.split_once("src/main/kotlin/"))?;
            let package_dir = package.rsplit_once('/').map_or("", |(p, _)| p);
            let lang = if ext == "kt" { "kotlin" } else { "java" };
            let path = format!(
                "{root}src/test/{lang}/{}",
                join(package_dir, &format!("{stem}Test.{ext}"))
            );
            separate(junit(&known, root, read), Vec::new(), path)
        }
        _ => None,
    }
}

/// `dir` and each folder above it, up to the repository's root (`""`).
fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(dir);
    std::iter::from_fn(move || {
        let current = next?;
        next = if current.is_empty() {
            None
        } else {
            Some(current.rsplit_once('/').map_or("", |(up, _)| up))
        };
        Some(current)
    })
}

fn python_framework(known: &HashSet<&str>, read: ReadFile<'_>) -> Framework {
    let pytest_in = |file: &str| read(file).is_some_and(|t| t.contains("pytest"));
    let uses_pytest = known
        .iter()
        .any(|f| f.ends_with("conftest.py") || *f == "pytest.ini")
        || [
            "pyproject.toml",
            "setup.cfg",
            "tox.ini",
            "requirements-dev.txt",
            "requirements.txt",
        ]
        .iter()
        .any(|f| known.contains(f) && pytest_in(f));
    if uses_pytest {
        return Framework::Pytest;
    }
    // Tests written as `unittest.TestCase` classes, and nothing naming pytest.
    let unittest = known
        .iter()
        .filter(|f| {
            f.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("test_") && n.ends_with(".py"))
        })
        .take(5)
        .any(|f| {
            read(f).is_some_and(|t| t.contains("unittest.TestCase") || t.contains("(TestCase)"))
        });
    if unittest {
        Framework::Unittest
    } else {
        Framework::Pytest
    }
}

/// The framework of the nearest `package.json` above `dir` (a monorepo's package first).
fn js_framework(known: &HashSet<&str>, dir: &str, read: ReadFile<'_>) -> Framework {
    for up in ancestors(dir) {
        let manifest = if up.is_empty() {
            "package.json".to_string()
        } else {
            format!("{up}/package.json")
        };
        if !known.contains(manifest.as_str()) {
            continue;
        }
        let Some(text) = read(&manifest) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let has = |dep: &str| {
            ["devDependencies", "dependencies"]
                .iter()
                .any(|k| json.get(k).and_then(|d| d.get(dep)).is_some())
        };
        let script = json
            .get("scripts")
            .and_then(|s| s.get("test"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if has("vitest") || script.contains("vitest") {
            return Framework::Vitest;
        }
        if has("jest") || script.contains("jest") {
            return Framework::Jest;
        }
        if has("mocha") || script.contains("mocha") {
            return Framework::Mocha;
        }
        return Framework::NodeTest;
    }
    Framework::NodeTest
}

fn junit(known: &HashSet<&str>, root: &str, read: ReadFile<'_>) -> Framework {
    for build in ["pom.xml", "build.gradle", "build.gradle.kts"] {
        let path = format!("{root}{build}");
        if known.contains(path.as_str())
            && let Some(text) = read(&path)
        {
            if text.contains("junit-jupiter") || text.contains("org.junit.jupiter") {
                return Framework::JUnit5;
            }
            if text.contains("junit") {
                return Framework::JUnit4;
            }
        }
    }
    Framework::JUnit5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn rust_tests_go_in_the_file_or_a_matching_integration_test() {
        let repo = files(&["Cargo.toml", "src/lib.rs", "src/pager.rs", "tests/pager.rs"]);
        let t = target_for("src/pager.rs", &repo, &none).expect("rust");
        assert_eq!(
            (t.path.as_str(), t.exists, t.inline),
            ("tests/pager.rs", true, false)
        );
        let t = target_for("src/lib.rs", &repo, &none).expect("rust");
        assert_eq!((t.path.as_str(), t.inline), ("src/lib.rs", true));
        assert_eq!(t.framework, Framework::CargoTest);
        // A workspace member's own tests folder.
        let ws = files(&[
            "Cargo.toml",
            "crates/a/Cargo.toml",
            "crates/a/src/x.rs",
            "crates/a/tests/x.rs",
        ]);
        let t = target_for("crates/a/src/x.rs", &ws, &none).expect("rust");
        assert_eq!(t.path, "crates/a/tests/x.rs");
        assert_eq!(
            target_for("tests/pager.rs", &repo, &none),
            None,
            "a test itself"
        );
    }

    #[test]
    fn python_finds_the_test_file_and_the_framework() {
        let repo = files(&[
            "pyproject.toml",
            "pkg/pager.py",
            "tests/test_pager.py",
            "pkg/other.py",
        ]);
        let read =
            |f: &str| (f == "pyproject.toml").then(|| "[tool.pytest.ini_options]\n".to_string());
        let t = target_for("pkg/pager.py", &repo, &read).expect("python");
        assert_eq!(
            (t.framework, t.path.as_str(), t.exists),
            (Framework::Pytest, "tests/test_pager.py", true)
        );
        let t = target_for("pkg/other.py", &repo, &read).expect("python");
        assert_eq!((t.path.as_str(), t.exists), ("tests/test_other.py", false));
        // unittest: TestCase classes and no pytest anywhere.
        let repo = files(&["lib/calc.py", "test_calc.py"]);
        let read = |f: &str| {
            (f == "test_calc.py")
                .then(|| "import unittest\nclass T(unittest.TestCase):\n    pass\n".to_string())
        };
        let t = target_for("lib/calc.py", &repo, &read).expect("python");
        assert_eq!(
            (t.framework, t.path.as_str()),
            (Framework::Unittest, "test_calc.py")
        );
        assert_eq!(target_for("tests/test_pager.py", &repo, &none), None);
    }

    #[test]
    fn javascript_reads_package_json_nearest_first() {
        let repo = files(&[
            "package.json",
            "packages/web/package.json",
            "packages/web/src/pager.ts",
            "packages/web/src/pager.test.ts",
            "lib/util.js",
            "test/util.test.js",
        ]);
        let read = |f: &str| match f {
            "package.json" => Some(r#"{"devDependencies": {"mocha": "^10"}}"#.to_string()),
            "packages/web/package.json" => {
                Some(r#"{"devDependencies": {"vitest": "^1"}}"#.to_string())
            }
            _ => None,
        };
        let t = target_for("packages/web/src/pager.ts", &repo, &read).expect("ts");
        assert_eq!(
            (t.framework, t.path.as_str(), t.exists),
            (Framework::Vitest, "packages/web/src/pager.test.ts", true)
        );
        let t = target_for("lib/util.js", &repo, &read).expect("js");
        assert_eq!(
            (t.framework, t.path.as_str()),
            (Framework::Mocha, "test/util.test.js")
        );
        let jest = |_: &str| Some(r#"{"scripts": {"test": "jest --ci"}}"#.to_string());
        let t = target_for("src/a.js", &files(&["package.json", "src/a.js"]), &jest).expect("js");
        assert_eq!(
            (t.framework, t.path.as_str(), t.exists),
            (Framework::Jest, "src/a.test.js", false)
        );
        let plain = target_for("src/a.mjs", &files(&["src/a.mjs"]), &none).expect("js");
        assert_eq!(plain.framework, Framework::NodeTest);
        assert_eq!(
            target_for("packages/web/src/pager.test.ts", &repo, &read),
            None
        );
    }

    #[test]
    fn go_and_junit_follow_their_conventions() {
        let repo = files(&["go.mod", "pkg/pager.go", "pkg/pager_test.go", "pkg/new.go"]);
        let t = target_for("pkg/pager.go", &repo, &none).expect("go");
        assert_eq!(
            (t.framework, t.path.as_str(), t.exists),
            (Framework::GoTest, "pkg/pager_test.go", true)
        );
        assert!(!target_for("pkg/new.go", &repo, &none).expect("go").exists);
        assert_eq!(target_for("pkg/pager_test.go", &repo, &none), None);
        let repo = files(&["pom.xml", "src/main/java/org/x/Pager.java"]);
        let read = |f: &str| {
            (f == "pom.xml")
                .then(|| "<artifactId>junit</artifactId><version>4.13</version>".to_string())
        };
        let t = target_for("src/main/java/org/x/Pager.java", &repo, &read).expect("java");
        assert_eq!(
            (t.framework, t.path.as_str()),
            (Framework::JUnit4, "src/test/java/org/x/PagerTest.java")
        );
        assert_eq!(target_for("README.md", &repo, &none), None);
        assert_eq!(
            target_for("src/Other.java", &repo, &none),
            None,
            "no Maven layout"
        );
    }
}
