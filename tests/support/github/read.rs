//! What a test has read of what Critic wrote, as bors's test harness keeps it: every review
//! and conversation comment by the bot must be looked at by the test (through the fake's
//! inspection and waiting functions) before [`FakeGitHub::unread_by_test`] comes back empty,
//! so a test cannot pass while Critic says something nobody checked.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::world::{IssueComment, Review, ReviewComment};
use super::{BOT_LOGIN, FakeGitHub};

/// What has been read: reviews and review comments by id, conversation comments by id and
/// text (an edited comment is new text to read).
#[derive(Default)]
pub(super) struct Read {
    reviews: HashSet<u64>,
    review_comments: HashSet<u64>,
    issue_comments: HashSet<(u64, u64)>,
}

fn text_hash(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl FakeGitHub {
    pub(super) fn saw_reviews(&self, reviews: &[Review]) {
        let mut read = self.read();
        for r in reviews {
            read.reviews.insert(r.id);
            read.review_comments.extend(r.comments.iter().map(|c| c.id));
        }
    }

    pub(super) fn saw_review_comments(&self, comments: &[ReviewComment]) {
        self.read()
            .review_comments
            .extend(comments.iter().map(|c| c.id));
    }

    pub(super) fn saw_issue_comments(&self, comments: &[IssueComment]) {
        self.read()
            .issue_comments
            .extend(comments.iter().map(|c| (c.id, text_hash(&c.body))));
    }

    /// Critic's reviews and comments that no test looked at, described for the failure
    /// message. A review counts as read when it was, or when all its threads were.
    pub fn unread_by_test(&self) -> Vec<String> {
        let world = self.world();
        let read = self.read();
        let mut out = Vec::new();
        for repo in world.repos.values() {
            for (number, pull) in &repo.pulls {
                let at = format!("{}#{number}", repo.full_name);
                for r in pull.reviews.iter().filter(|r| r.user_login == BOT_LOGIN) {
                    let threads_read = !r.comments.is_empty()
                        && r.comments
                            .iter()
                            .all(|c| read.review_comments.contains(&c.id));
                    if r.state != "PENDING" && !read.reviews.contains(&r.id) && !threads_read {
                        let text = r.comments.first().map_or(r.body.as_str(), |c| &c.body);
                        out.push(format!("review {} on {at}: {}", r.id, excerpt(text)));
                    }
                }
                for c in pull
                    .issue_comments
                    .iter()
                    .filter(|c| c.user_login == BOT_LOGIN)
                {
                    if !read.issue_comments.contains(&(c.id, text_hash(&c.body))) {
                        out.push(format!("comment {} on {at}: {}", c.id, excerpt(&c.body)));
                    }
                }
            }
        }
        out
    }
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(160).collect()
}
