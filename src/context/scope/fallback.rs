//! Scopes by indentation, for languages we do not parse and code tree-sitter could not.
//!
//! The block around a change is opened by the nearest less-indented line above it that looks
//! like a block opener (ends with `{`, `:`, `(`, `[`, `|` or `do`, or starts with a
//! definition keyword) and runs down to where the indentation comes back, plus a closing
//! `end`/`}` at the opener's indentation. Every scan is bounded, so a 100,000-line file
//! costs no more than a small one.

use super::{Scope, ScopeKind, ScopeOptions, SourceFile, window_around};

/// How far up or down one scan looks before giving up on finding a block's edge.
const SCAN_LINES: u32 = 2_000;

/// Labels are for prompts; a pathological line must not flood one.
const MAX_LABEL_CHARS: usize = 80;

/// Words that open a definition in the languages this fallback mostly meets: Ruby, Perl,
/// shell, Lua, Kotlin, Swift, Scala, PHP, Elixir.
const DEFINITION_WORDS: [&str; 16] = [
    "def",
    "defp",
    "defmodule",
    "function",
    "fun",
    "func",
    "fn",
    "sub",
    "class",
    "module",
    "object",
    "interface",
    "struct",
    "trait",
    "impl",
    "namespace",
];

pub(super) fn enclosing_scopes(
    file: &SourceFile,
    start: u32,
    end: u32,
    options: &ScopeOptions,
) -> Vec<Scope> {
    let indent_of = |line: u32| indentation(file.line(line));
    let Some(block) = find_block(file, start, end) else {
        return vec![file.top_level(start, end, options.extra)];
    };
    let header = file.line(block.header);
    let label = label(header);
    let outer = outer_labels(file, block.header, indent_of(block.header).unwrap_or(0));
    let max_lines = options.max_lines.max(1);
    if block.end - block.header < max_lines {
        return vec![Scope {
            start: block.header,
            end: block.end,
            kind: ScopeKind::Block,
            label,
            outer,
        }];
    }
    let (from, to) = window_around(start, end, max_lines, block.header, block.end);
    vec![Scope {
        start: from,
        end: to,
        kind: ScopeKind::Window,
        label: format!("{label} (lines {}-{})", block.header, block.end),
        outer,
    }]
}

struct Block {
    header: u32,
    end: u32,
}

/// The innermost block that holds all of `start..=end`.
fn find_block(file: &SourceFile, start: u32, end: u32) -> Option<Block> {
    let changed_indent = (start..=end)
        .filter_map(|line| indentation(file.line(line)))
        .min()
        .or_else(|| next_code_line(file, end).and_then(|line| indentation(file.line(line))))
        .unwrap_or(0);
    // A change to a block's first line is about that block.
    if let Some(indent) = indentation(file.line(start))
        && indent == changed_indent
        && opens_block(file.line(start))
    {
        let block_end = block_end(file, start, indent);
        if block_end > start && block_end >= end {
            return Some(Block {
                header: start,
                end: block_end,
            });
        }
    }
    let mut wanted = changed_indent;
    let mut line = start;
    let lowest = start.saturating_sub(SCAN_LINES).max(1);
    while line > lowest && wanted > 0 {
        line -= 1;
        let text = file.line(line);
        let Some(indent) = indentation(text) else {
            continue;
        };
        if indent >= wanted {
            continue;
        }
        if opens_block(text) {
            let block_end = block_end(file, line, indent);
            if block_end >= end {
                return Some(Block {
                    header: line,
                    end: block_end,
                });
            }
        }
        wanted = indent;
    }
    None
}

/// The last line of the block opened at `header` (indented `indent`): the last line indented
/// deeper before the indentation comes back, plus a closing line at the header's level.
fn block_end(file: &SourceFile, header: u32, indent: u32) -> u32 {
    let count = file.line_count();
    let last_scanned = header.saturating_add(SCAN_LINES).min(count);
    let mut end = header;
    let mut line = header;
    while line < last_scanned {
        line += 1;
        let text = file.line(line);
        let Some(line_indent) = indentation(text) else {
            continue;
        };
        if line_indent > indent {
            end = line;
            continue;
        }
        if line_indent == indent && closes_block(text) {
            end = line;
        }
        return end;
    }
    end
}

/// The labels of the blocks around the one opened at `header`, outermost first.
fn outer_labels(file: &SourceFile, header: u32, indent: u32) -> Vec<String> {
    let mut labels = Vec::new();
    let mut wanted = indent;
    let mut line = header;
    let lowest = header.saturating_sub(SCAN_LINES).max(1);
    while line > lowest && wanted > 0 {
        line -= 1;
        let text = file.line(line);
        let Some(line_indent) = indentation(text) else {
            continue;
        };
        if line_indent < wanted {
            if opens_block(text) {
                labels.push(label(text));
            }
            wanted = line_indent;
        }
    }
    labels.reverse();
    labels
}

fn next_code_line(file: &SourceFile, after: u32) -> Option<u32> {
    let last = after.saturating_add(SCAN_LINES).min(file.line_count());
    (after + 1..=last).find(|&line| indentation(file.line(line)).is_some())
}

/// The width of a line's leading whitespace, a tab counting four; `None` for lines that
/// say nothing about structure: blank lines and comments, which may sit at any indentation.
fn indentation(line: &str) -> Option<u32> {
    let code = line.trim_start();
    if code.is_empty() || code.starts_with('#') || code.starts_with("//") {
        return None;
    }
    let width = line[..line.len() - code.len()]
        .chars()
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    Some(width)
}

fn opens_block(line: &str) -> bool {
    let code = line.trim();
    if code.ends_with(['{', ':', '(', '[', '|']) || code.ends_with(" do") || code == "do" {
        return true;
    }
    let first_word = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default();
    let word = match first_word {
        // `export`, `public`, `private` and friends come before the keyword that matters.
        "export" | "public" | "private" | "protected" | "static" | "async" | "pub" | "local" => {
            code[first_word.len()..]
                .trim_start()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
        }
        word => word,
    };
    DEFINITION_WORDS.contains(&word)
}

fn closes_block(line: &str) -> bool {
    let code = line.trim();
    code.starts_with(['}', ']', ')'])
        || code.starts_with("</")
        || [
            "end",
            "fi",
            "done",
            "esac",
            "endif",
            "endfunction",
            "endmodule",
        ]
        .iter()
        .any(|word| {
            code.strip_prefix(word)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
}

fn label(header: &str) -> String {
    let code = header.trim().trim_end_matches('{').trim_end();
    let folded = code.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= MAX_LABEL_CHARS {
        return folded;
    }
    let mut cut: String = folded.chars().take(MAX_LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}
