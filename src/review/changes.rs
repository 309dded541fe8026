//! What a push changed since the reviewed head: which files, which lines, and which old
//! lines it rewrote. A review after a push looks only at this; threads on rewritten lines
//! are answered as addressed.

use std::collections::HashMap;

use crate::diff::{FilePatch, LineKind};
use crate::github::ChangedFile;

/// The changes from the last reviewed head to the new one, by path (at the new head).
#[derive(Debug, Clone)]
pub struct Changes {
    pub base: String,
    files: HashMap<String, Option<FilePatch>>,
    /// Old path of renamed files, so threads on the old path can be followed.
    renamed_from: HashMap<String, String>,
}

/// Lines around a changed line that still count as touched: a finding about the line
/// next to an edit is about the edit. Kept at one: a push re-reviews its own lines, not
/// the neighbourhood the previous review already covered.
const NEAR: u32 = 1;

impl Changes {
    /// From the compare API's files (their patches go from `base` to `head`).
    pub fn new(base: &str, files: Vec<ChangedFile>) -> Changes {
        let mut renamed_from = HashMap::new();
        let files = files
            .into_iter()
            .map(|f| {
                if let Some(old) = &f.previous_filename {
                    renamed_from.insert(old.clone(), f.filename.clone());
                }
                // An unreadable patch counts as changed throughout: findings on the file are
                // kept rather than dropped as out of scope.
                let patch =
                    super::read_patch(&f, "the whole file counts as changed").unwrap_or(None);
                (f.filename, patch)
            })
            .collect();
        Changes {
            base: base.to_string(),
            files,
            renamed_from,
        }
    }

    /// Whether the push changed this file at all.
    pub fn touches(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Whether lines `start..=end` (new side, at head) are on or next to a line the push
    /// added. A file without a patch (binary, too large) counts as changed throughout.
    pub fn changed_line(&self, path: &str, start: u32, end: u32) -> bool {
        match self.files.get(path) {
            None => false,
            Some(None) => true,
            Some(Some(patch)) => patch.hunks.iter().flat_map(|h| &h.lines).any(|l| {
                l.kind == LineKind::Added
                    && l.new.is_some_and(|n| {
                        n.saturating_add(NEAR) >= start && n <= end.saturating_add(NEAR)
                    })
            }),
        }
    }

    /// Whether the push removed or rewrote line `line` of `path` as it was at `base`.
    pub fn rewrote(&self, path: &str, line: u32) -> bool {
        let path = self
            .renamed_from
            .get(path)
            .map(String::as_str)
            .unwrap_or(path);
        match self.files.get(path) {
            None => false,
            Some(None) => true,
            Some(Some(patch)) => patch
                .hunks
                .iter()
                .flat_map(|h| &h.lines)
                .any(|l| l.kind == LineKind::Removed && l.old == Some(line)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileStatus;

    fn file(name: &str, patch: &str) -> ChangedFile {
        ChangedFile {
            filename: name.into(),
            status: FileStatus::Modified,
            additions: 1,
            deletions: 1,
            patch: Some(patch.into()),
            previous_filename: None,
        }
    }

    #[test]
    fn changed_and_rewritten_lines() {
        let c = Changes::new(
            "old",
            vec![
                file("a.rs", "@@ -10,3 +10,3 @@\n x\n-y\n+z\n w"),
                ChangedFile {
                    patch: None,
                    ..file("big.bin", "")
                },
            ],
        );
        assert!(c.touches("a.rs") && !c.touches("b.rs"));
        assert!(c.changed_line("a.rs", 11, 11));
        assert!(c.changed_line("a.rs", 12, 12), "next to the change");
        assert!(!c.changed_line("a.rs", 13, 13), "two lines away");
        assert!(
            !c.changed_line("a.rs", u32::MAX, u32::MAX),
            "no overflow on a wild line"
        );
        assert!(!c.changed_line("a.rs", 20, 25));
        assert!(c.changed_line("big.bin", 1, 1));
        assert!(c.rewrote("a.rs", 11), "old line 11 (`y`) was replaced");
        assert!(!c.rewrote("a.rs", 10));
        assert!(!c.rewrote("b.rs", 11));
    }

    #[test]
    fn renamed_files_follow_their_old_path() {
        let c = Changes::new(
            "old",
            vec![ChangedFile {
                status: FileStatus::Renamed,
                previous_filename: Some("old.rs".into()),
                ..file("new.rs", "@@ -1,2 +1,2 @@\n a\n-b\n+c")
            }],
        );
        assert!(c.rewrote("old.rs", 2));
    }
}
