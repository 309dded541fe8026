//! Posting a review that GitHub refuses (422) because of some of its inline threads: find the
//! threads it refuses, post the rest, and list the refused ones in the body. A review is never
//! lost to one bad thread.
//!
//! GitHub checks every thread when a review is created and refuses the whole review for one
//! bad thread, without saying which. It checks a *pending* review (created without `event`)
//! the same way, and a pending review can be deleted, where a submitted one cannot. So the
//! search probes with pending reviews only, each deleted before the next (GitHub allows one
//! pending review per user and PR, and while one exists it refuses that user's submitted
//! reviews too), and only the final review is submitted: the PR gets exactly one review.

use std::fmt::Write;
use std::future::Future;
use std::ops::Range;

use super::{MAX_REVIEW_BODY, cut_at_line, fit_body, left_out, review_marker};
use crate::diff::Side;
use crate::domain::PrNumber;
use crate::github::{GitHubError, Installation, NewReview, RepoName, Review, ReviewComment};

/// Most pending reviews one post creates while it looks for refused threads. Threads still
/// unchecked then go to the body with the refused ones.
pub const MAX_PROBES: usize = 32;

/// The review calls the search makes.
pub trait ReviewApi: Sync {
    /// Creates a submitted review (`NewReview` always carries `event: COMMENT`).
    fn post_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review: &NewReview,
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send;

    /// Creates a PENDING review: the same request with no `event`.
    fn post_pending_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        commit_id: &str,
        body: &str,
        comments: &[ReviewComment],
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send;

    /// `DELETE /repos/{o}/{r}/pulls/{n}/reviews/{id}`: only a pending review can be deleted.
    fn delete_pending(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review_id: u64,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;

    /// Every review on the PR. GitHub lists a pending review to its author only, so the
    /// PENDING ones listed are our own.
    fn list_reviews(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> impl Future<Output = Result<Vec<Review>, GitHubError>> + Send;
}

/// Critic's client. A pending review is `create_review` with [`NewReview::pending`] (no `event`).
impl ReviewApi for Installation {
    fn post_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review: &NewReview,
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
        Installation::create_review(self, repo, number, review)
    }

    fn post_pending_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        commit_id: &str,
        body: &str,
        comments: &[ReviewComment],
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
        let review = NewReview::pending(commit_id.to_string(), body.to_string(), comments.to_vec());
        async move { Installation::create_review(self, repo, number, &review).await }
    }

    fn delete_pending(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review_id: u64,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send {
        Installation::delete_pending_review(self, repo, number, review_id)
    }

    fn list_reviews(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> impl Future<Output = Result<Vec<Review>, GitHubError>> + Send {
        Installation::reviews(self, repo, number)
    }
}

/// How a review was posted.
#[derive(Debug)]
pub struct Resilient {
    /// The posted review (the only one submitted).
    pub review: Review,
    /// Threads that are not inline, listed in the body instead: the ones GitHub refused, and
    /// the `unchecked` ones.
    pub refused: Vec<ReviewComment>,
    /// How many of `refused` were not found bad one by one: left over when the probe budget
    /// ran out, or when GitHub refused the threads it had accepted in the probes.
    pub unchecked: usize,
    /// Reviews created (submitted and pending probes), i.e. review POSTs made.
    pub attempts: usize,
}

/// Posts `review`; on 422 finds the threads GitHub refuses and posts the rest, with the
/// refused ones folded into the body.
///
/// A 422 that is not about the threads (the review without them is refused too) is returned
/// as it is, and so is any other error, after deleting the pending probe it left, if any.
pub async fn post_resilient<G: ReviewApi + ?Sized>(
    gh: &G,
    repo: &RepoName,
    number: PrNumber,
    review: &NewReview,
) -> Result<Resilient, GitHubError> {
    let mut run = Run {
        gh,
        repo,
        number,
        commit_id: &review.commit_id,
        attempts: 0,
        probes: 0,
    };
    let refusal = match run.submit(review).await {
        Ok(posted) => return Ok(run.posted(posted, Vec::new(), 0)),
        Err(e) if e.status() == Some(422) && !review.comments.is_empty() => e,
        // No threads to look for; but a pending review left behind by a crash refuses every
        // review of ours: remove it and try once more.
        Err(e) if e.status() == Some(422) => {
            if run.clear_pending().await? > 0 {
                let posted = run.submit(review).await?;
                return Ok(run.posted(posted, Vec::new(), 0));
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    tracing::warn!(
        error = %refusal,
        threads = review.comments.len(),
        "GitHub refused the review; looking for the threads it refuses"
    );

    // A pending review left by a crashed attempt blocks the probes, and on GitHub it also
    // makes every submitted review of ours fail: remove it and try the review as it was.
    if run.clear_pending().await? > 0 {
        match run.submit(review).await {
            Ok(posted) => return Ok(run.posted(posted, Vec::new(), 0)),
            Err(e) if e.status() == Some(422) => {}
            Err(e) => return Err(e),
        }
    }

    // The review without its threads. If GitHub refuses that too, the threads are not what it
    // objects to (wrong commit, body too long...). The probe body has no marker: a probe left
    // behind by a crash must not pass for the posted review.
    let probe_body = review.body.replace(&review_marker(&review.commit_id), "");
    if let Verdict::Refused(e) = run.probe(&probe_body, &[]).await? {
        tracing::warn!(error = %e, "GitHub refuses the review even without its threads");
        return Err(e);
    }

    // All the threads as a pending review: if GitHub takes them now, its 422 was passing (or
    // about something that has since changed), and the review goes as it is.
    if let Verdict::Accepted = run.probe("", &review.comments).await? {
        tracing::info!("GitHub accepts all the threads on a second try; posting the review again");
        match run.submit(review).await {
            Ok(posted) => return Ok(run.posted(posted, Vec::new(), 0)),
            Err(e) if e.status() == Some(422) => {
                tracing::warn!(error = %e, "GitHub refused the review again; looking for the threads it refuses");
            }
            Err(e) => return Err(e),
        }
    }

    let found = run.search(&review.comments).await?;
    tracing::info!(
        accepted = found.good.len(),
        refused = found.bad.len(),
        unchecked = found.unchecked.len(),
        probes = run.probes,
        "threads checked against GitHub"
    );
    let pick = |ids: &[usize]| -> Vec<ReviewComment> {
        ids.iter().map(|&i| review.comments[i].clone()).collect()
    };
    let mut not_inline: Vec<usize> = found.bad.iter().chain(&found.unchecked).copied().collect();
    not_inline.sort_unstable();
    let refused = pick(&not_inline);
    let last = NewReview::comment(
        review.commit_id.clone(),
        fold_refused(&review.body, &refused, &review.commit_id),
        pick(&found.good),
    );
    match run.submit(&last).await {
        Ok(posted) => Ok(run.posted(posted, refused, found.unchecked.len())),
        Err(e) if e.status() == Some(422) && !last.comments.is_empty() => {
            // The threads passed one by one but not together: none of them goes inline.
            tracing::warn!(error = %e, "GitHub refused the threads it accepted in the probes; posting all in the body");
            let all = NewReview::comment(
                review.commit_id.clone(),
                fold_refused(&review.body, &review.comments, &review.commit_id),
                Vec::new(),
            );
            let posted = run.submit(&all).await?;
            let unchecked = review.comments.len() - found.bad.len();
            Ok(run.posted(posted, review.comments.clone(), unchecked))
        }
        Err(e) => Err(e),
    }
}

/// What a probe says about its threads.
enum Verdict {
    Accepted,
    Refused(GitHubError),
}

/// Indices of the threads, by what GitHub made of them.
#[derive(Debug, Default)]
struct Found {
    good: Vec<usize>,
    bad: Vec<usize>,
    unchecked: Vec<usize>,
}

struct Run<'a, G: ?Sized> {
    gh: &'a G,
    repo: &'a RepoName,
    number: PrNumber,
    commit_id: &'a str,
    attempts: usize,
    probes: usize,
}

impl<G: ReviewApi + ?Sized> Run<'_, G> {
    fn posted(&self, review: Review, refused: Vec<ReviewComment>, unchecked: usize) -> Resilient {
        if !refused.is_empty() {
            tracing::warn!(
                review = review.id,
                refused = refused.len(),
                unchecked,
                attempts = self.attempts,
                "review posted with threads GitHub would not take listed in its body"
            );
        }
        Resilient {
            review,
            refused,
            unchecked,
            attempts: self.attempts,
        }
    }

    async fn submit(&mut self, review: &NewReview) -> Result<Review, GitHubError> {
        self.attempts += 1;
        self.gh.post_review(self.repo, self.number, review).await
    }

    /// Creates a pending review with `comments` and deletes it again.
    async fn probe(
        &mut self,
        body: &str,
        comments: &[ReviewComment],
    ) -> Result<Verdict, GitHubError> {
        self.attempts += 1;
        self.probes += 1;
        let created = self
            .gh
            .post_pending_review(self.repo, self.number, self.commit_id, body, comments)
            .await;
        match created {
            Ok(pending) => {
                if let Err(e) = self.delete(pending.id).await {
                    // Best effort, so that the probe does not block the next attempt.
                    if let Err(again) = self.delete(pending.id).await {
                        tracing::warn!(review = pending.id, error = %again, "pending probe review left behind");
                    }
                    return Err(e);
                }
                Ok(Verdict::Accepted)
            }
            // Someone else's pending review of ours is in the way: not about the threads.
            Err(e) if e.status() == Some(422) && !is_pending_conflict(&e) => {
                Ok(Verdict::Refused(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether GitHub takes `threads`, or None when the probe budget is spent.
    async fn accepts(&mut self, threads: &[ReviewComment]) -> Result<Option<bool>, GitHubError> {
        if self.probes >= MAX_PROBES {
            return Ok(None);
        }
        Ok(Some(matches!(
            self.probe("", threads).await?,
            Verdict::Accepted
        )))
    }

    /// Splits the threads in halves until each refused one is alone. `threads` as a whole is
    /// known to be refused. When one half passes, the other is known to fail without a probe.
    async fn search(&mut self, threads: &[ReviewComment]) -> Result<Found, GitHubError> {
        let mut found = Found::default();
        // Ranges still to look at, and whether each is known to hold a refused thread.
        let mut todo: Vec<(Range<usize>, bool)> = vec![(0..threads.len(), true)];
        while let Some((range, known_bad)) = todo.pop() {
            if !known_bad {
                match self.accepts(&threads[range.clone()]).await? {
                    None => {
                        found.unchecked.extend(range);
                        continue;
                    }
                    Some(true) => {
                        found.good.extend(range);
                        continue;
                    }
                    Some(false) => {}
                }
            }
            if range.len() == 1 {
                found.bad.push(range.start);
                continue;
            }
            let mid = range.start + range.len() / 2;
            let (left, right) = (range.start..mid, mid..range.end);
            match self.accepts(&threads[left.clone()]).await? {
                None => found.unchecked.extend(range),
                Some(true) => {
                    found.good.extend(left);
                    todo.push((right, true));
                }
                Some(false) => {
                    todo.push((right, false));
                    todo.push((left, true));
                }
            }
        }
        found.good.sort_unstable();
        found.bad.sort_unstable();
        found.unchecked.sort_unstable();
        Ok(found)
    }

    /// Deletes our pending reviews on the PR; returns how many there were.
    async fn clear_pending(&mut self) -> Result<usize, GitHubError> {
        let pending: Vec<u64> = self
            .gh
            .list_reviews(self.repo, self.number)
            .await?
            .into_iter()
            .filter(|r| r.state.as_deref() == Some("PENDING"))
            .map(|r| r.id)
            .collect();
        for id in &pending {
            tracing::warn!(
                review = id,
                "deleting a pending review left by an earlier attempt"
            );
            self.delete(*id).await?;
        }
        Ok(pending.len())
    }

    /// Deletes a pending review; one already gone is fine.
    async fn delete(&self, id: u64) -> Result<(), GitHubError> {
        match self.gh.delete_pending(self.repo, self.number, id).await {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        }
    }
}

/// GitHub's "User can only have one pending review per pull request".
fn is_pending_conflict(e: &GitHubError) -> bool {
    e.to_string()
        .to_ascii_lowercase()
        .contains("pending review")
}

/// The body with `threads` listed in a collapsed section above the footer, within GitHub's
/// size limit and keeping the marker.
fn fold_refused(body: &str, threads: &[ReviewComment], commit_id: &str) -> String {
    if threads.is_empty() {
        return body.to_string();
    }
    // These findings are posted nowhere else, so they come before the rest of the body in
    // GitHub's size limit: up to half of it, each one's text capped, the rest counted.
    let mut items = String::new();
    let (mut shown, mut items_chars) = (0, 0);
    for c in threads {
        let side = if c.side == Side::Left { " (old)" } else { "" };
        let lines = match c.start_line {
            Some(start) if start != c.line => format!("{start}-{}", c.line),
            _ => c.line.to_string(),
        };
        let (text, cut) = cut_at_line(&c.body, MAX_REFUSED_TEXT);
        let text = text.lines().collect::<Vec<_>>().join("\n  ");
        let more = if cut > 0 { " …" } else { "" };
        let item = format!("- `{}` line {lines}{side}: {text}{more}\n\n", c.path);
        let item_chars = item.chars().count();
        if items_chars + item_chars > MAX_REVIEW_BODY / 2 {
            break;
        }
        items.push_str(&item);
        items_chars += item_chars;
        shown += 1;
    }
    if shown < threads.len() {
        let _ = writeln!(
            items,
            "- … and {} more, left out for GitHub's size limit.\n",
            threads.len() - shown
        );
    }
    let section = format!(
        "\n<details><summary>{} finding(s) GitHub would not take as inline threads</summary>\n\n{items}</details>\n",
        threads.len()
    );
    let marker = review_marker(commit_id);
    // Above the footer (`<sub>Model...`) when there is one, else above the marker.
    let at = body
        .rfind("\n<sub>")
        .or_else(|| body.rfind(&marker))
        .unwrap_or(body.len());
    let (head, tail) = body.split_at(at);
    let room = MAX_REVIEW_BODY.saturating_sub(section.chars().count() + tail.chars().count() + 200);
    let (kept, omitted) = cut_at_line(head, room);
    fit_body(
        &format!("{kept}{}{section}{tail}", left_out(kept, omitted)),
        commit_id,
    )
}

/// Characters of one refused finding's text shown in the body.
const MAX_REFUSED_TEXT: usize = 4_000;

#[cfg(test)]
mod tests {
    use std::future::ready;
    use std::sync::Mutex;

    use super::*;

    const SHA: &str = "abc";

    /// GitHub's rules for reviews, in memory: a thread on a `bad` line is refused, one pending
    /// review per PR, and a pending review blocks submitted ones too.
    #[derive(Default)]
    struct Mock {
        bad: Vec<u32>,
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        reviews: Vec<(Review, usize)>,
        next_id: u64,
        calls: Vec<String>,
        /// Fails the next call whose name starts with this, with this status.
        fail: Option<(&'static str, u16)>,
    }

    fn status(status: u16, message: &str) -> GitHubError {
        GitHubError::Status {
            status,
            message: "Unprocessable Entity".into(),
            errors: vec![message.into()],
        }
    }

    impl Mock {
        fn new(bad: &[u32]) -> Mock {
            Mock {
                bad: bad.to_vec(),
                ..Mock::default()
            }
        }

        fn call(&self, name: &str) -> Result<std::sync::MutexGuard<'_, State>, GitHubError> {
            let mut s = self.state.lock().expect("mock lock");
            s.calls.push(name.to_string());
            if let Some((prefix, code)) = s.fail
                && name.starts_with(prefix)
            {
                s.fail = None;
                return Err(status(code, "injected"));
            }
            Ok(s)
        }

        fn create(
            &self,
            name: &str,
            commit_id: &str,
            body: &str,
            comments: &[ReviewComment],
            state: &str,
        ) -> Result<Review, GitHubError> {
            let mut s = self.call(name)?;
            if s.reviews.iter().any(|(r, _)| is_pending(r)) {
                return Err(status(
                    422,
                    "User can only have one pending review per pull request",
                ));
            }
            if commit_id != SHA {
                return Err(status(422, "No commit found for SHA"));
            }
            if body.chars().count() > 65_536 {
                return Err(status(422, "Body is too long"));
            }
            if comments.iter().any(|c| self.bad.contains(&c.line)) {
                return Err(status(422, "Line could not be resolved"));
            }
            s.next_id += 1;
            let review: Review = serde_json::from_value(serde_json::json!({
                "id": s.next_id,
                "body": body,
                "commit_id": commit_id,
                "state": state,
            }))
            .map_err(|e| GitHubError::Transport(e.to_string()))?;
            s.reviews.push((review.clone(), comments.len()));
            Ok(review)
        }

        fn calls(&self, prefix: &str) -> usize {
            let s = self.state.lock().expect("mock lock");
            s.calls.iter().filter(|c| c.starts_with(prefix)).count()
        }

        fn submitted(&self) -> Vec<(Review, usize)> {
            let s = self.state.lock().expect("mock lock");
            s.reviews
                .iter()
                .filter(|(r, _)| !is_pending(r))
                .cloned()
                .collect()
        }

        fn pending(&self) -> usize {
            let s = self.state.lock().expect("mock lock");
            s.reviews.iter().filter(|(r, _)| is_pending(r)).count()
        }
    }

    fn is_pending(r: &Review) -> bool {
        r.state.as_deref() == Some("PENDING")
    }

    impl ReviewApi for Mock {
        fn post_review(
            &self,
            _: &RepoName,
            _: PrNumber,
            review: &NewReview,
        ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
            ready(self.create(
                "create_review",
                &review.commit_id,
                &review.body,
                &review.comments,
                "COMMENTED",
            ))
        }

        fn post_pending_review(
            &self,
            _: &RepoName,
            _: PrNumber,
            commit_id: &str,
            body: &str,
            comments: &[ReviewComment],
        ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
            ready(self.create("create_pending", commit_id, body, comments, "PENDING"))
        }

        fn delete_pending(
            &self,
            _: &RepoName,
            _: PrNumber,
            review_id: u64,
        ) -> impl Future<Output = Result<(), GitHubError>> + Send {
            ready(self.call("delete").and_then(|mut s| {
                let at = s
                    .reviews
                    .iter()
                    .position(|(r, _)| r.id == review_id)
                    .ok_or_else(|| status(404, "Not Found"))?;
                if !is_pending(&s.reviews[at].0) {
                    return Err(status(422, "Can not delete a non-pending review"));
                }
                s.reviews.remove(at);
                Ok(())
            }))
        }

        fn list_reviews(
            &self,
            _: &RepoName,
            _: PrNumber,
        ) -> impl Future<Output = Result<Vec<Review>, GitHubError>> + Send {
            ready(
                self.call("reviews")
                    .map(|s| s.reviews.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>()),
            )
        }
    }

    fn thread(line: u32) -> ReviewComment {
        ReviewComment {
            path: "src/a.rs".into(),
            line,
            side: Side::Right,
            start_line: None,
            start_side: None,
            body: format!("finding on {line}\n\nmore"),
        }
    }

    fn review(lines: impl IntoIterator<Item = u32>) -> NewReview {
        NewReview::comment(
            SHA.into(),
            format!(
                "## Critic review\n\nS\n\n<sub>Model: m.</sub>\n{}",
                review_marker(SHA)
            ),
            lines.into_iter().map(thread).collect(),
        )
    }

    fn repo() -> RepoName {
        "o/r".parse().expect("repo")
    }

    async fn post(mock: &Mock, review: &NewReview) -> Result<Resilient, GitHubError> {
        post_resilient(mock, &repo(), PrNumber(1), review).await
    }

    fn lines(threads: &[ReviewComment]) -> Vec<u32> {
        threads.iter().map(|c| c.line).collect()
    }

    #[tokio::test]
    async fn an_accepted_review_is_posted_once() {
        let mock = Mock::new(&[]);
        let got = post(&mock, &review(1..=3)).await.expect("posted");
        assert_eq!((got.attempts, got.refused.len()), (1, 0));
        assert_eq!(mock.calls(""), 1);
    }

    #[tokio::test]
    async fn one_bad_thread_among_ten_goes_to_the_body() {
        let mock = Mock::new(&[7]);
        let got = post(&mock, &review(1..=10)).await.expect("posted");
        assert_eq!(lines(&got.refused), [7]);
        assert_eq!(got.unchecked, 0);
        let submitted = mock.submitted();
        assert_eq!(submitted.len(), 1);
        assert_eq!(submitted[0].1, 9);
        let body = submitted[0].0.body.clone().unwrap_or_default();
        assert!(
            body.contains("- `src/a.rs` line 7: finding on 7\n  \n  more"),
            "{body}"
        );
        assert!(body.ends_with(&review_marker(SHA)), "{body}");
        assert!(body.find("<details>") < body.find("<sub>Model"), "{body}");
        assert_eq!(mock.pending(), 0);
        // 1 refused + list + empty probe + about log2(10) halvings, each with its sibling.
        assert!(got.attempts <= 10, "{}", got.attempts);
        assert_eq!(mock.calls("create_review"), 2);
    }

    #[tokio::test]
    async fn several_bad_and_all_bad() {
        let mock = Mock::new(&[2, 9, 10, 17]);
        let got = post(&mock, &review(1..=20)).await.expect("posted");
        assert_eq!(lines(&got.refused), [2, 9, 10, 17]);
        assert_eq!(mock.submitted()[0].1, 16);
        assert_eq!(mock.pending(), 0);

        let all: Vec<u32> = (1..=6).collect();
        let mock = Mock::new(&all);
        let got = post(&mock, &review(all.clone())).await.expect("posted");
        assert_eq!(lines(&got.refused), all);
        let submitted = mock.submitted();
        assert_eq!((submitted.len(), submitted[0].1), (1, 0));
        assert!(got.attempts <= 2 + 2 * all.len(), "{}", got.attempts);
    }

    #[tokio::test]
    async fn a_single_refused_thread_needs_no_probe_of_its_own() {
        let mock = Mock::new(&[5]);
        let got = post(&mock, &review([5])).await.expect("posted");
        assert_eq!(lines(&got.refused), [5]);
        // The review, the empty probe, the probe of all threads, the final review.
        assert_eq!(got.attempts, 4);
    }

    #[tokio::test]
    async fn the_probe_budget_is_kept_and_the_rest_goes_to_the_body() {
        let all: Vec<u32> = (1..=60).collect();
        let mock = Mock::new(&all);
        let got = post(&mock, &review(all.clone())).await.expect("posted");
        assert_eq!(mock.calls("create_pending"), MAX_PROBES);
        assert_eq!(got.refused.len(), 60);
        assert!(got.unchecked > 0);
        assert_eq!(mock.submitted().len(), 1);
        assert_eq!(mock.pending(), 0);
    }

    #[tokio::test]
    async fn a_422_about_the_review_itself_is_returned() {
        let mock = Mock::new(&[]);
        let mut bad = review(1..=4);
        bad.commit_id = "nope".into();
        let err = post(&mock, &bad).await.expect_err("refused");
        assert_eq!(err.status(), Some(422));
        assert!(err.to_string().contains("No commit"), "{err}");
        // The review and one probe without threads; nothing left behind.
        assert_eq!(mock.calls("create"), 2);
        assert!(mock.submitted().is_empty());
        assert_eq!(mock.pending(), 0);
    }

    #[tokio::test]
    async fn other_errors_propagate_and_leave_no_probe() {
        let mock = Mock::new(&[3]);
        mock.state.lock().expect("lock").fail = Some(("create_review", 502));
        let err = post(&mock, &review(1..=4)).await.expect_err("502");
        assert_eq!(err.status(), Some(502));
        assert_eq!(mock.calls(""), 1);

        // A delete that fails mid-search: the error comes back, the probe is removed anyway.
        let mock = Mock::new(&[3]);
        mock.state.lock().expect("lock").fail = Some(("delete", 500));
        let err = post(&mock, &review(1..=4)).await.expect_err("500");
        assert_eq!(err.status(), Some(500));
        assert_eq!(mock.pending(), 0);
        assert!(mock.submitted().is_empty());
    }

    #[tokio::test]
    async fn a_pending_review_left_by_a_crash_is_deleted_first() {
        let mock = Mock::new(&[]);
        mock.create("seed", SHA, "", &[], "PENDING").expect("seed");
        let got = post(&mock, &review(1..=4)).await.expect("posted");
        assert!(got.refused.is_empty());
        assert_eq!(got.attempts, 2);
        assert_eq!(mock.pending(), 0);
        assert_eq!(mock.submitted()[0].1, 4);
    }

    #[test]
    fn refused_threads_fit_the_body_limit() {
        let threads: Vec<ReviewComment> = (1..=40)
            .map(|i| ReviewComment {
                body: "x".repeat(3000),
                start_line: Some(i),
                side: Side::Left,
                ..thread(i + 2)
            })
            .collect();
        let body = fold_refused(&review([]).body, &threads, SHA);
        assert!(body.chars().count() <= MAX_REVIEW_BODY);
        assert!(
            body.contains("`src/a.rs` line 1-3 (old): "),
            "{}",
            &body[..300]
        );
        assert!(body.ends_with(&review_marker(SHA)));
        // Not all forty fit in half the limit; the rest are counted and the list is closed.
        assert!(body.contains("more, left out for GitHub's size limit"));
        assert!(body.contains("</details>"));
    }

    #[test]
    fn a_refused_finding_with_one_huge_line_keeps_its_start() {
        let threads = vec![ReviewComment {
            body: "é".repeat(10_000),
            ..thread(3)
        }];
        let body = fold_refused(&review([]).body, &threads, SHA);
        assert!(body.contains(&format!("line 3: {} …", "é".repeat(MAX_REFUSED_TEXT))));
    }

    #[test]
    fn refused_threads_survive_a_body_already_at_the_limit() {
        let mut long = review([]);
        let summary: String = (0..2000)
            .map(|i| format!("summary line {i:04} {}\n", "y".repeat(30)))
            .collect();
        // The summary ends in a collapsed list, where the cut lands.
        long.body = format!(
            "Summary.\n<details><summary>2000 nits</summary>\n\n{summary}</details>\n\n<sub>Model fake</sub>\n{}",
            review_marker(SHA)
        );
        let threads = vec![
            thread(3),
            ReviewComment {
                body: format!("{}\nlast line", "z\n".repeat(5000)),
                ..thread(4)
            },
        ];
        let body = fold_refused(&long.body, &threads, SHA);
        assert!(
            body.chars().count() <= MAX_REVIEW_BODY,
            "{}",
            body.chars().count()
        );
        // Both refused findings are there (the long one shortened), the list is closed, the
        // summary was cut instead, and the footer and marker are kept.
        assert!(
            body.contains("`src/a.rs` line 3: "),
            "{}",
            &body[body.len() - 3000..]
        );
        assert!(body.contains("`src/a.rs` line 4: z"));
        assert!(!body.contains("last line"));
        // The cut list is closed before the refused one starts, so that one is not hidden in it.
        let refused = body
            .find("finding(s) GitHub would not take")
            .expect("refused list");
        assert_eq!(
            body[..refused].matches("<details>").count(),
            body[..refused].matches("</details>").count() + 1,
            "only the refused list's own <details> is open where it starts"
        );
        assert!(body.contains("summary line 0000"));
        assert!(!body.contains("summary line 1999"));
        assert!(body.contains("more characters left out"));
        assert!(body.contains("<sub>Model fake</sub>"));
        assert!(body.ends_with(&review_marker(SHA)));
    }
}
