//! The walls between Critic's modules: data flows one way, so no top-level module may reach
//! (through any chain of `crate::` paths in non-test code) a module that reaches it back,
//! the shared vocabulary (`domain`) depends on nothing of the crate, and the store and the
//! settings (`config`) on the vocabulary alone, besides leaf utilities (modules that depend
//! on nothing of the crate, such as `backoff`), which cannot lead anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's source files, with the top-level module each belongs to.
fn sources(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).expect("under src");
                let first = rel.components().next().expect("a component");
                let top = first
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string();
                out.push((top, path));
            }
        }
    }
    out
}

/// The code of a file without its test modules and test files: tests may reach anywhere.
fn non_test_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("read source");
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // An inline test module runs to the end of the file (the convention here); a
            // declared one (`mod tests;`) is one line, and its file is skipped above.
            match lines.peek() {
                Some(next) if next.trim_end().ends_with('{') => break,
                _ => {
                    lines.next();
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Top-level modules compiled only for tests (`#[cfg(test)]` above their `mod` in `lib.rs`,
/// like `test_env`): test code, which may reach anywhere and is no layer.
fn test_only_modules(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let lines: Vec<&str> = lib.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| {
            let declared = pair[1].trim_start_matches("pub ").strip_prefix("mod ")?;
            declared.strip_suffix(';').map(str::to_string)
        })
        .collect()
}

/// The first names after `root::` in `code`: `root::x::..` and `use root::{x, y::..}`.
fn names_under(code: &str, root: &str) -> Vec<String> {
    let path_use = regex::Regex::new(&format!(r"\b{root}::(\w+)")).expect("regex");
    let group_use = regex::Regex::new(&format!(r"use {root}::\{{([^}}]*)\}}")).expect("regex");
    let mut named: Vec<String> = path_use
        .captures_iter(code)
        .map(|c| c[1].to_string())
        .collect();
    for group in group_use.captures_iter(code) {
        named.extend(
            group[1]
                .split(',')
                .filter_map(|item| item.trim().split("::").next().map(str::to_string)),
        );
    }
    named
}

/// Top-level module -> the top-level modules its code names (`crate::x`, `use crate::{x, ..}`).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(src);
    let test_only = test_only_modules(src);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(top, _)| top.clone())
        .filter(|m| m != "lib" && m != "main" && !test_only.contains(m))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (top, path) in &files {
        if !modules.contains(top) {
            continue;
        }
        let named = names_under(&non_test_code(path), "crate");
        let entry = edges.entry(top.clone()).or_default();
        entry.extend(
            named
                .into_iter()
                .filter(|m| m != top && modules.contains(m)),
        );
    }
    edges
}

/// A chain of modules from `from` back to itself, if there is one.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(from.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_top_level_module_reaches_one_that_reaches_it_back() {
    let edges = graph(&src());
    assert!(edges.len() > 10, "the modules were found: {edges:?}");
    let cycles: Vec<Vec<String>> = edges
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn the_shared_vocabulary_depends_on_nothing_of_the_crate() {
    let edges = graph(&src());
    assert_eq!(edges.get("domain"), Some(&BTreeSet::new()), "{edges:?}");
}

fn assert_depends_only_on_the_shared_vocabulary(module: &str) {
    let edges = graph(&src());
    let deps = edges.get(module).expect("the module was found");
    assert!(deps.contains("domain"), "{module}: {deps:?}");
    let others: Vec<&String> = deps
        .iter()
        .filter(|d| *d != "domain" && edges.get(*d).is_some_and(|e| !e.is_empty()))
        .collect();
    assert!(
        others.is_empty(),
        "{module} depends on more than the vocabulary and leaf utilities: {others:?} ({edges:?})"
    );
}

/// For each folder of `src/`, its files (not `mod.rs`) -> the sibling files they name
/// (`super::x`, `use super::{x, ..}`).
fn sibling_graphs(src: &Path) -> Vec<(PathBuf, BTreeMap<String, BTreeSet<String>>)> {
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for (_, path) in sources(src) {
        if let Some(dir) = path.parent().filter(|d| *d != src) {
            dirs.entry(dir.to_path_buf()).or_default().push(path);
        }
    }
    dirs.into_iter()
        .map(|(dir, files)| {
            let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().to_string());
            let siblings: BTreeSet<String> = files
                .iter()
                .filter_map(|p| stem(p))
                .filter(|s| s != "mod")
                .collect();
            let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for path in &files {
                let Some(me) = stem(path).filter(|s| s != "mod") else {
                    continue;
                };
                let named = names_under(&non_test_code(path), "super");
                edges.entry(me.clone()).or_default().extend(
                    named
                        .into_iter()
                        .filter(|n| *n != me && siblings.contains(n)),
                );
            }
            (dir, edges)
        })
        .collect()
}

#[test]
fn no_file_reaches_a_sibling_that_reaches_it_back() {
    let graphs = sibling_graphs(&src());
    assert!(graphs.len() > 5, "the folders were found");
    let cycles: Vec<(PathBuf, Vec<String>)> = graphs
        .iter()
        .flat_map(|(dir, edges)| {
            edges
                .keys()
                .filter_map(|f| cycle_through(edges, f))
                .map(|c| (dir.clone(), c))
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles between files: {cycles:?}");
}

#[test]
fn the_store_depends_only_on_the_shared_vocabulary() {
    // So it can be read, tested and changed without knowing any stage of the pipeline.
    assert_depends_only_on_the_shared_vocabulary("store");
}

#[test]
fn settings_depend_only_on_the_shared_vocabulary() {
    // Settings sit below every stage: what a setting means (its globs included) is decided
    // in `config`, and the stages read it from there.
    assert_depends_only_on_the_shared_vocabulary("config");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // A check that never fails checks nothing: a made-up source tree with a cycle.
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a/mod.rs", "use crate::b::B;\n");
    write("b.rs", "use crate::{c, domain};\n");
    write(
        "c.rs",
        "fn f() { crate::a::g(); }\n#[cfg(test)]\nmod tests {\n use crate::b;\n}\n",
    );
    write("domain.rs", "");
    let edges = graph(dir.path());
    assert_eq!(
        cycle_through(&edges, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // Test code does not count.
    assert_eq!(edges["c"], BTreeSet::from(["a".to_string()]));
    // Between the files of one folder too.
    write("a/x.rs", "use super::y::Y;\n");
    write("a/y.rs", "use super::{x, mod_item};\n");
    let graphs = sibling_graphs(dir.path());
    let (_, a) = graphs
        .iter()
        .find(|(d, _)| d.ends_with("a"))
        .expect("folder a");
    assert!(cycle_through(a, "x").is_some(), "{a:?}");
}
