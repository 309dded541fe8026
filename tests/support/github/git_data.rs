//! The git data API, as GitHub documents it: reading a commit (its tree), making a tree on top
//! of a base tree with files given inline, making a commit of a tree with parents, and the refs
//! that point at commits (create, update, delete, with GitHub's 422s for a ref that exists or
//! does not); and a commit's combined status. A commit made here has its files readable as
//! contents at its SHA and takes check runs like any other.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::encoding::sha1_hex;
use super::server::{Ctx, Reply};
use super::world::{Repo, World};

const DOCS_GIT: &str = "https://docs.github.com/rest/git";
const DOCS_STATUS: &str = "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference";

impl World {
    /// The files of a commit: one made here, or one whose contents the test put.
    fn files_of_commit(repo: &Repo, sha: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        if let Some((tree, _, _)) = repo.git.commits.get(sha) {
            return repo.git.trees.get(tree).cloned();
        }
        let files: BTreeMap<String, Vec<u8>> = repo
            .contents
            .iter()
            .filter(|((at, _), _)| at == sha)
            .map(|((_, path), bytes)| (path.clone(), bytes.clone()))
            .collect();
        (!files.is_empty()).then_some(files)
    }

    fn tree_sha(files: &BTreeMap<String, Vec<u8>>) -> String {
        let mut data = Vec::new();
        for (path, bytes) in files {
            data.extend_from_slice(path.as_bytes());
            data.push(0);
            data.extend_from_slice(sha1_hex(bytes).as_bytes());
        }
        sha1_hex(&data)
    }

    pub(super) fn get_git_commit(&mut self, full: &str, sha: &str) -> Reply {
        let repo = self.repo_mut(full);
        let Some(files) = World::files_of_commit(repo, sha) else {
            return Reply::error(
                404,
                "Not Found",
                &format!("{DOCS_GIT}/commits#get-a-commit-object"),
            );
        };
        let tree = World::tree_sha(&files);
        repo.git.trees.insert(tree.clone(), files);
        let (parents, message) = match repo.git.commits.get(sha) {
            Some((_, parents, message)) => (parents.clone(), message.clone()),
            None => (Vec::new(), String::new()),
        };
        let parents: Vec<Value> = parents.iter().map(|p| json!({ "sha": p })).collect();
        Reply::json(
            200,
            json!({ "sha": sha, "tree": { "sha": tree }, "parents": parents, "message": message }),
        )
    }

    pub(super) fn create_git_tree(&mut self, ctx: &Ctx, full: &str) -> Reply {
        let doc = format!("{DOCS_GIT}/trees#create-a-tree");
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let repo = self.repo_mut(full);
        let mut files = match body["base_tree"].as_str() {
            None => BTreeMap::new(),
            Some(base) => match repo.git.trees.get(base) {
                Some(files) => files.clone(),
                None => return Reply::error(422, "base_tree is not a valid tree", &doc),
            },
        };
        let Some(entries) = body["tree"].as_array() else {
            return Reply::error(422, "Invalid request.\n\n\"tree\" wasn't supplied.", &doc);
        };
        for entry in entries {
            let (Some(path), Some(content)) = (entry["path"].as_str(), entry["content"].as_str())
            else {
                return Reply::error(422, "tree entries need a path and content", &doc);
            };
            if entry["mode"] != "100644" || entry["type"] != "blob" {
                return Reply::error(422, "this fake takes blobs of mode 100644 only", &doc);
            }
            files.insert(path.to_owned(), content.as_bytes().to_vec());
        }
        let sha = World::tree_sha(&files);
        repo.git.trees.insert(sha.clone(), files);
        Reply::json(201, json!({ "sha": sha, "truncated": false }))
    }

    pub(super) fn create_git_commit(&mut self, ctx: &Ctx, full: &str) -> Reply {
        let doc = format!("{DOCS_GIT}/commits#create-a-commit");
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let repo = self.repo_mut(full);
        let (Some(tree), Some(message)) = (body["tree"].as_str(), body["message"].as_str()) else {
            return Reply::error(422, "Invalid request: tree and message are required", &doc);
        };
        let Some(files) = repo.git.trees.get(tree).cloned() else {
            return Reply::error(422, "Tree SHA does not exist", &doc);
        };
        let parents: Vec<String> = body["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        if let Some(missing) = parents
            .iter()
            .find(|p| World::files_of_commit(repo, p).is_none())
        {
            return Reply::error(
                422,
                &format!("Parent SHA does not exist or is not a commit object: {missing}"),
                &doc,
            );
        }
        let sha = sha1_hex(format!("{tree}\0{}\0{message}", parents.join(",")).as_bytes());
        for (path, bytes) in &files {
            repo.contents
                .insert((sha.clone(), path.clone()), bytes.clone());
        }
        repo.git
            .commits
            .insert(sha.clone(), (tree.to_owned(), parents, message.to_owned()));
        Reply::json(
            201,
            json!({ "sha": sha, "tree": { "sha": tree }, "message": message }),
        )
    }

    pub(super) fn create_git_ref(&mut self, ctx: &Ctx, full: &str) -> Reply {
        let doc = format!("{DOCS_GIT}/refs#create-a-reference");
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let repo = self.repo_mut(full);
        let (Some(name), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
            return Reply::error(422, "Invalid request: ref and sha are required", &doc);
        };
        // GitHub: a name that does not start with `refs` and have two slashes is rejected.
        if !name.starts_with("refs/") || name.matches('/').count() < 2 {
            return Reply::error(
                422,
                "Reference name must start with 'refs/' and have at least two slashes.",
                &doc,
            );
        }
        if repo.git.refs.contains_key(name) {
            return Reply::error(422, "Reference already exists", &doc);
        }
        if World::files_of_commit(repo, sha).is_none() {
            return Reply::error(422, "Object does not exist", &doc);
        }
        repo.git.refs.insert(name.to_owned(), sha.to_owned());
        Reply::json(
            201,
            json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }),
        )
    }

    pub(super) fn update_git_ref(&mut self, ctx: &Ctx, full: &str, name: &str) -> Reply {
        let doc = format!("{DOCS_GIT}/refs#update-a-reference");
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let repo = self.repo_mut(full);
        let full_ref = format!("refs/{name}");
        let Some(sha) = body["sha"].as_str() else {
            return Reply::error(422, "Invalid request: sha is required", &doc);
        };
        if !repo.git.refs.contains_key(&full_ref) {
            return Reply::error(422, "Reference does not exist", &doc);
        }
        if World::files_of_commit(repo, sha).is_none() {
            return Reply::error(422, "Object does not exist", &doc);
        }
        // Without `force`, only a fast-forward: the new commit must have the old as a parent.
        let old = repo.git.refs[&full_ref].clone();
        let forward = repo
            .git
            .commits
            .get(sha)
            .is_some_and(|(_, parents, _)| parents.contains(&old));
        if body["force"] != true && !forward {
            return Reply::error(422, "Update is not a fast forward", &doc);
        }
        repo.git.refs.insert(full_ref.clone(), sha.to_owned());
        Reply::json(
            200,
            json!({ "ref": full_ref, "object": { "sha": sha, "type": "commit" } }),
        )
    }

    /// `GET /repos/{o}/{r}/git/ref/{ref}` (`heads/x`): the ref, or 404.
    pub(super) fn get_git_ref(&self, full: &str, name: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let full_ref = format!("refs/{name}");
        match repo.git.refs.get(&full_ref) {
            Some(sha) => Reply::json(
                200,
                json!({ "ref": full_ref, "object": { "sha": sha, "type": "commit" } }),
            ),
            None => Reply::error(
                404,
                "Not Found",
                &format!("{DOCS_GIT}/refs#get-a-reference"),
            ),
        }
    }

    pub(super) fn delete_git_ref(&mut self, full: &str, name: &str) -> Reply {
        let repo = self.repo_mut(full);
        match repo.git.refs.remove(&format!("refs/{name}")) {
            Some(_) => Reply::empty(204),
            None => Reply::error(
                422,
                "Reference does not exist",
                &format!("{DOCS_GIT}/refs#delete-a-reference"),
            ),
        }
    }

    pub(super) fn combined_status(&self, full: &str, git_ref: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let sha = repo
            .git
            .refs
            .get(&format!("refs/heads/{git_ref}"))
            .cloned()
            .unwrap_or_else(|| git_ref.to_owned());
        if World::files_of_commit(repo, &sha).is_none()
            && !repo.pulls.values().any(|p| p.pr.head_sha == sha)
        {
            return Reply::error(
                422,
                &format!("No commit found for SHA: {git_ref}"),
                DOCS_STATUS,
            );
        }
        // The newest status of each context, as GitHub reports them.
        let mut latest: Vec<&super::world::StatusEntry> = Vec::new();
        for s in repo.statuses.iter().rev().filter(|s| s.sha == sha) {
            if !latest.iter().any(|l| l.context == s.context) {
                latest.push(s);
            }
        }
        let state = if latest
            .iter()
            .any(|s| s.state == "failure" || s.state == "error")
        {
            "failure"
        } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
            "pending"
        } else {
            "success"
        };
        let statuses: Vec<Value> = latest
            .iter()
            .map(|s| {
                json!({ "context": s.context, "state": s.state,
                    "description": s.description, "target_url": s.target_url })
            })
            .collect();
        Reply::json(
            200,
            json!({ "state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses }),
        )
    }
}
