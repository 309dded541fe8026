//! A person's role on a repository (the collaborator permission API), for
//! `commands.require_permission`: an organisation member with read access must not be able to
//! spend the model budget on a private repository. Answers are cached for a few minutes per
//! repository and person, so a busy thread costs one call, and a role taken away counts soon.

use serde::Deserialize;

use super::client::none_if_missing;
use super::transport::Call;
use super::{GitHubError, Installation, RepoName};
use crate::domain::Permission;

/// `GET /repos/{owner}/{repo}/collaborators/{username}/permission`.
#[derive(Debug, Deserialize)]
struct CollaboratorPermission {
    /// The legacy base role: `admin`, `write`, `read` or `none` (maintain reads as write,
    /// triage as read).
    permission: String,
    /// The role itself, when it is one of GitHub's (a custom role has its own name).
    #[serde(default)]
    role_name: Option<String>,
}

impl CollaboratorPermission {
    fn role(&self) -> Permission {
        self.role_name
            .as_deref()
            .and_then(Permission::from_name)
            .or_else(|| Permission::from_name(&self.permission))
            .unwrap_or(Permission::None)
    }
}

impl Installation {
    /// `login`'s role on `repo`; `none` for someone GitHub does not know there.
    pub async fn permission(
        &self,
        repo: &RepoName,
        login: &str,
    ) -> Result<Permission, GitHubError> {
        let key = (
            repo.to_string().to_ascii_lowercase(),
            login.to_ascii_lowercase(),
        );
        if let Some(known) = self.owner.permissions.get(&key) {
            return Ok(known);
        }
        let login_path: String = url::form_urlencoded::byte_serialize(login.as_bytes()).collect();
        let got: Option<CollaboratorPermission> = none_if_missing(
            self.get_json(Call::get(format!(
                "/repos/{repo}/collaborators/{login_path}/permission"
            )))
            .await,
        )?;
        let role = got.map_or(Permission::None, |p| p.role());
        self.owner.permissions.put(key, role);
        Ok(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_read_from_role_name_else_the_base_permission() {
        let read = |v: serde_json::Value| {
            serde_json::from_value::<CollaboratorPermission>(v)
                .expect("answer")
                .role()
        };
        assert_eq!(
            read(serde_json::json!({"permission": "write", "role_name": "maintain"})),
            Permission::Maintain
        );
        assert_eq!(
            read(serde_json::json!({"permission": "read", "role_name": "triage"})),
            Permission::Triage
        );
        assert_eq!(
            read(serde_json::json!({"permission": "write", "role_name": "release-manager"})),
            Permission::Write,
            "a custom role counts as its base"
        );
        assert_eq!(
            read(serde_json::json!({"permission": "none"})),
            Permission::None
        );
        assert!(Permission::Triage < Permission::Write && Permission::Write < Permission::Admin);
    }
}
