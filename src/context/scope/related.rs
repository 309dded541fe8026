//! Related code: the names a change calls, what each file defines, what each file imports,
//! and where an import's file may sit in the repository.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use tree_sitter::{Node, Point, Query, QueryCursor, StreamingIterator};

use super::grammar::to_line;
use super::{GrammarError, Language, ScopeKind, SourceFile};

/// A function, method or type a file defines, so the builder can find the definitions of
/// the names a change calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The bare name a call would use: `parse` for `impl Parser { fn parse }`.
    pub name: String,
    pub kind: ScopeKind,
    /// The type or module it belongs to, if any: `Parser`.
    pub container: Option<String>,
    /// First line, 1-based, doc comments and attributes included.
    pub start: u32,
    /// Last line, 1-based, inclusive.
    pub end: u32,
}

/// One import of a file, as the file writes it, except that Rust paths relative to the
/// current module (`self::`, `super::`, a module the file declares) are rewritten as
/// `crate::` paths, since the file's own path is known here and nowhere later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// `crate::diff::Hunk`, `..models`, `./util`, `github.com/gin-gonic/gin/binding`,
    /// `com.google.gson.Gson`, `fmt/core.h`.
    pub target: String,
    pub kind: ImportKind,
    /// The line of the import, 1-based.
    pub line: u32,
}

/// What an import brings in, which decides how it maps to files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportKind {
    /// A module, package, class or file.
    Module,
    /// A Rust `mod name;`: the module's own file.
    ModDeclaration,
    /// A Java `import static`: a member of the named class.
    StaticMember,
    /// A C/C++ `#include "…"` (system `<…>` includes are left out).
    Include,
}

/// The names of the functions, methods and constructors called on `lines` (1-based,
/// inclusive), once each, in order of first call.
pub fn symbols_called(path: &str, source: &str, lines: RangeInclusive<u32>) -> Vec<String> {
    SourceFile::parse(path, source).symbols_called(lines)
}

/// The functions, methods and types defined at top level or as members in the file at
/// `path`; functions nested in functions are left out, as nothing outside can call them.
pub fn definitions(path: &str, source: &str) -> Vec<Definition> {
    SourceFile::parse(path, source).definitions()
}

/// What the file at `path` imports, in source order.
pub fn imports(path: &str, source: &str) -> Vec<Import> {
    SourceFile::parse(path, source).imports()
}

/// Repository paths where the file an import refers to may be, most likely first. A path
/// ending in `/` is a directory: a Go package, or a Java wildcard import. Imports of outside
/// packages and modules give none or only paths that will not exist; the caller keeps the
/// candidates that exist in the repository tree.
pub fn import_candidates(importer: &str, import: &Import) -> Vec<String> {
    let Some(language) = Language::from_path(importer) else {
        return Vec::new();
    };
    let mut candidates = match language {
        Language::Rust => rust_candidates(importer, &import.target, import.kind),
        Language::Python => python_candidates(importer, &import.target),
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            script_candidates(importer, &import.target, language)
        }
        Language::Go => go_candidates(importer, &import.target),
        Language::Java => java_candidates(importer, &import.target, import.kind),
        Language::C | Language::Cpp => include_candidates(importer, &import.target),
    };
    let mut seen = HashSet::new();
    candidates.retain(|candidate| candidate != importer && seen.insert(candidate.clone()));
    candidates
}

impl SourceFile<'_> {
    /// See [`symbols_called`].
    pub fn symbols_called(&self, lines: RangeInclusive<u32>) -> Vec<String> {
        let (Some(language), Some(tree)) = (self.language, &self.tree) else {
            return Vec::new();
        };
        let Some((start, end)) = self.clamp(&lines) else {
            return Vec::new();
        };
        let Some(query) = calls_query(language) else {
            return Vec::new();
        };
        let first_row = start as usize - 1;
        let last_row = end as usize - 1;
        let mut cursor = QueryCursor::new();
        cursor.set_point_range(Point::new(first_row, 0)..Point::new(last_row + 1, 0));
        let capture_names = query.capture_names();
        let mut names: Vec<String> = Vec::new();
        let mut matches = cursor.matches(query, tree.root_node(), self.source.as_bytes());
        while let Some(found) = matches.next() {
            for capture in found.captures() {
                let node = capture.node;
                let row = node.start_position().row;
                if row < first_row || row > last_row {
                    continue;
                }
                let keep = match capture_names.get(capture.index as usize).copied() {
                    Some("name") => true,
                    Some("component") => self
                        .node_text(node)
                        .starts_with(|c: char| c.is_ascii_uppercase()),
                    Some("macro_call") => is_call_in_token_tree(node),
                    _ => false,
                };
                let name = self.node_text(node);
                if keep && !name.is_empty() && !names.iter().any(|known| known == name) {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    /// See [`definitions`].
    pub fn definitions(&self) -> Vec<Definition> {
        let mut found = Vec::new();
        for (index, scope) in self.scopes.iter().enumerate() {
            let defines = matches!(
                scope.kind,
                ScopeKind::Function
                    | ScopeKind::Method
                    | ScopeKind::Class
                    | ScopeKind::Struct
                    | ScopeKind::Enum
                    | ScopeKind::Trait
                    | ScopeKind::Interface
            );
            if !defines || scope.anonymous || scope.name.is_empty() || self.in_function(index) {
                continue;
            }
            let container = scope.container.clone().or_else(|| {
                scope
                    .parent
                    .map(|parent| self.scopes[parent].name.clone())
                    .filter(|name| !name.is_empty())
            });
            found.push(Definition {
                name: scope.name.clone(),
                kind: scope.kind,
                container,
                start: scope.start,
                end: scope.end,
            });
        }
        found
    }

    fn in_function(&self, index: usize) -> bool {
        let mut at = self.scopes[index].parent;
        while let Some(parent) = at {
            let scope = &self.scopes[parent];
            if scope.kind.is_function() && !scope.anonymous {
                return true;
            }
            at = scope.parent;
        }
        false
    }

    /// See [`imports`].
    pub fn imports(&self) -> Vec<Import> {
        let (Some(language), Some(tree)) = (self.language, &self.tree) else {
            return Vec::new();
        };
        let root = tree.root_node();
        let rust_module = match language {
            Language::Rust => RustModule::of(self.path).map(|mut module| {
                module.declared = declared_modules(root, self.source);
                module
            }),
            _ => None,
        };
        let mut found = Vec::new();
        let mut cursor = root.walk();
        loop {
            let node = cursor.node();
            let before = found.len();
            match language {
                Language::Rust => self.rust_imports(node, rust_module.as_ref(), &mut found),
                Language::Python => self.python_imports(node, &mut found),
                Language::JavaScript | Language::TypeScript | Language::Tsx => {
                    self.script_imports(node, &mut found)
                }
                Language::Go => self.go_imports(node, &mut found),
                Language::Java => self.java_imports(node, &mut found),
                Language::C | Language::Cpp => self.include_imports(node, &mut found),
            }
            // Imports hold no imports; skipping their insides saves the walk.
            if found.len() == before && cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return found
                        .into_iter()
                        .map(|(target, kind, line)| Import { target, kind, line })
                        .collect();
                }
            }
        }
    }

    fn node_text(&self, node: Node) -> &str {
        self.source.get(node.byte_range()).unwrap_or_default()
    }

    fn field_text(&self, node: Node, name: &str) -> Option<&str> {
        node.child_by_field_name(name)
            .map(|child| self.node_text(child))
    }

    fn rust_imports(
        &self,
        node: Node,
        module: Option<&RustModule>,
        found: &mut Vec<(String, ImportKind, u32)>,
    ) {
        let line = to_line(node.start_position().row);
        match node.kind() {
            "use_declaration" => {
                let Some(argument) = node.child_by_field_name("argument") else {
                    return;
                };
                let inline = inline_modules(node, self.source);
                let mut paths = Vec::new();
                self.expand_use_tree(argument, "", &mut paths);
                for path in paths {
                    let target = match module {
                        Some(module) => module.absolute(&path, &inline),
                        None => path,
                    };
                    found.push((target, ImportKind::Module, line));
                }
            }
            "mod_item" if node.child_by_field_name("body").is_none() => {
                let Some(name) = self.field_text(node, "name") else {
                    return;
                };
                let target = match module {
                    Some(module) => {
                        let mut segments = module.segments.clone();
                        segments.extend(inline_modules(node, self.source));
                        segments.push(name.to_owned());
                        format!("crate::{}", segments.join("::"))
                    }
                    None => name.to_owned(),
                };
                found.push((target, ImportKind::ModDeclaration, line));
            }
            _ => {}
        }
    }

    /// Flattens a use tree: `a::{b, c::{d, e as f}}` gives `a::b`, `a::c::d`, `a::c::e`.
    fn expand_use_tree(&self, node: Node, prefix: &str, paths: &mut Vec<String>) {
        let join = |tail: &str| {
            if prefix.is_empty() {
                tail.to_owned()
            } else if tail == "self" {
                prefix.to_owned()
            } else {
                format!("{prefix}::{tail}")
            }
        };
        match node.kind() {
            "scoped_use_list" => {
                let path = self.field_text(node, "path").map(join);
                let prefix = path.unwrap_or_else(|| prefix.to_owned());
                if let Some(list) = node.child_by_field_name("list") {
                    self.expand_use_tree(list, &prefix, paths);
                }
            }
            "use_list" => {
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    self.expand_use_tree(child, prefix, paths);
                }
            }
            "use_as_clause" => {
                if let Some(path) = node.child_by_field_name("path") {
                    self.expand_use_tree(path, prefix, paths);
                }
            }
            "use_wildcard" => {
                if let Some(path) = node.named_child(0) {
                    self.expand_use_tree(path, prefix, paths);
                } else if !prefix.is_empty() {
                    paths.push(prefix.to_owned());
                }
            }
            "line_comment" | "block_comment" => {}
            _ => {
                let text = self.node_text(node);
                if !text.is_empty() {
                    paths.push(join(text));
                }
            }
        }
    }

    fn python_imports(&self, node: Node, found: &mut Vec<(String, ImportKind, u32)>) {
        let line = to_line(node.start_position().row);
        let module_of = |name: Node| -> Option<String> {
            let name = match name.kind() {
                "aliased_import" => name.child_by_field_name("name")?,
                _ => name,
            };
            Some(self.node_text(name).to_owned())
        };
        match node.kind() {
            "import_statement" => {
                let mut cursor = node.walk();
                for name in node.children_by_field_name("name", &mut cursor) {
                    if let Some(module) = module_of(name) {
                        found.push((module, ImportKind::Module, line));
                    }
                }
            }
            "import_from_statement" => {
                let Some(module) = self.field_text(node, "module_name") else {
                    return;
                };
                if !module.is_empty() && module.chars().all(|c| c == '.') {
                    // `from . import a, b`: the names are the modules.
                    let mut cursor = node.walk();
                    for name in node.children_by_field_name("name", &mut cursor) {
                        if let Some(name) = module_of(name) {
                            found.push((format!("{module}{name}"), ImportKind::Module, line));
                        }
                    }
                } else {
                    found.push((module.to_owned(), ImportKind::Module, line));
                }
            }
            _ => {}
        }
    }

    fn script_imports(&self, node: Node, found: &mut Vec<(String, ImportKind, u32)>) {
        let line = to_line(node.start_position().row);
        let source = match node.kind() {
            "import_statement" | "export_statement" | "import_require_clause" => {
                node.child_by_field_name("source")
            }
            "call_expression" => {
                let callee = node.child_by_field_name("function");
                let requires = callee.is_some_and(|callee| {
                    callee.kind() == "import"
                        || (callee.kind() == "identifier" && self.node_text(callee) == "require")
                });
                node.child_by_field_name("arguments")
                    .and_then(|arguments| arguments.named_child(0))
                    .filter(|first| requires && first.kind() == "string")
            }
            _ => None,
        };
        if let Some(source) = source {
            let target = unquote(self.node_text(source));
            if !target.is_empty() {
                found.push((target.to_owned(), ImportKind::Module, line));
            }
        }
    }

    fn go_imports(&self, node: Node, found: &mut Vec<(String, ImportKind, u32)>) {
        if node.kind() != "import_spec" {
            return;
        }
        if let Some(path) = self.field_text(node, "path") {
            let line = to_line(node.start_position().row);
            found.push((unquote(path).to_owned(), ImportKind::Module, line));
        }
    }

    fn java_imports(&self, node: Node, found: &mut Vec<(String, ImportKind, u32)>) {
        if node.kind() != "import_declaration" {
            return;
        }
        let line = to_line(node.start_position().row);
        let mut cursor = node.walk();
        let is_static = node
            .children(&mut cursor)
            .any(|child| child.kind() == "static");
        let mut target = String::new();
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            match child.kind() {
                "scoped_identifier" | "identifier" => target.push_str(self.node_text(child)),
                "asterisk" => target.push_str(".*"),
                _ => {}
            }
        }
        if !target.is_empty() {
            let kind = if is_static {
                ImportKind::StaticMember
            } else {
                ImportKind::Module
            };
            found.push((target, kind, line));
        }
    }

    fn include_imports(&self, node: Node, found: &mut Vec<(String, ImportKind, u32)>) {
        if node.kind() != "preproc_include" {
            return;
        }
        let Some(path) = node.child_by_field_name("path") else {
            return;
        };
        if path.kind() == "string_literal" {
            let target = unquote(self.node_text(path));
            if !target.is_empty() {
                let line = to_line(node.start_position().row);
                found.push((target.to_owned(), ImportKind::Include, line));
            }
        }
    }
}

/// Rust macros' arguments are token trees, not expressions: `format!("{}", name(x))` holds a
/// call only as an identifier right before a parenthesised tree.
fn is_call_in_token_tree(identifier: Node) -> bool {
    identifier.next_sibling().is_some_and(|next| {
        next.kind() == "token_tree"
            && next.start_byte() == identifier.end_byte()
            && next.child(0).is_some_and(|open| open.kind() == "(")
    })
}

fn unquote(text: &str) -> &str {
    text.trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`')
}

/// The call-site query per language: compiled once per process, as compiling costs more
/// than running it on a file.
pub(super) fn calls_query(language: Language) -> Option<&'static Query> {
    static QUERIES: [OnceLock<Option<Query>>; Language::ALL.len()] =
        [const { OnceLock::new() }; Language::ALL.len()];
    QUERIES[language.index()]
        .get_or_init(
            || match Query::new(&language.grammar(), calls_pattern(language)) {
                Ok(query) => Some(query),
                Err(source) => {
                    let error = GrammarError::Query {
                        language: language.name(),
                        purpose: "call",
                        source,
                    };
                    tracing::error!(%error, "calls will not be listed for this language");
                    None
                }
            },
        )
        .as_ref()
}

/// `@name` captures a called name; `@component` a JSX element, a call when capitalised;
/// `@macro_call` an identifier in a Rust macro's arguments, a call when `(` follows.
fn calls_pattern(language: Language) -> &'static str {
    match language {
        Language::Rust => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (field_expression field: (field_identifier) @name))
            (call_expression function: (scoped_identifier name: (identifier) @name))
            (call_expression function: (generic_function function: (identifier) @name))
            (call_expression function: (generic_function
                function: (field_expression field: (field_identifier) @name)))
            (call_expression function: (generic_function
                function: (scoped_identifier name: (identifier) @name)))
            (token_tree (identifier) @macro_call)
            "#
        }
        Language::Python => {
            r#"
            (call function: (identifier) @name)
            (call function: (attribute attribute: (identifier) @name))
            "#
        }
        Language::JavaScript | Language::Tsx => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (member_expression property: (property_identifier) @name))
            (call_expression function: (member_expression
                property: (private_property_identifier) @name))
            (new_expression constructor: (identifier) @name)
            (new_expression constructor: (member_expression property: (property_identifier) @name))
            (jsx_opening_element name: (identifier) @component)
            (jsx_self_closing_element name: (identifier) @component)
            "#
        }
        Language::TypeScript => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (member_expression property: (property_identifier) @name))
            (call_expression function: (member_expression
                property: (private_property_identifier) @name))
            (new_expression constructor: (identifier) @name)
            (new_expression constructor: (member_expression property: (property_identifier) @name))
            "#
        }
        Language::Go => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (selector_expression field: (field_identifier) @name))
            "#
        }
        Language::Java => {
            r#"
            (method_invocation name: (identifier) @name)
            (object_creation_expression type: (type_identifier) @name)
            (object_creation_expression type: (generic_type (type_identifier) @name))
            "#
        }
        Language::C => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (field_expression field: (field_identifier) @name))
            "#
        }
        Language::Cpp => {
            r#"
            (call_expression function: (identifier) @name)
            (call_expression function: (field_expression field: (field_identifier) @name))
            (call_expression function: (qualified_identifier name: (identifier) @name))
            (call_expression function: (qualified_identifier
                name: (qualified_identifier name: (identifier) @name)))
            (call_expression function: (template_function name: (identifier) @name))
            (call_expression function: (qualified_identifier
                name: (template_function name: (identifier) @name)))
            (call_expression function: (field_expression
                field: (template_method name: (field_identifier) @name)))
            "#
        }
    }
}

/// Where a Rust file sits in its crate, to turn relative `use` paths into `crate::` paths.
#[derive(Debug, Clone)]
struct RustModule {
    /// The directory whose files are the crate root's modules: `axum-core/src/`.
    crate_dir: String,
    /// The file's module path below the crate root: `["cmd", "get"]` for `src/cmd/get.rs`.
    segments: Vec<String>,
    /// Modules the file declares at its top level, which its `use` paths may start with.
    declared: Vec<String>,
}

impl RustModule {
    /// Cargo's layout: `src/lib.rs`, `src/main.rs`, `src/bin/*.rs` and the files directly in
    /// `tests/`, `examples/` and `benches/` are crate roots.
    fn of(path: &str) -> Option<RustModule> {
        let components: Vec<&str> = path.split('/').collect();
        let (file, dirs) = components.split_last()?;
        let stem = file.strip_suffix(".rs")?;
        let root = |dir: &[&str]| RustModule {
            crate_dir: dir.iter().map(|part| format!("{part}/")).collect(),
            segments: Vec::new(),
            declared: Vec::new(),
        };
        if let Some(at) = dirs.iter().rposition(|&dir| dir == "src") {
            let inside = &dirs[at + 1..];
            let crate_root = match inside {
                [] => matches!(stem, "lib" | "main"),
                ["bin"] => true,
                ["bin", _] => stem == "main",
                _ => false,
            };
            if crate_root {
                return Some(root(dirs));
            }
            let mut module = root(&dirs[..=at]);
            module.segments = inside.iter().map(|&dir| dir.to_owned()).collect();
            if stem != "mod" {
                module.segments.push(stem.to_owned());
            }
            return Some(module);
        }
        match dirs.last() {
            Some(&"tests" | &"examples" | &"benches") => Some(root(dirs)),
            _ => None,
        }
    }

    /// `self::a`, `super::a`, or `a` for a module the file declares, as `crate::…::a`; other
    /// paths (external crates, `crate::` already) as they are.
    fn absolute(&self, path: &str, inline: &[String]) -> String {
        let mut parts = path.split("::").peekable();
        let mut base: Vec<String> = self.segments.clone();
        base.extend(inline.iter().cloned());
        match parts.peek().copied() {
            Some("self") => {
                parts.next();
            }
            Some("super") => {
                while parts.peek() == Some(&"super") {
                    parts.next();
                    base.pop();
                }
            }
            Some(first) if self.declared.iter().any(|declared| declared == first) => {}
            _ => return path.to_owned(),
        }
        base.extend(parts.map(str::to_owned));
        if base.is_empty() {
            "crate".to_owned()
        } else {
            format!("crate::{}", base.join("::"))
        }
    }
}

/// Names of the inline `mod name { … }` blocks around a node, outermost first.
fn inline_modules(node: Node, source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = node.parent();
    while let Some(parent) = at {
        if parent.kind() == "mod_item"
            && let Some(name) = parent.child_by_field_name("name")
        {
            names.push(source.get(name.byte_range()).unwrap_or_default().to_owned());
        }
        at = parent.parent();
    }
    names.reverse();
    names
}

/// The modules a Rust file declares at top level, inline or in their own files.
fn declared_modules(root: Node, source: &str) -> Vec<String> {
    let mut cursor = root.walk();
    root.named_children(&mut cursor)
        .filter(|child| child.kind() == "mod_item")
        .filter_map(|module| module.child_by_field_name("name"))
        .map(|name| source.get(name.byte_range()).unwrap_or_default().to_owned())
        .collect()
}

fn rust_candidates(importer: &str, target: &str, kind: ImportKind) -> Vec<String> {
    let Some(module) = RustModule::of(importer) else {
        return Vec::new();
    };
    let Some(rest) = target.strip_prefix("crate::") else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest
        .split("::")
        .filter(|segment| !matches!(*segment, "*" | "self" | ""))
        .collect();
    // A `mod` declaration names its module exactly; a `use` path's last segments may name
    // items, not modules: try every prefix, longest first.
    let shortest = match kind {
        ImportKind::ModDeclaration => segments.len(),
        _ => 1,
    };
    let mut candidates = Vec::new();
    for len in (shortest.max(1)..=segments.len()).rev() {
        let module_path = segments[..len].join("/");
        candidates.push(format!("{}{module_path}.rs", module.crate_dir));
        candidates.push(format!("{}{module_path}/mod.rs", module.crate_dir));
    }
    candidates
}

/// The directory of a repository path, without a trailing slash; empty at the root.
fn directory(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// `dir` joined with a relative path, `.` and `..` resolved; `None` above the root.
fn join_relative(dir: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|part| !part.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn prefixed(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    }
}

fn python_candidates(importer: &str, target: &str) -> Vec<String> {
    let dots = target.chars().take_while(|&c| c == '.').count();
    let module_path = target[dots..].replace('.', "/");
    let as_files = |base: &str| -> Vec<String> {
        if module_path.is_empty() {
            vec![prefixed(base, "__init__.py")]
        } else {
            vec![
                prefixed(base, &format!("{module_path}.py")),
                prefixed(base, &format!("{module_path}/__init__.py")),
            ]
        }
    };
    if dots == 0 {
        // An absolute import is in this repository only if its package is: at the root or
        // under `src/`.
        let mut candidates = as_files("");
        candidates.extend(as_files("src"));
        return candidates;
    }
    let mut base = directory(importer).to_owned();
    for _ in 1..dots {
        match base.rsplit_once('/') {
            Some((parent, _)) => base = parent.to_owned(),
            None if !base.is_empty() => base.clear(),
            None => return Vec::new(),
        }
    }
    as_files(&base)
}

const SCRIPT_EXTENSIONS: [&str; 8] = ["ts", "tsx", "d.ts", "js", "jsx", "mjs", "cjs", "mts"];

fn script_candidates(importer: &str, target: &str, language: Language) -> Vec<String> {
    let relative =
        target == "." || target == ".." || target.starts_with("./") || target.starts_with("../");
    if !relative {
        return Vec::new();
    }
    let Some(joined) = join_relative(directory(importer), target) else {
        return Vec::new();
    };
    let extensions: Vec<&str> = if language == Language::JavaScript {
        vec!["js", "jsx", "mjs", "cjs", "ts", "tsx"]
    } else {
        SCRIPT_EXTENSIONS.to_vec()
    };
    let file = joined.rsplit('/').next().unwrap_or(&joined);
    if let Some((stem, extension)) = file.rsplit_once('.')
        && !stem.is_empty()
    {
        let mut candidates = vec![joined.clone()];
        // TypeScript's ESM style imports `./util.js` for the source `./util.ts`.
        if let Some(base) = joined.strip_suffix(&format!(".{extension}"))
            && matches!(extension, "js" | "jsx" | "mjs" | "cjs")
            && language != Language::JavaScript
        {
            candidates.extend(["ts", "tsx", "mts", "cts"].map(|ts| format!("{base}.{ts}")));
        }
        if !matches!(
            extension,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "json"
        ) {
            // `./config.service` is a module name with a dot, not a file with an extension.
            candidates.extend(extensions.iter().map(|ext| format!("{joined}.{ext}")));
        }
        return candidates;
    }
    // A directory: its index file.
    let stem = if target.ends_with('/') || target == "." || target == ".." {
        None
    } else {
        Some(joined.as_str()).filter(|joined| !joined.is_empty())
    };
    let mut candidates: Vec<String> = match stem {
        Some(stem) => extensions
            .iter()
            .map(|ext| format!("{stem}.{ext}"))
            .collect(),
        None => Vec::new(),
    };
    candidates.extend(
        extensions
            .iter()
            .map(|ext| prefixed(&joined, &format!("index.{ext}"))),
    );
    candidates
}

/// Go imports name packages, i.e. directories, by module path, and the module path is in
/// `go.mod`, which this function does not see: every tail of the import path is a candidate
/// directory, longest first. Paths without a dot in their first element are the standard
/// library.
fn go_candidates(importer: &str, target: &str) -> Vec<String> {
    if target.starts_with("./") || target.starts_with("../") {
        return join_relative(directory(importer), target)
            .map(|dir| vec![format!("{dir}/")])
            .unwrap_or_default();
    }
    let parts: Vec<&str> = target.split('/').filter(|part| !part.is_empty()).collect();
    if !parts.first().is_some_and(|first| first.contains('.')) {
        return Vec::new();
    }
    (1..parts.len())
        .map(|skip| format!("{}/", parts[skip..].join("/")))
        .collect()
}

/// Java files sit at their package path under a source root; the importer's own path shows
/// where that root is.
fn java_candidates(importer: &str, target: &str, kind: ImportKind) -> Vec<String> {
    let mut parts: Vec<&str> = target.split('.').collect();
    if kind == ImportKind::StaticMember {
        parts.pop();
    }
    if matches!(parts.first(), None | Some(&"java" | &"javax")) {
        return Vec::new();
    }
    let importer_dir = directory(importer);
    let mut roots: Vec<String> = Vec::new();
    if let Some((before, _)) = importer_dir
        .split_once("src/main/java/")
        .or_else(|| importer_dir.split_once("src/test/java/"))
    {
        roots.push(format!("{before}src/main/java/"));
        if importer_dir.contains("src/test/java/") {
            roots.push(format!("{before}src/test/java/"));
        }
    } else {
        // The importer's own package shares its first elements with most imports: where
        // they meet in its path is the source root.
        let dirs: Vec<&str> = importer_dir.split('/').collect();
        let shared = |at: usize| {
            dirs[at..]
                .iter()
                .zip(&parts)
                .take_while(|(dir, part)| dir == part)
                .count()
        };
        match (0..dirs.len())
            .find(|&at| shared(at) >= 2 || (shared(at) >= 1 && at + 1 == dirs.len()))
        {
            Some(at) => roots.push(dirs[..at].iter().map(|dir| format!("{dir}/")).collect()),
            None => roots.extend(["src/", ""].map(str::to_owned)),
        }
    }
    let mut candidates = Vec::new();
    for root in &roots {
        if parts.last() == Some(&"*") {
            candidates.push(format!("{root}{}/", parts[..parts.len() - 1].join("/")));
            continue;
        }
        candidates.push(format!("{root}{}.java", parts.join("/")));
        // `a.b.Outer.Inner` is in `Outer.java`.
        if parts.len() > 2 {
            candidates.push(format!("{root}{}.java", parts[..parts.len() - 1].join("/")));
        }
    }
    candidates
}

/// `#include "x.h"` is looked up beside the including file first, then on the include
/// paths projects most often use.
fn include_candidates(importer: &str, target: &str) -> Vec<String> {
    let mut candidates = Vec::new();
    if let Some(beside) = join_relative(directory(importer), target) {
        candidates.push(beside);
    }
    if !target.starts_with("../") {
        for root in ["", "include", "src"] {
            if let Some(path) = join_relative(root, target) {
                candidates.push(path);
            }
        }
    }
    candidates
}
