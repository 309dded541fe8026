//! Where suggested tests go in their files: appended to an existing test file as its language
//! has them (Rust unit tests in one `#[cfg(test)]` module, Java and Kotlin methods inside the
//! class), or a new file (Go with its folder's package clause). `critic eval --tests` writes
//! them into a checkout with this.

use std::path::{Component, Path};

use super::tasks::TestSuggestion;

/// What the writer reads of the tree the tests go into: a checkout, or a commit on GitHub.
pub trait TestTree {
    /// A file's text; None when there is no such file.
    fn text(&self, path: &str) -> Option<String>;
    /// The package clause of folder `dir`'s Go files (not its tests), if it has any.
    fn go_package(&self, dir: &str) -> Option<String>;
}

/// The files the tests make, those of one file together, each as its whole new text: an
/// existing file with the tests added as they stand in such a file (Rust unit tests in one
/// `#[cfg(test)]` module, Java and Kotlin methods inside the class), or a new file. Go tests
/// each get a file of their own beside an existing target (a package clause and imports
/// cannot be appended mid-file). Fails on a path that leaves the tree or goes into `.git`.
pub fn files_with_tests(
    tree: &impl TestTree,
    tests: &[TestSuggestion],
) -> Result<Vec<(String, String)>, String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        let relative = Path::new(&t.path);
        let normal = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if t.path.is_empty() || !normal || relative.starts_with(".git") {
            return Err(format!(
                "test `{}`: path {:?} leaves the checkout",
                t.name, t.path
            ));
        }
        let path = if t.path.ends_with(".go") && tree.text(&t.path).is_some() {
            let stem = t.path.trim_end_matches("_test.go").trim_end_matches(".go");
            format!("{stem}_critic{}_test.go", i + 1)
        } else {
            t.path.clone()
        };
        match groups.iter_mut().find(|(p, _)| *p == path) {
            Some((_, codes)) => codes.push(&t.code),
            None => groups.push((path, vec![&t.code])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(path, codes)| {
            let text = match tree.text(&path) {
                Some(current) => with_tests(&path, &current, &codes),
                None => new_file(tree, &path, &codes.join("\n\n")),
            };
            (path, text)
        })
        .collect())
}

/// A checkout on disk.
struct Checkout<'a>(&'a Path);

impl TestTree for Checkout<'_> {
    fn text(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }

    fn go_package(&self, dir: &str) -> Option<String> {
        std::fs::read_dir(self.0.join(dir))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "go"))
            .filter(|e| !e.file_name().to_string_lossy().ends_with("_test.go"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .find_map(|text| package_clause(&text))
    }
}

/// The package a Go file's clause names.
pub fn package_clause(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim().to_string())
}

/// Writes the tests into the checkout at `root` (see [`files_with_tests`]). Returns the
/// files written, or why a test could not be (a path that leaves the checkout, goes into
/// `.git`, or through a link).
pub fn write_tests(root: &Path, tests: &[TestSuggestion]) -> Result<Vec<String>, String> {
    let files = files_with_tests(&Checkout(root), tests)?;
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let mut written = Vec::new();
    for (path, text) in files {
        let full = root.join(&path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            let inside = parent
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&canonical_root));
            let linked = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
            if !inside || linked {
                return Err(format!("{path}: goes through a link out of the checkout"));
            }
        }
        std::fs::write(&full, text).map_err(|e| format!("{}: {e}", full.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `current` (an existing file) with the tests' `codes` added where tests of its language go.
fn with_tests(path: &str, current: &str, codes: &[&str]) -> String {
    let joined = codes
        .iter()
        .map(|c| c.trim_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n\n");
    let code = joined.as_str();
    let body = current.trim_end();
    let lower = path.to_ascii_lowercase();
    let in_class = lower.ends_with(".java") || lower.ends_with(".kt");
    if in_class
        && !code.contains("class ")
        && let Some(close) = body.rfind('}')
    {
        let indented: Vec<String> = code.lines().map(|l| format!("    {l}")).collect();
        return format!(
            "{}\n\n{}\n}}\n",
            body[..close].trim_end(),
            indented.join("\n")
        );
    }
    let unit_tests = lower.ends_with(".rs")
        && !path.split('/').any(|d| d == "tests" || d == "benches")
        && !code.contains("mod ");
    if unit_tests {
        let indented: Vec<String> = code
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("    {l}")
                }
            })
            .collect();
        return format!(
            "{body}\n\n#[cfg(test)]\nmod critic_suggested {{\n    use super::*;\n\n{}\n}}\n",
            indented.join("\n")
        );
    }
    format!("{body}\n\n\n{code}\n")
}

/// A new test file holding `code`. A Go file's package clause is its folder's (a model often
/// names the package after the file): the package of the folder's other files, or its
/// `_test` variant when the code says so.
fn new_file(tree: &impl TestTree, path: &str, code: &str) -> String {
    let code = code.trim_matches('\n');
    if !path.ends_with(".go") {
        return format!("{code}\n");
    }
    let folder = tree.go_package(path.rsplit_once('/').map_or("", |(dir, _)| dir));
    let (said, rest) = match code.trim_start().strip_prefix("package ") {
        Some(after) => {
            let (name, rest) = after.split_once('\n').unwrap_or((after, ""));
            (Some(name.trim().to_string()), rest)
        }
        None => (None, code),
    };
    let package = match (folder, said) {
        (Some(f), Some(s)) if s == format!("{f}_test") => s,
        (Some(f), _) => f,
        (None, Some(s)) => s,
        (None, None) => "main".to_string(),
    };
    format!("package {package}\n\n{}\n", rest.trim_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(path: &str, code: &str) -> TestSuggestion {
        TestSuggestion {
            path: path.into(),
            name: "t".into(),
            covers: "c".into(),
            code: code.into(),
        }
    }

    #[test]
    fn tests_go_where_their_language_puts_them() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(root.join("pkg")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").expect("w");
        std::fs::write(root.join("Test.java"), "class Test {\n    void a() {}\n}\n").expect("w");
        std::fs::write(
            root.join("pkg/pager.go"),
            "package pager\n\nfunc P() int { return 1 }\n",
        )
        .expect("w");
        let written = write_tests(
            root,
            &[
                suggestion(
                    "src/lib.rs",
                    "#[test]\nfn is_one() {\n    assert_eq!(one(), 1);\n}",
                ),
                suggestion("Test.java", "@Test\nvoid b() {}"),
                suggestion("pkg/pager_test.go", "func TestP(t *testing.T) {}"),
                suggestion(
                    "pkg/named_test.go",
                    "package named\n\nfunc TestN(t *testing.T) {}",
                ),
                suggestion(
                    "pkg/black_test.go",
                    "package pager_test\n\nfunc TestB(t *testing.T) {}",
                ),
                suggestion("tests/test_new.py", "def test_x():\n    assert True\n"),
            ],
        )
        .expect("written");
        assert_eq!(
            written,
            [
                "src/lib.rs",
                "Test.java",
                "pkg/pager_test.go",
                "pkg/named_test.go",
                "pkg/black_test.go",
                "tests/test_new.py"
            ]
        );
        let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("read");
        assert_eq!(
            read("src/lib.rs"),
            "pub fn one() -> u32 {\n    1\n}\n\n#[cfg(test)]\nmod critic_suggested {\n    use super::*;\n\n    #[test]\n    fn is_one() {\n        assert_eq!(one(), 1);\n    }\n}\n"
        );
        assert_eq!(
            read("Test.java"),
            "class Test {\n    void a() {}\n\n    @Test\n    void b() {}\n}\n"
        );
        assert_eq!(
            read("pkg/pager_test.go"),
            "package pager\n\nfunc TestP(t *testing.T) {}\n"
        );
        assert_eq!(
            read("tests/test_new.py"),
            "def test_x():\n    assert True\n"
        );
        // A package named after the file is the folder's; an external test package is kept.
        assert_eq!(
            read("pkg/named_test.go"),
            "package pager\n\nfunc TestN(t *testing.T) {}\n"
        );
        assert_eq!(
            read("pkg/black_test.go"),
            "package pager_test\n\nfunc TestB(t *testing.T) {}\n"
        );
        assert!(write_tests(root, &[suggestion("../escape.py", "x")]).is_err());
        assert!(write_tests(root, &[suggestion(".git/config", "x")]).is_err());
        std::os::unix::fs::symlink(std::env::temp_dir(), root.join("out")).expect("link");
        assert!(write_tests(root, &[suggestion("out/test_x.py", "x")]).is_err());
    }

    #[test]
    fn two_tests_for_one_file_go_in_together_and_go_tests_beside_an_existing_file() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").expect("w");
        std::fs::write(root.join("pager.go"), "package pager\n").expect("w");
        std::fs::write(
            root.join("pager_test.go"),
            "package pager\n\nimport \"testing\"\n",
        )
        .expect("w");
        let written = write_tests(
            root,
            &[
                suggestion("src/lib.rs", "#[test]\nfn a() {}"),
                suggestion("src/lib.rs", "#[test]\nfn b() {}"),
                suggestion(
                    "pager_test.go",
                    "import \"testing\"\n\nfunc TestQ(t *testing.T) {}",
                ),
            ],
        )
        .expect("written");
        assert_eq!(written, ["src/lib.rs", "pager_critic3_test.go"]);
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
        assert_eq!(lib.matches("mod critic_suggested").count(), 1, "{lib}");
        assert!(
            lib.contains("    fn a() {}\n\n    #[test]\n    fn b() {}"),
            "{lib}"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("pager_critic3_test.go")).expect("read"),
            "package pager\n\nimport \"testing\"\n\nfunc TestQ(t *testing.T) {}\n"
        );
    }
}
