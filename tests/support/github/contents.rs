//! Repository contents: files at a ref (JSON, or raw with ETags), comparisons, git trees, and
//! which SHAs a ref stands for.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::encoding::{encode_path, git_blob_sha, github_base64, sha1_hex};
use super::server::{Ctx, Reply, ReplyBody};
use super::shapes::user_json;
use super::world::{Repo, World};
use super::{DOCS_COMPARE, DOCS_TREES, HTML_BASE, MAX_COMPARE_FILES};

impl World {
    pub(super) fn get_content(&self, ctx: &Ctx, full: &str, path: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let requested = ctx.query("ref").unwrap_or("main");
        let candidates = ref_candidates(repo, requested);
        let found = candidates.iter().find_map(|r| {
            repo.contents
                .get(&(r.clone(), path.to_owned()))
                .map(|b| (r, b))
        });
        let Some((git_ref, bytes)) = found else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/repos/contents#get-repository-content",
            );
        };
        let accept = ctx
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("vnd.github.raw") || accept.contains("vnd.github.v3.raw") {
            // Like GitHub: an ETag, and 304 with no body when the caller already has it.
            let etag = format!("\"{}\"", git_blob_sha(bytes));
            let unchanged = ctx
                .headers
                .get(http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
            if unchanged {
                return Reply {
                    status: 304,
                    performed: false,
                    headers: vec![("etag".into(), etag)],
                    body: ReplyBody::Bytes {
                        content_type: "application/vnd.github.raw",
                        bytes: Vec::new(),
                    },
                };
            }
            return Reply {
                status: 200,
                performed: false,
                headers: vec![("etag".into(), etag)],
                body: ReplyBody::Bytes {
                    content_type: "application/vnd.github.raw",
                    bytes: bytes.clone(),
                },
            };
        }
        let sha = git_blob_sha(bytes);
        let name = path.rsplit('/').next().unwrap_or(path);
        let url = format!(
            "{}/repos/{}/contents/{}?ref={}",
            self.url,
            repo.full_name,
            encode_path(path),
            git_ref
        );
        let html_url = format!(
            "{HTML_BASE}/{}/blob/{git_ref}/{}",
            repo.full_name,
            encode_path(path)
        );
        let git_url = format!("{}/repos/{}/git/blobs/{sha}", self.url, repo.full_name);
        // Like GitHub: files over 1 MB come without content (encoding "none").
        let (encoding, content) = if bytes.len() > 1024 * 1024 {
            ("none", String::new())
        } else {
            ("base64", github_base64(bytes))
        };
        Reply::json(
            200,
            json!({
                "type": "file",
                "encoding": encoding,
                "size": bytes.len(),
                "name": name,
                "path": path,
                "content": content,
                "sha": sha,
                "url": url,
                "git_url": git_url,
                "html_url": html_url,
                "download_url": format!("https://raw.githubusercontent.com/{}/{git_ref}/{}", repo.full_name, encode_path(path)),
                "_links": { "self": url, "git": git_url, "html": html_url },
            }),
        )
    }

    // ----- compare and trees -----------------------------------------------------------------

    /// `GET compare/{base}...{head}` (or `..`), answered only for pairs the test configured.
    pub(super) fn compare(&self, full: &str, spec: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let (base, head) = match spec.split_once("...").or_else(|| spec.split_once("..")) {
            Some(pair) => pair,
            None => return Reply::error(404, "Not Found", DOCS_COMPARE),
        };
        let Some(cmp) = repo.compares.get(&(base.to_owned(), head.to_owned())) else {
            return Reply::error(404, "Not Found", DOCS_COMPARE);
        };
        let api = format!("{}/repos/{}", self.url, repo.full_name);
        let html = format!("{HTML_BASE}/{}/compare/{base}...{head}", repo.full_name);
        let is_sha = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let commit = |sha: &str, message: &str| {
            json!({
                "sha": sha,
                "node_id": format!("C_kwDO{}", &sha[..10]),
                "url": format!("{api}/commits/{sha}"),
                "html_url": format!("{HTML_BASE}/{}/commit/{sha}", repo.full_name),
                "commit": {
                    "message": message,
                    "author": { "name": "Octo Cat", "email": "octocat@github.com", "date": "2024-01-01T00:00:00Z" },
                    "committer": { "name": "GitHub", "email": "noreply@github.com", "date": "2024-01-01T00:00:00Z" },
                    "tree": { "sha": sha1_hex(format!("tree:{sha}").as_bytes()) },
                    "comment_count": 0,
                },
                "author": user_json("octocat"),
                "committer": user_json("web-flow"),
                "parents": [],
            })
        };
        let base_sha = if is_sha(base) {
            base.to_owned()
        } else {
            sha1_hex(format!("ref:{base}").as_bytes())
        };
        let commits: Vec<Value> = (0..cmp.ahead_by)
            .map(|i| {
                let sha = if i + 1 == cmp.ahead_by && is_sha(head) {
                    head.to_owned()
                } else {
                    sha1_hex(format!("{base}...{head}:{i}").as_bytes())
                };
                commit(&sha, &format!("Commit {} of {}", i + 1, cmp.ahead_by))
            })
            .collect();
        let head_sha = commits
            .last()
            .and_then(|c| c["sha"].as_str())
            .map_or_else(|| base_sha.clone(), str::to_owned);
        let status = match (cmp.ahead_by, cmp.behind_by) {
            (0, 0) => "identical",
            (_, 0) => "ahead",
            (0, _) => "behind",
            _ => "diverged",
        };
        let files: Vec<Value> = cmp
            .files
            .iter()
            .take(MAX_COMPARE_FILES)
            .map(|f| self.file_json_at(repo, &base_sha, &head_sha, f))
            .collect();
        let mut out = json!({
            "url": format!("{api}/compare/{base}...{head}"),
            "html_url": html,
            "permalink_url": format!("{HTML_BASE}/{}/compare/{base_sha}...{head_sha}", repo.full_name),
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "status": status,
            "ahead_by": cmp.ahead_by,
            "behind_by": cmp.behind_by,
            "total_commits": cmp.ahead_by,
            "commits": commits,
            "files": files,
        });
        out["base_commit"] = commit(&base_sha, "Base");
        out["merge_base_commit"] = commit(&base_sha, "Base");
        Reply::json(200, out)
    }

    /// `GET git/trees/{sha}`: the files stored with [`FakeGitHub::put_content`] at that ref
    /// (a SHA, or a branch a PR points at), as git trees with real blob and tree ids.
    pub(super) fn get_tree(&self, ctx: &Ctx, full: &str, requested: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let files: Vec<(&str, &[u8])> = ref_candidates(repo, requested)
            .iter()
            .map(|r| {
                let mut files: Vec<(&str, &[u8])> = repo
                    .contents
                    .iter()
                    .filter(|((at, _), _)| at == r)
                    .map(|((_, path), bytes)| (path.as_str(), bytes.as_slice()))
                    .collect();
                files.sort();
                files
            })
            .find(|files| !files.is_empty())
            .unwrap_or_default();
        if files.is_empty() {
            return Reply::error(404, "Not Found", DOCS_TREES);
        }
        let mut root = TreeDir::default();
        for (path, bytes) in files {
            root.insert(path, bytes);
        }
        // GitHub recurses for any value of `recursive`, even "0" and "false".
        let recursive = ctx.query("recursive").is_some();
        let api = format!("{}/repos/{}/git", self.url, repo.full_name);
        let mut entries = Vec::new();
        let sha = root.write(&api, "", recursive, true, &mut entries);
        let truncated = entries.len() > self.tree_entry_limit;
        entries.truncate(self.tree_entry_limit);
        Reply::json(
            200,
            json!({
                "sha": sha,
                "url": format!("{api}/trees/{sha}"),
                "tree": entries,
                "truncated": truncated,
            }),
        )
    }
}

/// A directory of stored contents, to list as git trees.
#[derive(Default)]
struct TreeDir<'a> {
    entries: BTreeMap<&'a str, TreeNode<'a>>,
}

enum TreeNode<'a> {
    Blob(&'a [u8]),
    Dir(TreeDir<'a>),
}

impl<'a> TreeDir<'a> {
    fn insert(&mut self, path: &'a str, bytes: &'a [u8]) {
        match path.split_once('/') {
            None => {
                self.entries.insert(path, TreeNode::Blob(bytes));
            }
            Some((dir, rest)) => {
                let node = self
                    .entries
                    .entry(dir)
                    .or_insert_with(|| TreeNode::Dir(TreeDir::default()));
                if let TreeNode::Dir(dir) = node {
                    dir.insert(rest, bytes);
                }
            }
        }
    }

    /// Appends the entries to show in git order (a directory right before its contents) and
    /// returns this tree's git id. Nested entries are shown only when `recursive`.
    fn write(
        &self,
        api: &str,
        prefix: &str,
        recursive: bool,
        shown: bool,
        out: &mut Vec<Value>,
    ) -> String {
        let mut children: Vec<(&str, &TreeNode)> =
            self.entries.iter().map(|(k, v)| (*k, v)).collect();
        // Git orders a directory as if its name ended in `/`.
        children.sort_by_key(|(name, node)| match node {
            TreeNode::Dir(_) => format!("{name}/"),
            TreeNode::Blob(_) => (*name).to_owned(),
        });
        let mut raw = Vec::new();
        for (name, node) in children {
            let path = format!("{prefix}{name}");
            let (mode, sha) = match node {
                TreeNode::Blob(bytes) => {
                    let sha = git_blob_sha(bytes);
                    if shown {
                        out.push(json!({
                            "path": path, "mode": "100644", "type": "blob", "sha": sha,
                            "size": bytes.len(), "url": format!("{api}/blobs/{sha}"),
                        }));
                    }
                    ("100644", sha)
                }
                TreeNode::Dir(dir) => {
                    let at = out.len();
                    if shown {
                        out.push(Value::Null);
                    }
                    let sha =
                        dir.write(api, &format!("{path}/"), recursive, shown && recursive, out);
                    if shown {
                        out[at] = json!({
                            "path": path, "mode": "040000", "type": "tree", "sha": sha,
                            "url": format!("{api}/trees/{sha}"),
                        });
                    }
                    ("40000", sha)
                }
            };
            raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            raw.extend_from_slice(&hex::decode(&sha).expect("SHA-1 hex"));
        }
        let mut data = format!("tree {}\0", raw.len()).into_bytes();
        data.extend_from_slice(&raw);
        sha1_hex(&data)
    }
}

/// The SHAs a ref may stand for: itself (a SHA, or a ref contents were stored under), then
/// the SHAs of PR heads and bases on a branch of that name.
pub(super) fn ref_candidates(repo: &Repo, requested: &str) -> Vec<String> {
    let mut candidates = vec![requested.to_owned()];
    for pull in repo.pulls.values() {
        if pull.pr.head_ref == requested {
            candidates.push(pull.pr.head_sha.clone());
        }
        if pull.pr.base_ref == requested {
            candidates.push(pull.pr.base_sha.clone());
        }
    }
    candidates
}
