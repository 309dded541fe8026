//! Slash commands in pull request comments: what a comment asks for, and who may ask.
//!
//! Which text counts: a command opens the comment. The comment, read as Markdown (CommonMark
//! with GitHub's tables and strikethrough), must start with an ordinary paragraph whose first
//! line starts with `/name` (indentation before it is fine, and so is text after the name).
//! A command anywhere else is not one: a later line or paragraph, inline code, a fenced or
//! indented code block, a block quote (someone else's `> /review`, quoted), a heading, a list
//! or HTML. Names are case-blind. Commands of other bots (`/deploy`, `/assign`) are not ours
//! and are ignored, not answered: several bots share a pull request's conversation.
//!
//! Parsing is pure: no I/O and no redaction. `/ask` carries its question as written; secrets
//! are taken out where the question goes to a model (see `jobs::command`).
//!
//! The commands and their help come from one list, [`CommandKind::ALL`]: the parser knows only
//! the names on it and [`help`] lists each one's usage and description, so a command that can
//! be run is always in the help.

use std::fmt::Write;
use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde::{Deserialize, Serialize};

/// What a comment asks Critic to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Command {
    /// Review the pull request now, whatever the automatic review settings say.
    Review,
    /// Describe the pull request: a title, its type, a summary and a walkthrough.
    Describe,
    /// Suggest code improvements for the changed lines.
    Improve,
    /// Answer a question about the pull request. The question is the comment's text after
    /// `/ask`, as written: not redacted and not cut (GitHub bounds a comment's length).
    Ask { question: String },
    /// Suggest tests for the change.
    Test,
    /// List what Critic learned from the repository's reactions; `reset` (maintainers only)
    /// forgets it.
    Learnings { reset: bool },
    /// List the commands.
    Help,
}

/// Critic's commands by name, without their arguments: what the parser knows and the help
/// lists. Each property is an exhaustive `match`, so a new kind cannot lack one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Review,
    Describe,
    Improve,
    Ask,
    Test,
    Learnings,
    Help,
}

impl CommandKind {
    /// Every command, in the order the help lists them. The parser looks names up here, so a
    /// kind left off this list can be neither run nor listed.
    pub const ALL: [CommandKind; 7] = [
        CommandKind::Review,
        CommandKind::Describe,
        CommandKind::Improve,
        CommandKind::Ask,
        CommandKind::Test,
        CommandKind::Learnings,
        CommandKind::Help,
    ];

    /// The name after the `/`.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Review => "review",
            CommandKind::Describe => "describe",
            CommandKind::Improve => "improve",
            CommandKind::Ask => "ask",
            CommandKind::Test => "test",
            CommandKind::Learnings => "learnings",
            CommandKind::Help => "help",
        }
    }

    /// Other names the parser takes for it (not listed in the help).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            CommandKind::Test => &["tests"],
            CommandKind::Review
            | CommandKind::Describe
            | CommandKind::Improve
            | CommandKind::Ask
            | CommandKind::Learnings
            | CommandKind::Help => &[],
        }
    }

    /// How it is written in a comment.
    pub fn usage(self) -> &'static str {
        match self {
            CommandKind::Review => "/review",
            CommandKind::Describe => "/describe",
            CommandKind::Improve => "/improve",
            CommandKind::Ask => "/ask QUESTION",
            CommandKind::Test => "/test",
            CommandKind::Learnings => "/learnings [reset]",
            CommandKind::Help => "/help",
        }
    }

    /// What it does, in one sentence (a cell of the help's table: no `|`, no line break).
    pub fn about(self) -> &'static str {
        match self {
            CommandKind::Review => {
                "Reviews the pull request now, also a draft or one automatic reviews skip, without repeating findings already posted."
            }
            CommandKind::Describe => {
                "Describes the pull request: a title, its type, a summary and a walkthrough of its files."
            }
            CommandKind::Improve => "Suggests improvements to the changed code.",
            CommandKind::Ask => {
                "Answers a question about the pull request (the rest of the comment is the question)."
            }
            CommandKind::Test => "Suggests tests for the change.",
            CommandKind::Learnings => {
                "Lists what Critic learned from this repository's reactions to its threads; `reset` (owners, members, collaborators) forgets it."
            }
            CommandKind::Help => "Shows this list.",
        }
    }

    /// The kind a name (or alias) stands for, case-blind; `None` for other bots' commands.
    fn named(name: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|k| {
            k.name().eq_ignore_ascii_case(name)
                || k.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }
}

impl Command {
    /// The command a comment opens with, if it is one of Critic's (see the module's doc for
    /// which text counts). `/ask` without a question is `Help` (the answer shows how to ask).
    pub fn parse(comment: &str) -> Option<Command> {
        let start = opening_text(comment)?;
        let line = comment[start..].lines().next()?;
        let rest_of_line = line.strip_prefix('/')?;
        let name = rest_of_line
            .split(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let command = match CommandKind::named(name)? {
            CommandKind::Review => Command::Review,
            CommandKind::Describe => Command::Describe,
            CommandKind::Improve => Command::Improve,
            CommandKind::Test => Command::Test,
            CommandKind::Help => Command::Help,
            CommandKind::Learnings => Command::Learnings {
                reset: comment[start + 1 + name.len()..]
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("reset")),
            },
            CommandKind::Ask => {
                // The question is the rest of the line and every line after it, as written
                // (code blocks and all).
                let question = comment[start + 1 + name.len()..].trim();
                if question.is_empty() {
                    return Some(Command::Help);
                }
                Command::Ask {
                    question: question.replace("\r\n", "\n"),
                }
            }
        };
        Some(command)
    }

    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Review => CommandKind::Review,
            Command::Describe => CommandKind::Describe,
            Command::Improve => CommandKind::Improve,
            Command::Ask { .. } => CommandKind::Ask,
            Command::Test => CommandKind::Test,
            Command::Learnings { .. } => CommandKind::Learnings,
            Command::Help => CommandKind::Help,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// Where the comment's opening text starts (a byte offset into `comment`), if the comment
/// opens with an ordinary paragraph whose first line starts with plain text: not a quote, a
/// code block, a heading, a list or HTML, and not inline code, a link, emphasis or an escape.
fn opening_text(comment: &str) -> Option<usize> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events = Parser::new_ext(comment, options).into_offset_iter();
    let (Event::Start(Tag::Paragraph), _) = events.next()? else {
        return None;
    };
    let (Event::Text(_), text) = events.next()? else {
        return None;
    };
    // Only indentation before it on its line (a backslash before `/review` escapes it).
    let line_start = comment[..text.start].rfind('\n').map_or(0, |i| i + 1);
    comment[line_start..text.start]
        .trim()
        .is_empty()
        .then_some(text.start)
}

/// Whether a commenter whose relation to the repository is `association` (GitHub's
/// `author_association`: `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`, ...) may
/// run commands. Comments are open to anyone who can see a public repository; only the
/// people the settings name may spend the organisation's model budget.
pub fn may_run(association: Option<&str>, allowed: &[String]) -> bool {
    association.is_some_and(|a| allowed.iter().any(|x| x.eq_ignore_ascii_case(a)))
}

/// The answer to `/help`: every command of [`CommandKind::ALL`], its usage and what it does.
pub fn help() -> &'static str {
    static HELP: LazyLock<String> = LazyLock::new(|| {
        let mut out = String::from(
            "**Critic's commands** (at the start of a comment on the pull request):\n\n\
             | Command | What it does |\n| --- | --- |\n",
        );
        for kind in CommandKind::ALL {
            let _ = writeln!(out, "| `{}` | {} |", kind.usage(), kind.about());
        }
        out.push_str(
            "\nCritic reads the pull request's diff and the code around it. It only ever \
             comments: it never approves, requests changes or merges.",
        );
        out
    });
    &HELP
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(question: &str) -> Option<Command> {
        Some(Command::Ask {
            question: question.into(),
        })
    }

    #[test]
    fn learnings_takes_reset() {
        assert_eq!(
            Command::parse("/learnings"),
            Some(Command::Learnings { reset: false })
        );
        assert_eq!(
            Command::parse("/learnings reset please"),
            Some(Command::Learnings { reset: true })
        );
        assert_eq!(
            Command::parse("/learnings resetting"),
            Some(Command::Learnings { reset: false })
        );
        assert!(help().contains("/learnings [reset]"));
    }

    #[test]
    fn commands_are_the_first_line_and_case_blind() {
        assert_eq!(Command::parse("/review"), Some(Command::Review));
        assert_eq!(Command::parse("/REVIEW"), Some(Command::Review));
        assert_eq!(
            Command::parse("  /Describe please\nthanks"),
            Some(Command::Describe)
        );
        assert_eq!(Command::parse("\n\n/improve"), Some(Command::Improve));
        assert_eq!(Command::parse("/improve\r\n"), Some(Command::Improve));
        assert_eq!(Command::parse("/tests"), Some(Command::Test));
        assert_eq!(Command::parse("/Test"), Some(Command::Test));
        assert_eq!(Command::parse("/help"), Some(Command::Help));
        assert_eq!(
            Command::parse("/ask why a mutex here?\nIt looks unused."),
            ask("why a mutex here?\nIt looks unused.")
        );
        assert_eq!(
            Command::parse("/ask"),
            Some(Command::Help),
            "usage, not a model call"
        );
        assert_eq!(Command::parse("/Ask   \n\n  "), Some(Command::Help));
    }

    #[test]
    fn text_after_the_name_is_ignored_except_by_ask() {
        assert_eq!(
            Command::parse("/review please, and *quickly*"),
            Some(Command::Review)
        );
        assert_eq!(Command::parse("/review\n\nThanks!"), Some(Command::Review));
        assert_eq!(Command::parse("/help `me`"), Some(Command::Help));
        assert_eq!(Command::parse("/ask is `x` used?"), ask("is `x` used?"));
    }

    #[test]
    fn ask_keeps_the_lines_and_blocks_after_it_as_written() {
        assert_eq!(
            Command::parse("/ask\nWhy is this slow?"),
            ask("Why is this slow?")
        );
        assert_eq!(
            Command::parse(
                "/ask Why is this slow?\r\n\r\n```rust\nfor x in v {\n    f(x);\n}\n```\r\n\r\n> it was fast before\n"
            ),
            ask(
                "Why is this slow?\n\n```rust\nfor x in v {\n    f(x);\n}\n```\n\n> it was fast before"
            )
        );
    }

    fn assert_none(texts: &[&str]) {
        for text in texts {
            assert_eq!(Command::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn other_text_and_other_bots_commands_are_not_ours() {
        assert_none(&[
            "LGTM",
            "please /review this",
            "> /review\nquoted",
            "/deploy staging",
            "/reviewer",
            "/review.",
            "",
            "/",
            "/ review",
        ]);
    }

    #[test]
    fn a_command_not_first_is_not_one() {
        assert_none(&[
            "LGTM\n/review",
            "LGTM\n\n/review",
            "Thanks! /ask why?",
            "> /review\n\n/review",
            "```\nlog\n```\n/review",
        ]);
    }

    #[test]
    fn commands_in_code_are_not_commands() {
        assert_none(&[
            "`/review`",
            "`/review` runs a review",
            "```\n/review\n```",
            "~~~\n/ask why?\n~~~",
            "```text\n/describe\n```\nthat is how",
            "    /review",
            "\t/review",
            "\n\n    /ask why?\n",
        ]);
    }

    #[test]
    fn quoted_and_marked_up_commands_are_not_commands() {
        assert_none(&[
            "> /review",
            ">/review",
            "> > /ask why?",
            "  > /describe\n\nquoting bob",
            "- /review",
            "1. /review",
            "# /review",
            "**/review**",
            "~~/review~~",
            "[/review](https://example.com)",
            "\\/review",
            "<b>/review</b>",
            "<!-- hi -->\n/review",
        ]);
    }

    #[test]
    fn the_question_is_carried_as_written() {
        let token = concat!("ghp_", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa");
        let long = "é".repeat(5000);
        let Some(Command::Ask { question }) = Command::parse(&format!("/ask {long} {token}"))
        else {
            panic!("ask");
        };
        assert_eq!(
            question,
            format!("{long} {token}"),
            "redacted and cut where it goes to a model"
        );
    }

    #[test]
    fn every_command_is_in_the_help_and_parses_from_its_usage() {
        let help = help();
        for kind in CommandKind::ALL {
            let row = format!("| `{}` | {} |", kind.usage(), kind.about());
            assert!(help.contains(&row), "{kind:?} missing: {help}");
            assert!(!kind.about().contains(['|', '\n']), "{kind:?}");
            assert_eq!(
                CommandKind::ALL.iter().filter(|k| **k == kind).count(),
                1,
                "{kind:?} listed once"
            );
            // The usage, with a question where one is asked for, runs that very command.
            let written = kind.usage().replace("QUESTION", "why?");
            let parsed = Command::parse(&written).expect("a command");
            assert_eq!(parsed.kind(), kind, "{written}");
            assert_eq!(parsed.name(), kind.name());
        }
    }

    #[test]
    fn only_the_allowed_associations_may_run_commands() {
        let allowed: Vec<String> = ["OWNER", "MEMBER", "COLLABORATOR"]
            .map(String::from)
            .to_vec();
        assert!(may_run(Some("MEMBER"), &allowed));
        assert!(may_run(Some("owner"), &allowed));
        for outsider in [
            Some("CONTRIBUTOR"),
            Some("NONE"),
            Some("FIRST_TIME_CONTRIBUTOR"),
            None,
        ] {
            assert!(!may_run(outsider, &allowed), "{outsider:?}");
        }
    }
}
