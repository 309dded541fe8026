//! The diff parser against git itself: random files and edits are committed in a scratch
//! repository, `git diff` is run with random options (`-U0`..`-U3`, `--no-prefix`, rename
//! detection on or off, `core.quotePath`, `--binary`), and every file of the parsed diff must
//! rebuild its new content from the old one byte for byte, under its right name and status.

use crate::support::git::{git, write};
use std::collections::BTreeMap;
use std::path::Path;

use critic::diff::{Binary, FileDiff, FileMode, FileStatus, parse_diff};
use proptest::prelude::*;
use proptest::sample::subsequence;

/// Names git has to quote (tab, newline, `"`, `\`, non-ASCII) or leaves alone with spaces.
const NAMES: [&str; 8] = [
    "plain.txt",
    "with space.rs",
    "café x.md",
    "tab\there.c",
    "quo\"te.h",
    "dir/sub file.txt",
    "back\\slash",
    "line\nbreak",
];

/// Lines that look like diff syntax, lines that are not UTF-8, ordinary code: a file built
/// from few distinct lines also makes git's hunks ambiguous to align, as real code does.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"fn main() {".to_vec()),
        Just(b"}".to_vec()),
        Just(Vec::new()),
        Just(b"    x += 1;".to_vec()),
        Just(b"caf\xe9 \xff\xfe".to_vec()),
        Just(b"-- not a header".to_vec()),
        Just(b"--- a/fake".to_vec()),
        Just(b"+++ b/fake".to_vec()),
        Just(b"@@ -1 +1 @@".to_vec()),
        Just(b"\\ No newline at end of file".to_vec()),
        Just(b"diff --git a/x b/x".to_vec()),
        Just(b" \t ".to_vec()),
        "[a-z ]{0,12}".prop_map(String::into_bytes),
    ]
}

/// A text file as lines, with its line end and whether the last line has one.
#[derive(Debug, Clone)]
struct Text {
    lines: Vec<Vec<u8>>,
    crlf: bool,
    final_newline: bool,
}

impl Text {
    fn bytes(&self) -> Vec<u8> {
        let end: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            out.extend_from_slice(l);
            if i + 1 < self.lines.len() || self.final_newline {
                out.extend_from_slice(end);
            }
        }
        out
    }
}

fn text() -> impl Strategy<Value = Text> {
    (
        prop::collection::vec(line(), 0..24),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_newline)| Text {
            lines,
            crlf,
            final_newline,
        })
}

/// An edit at a position taken modulo the file's length.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize),
    Replace(usize, Vec<u8>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), line()).prop_map(|(i, l)| Edit::Insert(i, l)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), line()).prop_map(|(i, l)| Edit::Replace(i, l)),
    ];
    prop::collection::vec(edit, 0..6)
}

fn edited(old: &Text, edits: &[Edit], flip_newline: bool) -> Text {
    let mut new = old.clone();
    for e in edits {
        let len = new.lines.len();
        match e {
            Edit::Insert(i, l) => new.lines.insert(i % (len + 1), l.clone()),
            Edit::Delete(i) if len > 0 => {
                new.lines.remove(i % len);
            }
            Edit::Replace(i, l) if len > 0 => new.lines[i % len] = l.clone(),
            _ => {}
        }
    }
    new.final_newline ^= flip_newline;
    new
}

/// What happens to one file between the two commits.
#[derive(Debug, Clone)]
enum Op {
    Modify {
        edits: Vec<Edit>,
        flip_newline: bool,
        executable: bool,
    },
    Add,
    Delete,
    /// Moved under `moved/`, with a few edits.
    Rename {
        edits: Vec<Edit>,
    },
    /// Made binary by a NUL byte.
    Binary,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (edits(), any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(edits, flip_newline, executable)| Op::Modify { edits, flip_newline, executable }
        ),
        1 => Just(Op::Add),
        1 => Just(Op::Delete),
        2 => prop::collection::vec(
            (any::<usize>(), line()).prop_map(|(i, l)| Edit::Replace(i, l)),
            0..2
        )
        .prop_map(|edits| Op::Rename { edits }),
        1 => Just(Op::Binary),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    files: Vec<(&'static str, Text, Op)>,
    context: u8,
    no_prefix: bool,
    renames: bool,
    quote_path: bool,
    binary_patches: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        subsequence(NAMES.to_vec(), 1..=4).prop_flat_map(|names| {
            let n = names.len();
            (Just(names), prop::collection::vec((text(), op()), n))
        }),
        0u8..=3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((names, files), context, no_prefix, renames, quote_path, binary_patches)| Case {
                files: names
                    .into_iter()
                    .zip(files)
                    .map(|(name, (text, op))| (name, text, op))
                    .collect(),
                context,
                no_prefix,
                renames,
                quote_path,
                binary_patches,
            },
        )
}

/// The repository at both commits: path → (content, executable).
#[derive(Debug, Default)]
struct Trees {
    base: BTreeMap<String, (Vec<u8>, bool)>,
    head: BTreeMap<String, (Vec<u8>, bool)>,
}

#[cfg(unix)]
fn set_executable(dir: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// Builds both commits and runs `git diff` between them.
fn run(case: &Case, dir: &Path) -> (Vec<u8>, Trees) {
    let mut trees = Trees::default();
    for (name, text, op) in &case.files {
        let old = text.bytes();
        let head = match op {
            Op::Modify {
                edits,
                flip_newline,
                executable,
            } => Some((
                name.to_string(),
                edited(text, edits, *flip_newline).bytes(),
                *executable,
            )),
            Op::Add => None,
            Op::Delete => None,
            Op::Rename { edits } => Some((
                format!("moved/{name}"),
                edited(text, edits, false).bytes(),
                false,
            )),
            Op::Binary => {
                let mut new = old.clone();
                new.extend_from_slice(b"\0binary\n");
                Some((name.to_string(), new, false))
            }
        };
        match op {
            Op::Add => {
                trees.head.insert(name.to_string(), (old, false));
            }
            _ => {
                trees.base.insert(name.to_string(), (old, false));
            }
        }
        if let Some((path, content, executable)) = head {
            trees.head.insert(path, (content, executable));
        }
    }

    git(dir, &["init", "-q"]);
    for (path, (content, _)) in &trees.base {
        write(dir, path, content);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "base"]);
    for path in trees.base.keys() {
        std::fs::remove_file(dir.join(path)).expect("rm");
    }
    for (path, (content, executable)) in &trees.head {
        write(dir, path, content);
        if *executable {
            set_executable(dir, path);
        }
    }
    git(dir, &["add", "-A"]);

    let quote = format!("core.quotePath={}", case.quote_path);
    let unified = format!("-U{}", case.context);
    let mut args = vec![
        "-c",
        quote.as_str(),
        "-c",
        "core.autocrlf=false",
        "diff",
        "--cached",
        unified.as_str(),
        if case.renames { "-M" } else { "--no-renames" },
    ];
    if case.no_prefix {
        args.push("--no-prefix");
    }
    if case.binary_patches {
        args.push("--binary");
    }
    (git(dir, &args), trees)
}

/// Checks one entry against the trees: its status fits where the paths exist, and its hunks
/// turn the old content into the new one exactly. Returns the paths it accounts for.
fn check(f: &FileDiff, trees: &Trees, case: &Case) -> Result<Vec<String>, TestCaseError> {
    let path = f.path.to_string_lossy().into_owned();
    prop_assert_eq!(path.as_bytes(), f.path.as_bytes(), "names are UTF-8 here");
    let previous = f
        .previous_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let (in_base, in_head) = (trees.base.get(&path), trees.head.get(&path));
    let content = |entry: Option<&(Vec<u8>, bool)>| entry.map_or(Vec::new(), |e| e.0.clone());
    let (old, new) = match f.status {
        FileStatus::Added => {
            prop_assert!(in_base.is_none() && in_head.is_some(), "{:?}", f);
            (Vec::new(), content(in_head))
        }
        FileStatus::Deleted => {
            prop_assert!(in_base.is_some() && in_head.is_none(), "{:?}", f);
            (content(in_base), Vec::new())
        }
        FileStatus::Modified => {
            prop_assert!(in_base.is_some() && in_head.is_some(), "{:?}", f);
            (content(in_base), content(in_head))
        }
        FileStatus::Renamed => {
            prop_assert!(case.renames, "{:?}", f);
            prop_assert!(f.similarity.is_some_and(|s| s >= 50), "{:?}", f);
            let from = previous.as_deref().and_then(|p| trees.base.get(p));
            prop_assert!(
                from.is_some() && in_head.is_some() && in_base.is_none(),
                "{:?}",
                f
            );
            (content(from), content(in_head))
        }
        FileStatus::Copied => {
            return Err(TestCaseError::fail(format!(
                "no copy detection was asked for: {f:?}"
            )));
        }
    };
    // Pure renames state no mode; every other entry with a head side does.
    if let Some((_, executable)) = in_head
        && (f.new_mode.is_some() || !f.patch.is_empty() || *executable)
    {
        let mode = if *executable { 0o100755 } else { 0o100644 };
        prop_assert_eq!(f.new_mode, Some(FileMode(mode)), "{:?}", f);
    }
    if old.contains(&0) || new.contains(&0) {
        let kind = if case.binary_patches {
            Binary::Patch
        } else {
            Binary::Differs
        };
        prop_assert_eq!(f.binary, Some(kind));
        prop_assert!(f.patch.is_empty());
    } else {
        prop_assert_eq!(f.binary, None);
        let rebuilt = f.patch.apply(&old);
        prop_assert!(rebuilt.is_ok(), "{:?}: {:?}", f.path, rebuilt);
        prop_assert_eq!(
            rebuilt.unwrap_or_default(),
            new,
            "{:?} rebuilt wrong",
            f.path
        );
    }
    Ok(previous.into_iter().chain([path]).collect())
}

proptest! {
    // Failures print their minimal case; they are not saved to files in the tree.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsed_git_diffs_rebuild_every_file(case in case()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (diff, trees) = run(&case, dir.path());
        let files = parse_diff(&diff);
        prop_assert!(files.is_ok(), "{:?}\n{}", files, String::from_utf8_lossy(&diff));
        let files = files.unwrap_or_default();
        let mut named = Vec::new();
        for f in &files {
            named.extend(check(f, &trees, &case)?);
        }
        // Every changed path is named by exactly one entry; no entry is invented.
        named.sort();
        let mut changed: Vec<String> = trees
            .base
            .keys()
            .chain(trees.head.keys())
            .filter(|p| trees.base.get(*p) != trees.head.get(*p))
            .cloned()
            .collect();
        changed.sort();
        changed.dedup();
        prop_assert_eq!(named, changed, "{}", String::from_utf8_lossy(&diff));
    }
}
