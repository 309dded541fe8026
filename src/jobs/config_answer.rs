//! `/config`: the settings in force for a pull request's repository and where each comes from
//! (the server, the organisation's `.github` repository, the repository's own file). Only
//! settings that shape reviews and commands are shown; secrets, keys and URLs never are.

use std::fmt::Write;

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::domain::Task;
use crate::poster::markdown::{inline_code, table_cell};
use crate::review::Reader;

/// Longest value shown in a cell; instructions can be long.
const MAX_VALUE_CHARS: usize = 120;

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

fn cut(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_VALUE_CHARS {
        one_line
    } else {
        let kept: String = one_line.chars().take(MAX_VALUE_CHARS).collect();
        format!("{kept}…")
    }
}

/// A setting's value, with what `auto` came to for the review model.
fn resolved(label: String, value: impl std::fmt::Display) -> String {
    if label == "auto" {
        format!("auto ({value} for the review model)")
    } else {
        label
    }
}

/// The answer to `/config`. `reader` is the review model and what the `auto` settings came
/// to for it.
pub(super) fn render(critic: &Critic, policy: &RepoPolicy, reader: &Reader<'_>) -> String {
    let server = &critic.config.settings;
    let source = |key: &str| {
        policy
            .sources
            .get(key)
            .map_or("server".to_string(), |s| format!("`{s}`"))
    };
    let instructions: Vec<String> = policy.instructions.iter().map(|i| cut(i)).collect();
    let rows: Vec<(&str, String)> = vec![
        ("review.enabled", policy.enabled.to_string()),
        ("review.drafts", policy.drafts.to_string()),
        ("review.paths", list(&policy.paths)),
        ("review.ignore", list(&policy.ignore)),
        ("review.skip_authors", list(&policy.skip_authors)),
        ("review.skip_bots", policy.skip_bots.to_string()),
        ("review.skip_labels", list(&policy.skip_labels)),
        (
            "review.skip_title_markers",
            list(&policy.skip_title_markers),
        ),
        (
            "review.min_severity",
            policy.min_severity.label().to_string(),
        ),
        ("review.max_comments", policy.max_comments.to_string()),
        (
            "review.resolve_addressed",
            policy.resolve_addressed.to_string(),
        ),
        (
            "review.language",
            policy
                .language
                .clone()
                .unwrap_or_else(|| "(the pull request's)".into()),
        ),
        (
            "review.instructions",
            if instructions.is_empty() {
                "(none)".into()
            } else {
                instructions.join(" / ")
            },
        ),
        (
            "review.path_instructions",
            format!("{} rule(s)", policy.path_instructions.len()),
        ),
    ];
    let mut out = String::from(
        "the settings in force for this repository (later files override earlier ones: server, then the organisation's `.github` repository, then this repository's `.github/critic.toml` on its default branch):\n\n| Setting | Value | From |\n| --- | --- | --- |\n",
    );
    for (key, value) in &rows {
        let _ = writeln!(
            out,
            "| `{key}` | {} | {} |",
            inline_code(&cut(value)),
            table_cell(&source(key))
        );
    }
    for task in Task::ALL {
        let key = format!("models.{}", task.label());
        let model = match policy.model_for(task) {
            Some(endpoint) => format!("endpoint {endpoint}"),
            None => critic.llm.describe(task),
        };
        let _ = writeln!(
            out,
            "| `{key}` | {} | {} |",
            inline_code(&model),
            table_cell(&source(&key))
        );
    }
    let commands = &server.commands;
    let server_rows: Vec<(&str, String)> = vec![
        ("review.verify", server.review.verify.to_string()),
        (
            "review.verify_context",
            server.review.verify_context.label().to_string(),
        ),
        (
            "review.suggestions",
            resolved(server.review.suggestions.label(), reader.suggestions),
        ),
        (
            "review.min_confidence",
            server.review.min_confidence.to_string(),
        ),
        (
            "review.budget_tokens",
            server.review.budget_tokens.to_string(),
        ),
        ("review.max_chunks", server.review.max_chunks.to_string()),
        (
            "review.max_scope_lines",
            resolved(
                server.review.max_scope_lines.label(),
                reader.max_scope_lines,
            ),
        ),
        ("tests.verify_in_ci", server.tests.verify_in_ci.to_string()),
        (
            "tests.verify_timeout_secs",
            server.tests.verify_timeout_secs.to_string(),
        ),
        (
            "tests.verify_poll_secs",
            server.tests.verify_poll_secs.to_string(),
        ),
        ("commands.allowed", list(&commands.allowed)),
        (
            "commands.require_permission",
            commands
                .require_permission
                .0
                .map_or("off".into(), |p| p.to_string()),
        ),
        (
            "commands.per_user_per_hour",
            commands.per_user_per_hour.to_string(),
        ),
    ];
    for (key, value) in &server_rows {
        let _ = writeln!(out, "| `{key}` | {} | server |", inline_code(value));
    }
    if !policy.learned.is_empty() {
        let _ = write!(
            out,
            "\n{} instruction(s) learned from this repository's reactions also apply (`/learnings`).",
            policy.learned.len()
        );
    }
    out
}
