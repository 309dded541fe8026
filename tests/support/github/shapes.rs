//! JSON shapes several endpoints share: repositories, users, timestamps.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::world::{Repo, World};
use super::{APP_ID, HTML_BASE};

impl World {
    pub(super) fn repo_json(&self, repo: &Repo) -> Value {
        let (owner, name) = repo.full_name.split_once('/').expect("owner/name");
        let api = format!("{}/repos/{}", self.url, repo.full_name);
        let mut owner_json = user_json(owner);
        owner_json["type"] = json!("Organization");
        json!({
            "id": repo.id,
            "node_id": format!("R_kgDO{:08}", repo.id),
            "name": name,
            "full_name": repo.full_name,
            "private": false,
            "owner": owner_json,
            "html_url": format!("{HTML_BASE}/{}", repo.full_name),
            "description": null,
            "fork": false,
            "url": api,
            "pulls_url": format!("{api}/pulls{{/number}}"),
            "issues_url": format!("{api}/issues{{/number}}"),
            "contents_url": format!("{api}/contents/{{+path}}"),
            "git_url": format!("git://github.com/{}.git", repo.full_name),
            "ssh_url": format!("git@github.com:{}.git", repo.full_name),
            "clone_url": format!("{HTML_BASE}/{}.git", repo.full_name),
            "default_branch": "main",
            "visibility": "public",
            "archived": false,
            "disabled": false,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "pushed_at": "2024-01-01T00:00:00Z",
        })
    }
}

/// A complete simple-user object like GitHub's; bots (`x[bot]`) get type `Bot`.
pub(super) fn user_json(login: &str) -> Value {
    let is_bot = login.ends_with("[bot]");
    let id = user_id(login);
    let escaped = login.replace('[', "%5B").replace(']', "%5D");
    let api = format!("https://api.github.com/users/{escaped}");
    let avatar = if is_bot {
        format!("https://avatars.githubusercontent.com/in/{APP_ID}?v=4")
    } else {
        format!("https://avatars.githubusercontent.com/u/{id}?v=4")
    };
    json!({
        "login": login,
        "id": id,
        "node_id": format!("{}_kgDO{id:08}", if is_bot { "BOT" } else { "U" }),
        "avatar_url": avatar,
        "gravatar_id": "",
        "url": api,
        "html_url": if is_bot { format!("{HTML_BASE}/apps/{}", login.trim_end_matches("[bot]")) } else { format!("{HTML_BASE}/{login}") },
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if is_bot { "Bot" } else { "User" },
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// Stable per-login ids (octocat keeps its real one).
fn user_id(login: &str) -> u64 {
    if login == "octocat" {
        return 583_231;
    }
    // FNV-1a: deterministic across runs, unlike std's RandomState.
    let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    10_000_000 + hash % 90_000_000
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
