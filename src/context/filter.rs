//! Which changed files are not worth a model's tokens: lock files, generated, vendored,
//! minified and binary files, files the repository's settings ignore, and deleted files.
//!
//! The decision is pure: a path, the file's status, optionally the first bytes of its head
//! content, the repository's `.gitattributes` and the user's ignore globs in; a
//! [`FileVerdict`] with its reason out, so the summary can name every skipped file and why.
//! Rules that need no content can run before anything is fetched (pass `None`), and the same
//! call with the content's first [`HEAD_LEN`] bytes adds the content rules.
//!
//! An explicit `linguist-generated=false` / `linguist-vendored=false` in `.gitattributes` wins
//! over our heuristics, as it does for GitHub's own diff view: a team that asks to see a
//! lock file or a `vendor/` fork gets it reviewed.
//!
//! Patterns are matched by the `ignore` crate, with git's rules: the settings globs (compiled
//! in [`crate::config::globs`], where the settings are checked) and `.gitattributes` lines.

use std::fmt;
use std::sync::LazyLock;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use regex::bytes::Regex;

use crate::config::globs::IgnoreGlobs;

/// How many leading bytes of content the content rules read (binary sniffing, generated
/// markers, minified lines); git sniffs binaries over the same 8 KB.
pub const HEAD_LEN: usize = 8 * 1024;

pub use crate::domain::FileStatus;

/// Why a file is not sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Deleted files are listed in the summary, not reviewed: there is no new code to judge.
    Deleted,
    /// Matched one of the repository's `ignore` globs (the first one that matched).
    Ignored {
        glob: String,
    },
    LockFile,
    /// A generator's marker in the content, a source map, or `linguist-generated`.
    Generated,
    /// Under `vendor/`, `third_party/`, `node_modules/`..., or `linguist-vendored`.
    Vendored,
    Minified,
    /// A NUL byte in the first [`HEAD_LEN`] bytes, a binary extension, or the `binary`
    /// attribute.
    Binary,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Deleted => f.write_str("deleted"),
            SkipReason::Ignored { glob } => write!(f, "ignored by `{glob}`"),
            SkipReason::LockFile => f.write_str("lock file"),
            SkipReason::Generated => f.write_str("generated"),
            SkipReason::Vendored => f.write_str("vendored"),
            SkipReason::Minified => f.write_str("minified"),
            SkipReason::Binary => f.write_str("binary"),
        }
    }
}

/// Whether a file goes to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileVerdict {
    Review,
    Skip(SkipReason),
}

impl FileVerdict {
    pub fn is_review(&self) -> bool {
        matches!(self, FileVerdict::Review)
    }

    pub fn skip_reason(&self) -> Option<&SkipReason> {
        match self {
            FileVerdict::Review => None,
            FileVerdict::Skip(reason) => Some(reason),
        }
    }
}

/// A repository's per-file settings and the user's ignore globs: everything [`classify`]
/// needs besides the file itself, built once per review.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub attributes: GitAttributes,
    pub ignore: IgnoreGlobs,
}

impl FileFilter {
    pub fn new(attributes: GitAttributes, ignore: IgnoreGlobs) -> FileFilter {
        FileFilter { attributes, ignore }
    }

    /// [`classify`] with this filter's attributes and globs.
    pub fn classify(
        &self,
        path: &str,
        status: FileStatus,
        content_head: Option<&[u8]>,
    ) -> FileVerdict {
        classify(path, status, content_head, &self.attributes, &self.ignore)
    }
}

/// Decides whether the file at `path` (relative to the repository root, `/`-separated) is
/// reviewed. `content_head` is the start of its head content (only the first [`HEAD_LEN`]
/// bytes are read); with `None` only the path, status and attribute rules apply, so a
/// `Review` then means "not skipped before looking at the content".
pub fn classify(
    path: &str,
    status: FileStatus,
    content_head: Option<&[u8]>,
    attributes: &GitAttributes,
    ignore: &IgnoreGlobs,
) -> FileVerdict {
    let skip = FileVerdict::Skip;
    if status == FileStatus::Deleted {
        return skip(SkipReason::Deleted);
    }
    if let Some(glob) = ignore.first_match(path) {
        return skip(SkipReason::Ignored {
            glob: glob.to_string(),
        });
    }
    let vendored = attributes.linguist_flag(path, "linguist-vendored");
    let generated = attributes.linguist_flag(path, "linguist-generated");
    let binary = attributes.linguist_flag(path, "binary");
    if vendored == Some(true) {
        return skip(SkipReason::Vendored);
    }
    if generated == Some(true) {
        return skip(SkipReason::Generated);
    }
    if binary == Some(true) {
        return skip(SkipReason::Binary);
    }
    // Lock files and minified files count as generated, as in GitHub's linguist, so
    // `linguist-generated=false` brings them back.
    let may_be_generated = generated != Some(false);
    let may_be_binary = binary != Some(false);
    let name = file_name(path);
    if may_be_generated && is_lock_file(name) {
        return skip(SkipReason::LockFile);
    }
    if vendored != Some(false) && is_vendored_path(path) {
        return skip(SkipReason::Vendored);
    }
    if may_be_generated && is_source_map(name) {
        return skip(SkipReason::Generated);
    }
    if may_be_generated && is_minified_name(name) {
        return skip(SkipReason::Minified);
    }
    if may_be_binary && has_binary_extension(name) {
        return skip(SkipReason::Binary);
    }
    let Some(head) = content_head else {
        return FileVerdict::Review;
    };
    let head = &head[..head.len().min(HEAD_LEN)];
    if may_be_binary && head.contains(&0) {
        return skip(SkipReason::Binary);
    }
    if may_be_generated && is_style_or_script(name) && has_minified_lines(head) {
        return skip(SkipReason::Minified);
    }
    if may_be_generated && GENERATED_MARKER.is_match(head) {
        return skip(SkipReason::Generated);
    }
    FileVerdict::Review
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, ext)| ext.to_ascii_lowercase())
}

/// Lock files whose name does not end in `.lock`; every `*.lock` counts too (Cargo, yarn,
/// poetry, Pipfile, composer, Gemfile, mix, pubspec, flake, Podfile, uv, bun, deno...).
const LOCK_FILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "shrinkwrap.yaml",
    "go.sum",
    "go.work.sum",
    "Package.resolved",
    "Cartfile.resolved",
    "packages.lock.json",
    "gradle.lockfile",
    "bun.lockb",
];

fn is_lock_file(name: &str) -> bool {
    LOCK_FILES.contains(&name) || (name.len() > ".lock".len() && name.ends_with(".lock"))
}

/// Directories holding other people's code, at any depth (Go's `vendor/` can be nested).
const VENDOR_DIRS: &[&str] = &[
    "vendor",
    "vendors",
    "third_party",
    "third-party",
    "thirdparty",
    "3rdparty",
    "node_modules",
    "bower_components",
    "jspm_packages",
    "Pods",
    "Carthage",
];

fn is_vendored_path(path: &str) -> bool {
    let mut dirs = path.split('/');
    dirs.next_back();
    dirs.any(|dir| VENDOR_DIRS.contains(&dir))
}

fn is_source_map(name: &str) -> bool {
    [".js.map", ".mjs.map", ".cjs.map", ".css.map"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

fn is_style_or_script(name: &str) -> bool {
    matches!(
        extension(name).as_deref(),
        Some("js" | "mjs" | "cjs" | "css")
    )
}

fn is_minified_name(name: &str) -> bool {
    is_style_or_script(name) && {
        let stem = &name[..name.rfind('.').unwrap_or(name.len())];
        stem.ends_with(".min") || stem.ends_with("-min")
    }
}

/// Minifiers put whole files on a few lines; hand-written code averages well under 100
/// bytes a line, so an average over 500 in the head (at least 1 KB of it) is a safe call,
/// while one long data line among ordinary ones is not enough.
fn has_minified_lines(head: &[u8]) -> bool {
    if head.len() < 1024 {
        return false;
    }
    let lines = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    lines > 0 && head.len() / lines > 500
}

/// Images, documents, archives, compiled code, fonts, media and binary data formats.
const BINARY_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "bmp", "ico", "icns", "webp", "tif", "tiff", "psd", "avif",
    "heic", "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "zip", "gz", "tgz",
    "bz2", "xz", "zst", "7z", "rar", "tar", "jar", "war", "ear", "whl", "nupkg", "apk", "ipa",
    "dmg", "iso", "deb", "rpm", "exe", "dll", "so", "dylib", "a", "o", "obj", "lib", "class",
    "pyc", "pyo", "wasm", "rlib", "node", "woff", "woff2", "ttf", "otf", "eot", "mp3", "mp4",
    "m4a", "wav", "ogg", "flac", "avi", "mov", "mkv", "webm", "sqlite", "sqlite3", "db", "bin",
    "pb", "onnx", "pt", "npy", "npz", "parquet",
];

fn has_binary_extension(name: &str) -> bool {
    extension(name).is_some_and(|ext| BINARY_EXTENSIONS.contains(&ext.as_str()))
}

/// Generator markers, read in comments only so that code merely talking about them (a
/// string literal, backquoted docs) is not taken for generated:
/// - `@generated` (Meta's convention, also used by many Rust and JS tools), standing alone;
/// - Go's `Code generated` line and its kin from protoc, swagger, thrift...: a comment line
///   saying the file was generated, followed by an instruction not to edit or modify it;
/// - `<auto-generated` (.NET).
static GENERATED_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = concat!(
        r"(?m-u)",
        r"(?:^|[ \t/*#;!-])@generated(?:$|[ \t*\r])",
        r"|^[ \t]*(?://+|#+|--|;+|/?\*+|<!--|\(\*)[^\n]*(?i:generated[^\n]*do not (?:edit|modify))",
        r"|^[ \t]*(?:(?://+|#+|<!--)[ \t]*)?<auto-generated",
    );
    // A constant pattern: failing to compile is a bug every test run would catch.
    Regex::new(pattern).expect("generated-file marker pattern is a valid regex")
});

// ---------------------------------------------------------------------------------------------
// .gitattributes

/// One attribute's value on a `.gitattributes` line. An attribute that no line mentions, or
/// that the last line mentioning it resets with `!name`, is unspecified (`None` in lookups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrState {
    /// `name`
    Set,
    /// `-name`
    Unset,
    /// `name=value`
    Value(String),
}

/// A line of `.gitattributes` that was not used, kept so a caller can tell the repository
/// why its attribute had no effect. Git itself ignores these lines with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based.
    pub line: usize,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AttrRule {
    name: String,
    /// `None`: reset to unspecified (`!name`).
    state: Option<AttrState>,
}

/// The root `.gitattributes` of the head commit, parsed. Later lines override earlier ones,
/// attribute by attribute, as in git.
///
/// Ours rather than `gix-attributes`: that crate drops a line with one bad attribute name
/// whole, reads an unterminated quote as a literal pattern, and only logs what it skipped,
/// where a review must keep a line's good attributes and be able to say which lines had no
/// effect. The patterns themselves are matched by the `ignore` crate, as settings globs are.
#[derive(Debug, Clone, Default)]
pub struct GitAttributes {
    /// Each usable line's pattern and attributes, in file order.
    rules: Vec<(Gitignore, Vec<AttrRule>)>,
    skipped: Vec<SkippedLine>,
}

impl GitAttributes {
    /// Parses `.gitattributes` text. Never fails: like git, lines it cannot use are left
    /// out (see [`GitAttributes::skipped`]), since one bad line must not stop a review.
    /// Macro definitions (`[attr]name ...`) are not expanded; the built-in `binary` macro is
    /// read as an attribute of its own.
    pub fn parse(text: &str) -> GitAttributes {
        let mut rules = Vec::new();
        let mut skipped = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let rule = split_pattern(line)
                .ok_or("unterminated quoted pattern")
                .and_then(|(pattern, rest)| Ok((pattern_matcher(&pattern)?, rest)));
            match rule {
                Ok((matcher, rest)) => {
                    let attrs = rest.split_ascii_whitespace().filter_map(parse_attr);
                    rules.push((matcher, attrs.collect()));
                }
                Err(reason) => skipped.push(SkippedLine {
                    line: index + 1,
                    reason,
                }),
            }
        }
        GitAttributes { rules, skipped }
    }

    /// Lines that were left out, and why.
    pub fn skipped(&self) -> &[SkippedLine] {
        &self.skipped
    }

    /// The state of attribute `name` for the file at `path`, or `None` when unspecified:
    /// what the last line naming the attribute and matching the path says.
    pub fn get(&self, path: &str, name: &str) -> Option<&AttrState> {
        let path = path.trim_start_matches('/');
        self.rules
            .iter()
            .rev()
            .find_map(|(matcher, attrs)| {
                let attr = attrs.iter().rev().find(|a| a.name == name)?;
                matcher.matched(path, false).is_ignore().then_some(attr)
            })
            .and_then(|a| a.state.as_ref())
    }

    /// Linguist's reading of a boolean attribute: set or any value but `false` is true,
    /// unset or `=false` is false.
    fn linguist_flag(&self, path: &str, name: &str) -> Option<bool> {
        self.get(path, name).map(|state| match state {
            AttrState::Set => true,
            AttrState::Unset => false,
            AttrState::Value(value) => value != "false",
        })
    }
}

/// A `.gitattributes` pattern as a matcher, or why the line cannot be used. Its syntax is
/// a `.gitignore` line's, but without negation, and a directory pattern matches nothing
/// in it (git: "use `dir/**`").
fn pattern_matcher(pattern: &str) -> Result<Gitignore, &'static str> {
    if pattern.starts_with("[attr]") {
        return Err("macro definitions are not supported");
    }
    if pattern.starts_with('!') {
        return Err("negative patterns are not allowed in .gitattributes");
    }
    if pattern.is_empty() || pattern.ends_with('/') {
        return Err("a directory pattern matches no file in .gitattributes; use `dir/**`");
    }
    // A quoted pattern may start with `#`, which is no comment here.
    let escaped = if pattern.starts_with('#') {
        format!("\\{pattern}")
    } else {
        pattern.to_string()
    };
    let mut builder = GitignoreBuilder::new("");
    // As globset did before: `src/[a-` is an error, not a literal name.
    builder.allow_unclosed_class(false);
    builder
        .add_line(None, &escaped)
        .and_then(|builder| builder.build())
        .map_err(|_| "invalid pattern")
}

/// Splits a line into its pattern (unquoted) and the attributes text after it.
fn split_pattern(line: &str) -> Option<(String, &str)> {
    if let Some(quoted) = line.strip_prefix('"') {
        let (pattern, used) = unquote(quoted)?;
        return Some((pattern, &quoted[used..]));
    }
    let end = line
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(line.len());
    Some((line[..end].to_string(), &line[end..]))
}

/// Reads a C-style quoted path as git writes it (`"dir/caf\303\251 x.txt"`) up to the closing
/// quote; returns it and the bytes consumed, closing quote included.
fn unquote(quoted: &str) -> Option<(String, usize)> {
    let bytes = quoted.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let &next = bytes.get(i + 1)?;
                let octal = bytes
                    .get(i + 1..i + 4)
                    .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
                if let Some(digits) = octal {
                    let value = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                    out.push(u8::try_from(value).ok()?);
                    i += 4;
                    continue;
                }
                out.push(match next {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'v' => 0x0b,
                    other => other,
                });
                i += 2;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    None
}

/// `name`, `-name`, `!name` or `name=value`; names as git allows them.
fn parse_attr(token: &str) -> Option<AttrRule> {
    let (name, state) = if let Some(name) = token.strip_prefix('-') {
        (name, Some(AttrState::Unset))
    } else if let Some(name) = token.strip_prefix('!') {
        (name, None)
    } else if let Some((name, value)) = token.split_once('=') {
        (name, Some(AttrState::Value(value.to_string())))
    } else {
        (token, Some(AttrState::Set))
    };
    let valid = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    valid.then(|| AttrRule {
        name: name.to_string(),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Markers are assembled at run time so this file is not itself taken for generated.
    const AT_GENERATED: &str = concat!("@", "generated");

    fn verdict(path: &str, head: Option<&[u8]>, attributes: &str) -> FileVerdict {
        let filter = FileFilter::new(GitAttributes::parse(attributes), IgnoreGlobs::default());
        filter.classify(path, FileStatus::Modified, head)
    }

    fn reason(path: &str, head: Option<&[u8]>, attributes: &str) -> Option<SkipReason> {
        verdict(path, head, attributes).skip_reason().cloned()
    }

    fn globs(globs: &[&str]) -> IgnoreGlobs {
        let owned: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        match IgnoreGlobs::new(&owned) {
            Ok(globs) => globs,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn ordinary_source_is_reviewed() {
        let head = b"fn main() {\n    println!(\"hi\");\n}\n";
        for path in [
            "src/main.rs",
            "README.md",
            "web/app.js",
            "lib/vendored.rs",
            "lockfile.md",
        ] {
            assert_eq!(verdict(path, Some(head), ""), FileVerdict::Review, "{path}");
        }
        assert!(verdict("src/main.rs", None, "").is_review());
    }

    #[test]
    fn deleted_files_are_listed_not_reviewed_whatever_else_holds() {
        let filter = FileFilter::default();
        for path in ["src/main.rs", "Cargo.lock", "vendor/x.go"] {
            assert_eq!(
                filter.classify(path, FileStatus::Deleted, None),
                FileVerdict::Skip(SkipReason::Deleted)
            );
        }
        assert_eq!(FileStatus::from_github("removed"), FileStatus::Deleted);
        assert_eq!(FileStatus::from_github("renamed"), FileStatus::Renamed);
        assert_eq!(FileStatus::from_github("changed"), FileStatus::Modified);
    }

    #[test]
    fn lock_files() {
        for path in [
            "Cargo.lock",
            "package-lock.json",
            "web/yarn.lock",
            "pnpm-lock.yaml",
            "poetry.lock",
            "Pipfile.lock",
            "composer.lock",
            "Gemfile.lock",
            "go.sum",
            "mix.lock",
            "app/pubspec.lock",
            "flake.lock",
            "bun.lockb",
            "tools/some-tool.lock",
        ] {
            assert_eq!(reason(path, None, ""), Some(SkipReason::LockFile), "{path}");
        }
        assert_eq!(reason(".lock", None, ""), None);
        assert_eq!(reason("src/lock.rs", None, ""), None);
    }

    #[test]
    fn generated_markers_in_the_head() {
        for head in [
            format!("// {AT_GENERATED}\nfn x() {{}}\n"),
            format!("/**\n * {AT_GENERATED} SignedSource<<abc>>\n */\n"),
            format!("# {AT_GENERATED} by tool\n"),
            concat!(
                "// Code gen",
                "erated by protoc-gen-go. DO NOT EDIT.\npackage x\n"
            )
            .to_string(),
            concat!(
                "# Gen",
                "erated by the protocol buffer compiler.  DO NOT EDIT!\n"
            )
            .to_string(),
            concat!("/* This file is auto", "generated; do not modify */\n").to_string(),
            concat!("//------\n// <auto-", "generated>\n//   by a tool\n").to_string(),
            format!("{}\n// {AT_GENERATED}\n", "// license line\n".repeat(100)),
        ] {
            assert_eq!(
                reason("src/x.rs", Some(head.as_bytes()), ""),
                Some(SkipReason::Generated),
                "{head}"
            );
        }
    }

    #[test]
    fn code_that_talks_about_markers_is_not_generated() {
        for head in [
            format!("let marker = \"{AT_GENERATED}\";\n"),
            format!("//! Skips files with `{AT_GENERATED}` markers.\n"),
            concat!("let s = \"// Code gen", "erated by x. DO NOT EDIT.\";\n").to_string(),
            "// regenerate with `make`; do not edit by hand\n".to_string(),
            format!("{}// {AT_GENERATED}\n", "x\n".repeat(HEAD_LEN)),
        ] {
            assert_eq!(
                reason("src/x.rs", Some(head.as_bytes()), ""),
                None,
                "{head}"
            );
        }
    }

    #[test]
    fn gitattributes_linguist_generated() {
        let attributes = "\
# generated code
src/gen/** linguist-generated
*.pb.go linguist-generated=true
/schema.rs linguist-generated
";
        assert_eq!(
            reason("src/gen/a/b.rs", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(
            reason("api/v1/svc.pb.go", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(
            reason("svc.pb.go", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(
            reason("schema.rs", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(
            reason("src/schema.rs", None, attributes),
            None,
            "anchored to the root"
        );
        assert_eq!(reason("src/general.rs", None, attributes), None);
    }

    #[test]
    fn gitattributes_later_lines_override_earlier_ones() {
        let attributes = "\
*.rs linguist-generated
src/keep.rs -linguist-generated
src/gen/** linguist-generated=true
src/gen/hand.rs linguist-generated=false
src/reset.rs !linguist-generated
";
        assert_eq!(
            reason("src/other.rs", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(reason("src/keep.rs", None, attributes), None);
        assert_eq!(
            reason("src/gen/x.rs", None, attributes),
            Some(SkipReason::Generated)
        );
        assert_eq!(reason("src/gen/hand.rs", None, attributes), None);
        // Reset to unspecified: no attribute, so the content decides.
        assert_eq!(
            reason("src/reset.rs", Some(b"fn x() {}\n"), attributes),
            None
        );
        // The order is per attribute: a later line about another attribute changes nothing.
        let attributes = "*.rs linguist-generated\n*.rs text eol=lf\n";
        assert_eq!(
            reason("a.rs", None, attributes),
            Some(SkipReason::Generated)
        );
        // And the reverse order of the same two lines gives the other answer.
        let attributes = "src/gen/hand.rs -linguist-generated\nsrc/gen/** linguist-generated\n";
        assert_eq!(
            reason("src/gen/hand.rs", None, attributes),
            Some(SkipReason::Generated)
        );
    }

    #[test]
    fn explicit_false_overrides_heuristics() {
        let head = format!("// {AT_GENERATED}\n");
        let attributes = "\
Cargo.lock linguist-generated=false
src/** -linguist-generated
vendor/patched/** linguist-vendored=false
*.min.js -linguist-generated
";
        assert_eq!(reason("Cargo.lock", None, attributes), None);
        assert_eq!(reason("src/x.rs", Some(head.as_bytes()), attributes), None);
        assert_eq!(reason("vendor/patched/lib.go", None, attributes), None);
        assert_eq!(
            reason("vendor/other/lib.go", None, attributes),
            Some(SkipReason::Vendored)
        );
        assert_eq!(reason("dist/app.min.js", None, attributes), None);
    }

    #[test]
    fn gitattributes_vendored_and_binary() {
        let attributes = "\
external/** linguist-vendored
*.dat binary
";
        assert_eq!(
            reason("external/lib/a.c", None, attributes),
            Some(SkipReason::Vendored)
        );
        assert_eq!(
            reason("data/x.dat", None, attributes),
            Some(SkipReason::Binary)
        );
        assert_eq!(reason("src/external.c", None, attributes), None);
    }

    #[test]
    fn gitattributes_syntax() {
        let attributes = "\
  # indented comment

\"docs/my file.md\" linguist-generated
\"caf\\303\\251.txt\"\tlinguist-generated
[attr]mine text
!*.rs linguist-generated
build/ linguist-generated
\"unterminated linguist-generated
*.txt linguist-generated b@d
";
        let parsed = GitAttributes::parse(attributes);
        assert_eq!(
            parsed.get("docs/my file.md", "linguist-generated"),
            Some(&AttrState::Set)
        );
        assert_eq!(
            parsed.get("café.txt", "linguist-generated"),
            Some(&AttrState::Set)
        );
        assert_eq!(parsed.get("build/x.rs", "linguist-generated"), None);
        assert_eq!(
            parsed.get("notes.txt", "linguist-generated"),
            Some(&AttrState::Set)
        );
        assert_eq!(parsed.get("notes.txt", "b@d"), None);
        assert_eq!(parsed.get("a.rs", "linguist-generated"), None);
        let lines: Vec<usize> = parsed.skipped().iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![5, 6, 7, 8]);
        let parsed = GitAttributes::parse("*.sh text eol=lf\n");
        assert_eq!(
            parsed.get("bin/run.sh", "eol"),
            Some(&AttrState::Value("lf".to_string()))
        );
        // An unclosed class is a bad pattern, reported, not a file named `[a-`.
        let parsed = GitAttributes::parse("src/[a- linguist-generated\n");
        assert_eq!(parsed.get("src/[a-", "linguist-generated"), None);
        let skipped: Vec<(usize, &str)> = parsed
            .skipped()
            .iter()
            .map(|s| (s.line, s.reason))
            .collect();
        assert_eq!(skipped, vec![(1, "invalid pattern")]);
    }

    #[test]
    fn vendored_paths() {
        for path in [
            "vendor/github.com/x/y.go",
            "pkg/vendor/z.go",
            "third_party/zlib/inflate.c",
            "web/node_modules/left-pad/index.js",
            "ios/Pods/AFNetworking/x.m",
        ] {
            assert_eq!(reason(path, None, ""), Some(SkipReason::Vendored), "{path}");
        }
        assert_eq!(
            reason("src/vendor.rs", None, ""),
            None,
            "a file named vendor"
        );
    }

    #[test]
    fn minified_by_name_and_by_content() {
        for path in [
            "dist/app.min.js",
            "static/site.min.css",
            "lib/jquery-min.js",
        ] {
            assert_eq!(reason(path, None, ""), Some(SkipReason::Minified), "{path}");
        }
        let minified = format!("!function(e){{{}}}();", "var a=1;".repeat(1000));
        assert_eq!(
            reason("dist/bundle.js", Some(minified.as_bytes()), ""),
            Some(SkipReason::Minified)
        );
        assert_eq!(
            reason("dist/app.css", Some(minified.as_bytes()), ""),
            Some(SkipReason::Minified)
        );
        // Ordinary code with one long data line is not minified, nor a long line in Rust.
        let mut ordinary = "function f(a) {\n  return a + 1;\n}\n".repeat(100);
        ordinary.push_str(&format!("const DATA = \"{}\";\n", "x".repeat(3000)));
        assert_eq!(reason("src/app.js", Some(ordinary.as_bytes()), ""), None);
        assert_eq!(reason("src/data.rs", Some(minified.as_bytes()), ""), None);
        assert_eq!(
            reason("src/small.js", Some(b"module.exports = 1;"), ""),
            None
        );
    }

    #[test]
    fn binary_files() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[7; 100]);
        assert_eq!(
            reason("assets/unknown", Some(&png), ""),
            Some(SkipReason::Binary)
        );
        for path in [
            "assets/logo.PNG",
            "fonts/a.woff2",
            "lib/x.so",
            "model.onnx",
            "dist.tar.gz",
        ] {
            assert_eq!(reason(path, None, ""), Some(SkipReason::Binary), "{path}");
        }
        assert_eq!(
            reason("src/main.rs", Some("ünïcode ✓\n".as_bytes()), ""),
            None
        );
        // A NUL past the sniffed head is not looked at.
        let mut late = vec![b'a'; HEAD_LEN];
        late.push(0);
        assert_eq!(reason("src/big.txt", Some(&late), ""), None);
        assert_eq!(
            reason(".png", None, ""),
            None,
            "a dotfile, not an extension"
        );
    }

    #[test]
    fn ignore_globs_from_settings() {
        let ignore = globs(&[
            "docs/**",
            "*.snap",
            "generated/",
            "fixtures",
            "/CHANGELOG.md",
        ]);
        let filter = FileFilter::new(GitAttributes::default(), ignore);
        let skipped = |path: &str| match filter.classify(path, FileStatus::Added, None) {
            FileVerdict::Skip(SkipReason::Ignored { glob }) => Some(glob),
            _ => None,
        };
        assert_eq!(skipped("docs/guide/intro.md").as_deref(), Some("docs/**"));
        assert_eq!(skipped("src/snapshots/a.snap").as_deref(), Some("*.snap"));
        assert_eq!(skipped("a.snap").as_deref(), Some("*.snap"));
        assert_eq!(skipped("api/generated/x.ts").as_deref(), Some("generated/"));
        assert_eq!(
            skipped("tests/fixtures/in/a.json").as_deref(),
            Some("fixtures")
        );
        assert_eq!(skipped("CHANGELOG.md").as_deref(), Some("/CHANGELOG.md"));
        assert_eq!(skipped("sub/CHANGELOG.md"), None);
        assert_eq!(skipped("src/docs.rs"), None);
        assert_eq!(skipped("src/main.rs"), None);
        // The first glob in the user's order is the one named.
        let filter = FileFilter::new(GitAttributes::default(), globs(&["*.md", "docs/**"]));
        assert_eq!(
            filter.classify("docs/a.md", FileStatus::Modified, None),
            FileVerdict::Skip(SkipReason::Ignored {
                glob: "*.md".into()
            })
        );
        // Ignoring is the user's word: it wins over every other reason but deletion.
        let filter = FileFilter::new(GitAttributes::default(), globs(&["*.lock"]));
        assert_eq!(
            filter.classify("Cargo.lock", FileStatus::Modified, None),
            FileVerdict::Skip(SkipReason::Ignored {
                glob: "*.lock".into()
            })
        );
    }

    #[test]
    fn skip_reasons_read_well_in_a_summary() {
        let reasons = [
            (SkipReason::Deleted, "deleted"),
            (
                SkipReason::Ignored {
                    glob: "docs/**".into(),
                },
                "ignored by `docs/**`",
            ),
            (SkipReason::LockFile, "lock file"),
            (SkipReason::Generated, "generated"),
            (SkipReason::Vendored, "vendored"),
            (SkipReason::Minified, "minified"),
            (SkipReason::Binary, "binary"),
        ];
        for (reason, text) in reasons {
            assert_eq!(reason.to_string(), text);
        }
    }
}
