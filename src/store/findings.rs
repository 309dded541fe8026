//! Findings posted on each PR, by fingerprint: so a later run does not post one again,
//! learns the thread a finding was posted in, and knows which were addressed.

use super::{Store, StoreError, now_ms};
use crate::domain::PrNumber;

/// SQL: a finding its repository turned down: more 👎 than 👍 on its thread, its thread
/// resolved while its code was never changed (dismissed), or argued down in a reply.
pub(super) const TURNED_DOWN: &str =
    "(thumbs_down > thumbs_up OR (resolved = 1 AND addressed_sha IS NULL) OR disputed = 1)";

/// A finding as stored for a PR.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredFinding {
    pub fingerprint: String,
    pub path: String,
    pub line: i64,
    pub severity: String,
    pub place: String,
    pub head_sha: String,
    pub review_id: Option<i64>,
    pub comment_id: Option<i64>,
    pub addressed_sha: Option<String>,
    pub category: String,
}

/// A kind of finding a repository keeps turning down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub category: String,
    /// A top-level folder with its slash (`tests/`), or empty for files at the root.
    pub folder: String,
    /// How many findings of the kind were turned down.
    pub dismissed: usize,
}

impl Learned {
    /// The instruction the review prompt gets.
    pub fn instruction(&self) -> String {
        let place = if self.folder.is_empty() {
            "in files at the repository's root".to_string()
        } else {
            format!("under `{}`", self.folder)
        };
        format!(
            "This repository's maintainers turned down {} `{}` findings {place}: do not report `{}` findings there.",
            self.dismissed, self.category, self.category
        )
    }
}

/// What people made of one finding's thread, as last read from GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub fingerprint: String,
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    pub resolved: bool,
}

impl Store {
    /// Findings posted on a PR, oldest first.
    pub async fn findings(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT fingerprint, path, line, severity, place, head_sha, review_id, comment_id, addressed_sha, category \
             FROM findings WHERE repo = $1 AND number = $2 ORDER BY created_at, fingerprint",
        )
        .bind(repo)
        .bind(number.to_i64())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Remembers posted findings; one already known keeps its first record.
    pub async fn record_findings(
        &self,
        repo: &str,
        number: PrNumber,
        findings: &[StoredFinding],
    ) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for f in findings {
            sqlx::query(
                "INSERT INTO findings (repo, number, fingerprint, path, line, severity, place, head_sha, \
                 review_id, comment_id, addressed_sha, created_at, category) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (repo, number, fingerprint) DO UPDATE SET \
                 comment_id = COALESCE(findings.comment_id, excluded.comment_id)",
            )
            .bind(repo)
            .bind(number.to_i64())
            .bind(&f.fingerprint)
            .bind(&f.path)
            .bind(f.line)
            .bind(&f.severity)
            .bind(&f.place)
            .bind(&f.head_sha)
            .bind(f.review_id)
            .bind(f.comment_id)
            .bind(&f.addressed_sha)
            .bind(now)
            .bind(&f.category)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records what people made of this PR's threads (read from GitHub each review run; the
    /// last reading wins, so a reaction taken back is taken back here too).
    pub async fn record_feedback(
        &self,
        repo: &str,
        number: PrNumber,
        feedback: &[Feedback],
    ) -> Result<(), StoreError> {
        if feedback.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for f in feedback {
            sqlx::query(
                "UPDATE findings SET thumbs_up = $1, thumbs_down = $2, resolved = $3 \
                 WHERE repo = $4 AND number = $5 AND fingerprint = $6",
            )
            .bind(f.thumbs_up)
            .bind(f.thumbs_down)
            .bind(i64::from(f.resolved))
            .bind(repo)
            .bind(number.to_i64())
            .bind(&f.fingerprint)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks the finding of a thread as argued down (someone replied that it is wrong and
    /// Critic's answer agreed), or not any more (a later answer in the thread found it holds).
    pub async fn record_disputed(
        &self,
        repo: &str,
        number: PrNumber,
        fingerprint: &str,
        disputed: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE findings SET disputed = $4 WHERE repo = $1 AND number = $2 AND fingerprint = $3",
        )
        .bind(repo)
        .bind(number.to_i64())
        .bind(fingerprint)
        .bind(i64::from(disputed))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Fingerprints of findings this repository's people turned down on any pull request
    /// ([`TURNED_DOWN`]). Security findings are never muted this way: anyone who can react
    /// to a thread could otherwise hide one from every later pull request.
    pub async fn muted_fingerprints(
        &self,
        repo: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT DISTINCT fingerprint FROM findings WHERE repo = $1 AND category <> 'security' \
             AND {TURNED_DOWN} \
             AND created_at > COALESCE((SELECT reset_at FROM learning_resets WHERE repo = $1), -1)"
        ))
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(f,)| f).collect())
    }

    /// The categories of finding this repository keeps turning down under one top-level
    /// folder: `min` or more turned-down findings of one category there. Bugs and security
    /// findings are never learned away wholesale (each is still muted on its own).
    pub async fn learned(&self, repo: &str, min: usize) -> Result<Vec<Learned>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT category, path, fingerprint FROM findings WHERE repo = $1 AND category <> '' \
             AND category NOT IN ('bug', 'security') \
             AND {TURNED_DOWN} \
             AND created_at > COALESCE((SELECT reset_at FROM learning_resets WHERE repo = $1), -1)"
        ))
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        // Distinct findings: one finding turned down on several pull requests counts once. A
        // folder's name goes into prompts, so only plain names are learned from.
        type Seen =
            std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>>;
        let mut seen = Seen::new();
        for (category, path, fingerprint) in rows {
            let folder = match path.split_once('/') {
                Some((top, _)) => format!("{top}/"),
                None => String::new(),
            };
            let plain = folder.len() <= 41
                && folder
                    .trim_end_matches('/')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if plain {
                seen.entry((category, folder))
                    .or_default()
                    .insert(fingerprint);
            }
        }
        Ok(seen
            .into_iter()
            .map(|(key, fingerprints)| (key, fingerprints.len()))
            .filter(|(_, n)| *n >= min)
            .map(|((category, folder), dismissed)| Learned {
                category,
                folder,
                dismissed,
            })
            .collect())
    }

    /// `/learnings reset`: what the repository's findings taught so far no longer mutes or
    /// teaches (findings posted from now on do again).
    pub async fn reset_learning(&self, repo: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO learning_resets (repo, reset_at) VALUES ($1, $2) \
             ON CONFLICT (repo) DO UPDATE SET reset_at = excluded.reset_at",
        )
        .bind(repo)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a finding's code as changed by `sha` (its thread was answered).
    pub async fn mark_addressed(
        &self,
        repo: &str,
        number: PrNumber,
        fingerprint: &str,
        sha: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE findings SET addressed_sha = $1 WHERE repo = $2 AND number = $3 AND fingerprint = $4",
        )
        .bind(sha)
        .bind(repo)
        .bind(number.to_i64())
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(
        findings_are_kept_once_and_marked_addressed,
        turned_down_findings_are_muted_across_the_repository
    );

    async fn turned_down_findings_are_muted_across_the_repository(store: Store) {
        let finding = |fp: &str| StoredFinding {
            fingerprint: fp.into(),
            path: "src/a.rs".into(),
            line: 3,
            severity: "warning".into(),
            place: "inline".into(),
            head_sha: "aaa".into(),
            review_id: Some(7),
            comment_id: Some(70),
            addressed_sha: None,
            category: "style".into(),
        };
        let all = [
            "down",
            "up",
            "both",
            "dismissed",
            "fixed",
            "argued",
            "other-repo",
        ];
        store
            .record_findings(
                "o/r",
                PrNumber(1),
                &all[..6].iter().map(|f| finding(f)).collect::<Vec<_>>(),
            )
            .await
            .expect("record");
        store
            .record_findings("o/other", PrNumber(1), &[finding("other-repo")])
            .await
            .expect("record");
        let said = |fp: &str, up: i64, down: i64, resolved: bool| Feedback {
            fingerprint: fp.into(),
            thumbs_up: up,
            thumbs_down: down,
            resolved,
        };
        store
            .record_feedback(
                "o/r",
                PrNumber(1),
                &[
                    said("down", 0, 1, false),
                    said("up", 2, 0, false),
                    said("both", 1, 1, false),
                    said("dismissed", 0, 0, true),
                    said("fixed", 0, 0, true),
                ],
            )
            .await
            .expect("feedback");
        store
            .record_feedback("o/other", PrNumber(1), &[said("other-repo", 0, 3, false)])
            .await
            .expect("feedback");
        // Resolved after its code changed: acted on, not dismissed.
        store
            .mark_addressed("o/r", PrNumber(1), "fixed", "bbb")
            .await
            .expect("addressed");
        // Argued down in a reply, whatever its reactions say.
        store
            .record_disputed("o/r", PrNumber(1), "argued", true)
            .await
            .expect("disputed");
        store
            .record_disputed("o/r", PrNumber(2), "up", true)
            .await
            .expect("another pull request's finding is not this one");
        let mut muted: Vec<String> = store
            .muted_fingerprints("o/r")
            .await
            .expect("muted")
            .into_iter()
            .collect();
        muted.sort();
        assert_eq!(muted, ["argued", "dismissed", "down"]);
        // A reaction taken back is taken back.
        store
            .record_feedback("o/r", PrNumber(1), &[said("down", 0, 0, false)])
            .await
            .expect("feedback");
        let muted = store.muted_fingerprints("o/r").await.expect("muted");
        assert_eq!(muted.len(), 2);
        // A later answer that finds the argued finding holds takes the dispute back.
        store
            .record_disputed("o/r", PrNumber(1), "argued", false)
            .await
            .expect("holds");
        assert!(
            !store
                .muted_fingerprints("o/r")
                .await
                .expect("muted")
                .contains("argued")
        );
        store
            .record_disputed("o/r", PrNumber(1), "argued", true)
            .await
            .expect("disputed again");
        // Two turned-down style findings under src/ are not a pattern; three are.
        assert!(store.learned("o/r", 3).await.expect("learned").is_empty());
        let more: Vec<StoredFinding> = ["s2", "s3"]
            .iter()
            .map(|fp| StoredFinding {
                path: "src/b.rs".into(),
                ..finding(fp)
            })
            .collect();
        store
            .record_findings("o/r", PrNumber(2), &more)
            .await
            .expect("record");
        store
            .record_feedback(
                "o/r",
                PrNumber(2),
                &[said("s2", 0, 1, false), said("s3", 0, 0, true)],
            )
            .await
            .expect("feedback");
        let learned = store.learned("o/r", 3).await.expect("learned");
        assert_eq!(
            learned,
            [Learned {
                category: "style".into(),
                folder: "src/".into(),
                dismissed: 4
            }]
        );
        assert!(
            learned[0]
                .instruction()
                .contains("`style` findings under `src/`")
        );
        // Security findings are never muted by reactions; folders with odd names teach nothing.
        let odd: Vec<StoredFinding> = [
            ("sec", "security", "src/c.rs"),
            ("o1", "style", "`x`/a.rs"),
            ("o2", "style", "`x`/b.rs"),
            ("o3", "style", "`x`/c.rs"),
        ]
        .iter()
        .map(|(fp, category, path)| StoredFinding {
            path: (*path).into(),
            category: (*category).into(),
            ..finding(fp)
        })
        .collect();
        store
            .record_findings("o/r", PrNumber(3), &odd)
            .await
            .expect("record");
        store
            .record_feedback(
                "o/r",
                PrNumber(3),
                &[
                    said("sec", 0, 5, false),
                    said("o1", 0, 1, false),
                    said("o2", 0, 1, false),
                    said("o3", 0, 1, false),
                ],
            )
            .await
            .expect("feedback");
        let muted = store.muted_fingerprints("o/r").await.expect("muted");
        assert!(!muted.contains("sec"), "{muted:?}");
        assert_eq!(store.learned("o/r", 3).await.expect("learned").len(), 1);
        // Reset: nothing learned or muted any more (the clock moves on first).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        store.reset_learning("o/r").await.expect("reset");
        assert!(store.learned("o/r", 3).await.expect("learned").is_empty());
        assert!(
            store
                .muted_fingerprints("o/r")
                .await
                .expect("muted")
                .is_empty()
        );
        assert_eq!(
            store
                .muted_fingerprints("o/other")
                .await
                .expect("muted")
                .len(),
            1,
            "another repository's lessons stay"
        );
        assert_eq!(
            store.findings("o/r", PrNumber(1)).await.expect("q")[0].category,
            "style"
        );
    }

    async fn findings_are_kept_once_and_marked_addressed(store: Store) {
        let finding = |fp: &str, comment: Option<i64>| StoredFinding {
            fingerprint: fp.into(),
            path: "src/a.rs".into(),
            line: 12,
            severity: "warning".into(),
            place: "inline".into(),
            head_sha: "aaa".into(),
            review_id: comment.map(|_| 7),
            comment_id: comment,
            addressed_sha: None,
            category: "bug".into(),
        };
        assert!(
            store
                .findings("o/r", PrNumber(1))
                .await
                .expect("q")
                .is_empty()
        );
        store
            .record_findings(
                "o/r",
                PrNumber(1),
                &[finding("f1", Some(70)), finding("f2", None)],
            )
            .await
            .expect("record");
        // The same fingerprint again is kept once, as first recorded; only a thread id
        // learnt later is added.
        store
            .record_findings("o/r", PrNumber(1), &[finding("f1", Some(99))])
            .await
            .expect("record again");
        store
            .record_findings("o/r", PrNumber(1), &[finding("f2", Some(71))])
            .await
            .expect("thread id learnt");
        store
            .mark_addressed("o/r", PrNumber(1), "f1", "bbb")
            .await
            .expect("addressed");
        let got = store.findings("o/r", PrNumber(1)).await.expect("q");
        assert_eq!(got.len(), 2);
        let f2 = got.iter().find(|f| f.fingerprint == "f2").expect("f2");
        assert_eq!(f2.comment_id, Some(71));
        let f1 = got.iter().find(|f| f.fingerprint == "f1").expect("f1");
        assert_eq!(
            (f1.comment_id, f1.addressed_sha.as_deref()),
            (Some(70), Some("bbb"))
        );
        assert!(
            store
                .findings("o/r", PrNumber(2))
                .await
                .expect("q")
                .is_empty()
        );
    }
}
