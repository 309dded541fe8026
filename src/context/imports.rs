//! Files a changed file imports, found in the repository at head.
//!
//! What we chose, and why: the model gets the *definitions* a change calls from the files it
//! imports (see `assemble`'s related code), not those files whole. A whole imported file
//! costs thousands of tokens for the one function the change uses; the definition costs tens.
//! Only imports that name a file of this repository count (relative imports, the crate's own
//! modules, the project's packages); third-party packages are not in the repository and the
//! model knows the popular ones anyway. Finding them takes one GitHub call (the repository's
//! tree at head) plus one per imported file, bounded by [`MAX_IMPORTED_FILES`] and only made
//! when the budget has room left.
//!
//! Imports are read line by line, not parsed: an import statement is one of a few fixed
//! shapes per language, a missed exotic form only means less context, and the reader never
//! fails on a file tree-sitter cannot parse.

use std::collections::HashSet;

/// Imported files fetched for one review at most.
pub const MAX_IMPORTED_FILES: usize = 30;
/// Imported files taken from one changed file at most.
const MAX_PER_FILE: usize = 8;
/// Files of one imported Go package taken at most.
const MAX_GO_PACKAGE_FILES: usize = 3;

/// The repository's file paths at head.
pub struct RepoFiles {
    paths: HashSet<String>,
}

impl RepoFiles {
    pub fn new(paths: impl IntoIterator<Item = String>) -> RepoFiles {
        RepoFiles {
            paths: paths.into_iter().collect(),
        }
    }

    fn has(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    /// The first candidate that is a file of the repository.
    fn first(&self, candidates: impl IntoIterator<Item = String>) -> Option<String> {
        candidates
            .into_iter()
            .map(|c| normalise(&c))
            .find(|c| self.has(c))
    }

    /// The one file whose path ends with `/suffix` (or is `suffix`); None when several do.
    fn unique_suffix(&self, suffix: &str) -> Option<String> {
        let slashed = format!("/{suffix}");
        let mut found = self
            .paths
            .iter()
            .filter(|p| *p == suffix || p.ends_with(&slashed));
        let first = found.next()?;
        found.next().is_none().then(|| first.clone())
    }
}

/// Paths of repository files that `path` (with contents `source`) imports, most specific
/// first, without `path` itself.
pub fn imported_files(path: &str, source: &str, repo: &RepoFiles) -> Vec<String> {
    let found = match extension(path) {
        "rs" => rust(path, source, repo),
        "py" => python(path, source, repo),
        "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => {
            javascript(path, source, repo)
        }
        "go" => go(source, repo),
        "java" | "kt" => java(source, repo),
        "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => c_include(path, source, repo),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for f in found {
        if f != path && !out.contains(&f) {
            out.push(f);
        }
        if out.len() == MAX_PER_FILE {
            break;
        }
    }
    out
}

/// Whether imports of this file can be followed at all (so the tree is only fetched when
/// some changed file could use it).
pub fn follows_imports(path: &str) -> bool {
    matches!(
        extension(path),
        "rs" | "py"
            | "js"
            | "jsx"
            | "mjs"
            | "cjs"
            | "ts"
            | "tsx"
            | "mts"
            | "cts"
            | "go"
            | "java"
            | "kt"
            | "c"
            | "h"
            | "cc"
            | "cpp"
            | "cxx"
            | "hpp"
            | "hh"
            | "hxx"
    )
}

fn extension(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

/// Resolves `.` and `..` components; a path that climbs above the root stays as it is (and
/// then matches no file).
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return path.to_string();
                }
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Lines with comments of the `//` and `#` kinds cut off are not needed: import statements
/// start a line. Block comments are rare around imports and at worst add a wrong candidate
/// that matches no file.
fn statements(source: &str) -> impl Iterator<Item = &str> {
    source.lines().map(str::trim)
}

// ----- Rust ---------------------------------------------------------------------------------

/// `mod x;` and `use crate::a::b`, `use super::a`, `use self::a` (with `{...}` groups one
/// level deep).
fn rust(path: &str, source: &str, repo: &RepoFiles) -> Vec<String> {
    let file_dir = dir_of(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.strip_suffix(".rs").unwrap_or(name);
    // Where this file's child modules live.
    let module_dir = if matches!(stem, "lib" | "main" | "mod") {
        file_dir.to_string()
    } else {
        join(file_dir, stem)
    };
    // The crate root: the directory holding `src/lib.rs` or `src/main.rs` above this file.
    let crate_root = path
        .rfind("src/")
        .map(|i| &path[..i + 3])
        .unwrap_or(file_dir);
    let mut out = Vec::new();
    for line in statements(source) {
        let line = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .unwrap_or(line);
        if let Some(m) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            let m = m.trim();
            out.extend(repo.first([
                join(&module_dir, &format!("{m}.rs")),
                join(&module_dir, &format!("{m}/mod.rs")),
            ]));
            continue;
        }
        let Some(spec) = line.strip_prefix("use ").and_then(|r| r.strip_suffix(';')) else {
            continue;
        };
        for spec in expand_group(spec) {
            let mut parts: Vec<&str> = spec.split("::").map(str::trim).collect();
            let base = match parts.first().copied() {
                Some("crate") => crate_root.to_string(),
                Some("self") => module_dir.clone(),
                Some("super") => {
                    let mut dir = module_dir.clone();
                    while parts.first() == Some(&"super") {
                        dir = dir_of(&dir).to_string();
                        parts.remove(0);
                    }
                    parts.insert(0, "super");
                    dir
                }
                _ => continue,
            };
            let modules: Vec<&str> = parts[1..]
                .iter()
                .copied()
                .filter(|p| !p.is_empty() && *p != "*" && *p != "self")
                .collect();
            // The longest module path that is a file: `a::b::Item` is `a/b.rs` or `a.rs`.
            for n in (1..=modules.len()).rev() {
                let rel = modules[..n].join("/");
                if let Some(found) = repo.first([
                    join(&base, &format!("{rel}.rs")),
                    join(&base, &format!("{rel}/mod.rs")),
                ]) {
                    out.push(found);
                    break;
                }
            }
        }
    }
    out
}

/// `a::{b, c::D}` -> `a::b`, `a::c::D`; no group -> itself. `as` renames are dropped.
fn expand_group(spec: &str) -> Vec<String> {
    let spec = spec.trim();
    let Some((prefix, rest)) = spec.split_once('{') else {
        return vec![strip_rename(spec).to_string()];
    };
    let inner = rest.rsplit_once('}').map(|(i, _)| i).unwrap_or(rest);
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(format!("{prefix}{}", strip_rename(&inner[start..i])));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(format!("{prefix}{}", strip_rename(&inner[start..])));
    out.into_iter()
        .map(|s| {
            s.split('{')
                .next()
                .unwrap_or("")
                .trim_end_matches("::")
                .to_string()
        })
        .filter(|s| !s.ends_with("::") && !s.is_empty())
        .collect()
}

fn strip_rename(s: &str) -> &str {
    s.split(" as ").next().unwrap_or(s).trim()
}

// ----- Python -------------------------------------------------------------------------------

/// `import a.b`, `from a.b import c`, `from .x import y`, `from . import x`.
fn python(path: &str, source: &str, repo: &RepoFiles) -> Vec<String> {
    let file_dir = dir_of(path);
    let mut out = Vec::new();
    for line in statements(source) {
        let (module, names): (&str, Vec<&str>) = if let Some(rest) = line.strip_prefix("from ") {
            let Some((module, names)) = rest.split_once(" import ") else {
                continue;
            };
            let names = names
                .trim_matches(|c| c == '(' || c == ')' || c == ' ')
                .split(',')
                .map(strip_rename)
                .filter(|n| !n.is_empty() && *n != "*")
                .collect();
            (module.trim(), names)
        } else if let Some(rest) = line.strip_prefix("import ") {
            for m in rest.split(',') {
                out.extend(python_module(file_dir, strip_rename(m), &[], repo));
            }
            continue;
        } else {
            continue;
        };
        out.extend(python_module(file_dir, module, &names, repo));
    }
    out
}

fn python_module(file_dir: &str, module: &str, names: &[&str], repo: &RepoFiles) -> Vec<String> {
    let dots = module.chars().take_while(|&c| c == '.').count();
    let rest = &module[dots..];
    let bases: Vec<String> = if dots > 0 {
        let mut dir = file_dir.to_string();
        for _ in 1..dots {
            dir = dir_of(&dir).to_string();
        }
        vec![dir]
    } else {
        // Absolute imports of the project's own packages: from the root or a `src/` layout.
        vec![String::new(), "src".to_string()]
    };
    let rel = rest.replace('.', "/");
    let mut out = Vec::new();
    for base in &bases {
        // `from pkg import module` names a module file as often as a function.
        for name in names {
            let sub = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            out.extend(repo.first([
                join(base, &format!("{sub}.py")),
                join(base, &format!("{sub}/__init__.py")),
            ]));
        }
        if !rel.is_empty()
            && let Some(found) = repo.first([
                join(base, &format!("{rel}.py")),
                join(base, &format!("{rel}/__init__.py")),
            ])
        {
            out.push(found);
        }
        if !out.is_empty() {
            break;
        }
    }
    out
}

// ----- JavaScript / TypeScript --------------------------------------------------------------

/// Relative specifiers of `import ... from '...'`, `import '...'`, `export ... from '...'`,
/// `require('...')` and `import('...')`.
fn javascript(path: &str, source: &str, repo: &RepoFiles) -> Vec<String> {
    let file_dir = dir_of(path);
    let mut out = Vec::new();
    for line in statements(source) {
        let relevant = line.starts_with("import")
            || line.starts_with("export")
            || line.contains("require(")
            || line.contains("import(")
            || line.starts_with("} from");
        if !relevant {
            continue;
        }
        for spec in quoted(line).filter(|s| s.starts_with("./") || s.starts_with("../")) {
            let base = join(file_dir, spec);
            // TypeScript sources import compiled names: `./x.js` is `./x.ts`.
            let stem = base
                .strip_suffix(".js")
                .or_else(|| base.strip_suffix(".mjs"))
                .or_else(|| base.strip_suffix(".cjs"))
                .unwrap_or(&base)
                .to_string();
            let mut candidates = vec![base.clone()];
            for ext in ["ts", "tsx", "d.ts", "js", "jsx", "mjs", "cjs", "mts", "cts"] {
                candidates.push(format!("{stem}.{ext}"));
            }
            for ext in ["ts", "tsx", "js", "jsx"] {
                candidates.push(format!("{base}/index.{ext}"));
            }
            out.extend(repo.first(candidates));
        }
    }
    out
}

/// The contents of '...' and "..." strings on a line.
fn quoted(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find(['\'', '"', '`'])?;
            let quote = rest[start..].chars().next()?;
            let after = &rest[start + 1..];
            let end = after.find(quote)?;
            let found = &after[..end];
            rest = &after[end + 1..];
            if !found.is_empty() {
                return Some(found);
            }
        }
    })
}

// ----- Go -----------------------------------------------------------------------------------

/// `import "mod/path/pkg"` and `import ( ... )` blocks: a package is a directory; the longest
/// tail of the import path that is a directory of `.go` files in the repository is it.
fn go(source: &str, repo: &RepoFiles) -> Vec<String> {
    let mut specs: Vec<&str> = Vec::new();
    let mut in_block = false;
    for line in statements(source) {
        if in_block {
            if line.starts_with(')') {
                in_block = false;
                continue;
            }
            specs.extend(quoted(line).take(1));
        } else if let Some(rest) = line.strip_prefix("import") {
            let rest = rest.trim_start();
            if rest.starts_with('(') {
                in_block = true;
                specs.extend(quoted(rest).take(1));
            } else {
                specs.extend(quoted(rest).take(1));
            }
        }
    }
    let mut out = Vec::new();
    for spec in specs {
        let parts: Vec<&str> = spec.split('/').collect();
        // Standard library packages have no dot in their first part and are not in the repo,
        // but a module named without a dot (`example/app`) is possible: try every tail.
        for start in 0..parts.len() {
            let dir = parts[start..].join("/");
            let mut files: Vec<String> = repo
                .paths
                .iter()
                .filter(|p| dir_of(p) == dir && p.ends_with(".go") && !p.ends_with("_test.go"))
                .cloned()
                .collect();
            if !files.is_empty() {
                files.sort();
                out.extend(files.into_iter().take(MAX_GO_PACKAGE_FILES));
                break;
            }
        }
    }
    out
}

// ----- Java / Kotlin ------------------------------------------------------------------------

/// `import com.x.Y;` and `import static com.x.Y.m;`: the class's file, wherever the source
/// root is (`src/main/java/...`, `app/src/...`).
fn java(source: &str, repo: &RepoFiles) -> Vec<String> {
    let mut out = Vec::new();
    for line in statements(source) {
        let Some(rest) = line.strip_prefix("import ") else {
            continue;
        };
        let is_static = rest.starts_with("static ");
        let rest = rest
            .trim_start_matches("static ")
            .trim_end_matches(';')
            .trim();
        if rest.ends_with(".*") {
            continue;
        }
        let mut parts: Vec<&str> = rest.split('.').collect();
        if is_static {
            parts.pop();
        }
        let rel = parts.join("/");
        out.extend(
            repo.unique_suffix(&format!("{rel}.java"))
                .or_else(|| repo.unique_suffix(&format!("{rel}.kt"))),
        );
    }
    out
}

// ----- C / C++ ------------------------------------------------------------------------------

/// `#include "x.h"` (not `<...>`, the system's): next to the file first, else the one file of
/// the repository with that path tail.
fn c_include(path: &str, source: &str, repo: &RepoFiles) -> Vec<String> {
    let file_dir = dir_of(path);
    let mut out = Vec::new();
    for line in statements(source) {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("include") else {
            continue;
        };
        let Some(spec) = quoted(rest.trim_start())
            .next()
            .filter(|_| rest.trim_start().starts_with('"'))
        else {
            continue;
        };
        out.extend(
            repo.first([join(file_dir, spec)])
                .or_else(|| repo.unique_suffix(&normalise(spec))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(paths: &[&str]) -> RepoFiles {
        RepoFiles::new(paths.iter().map(|p| p.to_string()))
    }

    #[test]
    fn rust_modules_and_crate_paths() {
        let r = repo(&[
            "src/lib.rs",
            "src/config/mod.rs",
            "src/config/repo.rs",
            "src/diff.rs",
            "src/jobs/mod.rs",
            "src/jobs/review_pr.rs",
            "src/jobs/incremental.rs",
        ]);
        let source = "use std::io;\nuse crate::config::repo::RepoPolicy;\nuse crate::diff::{FilePatch, LineKind};\nuse super::incremental;\npub mod review_pr;\nmod missing;\n";
        assert_eq!(
            imported_files("src/jobs/mod.rs", source, &r),
            ["src/config/repo.rs", "src/diff.rs", "src/jobs/review_pr.rs"],
            "`super` from jobs/mod.rs is the crate root, which has no incremental.rs"
        );
        let source = "use super::incremental;\nuse crate::{config, jobs::review_pr as rp};\n";
        assert_eq!(
            imported_files("src/jobs/review_pr.rs", source, &r),
            ["src/jobs/incremental.rs", "src/config/mod.rs"],
            "`jobs::review_pr` is this file itself"
        );
    }

    #[test]
    fn python_relative_absolute_and_src_layout() {
        let r = repo(&[
            "pkg/__init__.py",
            "pkg/util.py",
            "pkg/sub/helpers.py",
            "src/app/models.py",
        ]);
        let source = "import os\nfrom .util import parse\nfrom . import sub\nfrom .sub.helpers import x as y\nimport pkg.util\nfrom app.models import User\n";
        assert_eq!(
            imported_files("pkg/main.py", source, &r),
            ["pkg/util.py", "pkg/sub/helpers.py", "src/app/models.py"]
        );
    }

    #[test]
    fn javascript_relative_specifiers_with_extensions_and_index() {
        let r = repo(&[
            "src/a.ts",
            "src/lib/index.ts",
            "src/b.js",
            "src/deep/c.tsx",
            "node_modules/react/index.js",
        ]);
        let source = "import React from 'react';\nimport { a } from './a.js';\nimport lib from \"./lib\";\nconst b = require('./b');\nexport * from './deep/c';\n";
        assert_eq!(
            imported_files("src/main.ts", source, &r),
            ["src/a.ts", "src/lib/index.ts", "src/b.js", "src/deep/c.tsx"]
        );
    }

    #[test]
    fn go_packages_are_directories() {
        let r = repo(&[
            "go.mod",
            "internal/store/store.go",
            "internal/store/store_test.go",
            "internal/store/sql.go",
            "cmd/app/main.go",
        ]);
        let source =
            "package main\n\nimport (\n\t\"fmt\"\n\t\"github.com/acme/app/internal/store\"\n)\n";
        assert_eq!(
            imported_files("cmd/app/main.go", source, &r),
            ["internal/store/sql.go", "internal/store/store.go"]
        );
        assert_eq!(
            imported_files(
                "x.go",
                "import \"github.com/acme/app/internal/store\"\n",
                &r
            )
            .len(),
            2
        );
    }

    #[test]
    fn java_classes_and_c_includes() {
        let r = repo(&[
            "src/main/java/com/acme/Store.java",
            "src/main/java/com/acme/util/Strings.java",
            "lib/net.h",
            "src/util.h",
        ]);
        let java_src = "package com.acme;\nimport java.util.List;\nimport com.acme.util.Strings;\nimport static com.acme.Store.open;\nimport com.acme.*;\n";
        assert_eq!(
            imported_files("src/main/java/com/acme/App.java", java_src, &r),
            [
                "src/main/java/com/acme/util/Strings.java",
                "src/main/java/com/acme/Store.java"
            ]
        );
        let c_src = "#include <stdio.h>\n#include \"util.h\"\n# include \"net.h\"\n#include \"missing.h\"\n";
        assert_eq!(
            imported_files("src/main.c", c_src, &r),
            ["src/util.h", "lib/net.h"]
        );
    }

    #[test]
    fn odd_input_finds_nothing_and_never_panics() {
        let r = repo(&["a.py"]);
        for (path, src) in [
            (
                "x.rs",
                "use ;\nuse crate::;\nuse {a, b};\nmod ;\nuse crate::{{}}};",
            ),
            ("x.py", "from import\nfrom ....... import x\nimport ,,,\n"),
            (
                "x.ts",
                "import '\nimport \"\"\nrequire('../../../../../etc/passwd')",
            ),
            ("x.go", "import (\n\"\"\nimport \"/\""),
            ("x.c", "#include \"\n#include \"../../x.h\""),
            ("x.java", "import ;\nimport static ;"),
            ("README.md", "import a"),
        ] {
            assert!(imported_files(path, src, &r).is_empty(), "{path}");
        }
        assert_eq!(normalise("a/../../b"), "a/../../b");
        assert_eq!(normalise("a/./b/../c"), "a/c");
    }
}
