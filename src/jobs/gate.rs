//! Who may spend the model budget with a command or a thread reply, beyond GitHub's
//! `author_association` (checked when the job is planned): with `commands.require_permission`,
//! the commenter's role on the repository, read from GitHub; and each person's hourly
//! allowance (`commands.per_user_per_hour`), counted in the store. A refusal calls no model.

use crate::Critic;
use crate::github::Installation;

use super::error::JobError;
use super::plan::{PrRef, Requester};

/// The notice kind of the one reply a person over the allowance gets per hour.
const LIMIT_NOTICE: &str = "command-limit";

/// Why a command is not run, and what to answer (nothing when it was said already).
#[derive(Debug)]
pub(super) struct Refused {
    pub reason: String,
    pub answer: Option<String>,
}

/// Checks `by`'s role on the repository against `commands.require_permission` (a pass when
/// it is off): for every command that spends the budget or changes what Critic does.
pub(super) async fn has_role(
    critic: &Critic,
    gh: &Installation,
    pr: PrRef<'_>,
    by: &Requester,
) -> Result<Result<(), Refused>, JobError> {
    let Some(needed) = critic.config.settings.commands.require_permission.0 else {
        return Ok(Ok(()));
    };
    let role = gh.permission(pr.repo, &by.login).await?;
    if role < needed {
        return Ok(Err(Refused {
            reason: format!("{} has {role} access; commands need {needed}", by.login),
            answer: Some(format!(
                "running Critic's commands here needs {needed} access to the repository (you have {role}), so nothing was done."
            )),
        }));
    }
    Ok(Ok(()))
}

/// Checks `by` against the settings (the role, then the hourly allowance); on a pass, the
/// request counts toward the allowance.
pub(super) async fn admit(
    critic: &Critic,
    gh: &Installation,
    installation_id: u64,
    pr: PrRef<'_>,
    by: &Requester,
) -> Result<Result<(), Refused>, JobError> {
    let settings = &critic.config.settings.commands;
    if let Err(refused) = has_role(critic, gh, pr, by).await? {
        return Ok(Err(refused));
    }
    let limit = settings.per_user_per_hour;
    let hour_ms = 3_600_000;
    let now = crate::store::now_ms();
    // Counted with no limit set too, so that a limit set later sees the hour before it.
    let taken = critic
        .store
        .take_command_use(
            installation_id,
            &by.key(),
            &by.login,
            now - hour_ms,
            if limit == 0 {
                u64::MAX
            } else {
                u64::from(limit)
            },
        )
        .await?;
    if !taken.admitted {
        let used = taken.before;
        // One answer per person and hour on a pull request; the rest are skipped quietly.
        let key = format!("{}:{}", by.login.to_ascii_lowercase(), now / hour_ms);
        let first = critic
            .store
            .claim_notice(&pr.repo.to_string(), pr.number, LIMIT_NOTICE, &key)
            .await?;
        return Ok(Err(Refused {
            reason: format!("{} ran {used} commands in the last hour", by.login),
            answer: first.then(|| format!(
                "you have run {used} commands that call the model in the last hour, this installation's limit (`commands.per_user_per_hour`); Critic will answer again later in the hour."
            )),
        }));
    }
    Ok(Ok(()))
}
