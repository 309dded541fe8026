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
    /// Review the pull request now, whatever the automatic review settings say; with `full`
    /// (`/review --full`), the whole pull request again, not only what is new since the last
    /// review (findings already posted are still not repeated).
    Review {
        #[serde(default)]
        full: bool,
    },
    /// Describe the pull request: a title, its type, a summary and a walkthrough.
    Describe,
    /// Suggest code improvements for the changed lines.
    Improve,
    /// Answer a question about the pull request. The question is the comment's text after
    /// `/ask`, as written: not redacted and not cut (GitHub bounds a comment's length).
    Ask { question: String },
    /// Suggest tests for the change; with `verify` (`/test --verify`), also push them to a
    /// branch for the repository's own CI to run.
    Test {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        verify: bool,
    },
    /// List what Critic learned from the repository's reactions; `reset` (maintainers only)
    /// forgets it.
    Learnings { reset: bool },
    /// List the commands.
    Help,
    /// Stop automatic reviews of this pull request until `/resume`.
    Pause,
    /// Restart automatic reviews of this pull request.
    Resume,
    /// Show the settings in force for this pull request's repository and where each comes from.
    Config,
    /// A misspelt command (`/reveiw`): answered with the one meant, never run.
    Typo { written: String, meant: String },
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
    Pause,
    Resume,
    Config,
    Help,
}

impl CommandKind {
    /// Every command, in the order the help lists them. The parser looks names up here, so a
    /// kind left off this list can be neither run nor listed.
    pub const ALL: [CommandKind; 10] = [
        CommandKind::Review,
        CommandKind::Describe,
        CommandKind::Improve,
        CommandKind::Ask,
        CommandKind::Test,
        CommandKind::Learnings,
        CommandKind::Pause,
        CommandKind::Resume,
        CommandKind::Config,
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
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Config => "config",
            CommandKind::Help => "help",
        }
    }

    /// Other names the parser takes for it (not listed in the help).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            CommandKind::Test => &["tests"],
            CommandKind::Config => &["settings"],
            CommandKind::Review
            | CommandKind::Describe
            | CommandKind::Improve
            | CommandKind::Ask
            | CommandKind::Learnings
            | CommandKind::Pause
            | CommandKind::Resume
            | CommandKind::Help => &[],
        }
    }

    /// How it is written in a comment.
    pub fn usage(self) -> &'static str {
        match self {
            CommandKind::Review => "/review [--full]",
            CommandKind::Describe => "/describe",
            CommandKind::Improve => "/improve",
            CommandKind::Ask => "/ask QUESTION",
            CommandKind::Test => "/test [--verify]",
            CommandKind::Learnings => "/learnings [reset]",
            CommandKind::Pause => "/pause",
            CommandKind::Resume => "/resume",
            CommandKind::Config => "/config",
            CommandKind::Help => "/help",
        }
    }

    /// What it does, in one sentence (a cell of the help's table: no `|`, no line break).
    pub fn about(self) -> &'static str {
        match self {
            CommandKind::Review => {
                "Reviews the pull request now, also a draft or one automatic reviews skip, without repeating findings already posted; `--full` reviews all of it again, not only what is new."
            }
            CommandKind::Describe => {
                "Describes the pull request: a title, its type, a summary and a walkthrough of its files."
            }
            CommandKind::Improve => "Suggests improvements to the changed code.",
            CommandKind::Ask => {
                "Answers a question about the pull request (the rest of the comment is the question)."
            }
            CommandKind::Test => {
                "Suggests tests for the change; `--verify` (where the administrators allow it) pushes them to a branch, lets this repository's CI run them, has failing ones corrected once, and reports the result."
            }
            CommandKind::Learnings => {
                "Lists what Critic learned from this repository's reactions to its threads; `reset` (owners, members, collaborators) forgets it."
            }
            CommandKind::Pause => {
                "Stops automatic reviews of this pull request (commands still work) until `/resume`."
            }
            CommandKind::Resume => "Restarts automatic reviews of this pull request.",
            CommandKind::Config => {
                "Shows the settings in force for this repository and where each comes from, secrets hidden."
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

/// What reading a comment needs besides its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syntax<'a> {
    /// Critic's App slug, for `@slug review`: a mention works like the command.
    pub slug: Option<&'a str>,
    /// Other bots' commands (`deploy`, `assign`, ...), never taken for a misspelt one of
    /// Critic's.
    pub others: &'a [String],
}

impl Command {
    /// The command a comment opens with, if it is one of Critic's (see the module's doc for
    /// which text counts), without mentions or typos. `/ask` without a question is `Help`.
    pub fn parse(comment: &str) -> Option<Command> {
        Self::parse_with(comment, &Syntax::default())
    }

    /// Like [`Command::parse`], also reading `@slug name` as `/name` and a misspelt name (one
    /// edit from one of Critic's, not one of `syntax.others`) as a [`Command::Typo`].
    pub fn parse_with(comment: &str, syntax: &Syntax<'_>) -> Option<Command> {
        let start = opening_text(comment)?;
        let line = comment[start..].lines().next()?;
        let name_at = if line.starts_with('/') {
            start + 1
        } else {
            let slug = syntax.slug?;
            let after = line.strip_prefix('@')?;
            let head = after.get(..slug.len())?;
            if !head.eq_ignore_ascii_case(slug) {
                return None;
            }
            let rest = &after[slug.len()..];
            let spaces = rest.len() - rest.trim_start().len();
            if spaces == 0 {
                return None; // `@slugger`: someone else
            }
            let slash = rest.trim_start().starts_with('/');
            start + 1 + slug.len() + spaces + usize::from(slash)
        };
        let name = comment[name_at..]
            .split(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let args = &comment[name_at + name.len()..];
        let Some(kind) = CommandKind::named(name) else {
            return typo(name, syntax.others);
        };
        let first_arg = || args.split_whitespace().next().unwrap_or_default();
        Some(match kind {
            CommandKind::Review => Command::Review {
                full: first_arg().eq_ignore_ascii_case("--full"),
            },
            CommandKind::Describe => Command::Describe,
            CommandKind::Improve => Command::Improve,
            CommandKind::Test => Command::Test {
                verify: args
                    .split_whitespace()
                    .any(|a| a.eq_ignore_ascii_case("--verify")),
            },
            CommandKind::Help => Command::Help,
            CommandKind::Pause => Command::Pause,
            CommandKind::Resume => Command::Resume,
            CommandKind::Config => Command::Config,
            CommandKind::Learnings => Command::Learnings {
                reset: first_arg().eq_ignore_ascii_case("reset"),
            },
            CommandKind::Ask => {
                // The question is the rest of the line and every line after it, as written
                // (code blocks and all).
                let question = args.trim();
                if question.is_empty() {
                    return Some(Command::Help);
                }
                Command::Ask {
                    question: question.replace("\r\n", "\n"),
                }
            }
        })
    }

    /// The listed command it is; `None` for a typo.
    pub fn kind(&self) -> Option<CommandKind> {
        Some(match self {
            Command::Review { .. } => CommandKind::Review,
            Command::Describe => CommandKind::Describe,
            Command::Improve => CommandKind::Improve,
            Command::Ask { .. } => CommandKind::Ask,
            Command::Test { .. } => CommandKind::Test,
            Command::Learnings { .. } => CommandKind::Learnings,
            Command::Pause => CommandKind::Pause,
            Command::Resume => CommandKind::Resume,
            Command::Config => CommandKind::Config,
            Command::Help => CommandKind::Help,
            Command::Typo { .. } => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        self.kind().map_or("typo", CommandKind::name)
    }
}

/// `name` as a misspelling of one of Critic's commands: one edit away (a letter added,
/// dropped, changed, or two swapped), at least three letters, and not another bot's command.
fn typo(name: &str, others: &[String]) -> Option<Command> {
    let lower = name.to_ascii_lowercase();
    let plain = lower.len() >= 3 && lower.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !plain || others.iter().any(|o| o.eq_ignore_ascii_case(&lower)) {
        return None;
    }
    CommandKind::ALL
        .into_iter()
        .map(CommandKind::name)
        .find(|known| strsim::osa_distance(&lower, known) == 1)
        .map(|meant| Command::Typo {
            written: name.to_string(),
            meant: meant.to_string(),
        })
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
        assert_eq!(
            Command::parse("/review"),
            Some(Command::Review { full: false })
        );
        assert_eq!(
            Command::parse("/REVIEW"),
            Some(Command::Review { full: false })
        );
        assert_eq!(
            Command::parse("  /Describe please\nthanks"),
            Some(Command::Describe)
        );
        assert_eq!(Command::parse("\n\n/improve"), Some(Command::Improve));
        assert_eq!(Command::parse("/improve\r\n"), Some(Command::Improve));
        assert_eq!(
            Command::parse("/tests"),
            Some(Command::Test { verify: false })
        );
        assert_eq!(
            Command::parse("/Test"),
            Some(Command::Test { verify: false })
        );
        assert_eq!(
            Command::parse("/test --verify"),
            Some(Command::Test { verify: true })
        );
        assert_eq!(
            Command::parse("/test please --verify"),
            Some(Command::Test { verify: true })
        );
        // Stored by an earlier version, without the field.
        let old: Command = serde_json::from_str(r#"{"name":"test"}"#).expect("old payload");
        assert_eq!(old, Command::Test { verify: false });
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
            Some(Command::Review { full: false })
        );
        assert_eq!(
            Command::parse("/review\n\nThanks!"),
            Some(Command::Review { full: false })
        );
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
            assert_eq!(parsed.kind(), Some(kind), "{written}");
            assert_eq!(parsed.name(), kind.name());
        }
    }

    #[test]
    fn review_full_pause_resume_and_config() {
        assert_eq!(
            Command::parse("/review --full"),
            Some(Command::Review { full: true })
        );
        assert_eq!(
            Command::parse("/review --fully"),
            Some(Command::Review { full: false })
        );
        assert_eq!(Command::parse("/pause"), Some(Command::Pause));
        assert_eq!(Command::parse("/Resume now"), Some(Command::Resume));
        assert_eq!(Command::parse("/config"), Some(Command::Config));
        assert_eq!(Command::parse("/settings"), Some(Command::Config));
        // A job stored before `--full` existed still reads.
        let old: Command = serde_json::from_str(r#"{"name":"review"}"#).expect("reads");
        assert_eq!(old, Command::Review { full: false });
    }

    fn with(comment: &str) -> Option<Command> {
        let others: Vec<String> = ["retest", "preview"].map(String::from).to_vec();
        Command::parse_with(
            comment,
            &Syntax {
                slug: Some("critic-review"),
                others: &others,
            },
        )
    }

    #[test]
    fn a_mention_works_like_the_command() {
        assert_eq!(
            with("@critic-review review"),
            Some(Command::Review { full: false })
        );
        assert_eq!(
            with("@Critic-Review /review --full"),
            Some(Command::Review { full: true })
        );
        assert_eq!(with("@critic-review ask why?\nthis"), ask("why?\nthis"));
        assert_eq!(with("  @critic-review help"), Some(Command::Help));
        for not_ours in [
            "@critic-review",
            "@critic-reviewer review",
            "@critic-review thanks!",
            "@someone review",
            "hey @critic-review review",
            "> @critic-review review",
            "`@critic-review review`",
        ] {
            assert_eq!(with(not_ours), None, "{not_ours:?}");
        }
        assert_eq!(
            Command::parse("@critic-review review"),
            None,
            "without the slug no mention is known"
        );
    }

    #[test]
    fn a_misspelt_command_is_named_others_are_not() {
        let typo = |written: &str, meant: &str| {
            Some(Command::Typo {
                written: written.into(),
                meant: meant.into(),
            })
        };
        assert_eq!(with("/reveiw"), typo("reveiw", "review"));
        assert_eq!(with("/Reviw please"), typo("Reviw", "review"));
        assert_eq!(with("/descibe"), typo("descibe", "describe"));
        assert_eq!(with("/tset"), typo("tset", "test"));
        assert_eq!(with("@critic-review hlep"), typo("hlep", "help"));
        for not_a_typo in [
            "/retest",
            "/preview",
            "/reviewer",
            "/deploy",
            "/as",
            "/review.",
            "/r3v!ew",
        ] {
            assert_eq!(with(not_a_typo), None, "{not_a_typo:?}");
        }
        assert_eq!(
            Command::Typo {
                written: "x".into(),
                meant: "review".into()
            }
            .kind(),
            None
        );
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
