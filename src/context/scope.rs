//! The code around a change, and the code it leans on: enclosing scopes of changed lines
//! (tree-sitter, with an indentation fallback) and the names, definitions and imports the
//! context builder uses to pull related code from the PR's other files.
//!
//! What we chose, and why (issue 4):
//! - A change is shown inside the smallest function, method, class, impl or type that holds
//!   all of it, whole, because a reviewer judges a line by the function it lives in. A scope
//!   longer than `max_lines` is cut to a window of `max_lines` around the change, named after
//!   the scope, so one edit in a 2,000-line function cannot eat the budget. Code outside any
//!   scope (imports, top-level statements) gets `extra` lines around it.
//! - Doc comments, attributes, decorators and `export`/`template<>` wrappers right above a
//!   definition belong to it: they say what the code is meant to do.
//! - Anonymous functions (JS callbacks, Go func literals) are scopes only outside named
//!   functions: inside a method the method is the unit worth showing, while at top level
//!   (`describe`/`it` suites, route handlers) the callback is all there is.
//! - Related code is matched by name, not by type resolution: [`symbols_called`] lists the
//!   names called on the changed lines and [`definitions`] what a file defines; the builder
//!   pulls the definitions, in the PR's own files, of the names the change calls. It is cheap
//!   and works the same in every language; a same-named function elsewhere costs tokens, never
//!   a wrong finding. Real resolution would need a language server per language.
//! - Imports are turned into candidate paths only where the import itself says where the file
//!   is: relative JS/TS and Python imports, Rust `crate`/`self`/`super` paths and `mod`
//!   declarations, local C/C++ includes, Java classes under the importer's source root, Go
//!   packages by directory. The builder keeps the candidates that exist in the repository;
//!   imports of outside packages give none, as their code is not in the repository.
//! - Parsers are kept per thread and queries compiled once per process: both are costly to
//!   build and a PR touches thousands of files. Nothing here panics on broken source:
//!   tree-sitter recovers with error nodes and the scopes it still finds are used; where it
//!   finds none in an error region, or gives no tree at all, the indentation fallback answers.

mod fallback;
mod grammar;
mod related;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::ops::{ControlFlow, RangeInclusive};
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser, Tree};

pub use related::{
    Definition, Import, ImportKind, definitions, import_candidates, imports, symbols_called,
};

/// A language we parse with tree-sitter. Anything else gets the indentation fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    /// TypeScript with JSX: its own grammar, as `<T>x` means different things in each.
    Tsx,
    Go,
    Java,
    C,
    Cpp,
}

impl Language {
    const ALL: [Language; 9] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::Java,
        Language::C,
        Language::Cpp,
    ];

    /// The language of a repository path, from its extension. `.h` is taken as C: C++
    /// headers mostly parse as C too, and C code would not parse as C++ where it uses C++
    /// keywords as names.
    pub fn from_path(path: &str) -> Option<Language> {
        let file = path.rsplit('/').next().unwrap_or(path);
        let (_, ext) = file.rsplit_once('.')?;
        let language = match ext.to_ascii_lowercase().as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "js" | "jsx" | "mjs" | "cjs" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" | "tpp" => {
                Language::Cpp
            }
            _ => return None,
        };
        Some(language)
    }

    /// The language of a file, from its path and, for `.h` headers, its text: a header
    /// that uses C++ (namespaces, templates, classes with access labels, `std::`) parses
    /// far better as C++ than as C.
    pub fn detect(path: &str, source: &str) -> Option<Language> {
        let language = Language::from_path(path)?;
        let header = path.to_ascii_lowercase().ends_with(".h");
        if language == Language::C && header && looks_like_cpp(source) {
            return Some(Language::Cpp);
        }
        Some(language)
    }

    /// A name for logs and prompts.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::TypeScript => "TypeScript",
            Language::Tsx => "TSX",
            Language::Go => "Go",
            Language::Java => "Java",
            Language::C => "C",
            Language::Cpp => "C++",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
            Language::C => tree_sitter_c::LANGUAGE.into(),
            Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        }
    }
}

/// Markers that C never contains outside comments and strings, or hardly ever.
fn looks_like_cpp(source: &str) -> bool {
    [
        "namespace ",
        "template <",
        "template<",
        "std::",
        "public:",
        "private:",
        "nullptr",
        "constexpr",
    ]
    .iter()
    .any(|marker| source.contains(marker))
}

/// Why a grammar could not be used; logged, and the file falls back to indentation.
#[derive(Debug, thiserror::Error)]
enum GrammarError {
    #[error("the {language} grammar does not fit this tree-sitter version: {source}")]
    Incompatible {
        language: &'static str,
        source: tree_sitter::LanguageError,
    },
    #[error("the {language} {purpose} query does not compile: {source}")]
    Query {
        language: &'static str,
        purpose: &'static str,
        source: tree_sitter::QueryError,
    },
}

/// What kind of code a [`Scope`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Function,
    /// A function inside a class, impl, trait or interface.
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    /// A Rust `impl` block.
    Impl,
    /// A module or namespace with a body.
    Module,
    /// A block found by indentation, in a language we do not parse.
    Block,
    /// Part of a scope too long to show whole: `max_lines` around the change.
    Window,
    /// The change and `extra` lines around it, where no scope holds it.
    TopLevel,
}

impl ScopeKind {
    /// Scopes that are code to run, as opposed to containers of definitions.
    fn is_function(self) -> bool {
        matches!(self, ScopeKind::Function | ScopeKind::Method)
    }

    /// Kinds whose functions are methods.
    fn holds_methods(self) -> bool {
        matches!(
            self,
            ScopeKind::Class
                | ScopeKind::Struct
                | ScopeKind::Enum
                | ScopeKind::Trait
                | ScopeKind::Interface
                | ScopeKind::Impl
        )
    }
}

/// Lines of the head file to show around a change, and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// First line, 1-based.
    pub start: u32,
    /// Last line, 1-based, inclusive.
    pub end: u32,
    pub kind: ScopeKind,
    /// What the lines are, as a reader would name them: `fn parse_header`, `class Foo`,
    /// `func (e *Engine) ServeHTTP`; for a window, the scope's label and its full extent.
    pub label: String,
    /// Labels of the scopes around this one, outermost first (`impl Parser` for a method).
    pub outer: Vec<String>,
}

impl Scope {
    /// The label with its outer scopes, for a snippet header: `impl Parser > fn parse`.
    pub fn header(&self) -> String {
        let mut header = String::new();
        for outer in &self.outer {
            header.push_str(outer);
            header.push_str(" > ");
        }
        header.push_str(&self.label);
        header
    }

    /// Windows and top-level excerpts already carry their context lines; whole scopes get
    /// `extra` more so the model sees what sits right around them.
    fn takes_extra(&self) -> bool {
        !matches!(self.kind, ScopeKind::Window | ScopeKind::TopLevel)
    }
}

/// How much to show around a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeOptions {
    /// Lines added before and after every scope, and around top-level changes.
    pub extra: u32,
    /// The longest scope shown whole; a longer one is cut to a window this long.
    pub max_lines: u32,
}

impl Default for ScopeOptions {
    fn default() -> Self {
        ScopeOptions {
            extra: 3,
            max_lines: 200,
        }
    }
}

/// A run of head-file lines to show the model, with what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// First line, 1-based.
    pub start: u32,
    /// Last line, 1-based, inclusive.
    pub end: u32,
    /// The scopes shown, `; `-separated: `impl Parser > fn parse; fn helper`.
    pub header: String,
}

/// The enclosing scopes of one changed line range (1-based, inclusive) of the head file at
/// `path`. Usually one scope; a range that spills out of one scope into the next, or out of a
/// scope into top-level code, gets a scope for each edge plus the change itself.
pub fn enclosing_scopes(
    path: &str,
    source: &str,
    lines: RangeInclusive<u32>,
    options: &ScopeOptions,
) -> Vec<Scope> {
    SourceFile::parse(path, source).enclosing_scopes(lines, options)
}

/// The snippets to show for all the changed ranges of one file: every range's scopes with
/// `extra` lines around them, clamped to the file, sorted and merged where they overlap or
/// touch.
pub fn snippets(
    path: &str,
    source: &str,
    changed: &[RangeInclusive<u32>],
    options: &ScopeOptions,
) -> Vec<Snippet> {
    SourceFile::parse(path, source).snippets(changed, options)
}

/// How many syntax errors (error or missing nodes) tree-sitter finds on lines `lines`
/// (1-based, inclusive) of `source`; None for a language Critic does not parse. Used to
/// check that a suggested fix leaves the code parsing as well as it did.
pub fn syntax_errors(path: &str, source: &str, lines: RangeInclusive<u32>) -> Option<usize> {
    let language = Language::detect(path, source)?;
    let tree = parse_tree(language, source)?;
    let root = tree.root_node();
    if !root.has_error() {
        return Some(0);
    }
    let (first, last) = (
        lines.start().saturating_sub(1),
        lines.end().saturating_sub(1),
    );
    let mut errors = 0;
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        let (from, to) = (
            node.start_position().row as u32,
            node.end_position().row as u32,
        );
        let overlaps = from <= last && to >= first;
        if overlaps && (node.is_error() || node.is_missing()) {
            errors += 1;
        }
        // Only subtrees that hold an error and touch the lines are worth entering.
        if overlaps && node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return Some(errors);
            }
        }
    }
}

/// One head file, parsed once and asked many questions: the builder has many hunks per file.
pub struct SourceFile<'a> {
    path: &'a str,
    source: &'a str,
    language: Option<Language>,
    tree: Option<Tree>,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Every scope in the file, in source order; parents before children.
    scopes: Vec<ScopeNode>,
    /// Indices of the scopes no other scope holds.
    roots: Vec<usize>,
}

/// A scope found in the tree, before it is cut to fit.
#[derive(Debug, Clone)]
struct ScopeNode {
    start: u32,
    end: u32,
    kind: ScopeKind,
    label: String,
    /// The bare name, for [`Definition`]s: `parse` for `impl Parser > fn parse`.
    name: String,
    /// The type a method belongs to, where the syntax names it outside any enclosing scope
    /// (Go receivers, C++ `Foo::bar`).
    container: Option<String>,
    /// A callback or other function without a name.
    anonymous: bool,
    parent: Option<usize>,
    children: Vec<usize>,
}

impl ScopeNode {
    fn len(&self) -> u32 {
        self.end - self.start + 1
    }

    fn contains(&self, start: u32, end: u32) -> bool {
        self.start <= start && end <= self.end
    }
}

/// Files past this size are not parsed: the indentation fallback is linear and cheap, and a
/// file this large is generated or vendored more often than not.
const MAX_PARSE_BYTES: usize = 4 << 20;

/// tree-sitter is linear in practice, but a pathological file must not stall a review.
const PARSE_TIME_LIMIT: Duration = Duration::from_secs(2);

thread_local! {
    /// One parser per language per thread, created on first use.
    static PARSERS: RefCell<[Option<Parser>; Language::ALL.len()]> =
        const { RefCell::new([const { None }; Language::ALL.len()]) };
}

/// Parses `source` with the thread's parser for `language`; `None` if the grammar cannot be
/// loaded, the file is too large, or parsing took too long.
fn parse_tree(language: Language, source: &str) -> Option<Tree> {
    if source.len() > MAX_PARSE_BYTES {
        return None;
    }
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let slot = &mut parsers[language.index()];
        if slot.is_none() {
            let mut parser = Parser::new();
            if let Err(source) = parser.set_language(&language.grammar()) {
                let error = GrammarError::Incompatible {
                    language: language.name(),
                    source,
                };
                tracing::error!(%error, "cannot parse; using indentation scopes");
                return None;
            }
            *slot = Some(parser);
        }
        let parser = slot.as_mut()?;
        let bytes = source.as_bytes();
        let deadline = Instant::now() + PARSE_TIME_LIMIT;
        let mut progress = |_: &ParseState| {
            if Instant::now() > deadline {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let options = ParseOptions::new().progress_callback(&mut progress);
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(options),
        );
        if tree.is_none() {
            // A cancelled parse leaves state behind that the next parse would resume.
            parser.reset();
            tracing::warn!(
                language = language.name(),
                bytes = source.len(),
                "parse gave up; using indentation scopes"
            );
        }
        tree
    })
}

impl<'a> SourceFile<'a> {
    /// Parses the file if its language is one we know; never fails, as every question has an
    /// answer without a tree.
    pub fn parse(path: &'a str, source: &'a str) -> SourceFile<'a> {
        let language = Language::detect(path, source);
        let tree = language.and_then(|language| parse_tree(language, source));
        let mut line_starts = vec![0];
        line_starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|&(_, byte)| byte == b'\n')
                .map(|(at, _)| at + 1)
                .filter(|&start| start < source.len()),
        );
        if source.is_empty() {
            line_starts.clear();
        }
        let mut file = SourceFile {
            path,
            source,
            language,
            tree,
            line_starts,
            scopes: Vec::new(),
            roots: Vec::new(),
        };
        if let (Some(language), Some(tree)) = (file.language, file.tree.as_ref()) {
            let scopes = grammar::collect_scopes(language, tree.root_node(), source);
            file.roots = scopes
                .iter()
                .enumerate()
                .filter(|(_, scope)| scope.parent.is_none())
                .map(|(index, _)| index)
                .collect();
            file.scopes = scopes;
        }
        file
    }

    /// The language the file was parsed as, if any.
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// The number of lines; a final newline does not start another.
    pub fn line_count(&self) -> u32 {
        u32::try_from(self.line_starts.len()).unwrap_or(u32::MAX)
    }

    /// The text of lines `start..=end` (1-based), clamped to the file, without the last
    /// line's newline.
    pub fn lines_text(&self, start: u32, end: u32) -> &'a str {
        let count = self.line_count();
        if count == 0 || start > end || start > count {
            return "";
        }
        let start = start.max(1);
        let end = end.min(count);
        let from = self.line_starts[start as usize - 1];
        let to = self
            .line_starts
            .get(end as usize)
            .copied()
            .unwrap_or(self.source.len());
        let text = self.source.get(from..to).unwrap_or_default();
        let text = text.strip_suffix('\n').unwrap_or(text);
        text.strip_suffix('\r').unwrap_or(text)
    }

    /// One line (1-based) without its line ending.
    fn line(&self, line: u32) -> &'a str {
        self.lines_text(line, line)
    }

    /// Clamps a 1-based range to the file; `None` for an empty file or a range past its end.
    fn clamp(&self, lines: &RangeInclusive<u32>) -> Option<(u32, u32)> {
        let count = self.line_count();
        let start = (*lines.start()).max(1);
        let end = (*lines.end()).min(count);
        (count > 0 && start <= end).then_some((start, end))
    }

    /// See [`enclosing_scopes`].
    pub fn enclosing_scopes(
        &self,
        lines: RangeInclusive<u32>,
        options: &ScopeOptions,
    ) -> Vec<Scope> {
        let Some((start, end)) = self.clamp(&lines) else {
            return Vec::new();
        };
        let max_lines = options.max_lines.max(1);
        let innermost = self.innermost(start, end, None);
        if let Some(index) = innermost
            && self.scopes[index].len() <= max_lines
        {
            return vec![self.scope(index)];
        }
        if innermost.is_none() && self.tree_is_unsure_at(start, end) {
            return fallback::enclosing_scopes(self, start, end, options);
        }
        let mut found = Vec::new();
        for edge in [start, end] {
            if let Some(piece) = self.edge_piece(edge, innermost, max_lines)
                && !found.contains(&piece)
            {
                found.push(piece);
            }
        }
        let mut scopes: Vec<Scope> = found.into_iter().map(|index| self.scope(index)).collect();
        scopes.push(match innermost {
            Some(index) => self.window(index, start, end, max_lines),
            None => self.top_level(start, end, options.extra),
        });
        scopes
    }

    /// See [`snippets`].
    pub fn snippets(
        &self,
        changed: &[RangeInclusive<u32>],
        options: &ScopeOptions,
    ) -> Vec<Snippet> {
        let count = self.line_count();
        let mut shown: Vec<(u32, u32, String)> = Vec::new();
        for range in changed {
            for scope in self.enclosing_scopes(range.clone(), options) {
                let (start, end) = if scope.takes_extra() {
                    (
                        scope.start.saturating_sub(options.extra).max(1),
                        scope.end.saturating_add(options.extra).min(count),
                    )
                } else {
                    (scope.start, scope.end)
                };
                shown.push((start, end, scope.header()));
            }
        }
        shown.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut merged: Vec<(u32, u32, Vec<String>)> = Vec::new();
        for (start, end, header) in shown {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => {
                    last.1 = last.1.max(end);
                    if !last.2.contains(&header) {
                        last.2.push(header);
                    }
                }
                _ => merged.push((start, end, vec![header])),
            }
        }
        merged
            .into_iter()
            .map(|(start, end, headers)| Snippet {
                start,
                end,
                header: headers.join("; "),
            })
            .collect()
    }

    /// The deepest scope holding all of `start..=end`, looking only below `within`.
    fn innermost(&self, start: u32, end: u32, within: Option<usize>) -> Option<usize> {
        let mut candidates: &[usize] = match within {
            Some(index) => &self.scopes[index].children,
            None => &self.roots,
        };
        let mut found = within;
        loop {
            // Siblings are sorted and disjoint: the last one starting at or before `start`
            // is the only one that can hold the range.
            let after = candidates.partition_point(|&index| self.scopes[index].start <= start);
            let Some(&index) = after.checked_sub(1).and_then(|at| candidates.get(at)) else {
                return found;
            };
            let node = &self.scopes[index];
            if !node.contains(start, end) {
                // An earlier sibling may still hold it when siblings share a first line.
                let holder = candidates[..after]
                    .iter()
                    .rev()
                    .take_while(|&&other| self.scopes[other].start == node.start)
                    .find(|&&other| self.scopes[other].contains(start, end));
                match holder {
                    Some(&other) => {
                        found = Some(other);
                        candidates = &self.scopes[other].children;
                        continue;
                    }
                    None => return found,
                }
            }
            found = Some(index);
            candidates = &node.children;
        }
    }

    /// The scope to show for one edge of a range that no fitting scope holds whole: the
    /// outermost scope below `innermost` that holds the edge line and fits.
    fn edge_piece(&self, line: u32, innermost: Option<usize>, max_lines: u32) -> Option<usize> {
        let deepest = self.innermost(line, line, innermost)?;
        if Some(deepest) == innermost {
            return None;
        }
        let mut path = vec![deepest];
        let mut at = deepest;
        while let Some(parent) = self.scopes[at].parent {
            if Some(parent) == innermost {
                break;
            }
            path.push(parent);
            at = parent;
        }
        path.into_iter()
            .rev()
            .find(|&index| self.scopes[index].len() <= max_lines)
    }

    fn scope(&self, index: usize) -> Scope {
        let node = &self.scopes[index];
        Scope {
            start: node.start,
            end: node.end,
            kind: node.kind,
            label: node.label.clone(),
            outer: self.outer_labels(index),
        }
    }

    fn outer_labels(&self, index: usize) -> Vec<String> {
        let mut outer = Vec::new();
        let mut at = self.scopes[index].parent;
        while let Some(parent) = at {
            outer.push(self.scopes[parent].label.clone());
            at = self.scopes[parent].parent;
        }
        outer.reverse();
        outer
    }

    /// `max_lines` of the scope at `index` around the change, shifted to stay inside it.
    fn window(&self, index: usize, start: u32, end: u32, max_lines: u32) -> Scope {
        let node = &self.scopes[index];
        let (from, to) = window_around(start, end, max_lines, node.start, node.end);
        Scope {
            start: from,
            end: to,
            kind: ScopeKind::Window,
            label: format!("{} (lines {}-{})", node.label, node.start, node.end),
            outer: self.outer_labels(index),
        }
    }

    fn top_level(&self, start: u32, end: u32, extra: u32) -> Scope {
        Scope {
            start: start.saturating_sub(extra).max(1),
            end: end.saturating_add(extra).min(self.line_count()),
            kind: ScopeKind::TopLevel,
            label: "top level".to_owned(),
            outer: Vec::new(),
        }
    }

    /// True when the range sits in code tree-sitter could not make sense of, so finding no
    /// scope says nothing and indentation is the better guess. Also true without a tree.
    fn tree_is_unsure_at(&self, start: u32, end: u32) -> bool {
        let Some(tree) = &self.tree else {
            return true;
        };
        let root = tree.root_node();
        if !root.has_error() {
            return false;
        }
        let from = tree_sitter::Point::new(start as usize - 1, 0);
        let to = tree_sitter::Point::new(end as usize - 1, usize::MAX / 2);
        let mut node: Option<Node> = root.descendant_for_point_range(from, to);
        while let Some(current) = node {
            if current.is_error() || current.is_missing() {
                return true;
            }
            if current.id() == root.id() {
                break;
            }
            node = current.parent();
        }
        // The range may also cover an error region in part.
        let mut cursor = root.walk();
        root.children(&mut cursor).any(|child| {
            child.is_error()
                && (child.start_position().row as u32) < end
                && (child.end_position().row as u32) + 1 >= start
        })
    }
}

/// `size` lines (at least the change) around `start..=end`, kept inside `low..=high`.
fn window_around(start: u32, end: u32, size: u32, low: u32, high: u32) -> (u32, u32) {
    let changed = end - start + 1;
    if changed >= size {
        return (start.max(low), end.min(high));
    }
    let pad = size - changed;
    let before = pad / 2;
    let after = pad - before;
    let mut from = i64::from(start) - i64::from(before);
    let mut to = i64::from(end) + i64::from(after);
    if from < i64::from(low) {
        to += i64::from(low) - from;
        from = i64::from(low);
    }
    if to > i64::from(high) {
        from -= to - i64::from(high);
        to = i64::from(high);
    }
    let from = u32::try_from(from.max(i64::from(low))).unwrap_or(low);
    let to = u32::try_from(to).unwrap_or(high);
    (from, to)
}
