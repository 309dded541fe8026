//! Small pieces of GitHub Markdown that must hold whatever text the model or a PR puts in.

/// Text for a table cell: a `|` or a line break would break the table.
pub fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A code fence longer than any run of backticks in `code`, so the code cannot close it.
pub fn fence_for(code: &str) -> String {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Inline code holding `text` on one line: a path the model made up may hold backticks or
/// line breaks, which must not end the span (and let a mention or markup out).
pub fn inline_code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space inside its fence.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_fences_hold_their_text() {
        assert_eq!(table_cell("a | b\nc"), "a \\| b c");
        assert_eq!(fence_for("let x = 1;"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
        assert_eq!(inline_code("src/a.rs"), "`src/a.rs`");
        assert_eq!(inline_code("a`b\n@x"), "``a`b @x``");
        assert_eq!(inline_code("`a"), "`` `a ``");
    }
}
