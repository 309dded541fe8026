//! Checks a model-proposed ```` ```suggestion ```` against the head file before it is posted.
//!
//! GitHub applies a suggestion by replacing exactly the lines its thread covers, so a
//! suggestion that (once applied) changes anything else, or changes nothing, would mislead the
//! author. We apply it in memory, diff the result against the head file and only accept it when
//! every change lies inside the thread's range.
//!
//! Choices made here, and why:
//! - **Repeated context is trimmed, not rejected.** Models often copy the unchanged lines just
//!   above or below the range into their replacement; posting that would duplicate them. Leading
//!   (trailing) replacement lines that copy the lines right above (below) the range are dropped
//!   when they are a copy under the same indentation shift as the rest of the replacement (so
//!   a `}` closing the model's own new block is kept), contain a non-blank line, and are not
//!   also equal to the range's own first (last) lines (then they may be that line, kept). A
//!   proposal that is nothing but context is rejected ([`Rejected::Empty`]), not turned into a
//!   deletion. A replacement that still repeats a substantive neighbouring line elsewhere (the
//!   model rewrote more lines than the thread covers) is rejected: trimming it would guess.
//!   A *changed* copy of a neighbour cannot be told from a new line and is accepted.
//! - **Indentation follows the file.** If the replacement is indented less or more than the
//!   range by a common leading prefix (models strip indentation), every non-blank line is
//!   shifted by it, using the file's own whitespace (tabs stay tabs). The offset comes from the
//!   copied context when there is some, else from the first non-blank lines. A replacement whose
//!   first line already has the range's indentation is left alone. So a block whose only change
//!   is indentation becomes a no-op: it cannot be told from a model's re-indented copy.
//! - **Line endings.** The block is markdown, so it always uses `\n`; GitHub writes the file's
//!   own line endings when it commits a suggestion. The in-memory check uses the file's endings
//!   (CRLF stays CRLF) and keeps a missing final newline missing.
//! - **The diff check** (every changed or inserted line, mapped to old line numbers, inside or
//!   at the edge of the range) is the last word: whatever the heuristics above let through must
//!   still only replace the thread's lines.

use similar::{DiffTag, TextDiff};

/// A suggestion checked against the head file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSuggestion {
    /// The full ```` ```suggestion ```` markdown block (no trailing newline); append it to a
    /// comment body after a blank line.
    pub block: String,
    /// The lines that replace the range, after trimming context and fixing indentation, each
    /// ending in `\n` (`""` deletes the range, `"\n"` replaces it with one blank line). This is
    /// the block's content.
    pub replacement: String,
}

/// Why a suggestion was not posted, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the suggestion changes nothing")]
    NoOp,
    #[error("the suggestion would also change line {line}, outside the thread's range")]
    TouchesOtherLines { line: u32 },
    #[error("lines {start_line}..={line} are not in the file ({file_lines} lines)")]
    OutOfFile {
        start_line: u32,
        line: u32,
        file_lines: usize,
    },
    #[error("the suggestion only repeats the lines around the thread's range")]
    Empty,
    #[error("the suggestion is prose, not code: {line:?}")]
    Prose { line: String },
    #[error(
        "the file would not parse as well with the suggestion applied ({before} syntax error(s) there before, {after} after)"
    )]
    BreaksSyntax { before: usize, after: usize },
}

/// A checked suggestion for a code file must also read as code. For the languages Critic
/// parses, the file with the fix applied may hold no more syntax errors than before (counted
/// over the whole file: an unclosed bracket is reported where the file ends, not where it was
/// opened); prose there is a syntax error too. For other code files, no line of the fix may
/// be an English sentence ("Remove the check for null."). Small models often put advice where
/// the code belongs.
pub fn reads_as_code(
    path: &str,
    head: &str,
    start_line: u32,
    line: u32,
    replacement: &str,
) -> Result<(), Rejected> {
    let parsed = crate::context::scope::Language::from_path(path).is_some();
    if !parsed
        && is_code(path)
        && let Some(prose) = replacement.lines().find(|l| looks_like_prose(l))
    {
        return Err(Rejected::Prose {
            line: prose.trim().chars().take(80).collect(),
        });
    }
    let old: Vec<&str> = head.split_inclusive('\n').collect();
    if start_line == 0 || start_line > line || line as usize > old.len() {
        return Ok(()); // check_suggestion refuses these first
    }
    let (s, e) = (start_line as usize - 1, line as usize);
    let lines: Vec<String> = replacement.lines().map(str::to_owned).collect();
    let new = apply(&old, s, e, &lines);
    let before = crate::context::scope::syntax_errors(path, head, 1..=u32::MAX);
    let after = crate::context::scope::syntax_errors(path, &new, 1..=u32::MAX);
    match (before, after) {
        (Some(before), Some(after)) if after > before => {
            Err(Rejected::BreaksSyntax { before, after })
        }
        _ => Ok(()),
    }
}

/// Source code, by its extension: where prose in a suggestion is a mistake.
pub(crate) fn is_code(path: &str) -> bool {
    if crate::context::scope::Language::from_path(path).is_some() {
        return true;
    }
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some(
            "rb" | "php"
                | "kt"
                | "kts"
                | "swift"
                | "cs"
                | "scala"
                | "sh"
                | "bash"
                | "lua"
                | "pl"
                | "r"
                | "dart"
                | "ex"
                | "exs"
                | "erl"
                | "hs"
                | "ml"
                | "clj"
                | "m"
                | "mm"
                | "zig"
                | "nim"
                | "vue"
                | "svelte"
        )
    )
}

/// An English sentence rather than code: it starts with a capitalised word, has four words
/// or more, nearly all of them plain words, and none of the brackets, operators and quotes
/// code is made of. Comment lines are code.
fn looks_like_prose(line: &str) -> bool {
    let t = line.trim();
    if ["//", "#", "/*", "*", "--", ";", "<!--"]
        .iter()
        .any(|c| t.starts_with(c))
    {
        return false;
    }
    if t.chars().any(|c| "(){}[];=<>\"`$&|+*/\\@".contains(c)) {
        return false;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.len() < 4 || !words[0].starts_with(|c: char| c.is_ascii_uppercase()) {
        return false;
    }
    let plain = words
        .iter()
        .filter(|w| {
            w.trim_end_matches(['.', ',', ':', '!', '?'])
                .chars()
                .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
        })
        .count();
    plain * 4 >= words.len() * 3
}

/// `head`: the file's full text at the PR head. `start_line..=line`: the 1-based new-file lines
/// the thread covers (`start_line == line` for one line). `replacement`: the code the model
/// proposes for exactly those lines; one trailing newline is a terminator, not a blank line,
/// and an empty replacement deletes the lines.
pub fn check_suggestion(
    head: &str,
    start_line: u32,
    line: u32,
    replacement: &str,
) -> Result<CheckedSuggestion, Rejected> {
    let old: Vec<&str> = head.split_inclusive('\n').collect();
    let out_of_file = Rejected::OutOfFile {
        start_line,
        line,
        file_lines: old.len(),
    };
    if start_line == 0 || start_line > line || line as usize > old.len() {
        return Err(out_of_file);
    }
    // 0-based, half-open: old[s..e] are the thread's lines.
    let (s, e) = (start_line as usize - 1, line as usize);
    let range: Vec<&str> = old[s..e].iter().map(|l| content(l)).collect();

    let above: Vec<&str> = old[..s].iter().map(|l| content(l)).collect();
    let below: Vec<&str> = old[e..].iter().map(|l| content(l)).collect();

    let proposed = split_replacement(replacement);
    let (rest, context_shift) = trim_context(&proposed, &range, &above, &below);
    if rest.is_empty() && !proposed.is_empty() {
        return Err(Rejected::Empty);
    }
    // Copied context shows the model's indentation offset best; else line the first lines up.
    let lines = context_shift
        .or_else(|| natural(&range, &rest))
        .and_then(|shift| shift.apply_all(&rest))
        .unwrap_or_else(|| rest.iter().map(|l| (*l).to_owned()).collect());
    if let Some(line) = repeated_neighbour(&lines, &range, &old, s, e) {
        return Err(Rejected::TouchesOtherLines { line });
    }

    let new = apply(&old, s, e, &lines);
    check_diff(head, &new, s, e)?;

    let replacement: String = lines.iter().map(|l| format!("{l}\n")).collect();
    Ok(CheckedSuggestion {
        block: block(&replacement),
        replacement,
    })
}

/// The proposal for the thread's lines `thread`, when the model proposed it for `cited`.
///
/// A thread found by its quoted code leaves out blank lines at the edges of the model's range
/// (`cited` may start or end on one). The proposal replaced those too, so its leading
/// (trailing) blank lines, up to as many as the range lost above (below) the thread, go as
/// well: kept, they would insert a stray blank line. Anything else is returned as it is;
/// [`check_suggestion`] still has the last word.
pub fn fit_to_thread(head: &str, cited: (u32, u32), thread: (u32, u32), proposed: &str) -> String {
    let old: Vec<&str> = head.split_inclusive('\n').map(content).collect();
    // Lines `from..=to` (1-based) are all in the file and blank.
    let blank = |from: u32, to: u32| {
        (from..=to).all(|n| {
            (n as usize)
                .checked_sub(1)
                .and_then(|i| old.get(i))
                .is_some_and(|l| l.trim().is_empty())
        })
    };
    let lost_above = if cited.0 < thread.0 && blank(cited.0, thread.0 - 1) {
        thread.0 - cited.0
    } else {
        0
    };
    let lost_below = if cited.1 > thread.1 && blank(thread.1 + 1, cited.1) {
        cited.1 - thread.1
    } else {
        0
    };
    let lines = split_replacement(proposed);
    let is_blank = |l: &&&str| l.trim().is_empty();
    let lead = lines
        .iter()
        .take_while(is_blank)
        .count()
        .min(lost_above as usize);
    let rest = &lines[lead..];
    let trail = rest
        .iter()
        .rev()
        .take_while(is_blank)
        .count()
        .min(lost_below as usize);
    if lead == 0 && trail == 0 {
        return proposed.to_owned();
    }
    rest[..rest.len() - trail]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A line without its terminator (`\n` or `\r\n`).
fn content(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// The replacement's lines; `""` is no line, one trailing newline only ends the last line.
fn split_replacement(replacement: &str) -> Vec<&str> {
    if replacement.is_empty() {
        return Vec::new();
    }
    let body = replacement.strip_suffix('\n').unwrap_or(replacement);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// A line's terminator: `\n`, `\r\n` or nothing (last line without newline).
fn ending(line: &str) -> &str {
    &line[content(line).len()..]
}

/// Blank lines match whatever whitespace they hold.
fn eq_line(a: &str, b: &str) -> bool {
    a == b || (a.trim().is_empty() && b.trim().is_empty())
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

fn first_indent<'a>(lines: &[&'a str]) -> Option<&'a str> {
    lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| indent(l))
}

/// Moves a line's indentation: drop `remove` from its start, then prepend `add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shift<'a> {
    remove: &'a str,
    add: &'a str,
}

impl<'a> Shift<'a> {
    /// The shift taking indentation `have` to `want`, when one extends the other at the front
    /// (the model stripped or added leading whitespace); the added part is the file's own.
    fn between(want: &'a str, have: &'a str) -> Option<Self> {
        if let Some(add) = want.strip_suffix(have) {
            Some(Shift { remove: "", add })
        } else {
            have.strip_suffix(want)
                .map(|remove| Shift { remove, add: "" })
        }
    }

    /// Blank lines are left alone; `None` if a line lacks the prefix to remove.
    fn apply(self, line: &str) -> Option<String> {
        if line.trim().is_empty() {
            return Some(line.to_owned());
        }
        let rest = line.strip_prefix(self.remove)?;
        Some(format!("{}{rest}", self.add))
    }

    fn apply_all(self, lines: &[&str]) -> Option<Vec<String>> {
        lines.iter().map(|l| self.apply(l)).collect()
    }
}

/// The shift that lines `lines` up with the range by their first non-blank lines.
fn natural<'a>(range: &[&'a str], lines: &[&'a str]) -> Option<Shift<'a>> {
    Shift::between(first_indent(range)?, first_indent(lines)?)
}

/// The shift under which `lines` are an exact copy of `ctx` (with at least one non-blank line).
fn copy_of<'a>(lines: &[&'a str], ctx: &[&'a str]) -> Option<Shift<'a>> {
    if lines.len() != ctx.len() {
        return None;
    }
    let (l, c) = lines.iter().zip(ctx).find(|(l, _)| !l.trim().is_empty())?;
    let shift = Shift::between(indent(c), indent(l))?;
    let copies = lines
        .iter()
        .zip(ctx)
        .all(|(l, c)| shift.apply(l).is_some_and(|l| eq_line(&l, c)));
    copies.then_some(shift)
}

/// Whether `head` (under `shift`) equals the range's own lines, so it may be kept, not copied.
fn equals(shift: Shift<'_>, head: &[&str], own: &[&str]) -> bool {
    shift
        .apply_all(head)
        .is_some_and(|h| h.len() == own.len() && h.iter().zip(own).all(|(a, b)| eq_line(a, b)))
}

/// Drops leading lines that copy the lines above the range and trailing lines that copy the
/// lines below it, returning the rest and the indentation shift the copies revealed.
///
/// A copy counts only under the same indentation shift the remaining lines need to line up with
/// the range: a stripped `}` that closes the model's own new block is not the file's `}` below.
fn trim_context<'a>(
    proposed: &[&'a str],
    range: &[&'a str],
    above: &[&'a str],
    below: &[&'a str],
) -> (Vec<&'a str>, Option<Shift<'a>>) {
    let consistent = |shift: Shift<'a>, rest: &[&'a str]| match natural(range, rest) {
        Some(n) => n == shift,
        None => first_indent(rest).is_none(),
    };
    let mut rest = proposed;
    let mut found = None;
    for k in (1..=rest.len().min(above.len())).rev() {
        let head = &rest[..k];
        let Some(shift) = copy_of(head, &above[above.len() - k..]) else {
            continue;
        };
        let own = k <= range.len() && equals(shift, head, &range[..k]);
        if !own && consistent(shift, &rest[k..]) {
            rest = &rest[k..];
            found = Some(shift);
            break;
        }
    }
    for m in (1..=rest.len().min(below.len())).rev() {
        let tail = &rest[rest.len() - m..];
        let Some(shift) = copy_of(tail, &below[..m]) else {
            continue;
        };
        let own = m <= range.len() && equals(shift, tail, &range[range.len() - m..]);
        let remaining = &rest[..rest.len() - m];
        if !own && found.is_none_or(|f| f == shift) && consistent(shift, remaining) {
            rest = remaining;
            found = found.or(Some(shift));
            break;
        }
    }
    (rest.to_vec(), found)
}

/// A substantive line just outside the range (one with a letter or digit, so not a lone `}`)
/// that the replacement repeats, while the range itself does not hold it: the model rewrote more
/// lines than the thread covers, and posting it would duplicate that line.
fn repeated_neighbour(
    lines: &[String],
    range: &[&str],
    old: &[&str],
    s: usize,
    e: usize,
) -> Option<u32> {
    let neighbours = s
        .checked_sub(1)
        .into_iter()
        .chain((e < old.len()).then_some(e));
    for n in neighbours {
        let text = content(old[n]).trim();
        if text.chars().any(char::is_alphanumeric)
            && lines.iter().any(|l| l.trim() == text)
            && !range.iter().any(|l| l.trim() == text)
        {
            return Some(u32::try_from(n + 1).unwrap_or(u32::MAX));
        }
    }
    None
}

/// The file with old[s..e] replaced by `lines`, keeping the file's line endings: inner lines end
/// like the range's first line (`\n` if that has none), the last like the range's last line, so
/// a file without a final newline does not gain one.
fn apply(old: &[&str], s: usize, e: usize, lines: &[String]) -> String {
    let eol = match ending(old[s]) {
        "" => s
            .checked_sub(1)
            .map(|p| ending(old[p]))
            .filter(|x| !x.is_empty())
            .unwrap_or("\n"),
        x => x,
    };
    let last_eol = ending(old[e - 1]);
    let mut new: String = old[..s].concat();
    for (i, l) in lines.iter().enumerate() {
        new.push_str(l);
        new.push_str(if i + 1 == lines.len() { last_eol } else { eol });
    }
    new.extend(old[e..].iter().copied());
    new
}

/// Line-diffs old vs new and requires a change, all of it inside old[s..e]; insertions may sit
/// at either edge of the range, since GitHub shows them as part of the replaced lines.
fn check_diff(old: &str, new: &str, s: usize, e: usize) -> Result<(), Rejected> {
    let diff = TextDiff::from_lines(old, new);
    let mut changed = false;
    for op in diff.ops() {
        let (tag, old_range, _) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            continue;
        }
        changed = true;
        let outside = if old_range.start < s {
            Some(old_range.start + 1)
        } else if old_range.end > e {
            Some(old_range.end)
        } else {
            None
        };
        if let Some(line) = outside {
            return Err(Rejected::TouchesOtherLines {
                line: u32::try_from(line).unwrap_or(u32::MAX),
            });
        }
    }
    if changed { Ok(()) } else { Err(Rejected::NoOp) }
}

/// Wraps the content in a fence longer than any backtick run inside it, so code containing
/// ```` ``` ```` cannot close the block early.
fn block(replacement: &str) -> String {
    let fence = super::markdown::fence_for(replacement);
    format!("{fence}suggestion\n{replacement}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FILE: &str = "fn main() {\n    let x = 1;\n    let y = 2;\n    println!(\"{x}\");\n}\n";

    fn ok(head: &str, start: u32, line: u32, rep: &str) -> CheckedSuggestion {
        match check_suggestion(head, start, line, rep) {
            Ok(c) => c,
            Err(e) => panic!("rejected: {e}"),
        }
    }

    #[test]
    fn a_fix_must_read_as_code_and_parse() {
        let c_file = "int f(int a, int b) {\n    int q = a / b;\n    return q;\n}\n";
        // Code that parses: kept.
        assert!(reads_as_code("src/f.c", c_file, 2, 2, "    int q = b ? a / b : 0;").is_ok());
        // Advice where the code belongs.
        // Advice where the code belongs: a syntax error in a parsed language, prose in another.
        let prose = reads_as_code(
            "src/f.c",
            c_file,
            2,
            2,
            "    Remove the check for zero here.",
        );
        assert!(
            matches!(prose, Err(Rejected::BreaksSyntax { .. })),
            "{prose:?}"
        );
        let rb = "def f(a, b)\n  a / b\nend\n";
        let prose = reads_as_code("lib/f.rb", rb, 2, 2, "  Remove the check for zero here.");
        assert!(matches!(prose, Err(Rejected::Prose { .. })), "{prose:?}");
        // An unclosed bracket is an error where the file ends, not on the fixed line.
        let rs = "fn f(a: i32, b: i32) -> i32 {\n    let q = a / b;\n    q\n}\n\nfn g() {}\n";
        let open = reads_as_code(
            "src/f.rs",
            rs,
            2,
            2,
            "    let q = if b == 0 { 0 } else { a / b ;",
        );
        assert!(
            matches!(open, Err(Rejected::BreaksSyntax { .. })),
            "{open:?}"
        );
        let sql = reads_as_code(
            "db/q.sql",
            "SELECT 1;\n",
            1,
            1,
            "SELECT id, name FROM users ORDER BY id",
        );
        assert!(sql.is_ok(), "SQL is not prose: {sql:?}");
        // Code-like but broken: a new syntax error in the replaced lines.
        let broken = reads_as_code("src/f.c", c_file, 2, 2, "    int q = a / ;");
        assert!(
            matches!(broken, Err(Rejected::BreaksSyntax { before: 0, .. })),
            "{broken:?}"
        );
        let py = "def f(a, b):\n    return a / b\n";
        assert!(reads_as_code("m.py", py, 2, 2, "    return a / b if b else 0").is_ok());
        assert!(reads_as_code("m.py", py, 2, 2, "    return (a / b").is_err());
        // Comments are code; prose in a text file is what the file is.
        assert!(
            reads_as_code(
                "m.py",
                py,
                2,
                2,
                "    # Guard against a zero divisor here.\n    return a / b if b else 0"
            )
            .is_ok()
        );
        assert!(
            reads_as_code(
                "README.md",
                "Old text here.\n",
                1,
                1,
                "Use the new text for this line."
            )
            .is_ok()
        );
        // A file that did not parse before is not held to more than it was.
        let broken_before = "int f( {\n    int q = a / b;\n}\n";
        assert!(reads_as_code("src/g.c", broken_before, 1, 1, "int f(int a, int b) {").is_ok());
    }

    #[test]
    fn prose_is_told_from_code() {
        for prose in [
            "Remove the check for null.",
            "Consider using a constant here instead",
            "This should validate the input first",
        ] {
            assert!(looks_like_prose(prose), "{prose}");
        }
        for code in [
            "    return value if ok else None",
            "Foo.bar(baz)",
            "// Keep the old behaviour for callers.",
            "SELECT name FROM users WHERE id = 1",
            "fmt.Println(x)",
            "end",
        ] {
            assert!(!looks_like_prose(code), "{code}");
        }
    }

    #[test]
    fn one_line_fix() {
        let c = ok(FILE, 2, 2, "    let x = 10;");
        assert_eq!(c.replacement, "    let x = 10;\n");
        assert_eq!(c.block, "```suggestion\n    let x = 10;\n```");
    }

    #[test]
    fn multi_line_fix() {
        let c = ok(FILE, 2, 3, "    let x = 10;\n    let y = 20;\n");
        assert_eq!(c.replacement, "    let x = 10;\n    let y = 20;\n");
        // Adding lines from the replacement after the range is fine.
        let c = ok(FILE, 3, 3, "    let y = 2;\n    let z = 3;\n");
        assert_eq!(c.replacement, "    let y = 2;\n    let z = 3;\n");
    }

    #[test]
    fn no_op() {
        assert_eq!(
            check_suggestion(FILE, 2, 2, "    let x = 1;\n"),
            Err(Rejected::NoOp)
        );
        assert_eq!(
            check_suggestion(FILE, 2, 3, "    let x = 1;\n    let y = 2;"),
            Err(Rejected::NoOp)
        );
    }

    #[test]
    fn changes_outside_range() {
        // Range is line 2, but the model rewrote lines 2..=3 (adding a line after line 3):
        // posting it would leave `let y = 2;` twice.
        assert_eq!(
            check_suggestion(
                FILE,
                2,
                2,
                "    let x = 10;\n    let y = 2;\n    let z = 3;"
            ),
            Err(Rejected::TouchesOtherLines { line: 3 })
        );
        // Same with the line above, stripped of its indentation.
        assert_eq!(
            check_suggestion(FILE, 3, 3, "let y = 20;\nlet x = 1;"),
            Err(Rejected::TouchesOtherLines { line: 2 })
        );
        // The diff check itself: a change the diff can only place after the range.
        let old: Vec<&str> = "a\nb\nc\nd\n".split_inclusive('\n').collect();
        let new = apply(&old, 1, 2, &["b".into(), "c".into(), "X".into()]);
        assert_eq!(
            check_diff("a\nb\nc\nd\n", &new, 1, 2),
            Err(Rejected::TouchesOtherLines { line: 3 })
        );
        assert_eq!(check_diff("a\nb\n", "a\nB\n", 1, 2), Ok(()));
        assert_eq!(
            check_diff("a\nb\n", "A\nb\n", 1, 2),
            Err(Rejected::TouchesOtherLines { line: 1 })
        );
    }

    #[test]
    fn new_block_closing_brace_is_not_context() {
        // The stripped `}` closes the model's `if`; it is not a copy of the file's `}` below.
        let head = "fn f() {\n    x();\n}\n";
        let c = ok(head, 2, 2, "if c {\n    x();\n}");
        assert_eq!(c.replacement, "    if c {\n        x();\n    }\n");
        let head = "    for i in v {\n        process(i);\n    }\n";
        let c = ok(head, 2, 2, "if i > 0 {\n    process(i);\n}\n");
        assert_eq!(
            c.replacement,
            "        if i > 0 {\n            process(i);\n        }\n"
        );
    }

    #[test]
    fn repeated_context_is_trimmed() {
        let c = ok(
            FILE,
            3,
            3,
            "    let x = 1;\n    let y = 20;\n    println!(\"{x}\");\n",
        );
        assert_eq!(c.replacement, "    let y = 20;\n");
        // Context copied without its indentation is still recognised, and the rest re-indented.
        let c = ok(FILE, 3, 3, "let x = 1;\nlet y = 20;\nprintln!(\"{x}\");");
        assert_eq!(c.replacement, "    let y = 20;\n");
        // Only context: not turned into a deletion.
        assert_eq!(
            check_suggestion(FILE, 3, 3, "    let x = 1;\n    println!(\"{x}\");"),
            Err(Rejected::Empty)
        );
        // Context plus the unchanged line: a no-op.
        assert_eq!(
            check_suggestion(
                FILE,
                3,
                3,
                "    let x = 1;\n    let y = 2;\n    println!(\"{x}\");"
            ),
            Err(Rejected::NoOp)
        );
        // The line above equals the range's own first line: kept, not trimmed.
        let c = ok("}\n}\nfn f() {}\n", 2, 2, "}\n\n");
        assert_eq!(c.replacement, "}\n\n");
    }

    #[test]
    fn stripped_indentation_spaces() {
        let c = ok(FILE, 2, 3, "let x = 10;\nif x > 1 {\n    go();\n}\n");
        assert_eq!(
            c.replacement,
            "    let x = 10;\n    if x > 1 {\n        go();\n    }\n"
        );
        // Over-indented by a common prefix.
        let c = ok(FILE, 2, 2, "        let x = 10;\n");
        assert_eq!(c.replacement, "    let x = 10;\n");
        // Relative indentation already right: untouched.
        let c = ok(FILE, 2, 3, "    let x = 10;\n        let y = 2;\n");
        assert_eq!(c.replacement, "    let x = 10;\n        let y = 2;\n");
    }

    #[test]
    fn stripped_indentation_tabs() {
        let head = "func f() {\n\tif x {\n\t\treturn 1\n\t}\n}\n";
        let c = ok(head, 3, 3, "return 2\n");
        assert_eq!(c.replacement, "\t\treturn 2\n");
        let c = ok(head, 2, 4, "if y {\n\treturn 1\n}\n");
        assert_eq!(c.replacement, "\tif y {\n\t\treturn 1\n\t}\n");
        // A pure re-indentation of the model's copy is a no-op.
        assert_eq!(
            check_suggestion(head, 3, 3, "return 1"),
            Err(Rejected::NoOp)
        );
    }

    #[test]
    fn crlf_file() {
        let head = "a\r\nb\r\nc\r\n";
        let c = ok(head, 2, 2, "B\r\nB2\r\n");
        assert_eq!(c.replacement, "B\nB2\n");
        assert_eq!(c.block, "```suggestion\nB\nB2\n```");
        let old: Vec<&str> = head.split_inclusive('\n').collect();
        assert_eq!(
            apply(&old, 1, 2, &["B".into(), "B2".into()]),
            "a\r\nB\r\nB2\r\nc\r\n"
        );
        assert_eq!(check_suggestion(head, 2, 2, "b\n"), Err(Rejected::NoOp));
    }

    #[test]
    fn last_line_without_newline() {
        let head = "a\nb";
        let c = ok(head, 2, 2, "c\n");
        assert_eq!(c.replacement, "c\n");
        let old: Vec<&str> = head.split_inclusive('\n').collect();
        assert_eq!(apply(&old, 1, 2, &["c".into(), "d".into()]), "a\nc\nd");
        // Same text, same missing newline: nothing to suggest.
        assert_eq!(check_suggestion(head, 2, 2, "b\n"), Err(Rejected::NoOp));
        assert_eq!(check_suggestion(head, 2, 2, "b"), Err(Rejected::NoOp));
        let c = ok("only", 1, 1, "other");
        assert_eq!(c.block, "```suggestion\nother\n```");
    }

    #[test]
    fn deletion() {
        let c = ok(FILE, 3, 3, "");
        assert_eq!(c.replacement, "");
        assert_eq!(c.block, "```suggestion\n```");
        let c = ok(FILE, 2, 4, "");
        assert_eq!(c.block, "```suggestion\n```");
        // One blank line is not a deletion.
        let c = ok(FILE, 3, 3, "\n");
        assert_eq!(c.block, "```suggestion\n\n```");
    }

    #[test]
    fn fence_with_backticks() {
        let head = "/// Example:\n/// old\nfn f() {}\n";
        let c = ok(head, 2, 2, "/// ```\n/// f();\n/// ```");
        assert_eq!(c.block, "````suggestion\n/// ```\n/// f();\n/// ```\n````");
        let c = ok(head, 2, 2, "/// `````");
        assert!(c.block.starts_with("``````suggestion\n"));
        assert!(c.block.ends_with("\n``````"));
    }

    #[test]
    fn out_of_range() {
        for (s, l) in [(0, 1), (3, 2), (5, 6), (6, 6), (1, 6)] {
            assert!(
                matches!(
                    check_suggestion(FILE, s, l, "x"),
                    Err(Rejected::OutOfFile { file_lines: 5, .. })
                ),
                "{s}..={l}"
            );
        }
        assert!(matches!(
            check_suggestion("", 1, 1, "x"),
            Err(Rejected::OutOfFile { .. })
        ));
        assert!(check_suggestion(FILE, 5, 5, "};").is_ok());
    }

    #[test]
    fn blank_lines_the_thread_left_out_leave_the_suggestion_too() {
        let head = "fn f() {\n    a();\n\n    b();\n    c();\n\n}\n";
        // The model's range 3..=5 starts on the blank line 3; its thread is 4..=5.
        let fit = fit_to_thread(head, (3, 5), (4, 5), "\n    b(1);\n    c();\n");
        assert_eq!(fit, "    b(1);\n    c();\n");
        let c = ok(head, 4, 5, &fit);
        let applied = splice(head, 3, 5, &c.replacement);
        assert_eq!(applied, "fn f() {\n    a();\n\n    b(1);\n    c();\n\n}\n");
        // Untrimmed, the same proposal passes the check but adds a second blank line.
        let stray = ok(head, 4, 5, "\n    b(1);\n    c();\n");
        assert_eq!(stray.replacement.lines().next(), Some(""));
        // Trailing blank lines likewise, and a range of blank lines and code both ways.
        assert_eq!(
            fit_to_thread(head, (4, 6), (4, 5), "    b();\n    d();\n\n"),
            "    b();\n    d();\n"
        );
        assert_eq!(
            fit_to_thread(head, (3, 6), (4, 5), "\n    b();\n\n"),
            "    b();\n"
        );
        // Replacing a blank line and the code with one blank line deletes the code.
        assert_eq!(fit_to_thread(head, (3, 4), (4, 4), "\n"), "");
    }

    #[test]
    fn only_the_blank_lines_the_thread_left_out_are_trimmed() {
        let head = "fn f() {\n    a();\n\n    b();\n    c();\n\n}\n";
        // The thread is the model's range: a leading blank line is the model's own.
        let p = "\n    b(1);\n";
        assert_eq!(fit_to_thread(head, (4, 4), (4, 4), p), p);
        // The thread moved to its quote, away from the range: nothing to go by.
        assert_eq!(fit_to_thread(head, (1, 2), (4, 4), p), p);
        // Lines above the thread that are not blank were not trimmed.
        assert_eq!(fit_to_thread(head, (2, 4), (4, 4), p), p);
        // One blank line lost, two in the proposal: one stays.
        assert_eq!(
            fit_to_thread(head, (3, 4), (4, 4), "\n\n    b(1);"),
            "\n    b(1);\n"
        );
        // Lines past the end of the file are not blank lines.
        assert_eq!(fit_to_thread(head, (7, 9), (7, 7), "};\n\n"), "};\n\n");
    }

    #[test]
    fn rejections_explain_themselves() {
        let msg = Rejected::TouchesOtherLines { line: 7 }.to_string();
        assert!(msg.contains("line 7"), "{msg}");
    }

    /// Independent of the module: splice `replacement` (lines ending in `\n`) into a file that
    /// uses `\n` line endings, without adding a final newline the file did not have.
    fn splice(head: &str, s: usize, e: usize, replacement: &str) -> String {
        let old: Vec<&str> = head.split_inclusive('\n').collect();
        let mut new = old[..s].concat();
        new.push_str(replacement);
        if !old[e - 1].ends_with('\n') && new.ends_with('\n') && e > s && !replacement.is_empty() {
            new.pop();
        }
        new.push_str(&old[e..].concat());
        new
    }

    fn pool() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c", "", "  a", "\tb", "  }", "x y"])
            .prop_map(str::to_owned)
    }

    proptest! {
        #[test]
        fn accepted_suggestions_touch_only_their_range(
            file in prop::collection::vec(pool(), 1..12),
            final_newline in any::<bool>(),
            start in 0usize..12,
            len in 0usize..4,
            rep in prop::collection::vec(pool(), 0..6),
            rep_newline in any::<bool>(),
        ) {
            let mut head = file.join("\n");
            if final_newline {
                head.push('\n');
            }
            let lines = head.split_inclusive('\n').count();
            prop_assume!(lines > 0);
            let s = start % lines;
            let e = (s + 1 + len).min(lines);
            let mut replacement = rep.join("\n");
            if rep_newline && !rep.is_empty() {
                replacement.push('\n');
            }
            let Ok(c) = check_suggestion(&head, s as u32 + 1, e as u32, &replacement) else {
                return Ok(());
            };
            let new = splice(&head, s, e, &c.replacement);
            prop_assert_ne!(&new, &head);
            let diff = TextDiff::from_lines(head.as_str(), new.as_str());
            for op in diff.ops() {
                let (tag, old, _) = op.as_tag_tuple();
                if tag != DiffTag::Equal {
                    prop_assert!(old.start >= s && old.end <= e, "{op:?} outside {s}..{e}");
                }
            }
            let expected_block = format!("suggestion\n{}", c.replacement);
            prop_assert!(c.block.contains(&expected_block));
        }
    }
}
