//! Slash commands other than `/review` (which is a review job): `/describe`, `/improve`,
//! `/ask`, `/test` and `/help`. Each is answered by one comment (`/describe` keeps one
//! comment per pull request up to date), and each command comment is answered once however
//! often its job runs. Commands spend the installation's model budget like reviews do; when
//! it is spent, the answer says so.

use std::fmt::Write;

use crate::Critic;
use crate::commands::{Command, help};
use crate::domain::Task;
use crate::github::{Installation, short_sha};
use crate::llm::{AskError, Meter};
use crate::poster::markdown::{fence_for, table_cell as cell};
use crate::review::tasks::{
    AnswerText, Description, Improvement, TestSuggestion, parse_answer, parse_description,
    parse_improvements,
};
use crate::review::{GitHubSource, ReviewError};

use super::error::{JobError, Outcome};
use super::notes::{acknowledge, answer, budget_spent_text, fit, footer, own_marked_comment};
use super::plan::{CommandJob, Requester};
use super::repo_settings;
use super::task_request::{Prepared, prepare};
use super::test_threads::{self, render_tests};

/// Marks Critic's `/describe` comment, edited in place when asked again.
pub const DESCRIBE_MARKER: &str = "<!-- critic:describe -->";

/// `/learnings`: what Critic learned from this repository's reactions (the instructions in
/// force and how many findings are muted); with `reset`, from a maintainer, it forgets them.
async fn learnings(critic: &Critic, job: &CommandJob, reset: bool) -> Result<String, JobError> {
    let repo = job.repo.to_string();
    if reset {
        let maintainer = matches!(
            job.requested.association.as_deref(),
            Some("OWNER" | "MEMBER" | "COLLABORATOR")
        );
        if !maintainer {
            return Ok(
                "only the repository's owners, members and collaborators can reset what Critic learned."
                    .into(),
            );
        }
        critic.store.reset_learning(&repo).await?;
        return Ok(
            "Critic forgot what it learned from this repository's reactions: no finding is muted and no learned instruction applies. What people make of the threads it posts from now on counts again."
                .into(),
        );
    }
    let learned = super::learn::instructions(critic, &repo).await;
    let muted = critic.store.muted_fingerprints(&repo).await?.len();
    let mut text = format!(
        "{muted} finding(s) are muted in this repository: people thumbed them down, or resolved their threads without changing the code, and Critic does not post them again."
    );
    if learned.is_empty() {
        text.push_str(" No instruction has been learned yet (it takes three turned-down findings of one kind in one folder).");
    } else {
        text.push_str("\n\nLearned instructions, added to every review of this repository:\n");
        for l in &learned {
            text.push_str(&format!("- {l}\n"));
        }
    }
    text.push_str("\n\n`/learnings reset` (owners, members, collaborators) forgets all of it.");
    Ok(text)
}

/// Longest question `/ask` passes on, in bytes; the rest is cut (the model's budget is for
/// code).
const MAX_QUESTION_BYTES: usize = 2000;

/// Model calls go on `meter`, booked by the worker with the job's outcome.
pub(super) async fn run(
    critic: &Critic,
    job: &CommandJob,
    meter: &Meter,
    waited: std::time::Duration,
) -> Result<Outcome, JobError> {
    let gh = critic.github.installation(job.installation_id)?;
    let by = &job.requested;
    acknowledge(&gh, &job.repo, by).await;
    // A rerun of a command already answered (its job died after posting) pays nothing.
    if critic
        .store
        .notice_claimed(&job.repo.to_string(), job.number, "command", &by.key())
        .await?
    {
        return Ok(Outcome::Skipped("already answered".into()));
    }
    // Commands that change what Critic does need the role `commands.require_permission`
    // names, as those that spend the budget do (checked with the allowance below).
    let changes_state = matches!(
        job.command,
        Command::Pause | Command::Resume | Command::Learnings { reset: true }
    );
    if changes_state && let Err(refused) = super::gate::has_role(critic, &gh, job.pr(), by).await? {
        if let Some(text) = &refused.answer {
            answer(critic, &gh, job.pr(), by, text).await?;
        }
        return Ok(Outcome::Skipped(refused.reason));
    }
    let task = match &job.command {
        Command::Help => {
            answer(critic, &gh, job.pr(), by, help()).await?;
            return Ok(Outcome::Done("help posted".into()));
        }
        Command::Learnings { reset } => {
            let text = learnings(critic, job, *reset).await?;
            answer(critic, &gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done("learnings answered".into()));
        }
        Command::Pause | Command::Resume => {
            let pause = job.command == Command::Pause;
            let repo = job.repo.to_string();
            critic
                .store
                .set_paused(&repo, job.number, pause.then_some(by.login.as_str()))
                .await?;
            let text = if pause {
                "automatic reviews of this pull request are paused: pushes get no review until someone comments `/resume`. Commands, `/review` among them, still work."
            } else {
                "automatic reviews of this pull request are back on: the next push is reviewed."
            };
            answer(critic, &gh, job.pr(), by, text).await?;
            return Ok(Outcome::Done(
                if pause { "paused" } else { "resumed" }.into(),
            ));
        }
        Command::Config => {
            let policy = repo_settings::load(critic, &gh, job.pr()).await?;
            // What `auto` settings come to for the model this repository's reviews ask.
            let reader = crate::review::Reader::of(
                &critic.llm,
                &critic.config.settings.review,
                Task::Review,
                policy.model_for(Task::Review),
            )
            .await;
            let text = super::config_answer::render(critic, &policy, &reader);
            answer(critic, &gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done("settings shown".into()));
        }
        Command::Typo { written, meant } => {
            let text = format!(
                "`/{written}` is not one of Critic's commands; did you mean `/{meant}`? (`/help` lists them.)"
            );
            answer(critic, &gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done("typo answered".into()));
        }
        // Planned as a review job; a stored payload of another version may still say so.
        Command::Review { .. } => {
            return Ok(Outcome::Skipped("`/review` runs as a review job".into()));
        }
        Command::Describe => Task::Describe,
        Command::Improve => Task::Improve,
        Command::Ask { .. } => Task::Ask,
        Command::Test { .. } => Task::Tests,
    };
    if let Some(budget) = critic.budget_spent(job.installation_id).await? {
        answer(critic, &gh, job.pr(), by, &budget_spent_text(budget)).await?;
        return Ok(Outcome::Skipped("monthly model budget spent".into()));
    }
    if let Err(refused) = super::gate::admit(critic, &gh, job.installation_id, job.pr(), by).await?
    {
        if let Some(text) = &refused.answer {
            answer(critic, &gh, job.pr(), by, text).await?;
        }
        return Ok(Outcome::Skipped(refused.reason));
    }

    let pr = gh.pull_request(&job.repo, job.number).await?;
    let head = pr.head.sha.clone();
    let verify = matches!(job.command, Command::Test { verify: true });
    if verify && let Some(refused) = super::ci_tests::refusal(critic, &gh, job, &pr).await? {
        answer(critic, &gh, job.pr(), by, &refused).await?;
        return Ok(Outcome::Done("`/test --verify` refused".into()));
    }
    let policy = repo_settings::load(critic, &gh, job.pr()).await?;
    // A repository that chose a model for this task (say, one on its own servers) gets it.
    let endpoint = policy.model_for(task);
    let source = GitHubSource {
        gh: &gh,
        repo: &job.repo,
        number: job.number,
        head: &head,
    };
    // What the model reads and the answer quotes: the command carries the question as
    // written.
    let question = match &job.command {
        Command::Ask { question } => Some(question_for_model(question)),
        _ => None,
    };
    let prepared = match prepare(
        critic,
        &source,
        &pr,
        &policy,
        task,
        question.as_deref(),
        None,
    )
    .await?
    {
        Ok(prepared) => prepared,
        Err(nothing) => {
            let text = format!("`/{}`: {nothing}", job.command.name());
            answer(critic, &gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done("nothing to show the model".into()));
        }
    };
    let Prepared {
        request,
        files,
        conventions,
        not_shown,
    } = prepared;
    let installation = job.installation_id;
    let llm = &critic.llm;
    let reply = match &job.command {
        Command::Describe => llm
            .ask_on(task, endpoint, installation, &request, meter, |v| {
                parse_description(v, &files)
            })
            .await
            .map(|a| Reply::Describe(a.value, a.model)),
        Command::Improve => llm
            .ask_on(task, endpoint, installation, &request, meter, |v| {
                parse_improvements(v, &files)
            })
            .await
            .map(|a| Reply::Improve(a.value, a.model)),
        Command::Ask { .. } => llm
            .ask_on(task, endpoint, installation, &request, meter, |v| {
                parse_answer(v, &files)
            })
            .await
            .map(|a| Reply::Ask(a.value, a.model)),
        Command::Test { .. } => llm
            .ask_on(
                task,
                endpoint,
                installation,
                &request,
                meter,
                conventions.validator(),
            )
            .await
            .map(|a| Reply::Tests(a.value.0, a.value.1, a.model)),
        Command::Help
        | Command::Review { .. }
        | Command::Learnings { .. }
        | Command::Pause
        | Command::Resume
        | Command::Config
        | Command::Typo { .. } => {
            return Ok(Outcome::Skipped("not a model task".into()));
        }
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(AskError::Unusable { model, reason }) => {
            tracing::warn!(%model, %reason, "the model's answer to a command was unusable");
            let text = format!(
                "Critic could not answer `/{}`: the model ({model}) did not return a usable answer, even when asked again. Please try again later.",
                job.command.name()
            );
            answer(critic, &gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done(format!("unusable answer from {model}")));
        }
        Err(e) => return Err(JobError::Review(ReviewError::Ask(e))),
    };
    let mut left_out = if not_shown.is_empty() {
        String::new()
    } else {
        format!(
            "\n\n<sub>Not shown to the model (over one request's budget): {}.</sub>",
            list_paths(&not_shown)
        )
    };
    left_out.push_str(&super::notes::waited_note(waited));
    match reply {
        Reply::Describe(d, model) => {
            let text = fit(&format!(
                "{}{left_out}",
                render_description(&d, &model, by, short_sha(&head))
            ));
            upsert_description(critic, &gh, job, &text).await?;
            // Marks the command answered, for a rerun.
            critic
                .store
                .claim_notice(&job.repo.to_string(), job.number, "command", &by.key())
                .await?;
            Ok(Outcome::Done("description posted".into()))
        }
        Reply::Improve(items, model) => {
            let text = format!("{}{left_out}", render_improvements(&items, &model));
            answer(critic, &gh, job.pr(), by, &text).await?;
            Ok(Outcome::Done(format!(
                "{} improvement(s) posted",
                items.len()
            )))
        }
        Reply::Ask(a, model) => {
            let text = format!(
                "{}{left_out}",
                render_answer(question.as_deref().unwrap_or_default(), &a, &model)
            );
            answer(critic, &gh, job.pr(), by, &text).await?;
            Ok(Outcome::Done("answer posted".into()))
        }
        Reply::Tests(tests, notes, model) if verify => {
            super::ci_tests::start(critic, &gh, job, &head, tests, notes, &model).await
        }
        Reply::Tests(tests, notes, model) => {
            let (placed, mut rest) = test_threads::place_all(&source, &files, tests).await;
            let bot = critic.github.bot_login().await?;
            let (offered, refused) =
                test_threads::offer(&gh, job.pr(), &head, placed, (&by.key(), &bot)).await?;
            rest.extend(refused);
            let tests = rest;
            let text = format!(
                "{}{left_out}",
                render_tests("`/test`", &tests, &offered, &notes, &model)
            );
            answer(critic, &gh, job.pr(), by, &text).await?;
            let placed = offered.tests();
            Ok(Outcome::Done(format!(
                "{} test(s) suggested, {placed} of them as suggestions on test files",
                tests.len() + placed
            )))
        }
    }
}

/// A question as it goes to the model (and is quoted in the answer): secrets out first, then
/// cut on a char boundary. In that order, as a cut secret would no longer look like one.
fn question_for_model(question: &str) -> String {
    let redacted = crate::context::redact::redact(question).text;
    crate::llm::truncate(&redacted, MAX_QUESTION_BYTES)
}

enum Reply {
    Describe(Description, String),
    Improve(Vec<Improvement>, String),
    Ask(AnswerText, String),
    /// The tests, and notes on those left out.
    Tests(Vec<TestSuggestion>, Vec<String>, String),
}

fn list_paths(paths: &[String]) -> String {
    let shown: Vec<String> = paths.iter().take(20).map(|p| format!("`{p}`")).collect();
    let more = paths.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn render_description(d: &Description, model: &str, by: &Requester, head: &str) -> String {
    let mut out = format!("{DESCRIBE_MARKER}\n## Critic: pull request description\n\n");
    let _ = writeln!(out, "**Suggested title**: {}\n", cell(&d.title));
    if !d.kind.is_empty() {
        let _ = writeln!(out, "**Type**: {}\n", cell(&d.kind));
    }
    let _ = writeln!(out, "{}", d.summary.trim());
    if !d.walkthrough.is_empty() {
        out.push_str(
            "\n<details><summary>Walkthrough</summary>\n\n| File | Change |\n| --- | --- |\n",
        );
        for (path, change) in &d.walkthrough {
            let _ = writeln!(out, "| `{}` | {} |", cell(path), cell(change));
        }
        out.push_str("\n</details>\n");
    }
    let _ = write!(
        out,
        "\n<sub>Asked by @{} with `/describe`, at {head}. Model: {model}.</sub>",
        by.login
    );
    fit(&out)
}

fn render_improvements(items: &[Improvement], model: &str) -> String {
    if items.is_empty() {
        return format!(
            "`/improve`: no improvement worth suggesting in the changed code.{}",
            footer(model)
        );
    }
    let mut out = format!("`/improve`: {} suggestion(s).\n", items.len());
    for (n, i) in items.iter().enumerate() {
        let lines = if i.start_line == i.line {
            format!("line {}", i.line)
        } else {
            format!("lines {}-{}", i.start_line, i.line)
        };
        let _ = writeln!(
            out,
            "\n**{}. {}** (`{}` {lines}, {})\n\n{}\n",
            n + 1,
            i.title.trim(),
            i.path,
            i.category,
            i.why.trim()
        );
        let mut diff = String::new();
        for l in i.existing_code.lines() {
            let _ = writeln!(diff, "-{l}");
        }
        for l in i.improved_code.lines() {
            let _ = writeln!(diff, "+{l}");
        }
        let fence = fence_for(&diff);
        let _ = writeln!(out, "{fence}diff\n{diff}{fence}");
    }
    out.push_str(&footer(model));
    out
}

fn render_answer(question: &str, a: &AnswerText, model: &str) -> String {
    let quoted: String = question
        .lines()
        .map(|l| format!("> {}\n", crate::review::defuse_mentions(l)))
        .collect();
    let mut out = format!("asked:\n{quoted}\n{}", a.answer.trim());
    if !a.references.is_empty() {
        let refs: Vec<String> = a
            .references
            .iter()
            .map(|(p, l)| format!("`{p}` line {l}"))
            .collect();
        let _ = write!(out, "\n\nSee: {}.", refs.join(", "));
    }
    out.push_str(&footer(model));
    out
}

/// Edits the PR's `/describe` comment in place, or posts it the first time.
async fn upsert_description(
    critic: &Critic,
    gh: &Installation,
    job: &CommandJob,
    text: &str,
) -> Result<(), JobError> {
    let bot = critic.github.bot_login().await?;
    let existing = own_marked_comment(gh, &job.repo, job.number, &bot, DESCRIBE_MARKER).await?;
    if let Some(id) = existing {
        match gh.update_issue_comment(&job.repo, id, text).await {
            Ok(_) => return Ok(()),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    gh.post_issue_comment(&job.repo, job.number, text).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_in_a_question_is_redacted_before_it_is_cut() {
        let token = concat!("ghp_", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa");
        // The token straddles the cut: cut first, its head would no longer look like one.
        let q = format!("{} {token}", "x".repeat(MAX_QUESTION_BYTES - 20));
        let question = question_for_model(&q);
        assert!(
            !question.contains("ghp_Zx9"),
            "{}",
            &question[question.len() - 60..]
        );
        assert!(question.len() <= MAX_QUESTION_BYTES + '…'.len_utf8());
    }

    #[test]
    fn long_questions_are_cut_on_a_char_boundary() {
        let question = question_for_model(&"é".repeat(5000));
        assert!(question.len() <= MAX_QUESTION_BYTES + '…'.len_utf8());
        assert!(question.ends_with("é…"), "{question}");
        assert_eq!(question_for_model("why?"), "why?");
    }

    #[test]
    fn improvements_show_a_diff_and_descriptions_a_table() {
        let i = Improvement {
            path: "src/a.rs".into(),
            start_line: 3,
            line: 4,
            category: "bug".into(),
            title: "Check the bound".into(),
            why: "Indexing panics on empty input.".into(),
            existing_code: "let x = v[0];".into(),
            improved_code: "let Some(x) = v.first() else { return };".into(),
        };
        let text = render_improvements(&[i], "m");
        assert!(text.contains("(`src/a.rs` lines 3-4, bug)"), "{text}");
        assert!(
            text.contains("```diff\n-let x = v[0];\n+let Some(x)"),
            "{text}"
        );
        let d = Description {
            title: "Add | retries".into(),
            kind: "enhancement".into(),
            summary: "Adds retries.".into(),
            walkthrough: vec![("src/a.rs".into(), "Retries".into())],
        };
        let by = Requester {
            comment_id: 1,
            login: "alice".into(),
            association: None,
            revision: None,
        };
        let text = render_description(&d, "m", &by, "abc1234");
        assert!(text.starts_with(DESCRIBE_MARKER));
        assert!(
            text.contains("**Suggested title**: Add \\| retries"),
            "{text}"
        );
        assert!(text.contains("| `src/a.rs` | Retries |"), "{text}");
        assert!(text.contains("@alice"), "{text}");
    }
}
