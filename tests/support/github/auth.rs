//! Authentication like GitHub's: the test app's keys and JWTs, app JWT checks on `/app/...`, and
//! installation tokens (issued, scoped, checked) for `/repos/...` and GraphQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::server::{Credential, Ctx, Reply};
use super::shapes::{ts, user_json};
use super::world::{TokenInfo, World};
use super::{APP_ID, APP_SLUG, DOCS, HTML_BASE, JWT_DECODE_ERROR};

/// The test app's RSA private key (PKCS#1 PEM), the one Critic should be configured with.
pub fn app_private_key_pem() -> String {
    read_key("test-app.pem")
}

/// The public half of [`app_private_key_pem`]; the fake verifies JWTs with it.
pub fn app_public_key_pem() -> String {
    read_key("test-app.pub.pem")
}

fn read_key(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/keys")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read test key {}: {e}", path.display()))
}

/// Signs arbitrary claims with the test app key (RS256), for tests of JWT handling.
pub fn sign_app_jwt(claims: &Value) -> String {
    sign_jwt_with(claims, &app_private_key_pem())
}

/// Signs claims with any RSA private key PEM (e.g. a wrong key).
pub fn sign_jwt_with(claims: &Value, private_key_pem: &str) -> String {
    let key =
        EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).expect("valid RSA private key PEM");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("JWT signing")
}

/// A JWT GitHub would accept right now, shaped like octocrab's (iat 60 s ago, exp in 9 min).
pub fn app_jwt() -> String {
    let now = Utc::now().timestamp();
    sign_app_jwt(&json!({ "iss": APP_ID, "iat": now - 60, "exp": now + 540 }))
}

impl World {
    pub(super) fn issue_token(
        &mut self,
        installation_id: u64,
        repositories: Option<BTreeSet<String>>,
    ) -> (String, DateTime<Utc>) {
        let token = format!(
            "ghs_{}{:04}",
            uuid::Uuid::new_v4().simple(),
            self.tokens.len() % 10_000
        );
        let expires_at = Utc::now() + self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                installation_id,
                expires_at,
                revoked: false,
                repositories,
            },
        );
        (token, expires_at)
    }

    // ----- app (JWT) endpoints ---------------------------------------------------------------

    /// Checks the app JWT like GitHub: RS256 with the app key, `iss` = app id (number or
    /// string), `iat` at most 60 s ahead, `exp` in the future and at most 10 minutes after `iat`.
    fn check_app_jwt(&self, ctx: &Ctx) -> Result<(), Reply> {
        let jwt = match ctx.credential() {
            Credential::Jwt { bearer: true, jwt } => jwt,
            Credential::Jwt { bearer: false, .. } | Credential::Token(_) | Credential::Other => {
                return Err(Reply::error(401, JWT_DECODE_ERROR, DOCS));
            }
            Credential::None => {
                return Err(Reply::error(
                    401,
                    "You must authenticate with a JSON web token (JWT) to access this endpoint.",
                    DOCS,
                ));
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(&jwt, &self.decoding_key, &validation)
            .map_err(|_| Reply::error(401, JWT_DECODE_ERROR, DOCS))?
            .claims;
        let iss_ok = match &claims["iss"] {
            Value::Number(n) => n.as_u64() == Some(APP_ID),
            Value::String(s) => s.parse::<u64>().ok() == Some(APP_ID),
            _ => false,
        };
        if !iss_ok {
            return Err(Reply::error(401, JWT_DECODE_ERROR, DOCS));
        }
        let now = Utc::now().timestamp();
        let Some(iat) = claims["iat"].as_i64() else {
            return Err(Reply::error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
                DOCS,
            ));
        };
        let Some(exp) = claims["exp"].as_i64() else {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
                DOCS,
            ));
        };
        if iat > now + 60 {
            return Err(Reply::error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
                DOCS,
            ));
        }
        if exp <= now {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
                DOCS,
            ));
        }
        if exp - iat > 600 {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') is too far in the future.",
                DOCS,
            ));
        }
        Ok(())
    }

    pub(super) fn get_app(&self, ctx: &Ctx) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        Reply::json(
            200,
            json!({
                "id": APP_ID,
                "slug": APP_SLUG,
                "node_id": format!("A_{APP_ID}"),
                "name": "Critic",
                "owner": user_json("critic-org"),
                "description": "Reviews pull requests with an LLM",
                "external_url": "https://example.com/critic",
                "html_url": format!("{HTML_BASE}/apps/{APP_SLUG}"),
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": token_permissions(&self.granted),
                "events": ["pull_request", "issue_comment"],
                "installations_count": self.installations.len(),
            }),
        )
    }

    pub(super) fn create_access_token(&mut self, ctx: &Ctx, id: &str) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        let Some(installation_id) = id
            .parse::<u64>()
            .ok()
            .filter(|id| self.installations.contains(id))
        else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
            );
        };
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        // Optional scoping, as octocrab and GitHub support it; empty lists mean "all".
        let mut scope = BTreeSet::new();
        let inaccessible = Reply::error(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
        );
        for name in body["repositories"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or("");
            let found = self.repos.iter().find(|(_, r)| {
                r.installation_id == installation_id
                    && r.full_name
                        .split('/')
                        .nth(1)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            });
            match found {
                Some((key, _)) => scope.insert(key.clone()),
                None => return inaccessible,
            };
        }
        for rid in body["repository_ids"].as_array().into_iter().flatten() {
            let found = self
                .repos
                .iter()
                .find(|(_, r)| r.installation_id == installation_id && Some(r.id) == rid.as_u64());
            match found {
                Some((key, _)) => scope.insert(key.clone()),
                None => return inaccessible,
            };
        }
        let scoped = !scope.is_empty();
        let repositories: Vec<Value> = scope
            .iter()
            .map(|key| self.repo_json(&self.repos[key]))
            .collect();
        let (token, expires_at) = self.issue_token(installation_id, scoped.then_some(scope));
        self.tokens_issued += 1;
        let mut body = json!({
            "token": token,
            "expires_at": ts(expires_at),
            "permissions": token_permissions(&self.granted),
            "repository_selection": if scoped { "selected" } else { "all" },
        });
        if scoped {
            body["repositories"] = Value::Array(repositories);
        }
        Reply::json(201, body)
    }

    pub(super) fn get_repo_installation(&self, ctx: &Ctx, owner: &str, name: &str) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        match self
            .repos
            .get(&format!("{owner}/{name}").to_ascii_lowercase())
        {
            Some(repo) => Reply::json(
                200,
                json!({
                    "id": repo.installation_id,
                    "app_id": APP_ID,
                    "app_slug": APP_SLUG,
                    "target_type": "Organization",
                    "account": user_json(owner),
                    "repository_selection": "all",
                    "access_tokens_url": format!("{}/app/installations/{}/access_tokens", self.url, repo.installation_id),
                    "repositories_url": format!("{}/installation/repositories", self.url),
                    "html_url": format!("{HTML_BASE}/organizations/{owner}/settings/installations/{}", repo.installation_id),
                    "permissions": token_permissions(&self.granted),
                    "events": ["pull_request", "issue_comment"],
                    "created_at": "2024-01-01T00:00:00Z",
                    "updated_at": "2024-01-01T00:00:00Z",
                }),
            ),
            None => Reply::not_found(),
        }
    }

    // ----- repository endpoints (installation token) -----------------------------------------

    /// `/repos/...` needs a live installation token (a JWT is not enough), for a known repo of
    /// the token's installation (and scope).
    pub(super) fn authorize_repo(&self, ctx: &Ctx, full: &str) -> Result<(), Reply> {
        let info = self.live_token(ctx)?;
        let key = full.to_ascii_lowercase();
        let Some(repo) = self.repos.get(&key) else {
            return Err(Reply::not_found());
        };
        if repo.installation_id != info.installation_id || !token_in_scope(info, &key) {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOCS,
            ));
        }
        Ok(())
    }

    /// The request's installation token, if it is known, unrevoked and unexpired.
    pub(super) fn live_token(&self, ctx: &Ctx) -> Result<&TokenInfo, Reply> {
        let Credential::Token(token) = ctx.credential() else {
            return Err(Reply::bad_credentials());
        };
        match self.tokens.get(&token) {
            Some(info) if !info.revoked && info.expires_at > Utc::now() => Ok(info),
            _ => Err(Reply::bad_credentials()),
        }
    }
}

/// Whether a token scoped to some repositories includes `key` (lowercase full name).
fn token_in_scope(info: &TokenInfo, key: &str) -> bool {
    info.repositories
        .as_ref()
        .is_none_or(|scope| scope.contains(key))
}

/// The manifest's permissions with those an administrator granted since.
pub(super) fn token_permissions(granted: &BTreeMap<String, String>) -> Value {
    let mut permissions = json!({ "checks": "write", "contents": "read", "issues": "write", "metadata": "read", "pull_requests": "write" });
    for (name, level) in granted {
        permissions[name] = json!(level);
    }
    permissions
}

/// Whether the App may do `level` (`read` or `write`) on `permission`.
pub(super) fn permits(granted: &BTreeMap<String, String>, permission: &str, level: &str) -> bool {
    match token_permissions(granted)[permission].as_str() {
        Some("write") => true,
        Some("read") => level == "read",
        _ => false,
    }
}
