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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_fences_hold_their_text() {
        assert_eq!(table_cell("a | b\nc"), "a \\| b c");
        assert_eq!(fence_for("let x = 1;"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
    }
}
