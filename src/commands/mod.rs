//! Slash commands in pull request comments: what a comment asks for, and who may ask.
//!
//! A command is the first line of a comment, starting with `/`. Commands of other bots
//! (`/deploy`, `/assign`) are not ours and are ignored, not answered: several bots share a
//! pull request's conversation.
//!
//! Parsing is pure: no I/O and no redaction. `/ask` carries its question as written; secrets
//! are taken out where the question goes to a model (see `jobs::command`).

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
    /// List the commands.
    Help,
}

impl Command {
    /// The command a comment starts with, if it is one of Critic's. `/ask` without a
    /// question is `Help` (the answer shows how to ask).
    pub fn parse(comment: &str) -> Option<Command> {
        let trimmed = comment.trim_start();
        let first = trimmed.lines().next()?.trim();
        let rest_of_line = first.strip_prefix('/')?;
        let (name, args) = match rest_of_line.split_once(char::is_whitespace) {
            Some((name, args)) => (name, args),
            None => (rest_of_line, ""),
        };
        let command = match name.to_ascii_lowercase().as_str() {
            "review" => Command::Review,
            "describe" => Command::Describe,
            "improve" => Command::Improve,
            "test" | "tests" => Command::Test,
            "help" => Command::Help,
            "ask" => {
                // The question is the rest of the first line and every line after it.
                let after_first = trimmed.split_once('\n').map(|(_, r)| r).unwrap_or("");
                let question = format!("{}\n{}", args.trim(), after_first.trim())
                    .trim()
                    .to_string();
                if question.is_empty() {
                    return Some(Command::Help);
                }
                Command::Ask { question }
            }
            _ => return None,
        };
        Some(command)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Command::Review => "review",
            Command::Describe => "describe",
            Command::Improve => "improve",
            Command::Ask { .. } => "ask",
            Command::Test => "test",
            Command::Help => "help",
        }
    }
}

/// Whether a commenter whose relation to the repository is `association` (GitHub's
/// `author_association`: `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`, ...) may
/// run commands. Comments are open to anyone who can see a public repository; only the
/// people the settings name may spend the organisation's model budget.
pub fn may_run(association: Option<&str>, allowed: &[String]) -> bool {
    association.is_some_and(|a| allowed.iter().any(|x| x.eq_ignore_ascii_case(a)))
}

/// The answer to `/help`.
pub const HELP: &str = "\
**Critic's commands** (in a comment on the pull request, on the first line):

| Command | What it does |
| --- | --- |
| `/review` | Reviews the pull request now (also drafts, and pull requests automatic reviews skip). Findings already posted are not repeated. |
| `/describe` | Describes the pull request: a title, its type, a summary and a walkthrough of its files. |
| `/improve` | Suggests improvements to the changed code. |
| `/ask QUESTION` | Answers a question about the pull request. |
| `/test` | Suggests tests for the change. |
| `/help` | Shows this list. |

Critic reads the pull request's diff and the code around it. It only ever comments: it never approves, requests changes or merges.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_the_first_line_and_case_blind() {
        assert_eq!(Command::parse("/review"), Some(Command::Review));
        assert_eq!(
            Command::parse("  /Describe please\nthanks"),
            Some(Command::Describe)
        );
        assert_eq!(Command::parse("\n\n/improve"), Some(Command::Improve));
        assert_eq!(Command::parse("/tests"), Some(Command::Test));
        assert_eq!(Command::parse("/help"), Some(Command::Help));
        assert_eq!(
            Command::parse("/ask why a mutex here?\nIt looks unused."),
            Some(Command::Ask {
                question: "why a mutex here?\nIt looks unused.".into()
            })
        );
        assert_eq!(
            Command::parse("/ask"),
            Some(Command::Help),
            "usage, not a model call"
        );
    }

    #[test]
    fn other_text_and_other_bots_commands_are_not_ours() {
        for text in [
            "LGTM",
            "please /review this",
            "> /review\nquoted",
            "/deploy staging",
            "/reviewer",
            "",
            "/",
        ] {
            assert_eq!(Command::parse(text), None, "{text:?}");
        }
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
