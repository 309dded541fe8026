//! GitHub's App manifest flow, as far as a setup meets it (docs: "Registering a GitHub App
//! from a manifest"): the web page `POST /settings/apps/new?state=S` (or
//! `/organizations/ORG/settings/apps/new`) with a `manifest` form field, where a person
//! creates the App and GitHub redirects to the manifest's `redirect_url` with `code` and the
//! same `state`; and `POST /app-manifests/{code}/conversions` (no authentication), which
//! answers 201 with the App's id, slug, `pem` and `webhook_secret` once, then 404 (a code is
//! good for one conversion, within an hour).

use serde_json::{Value, json};

use super::server::{Reply, ReplyBody};
use super::world::World;
use super::{APP_ID, HTML_BASE, app_private_key_pem};

/// The webhook secret the fake gives the Apps it creates.
pub const CREATED_WEBHOOK_SECRET: &str = "whsec-from-the-manifest-flow";

/// An App someone created from a manifest, waiting for its code to be converted.
#[derive(Clone, Debug)]
pub struct CreatedFromManifest {
    pub code: String,
    pub owner: Option<String>,
    pub manifest: Value,
    pub converted: bool,
}

impl World {
    /// The "create GitHub App" page: the person clicks "Create", and GitHub redirects.
    pub(super) fn new_app_from_manifest(
        &mut self,
        org: Option<&str>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Reply {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let Some(manifest) = form
            .get("manifest")
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        else {
            return html(
                400,
                "Invalid GitHub App configuration: the manifest is not JSON.",
            );
        };
        let Some(redirect) = manifest["redirect_url"].as_str() else {
            return html(
                400,
                "Invalid GitHub App configuration: redirect_url is required.",
            );
        };
        let hook = manifest["hook_attributes"]["url"]
            .as_str()
            .unwrap_or_default();
        if manifest["name"].as_str().is_none_or(str::is_empty) || !hook.starts_with("http") {
            return html(
                400,
                "Invalid GitHub App configuration: name and hook_attributes.url are required.",
            );
        }
        self.next_id += 1;
        let code = format!("manifest-code-{}", self.next_id);
        let state = query
            .iter()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.created_from_manifest.push(CreatedFromManifest {
            code: code.clone(),
            owner: org.map(str::to_owned),
            manifest: manifest.clone(),
            converted: false,
        });
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let location = format!("{redirect}{sep}code={code}&state={state}");
        Reply {
            status: 302,
            performed: true,
            headers: vec![("location".to_owned(), location)],
            body: ReplyBody::Text {
                content_type: "text/html; charset=utf-8",
                text: String::new(),
            },
        }
    }

    pub(super) fn convert_manifest(&mut self, code: &str) -> Reply {
        let Some(created) = self
            .created_from_manifest
            .iter_mut()
            .find(|c| c.code == code && !c.converted)
        else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest",
            );
        };
        created.converted = true;
        let name = created.manifest["name"]
            .as_str()
            .unwrap_or("app")
            .to_owned();
        let slug: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let owner = created
            .owner
            .clone()
            .unwrap_or_else(|| "octocat".to_owned());
        Reply::json(
            201,
            json!({
                "id": APP_ID,
                "slug": slug,
                "node_id": "MDM6QXBwNTk=",
                "owner": { "login": owner, "type": if created.owner.is_some() { "Organization" } else { "User" } },
                "name": name,
                "description": created.manifest["description"],
                "external_url": created.manifest["url"],
                "html_url": format!("{HTML_BASE}/apps/{slug}"),
                "created_at": "2026-12-06T00:00:00Z",
                "updated_at": "2026-12-06T00:00:00Z",
                "permissions": created.manifest["default_permissions"],
                "events": created.manifest["default_events"],
                "client_id": "Iv1.8a61f9b3a7aba766",
                "client_secret": "1726be1638095a19edd134c77bde3aa2ece1e5d8",
                "webhook_secret": CREATED_WEBHOOK_SECRET,
                "pem": app_private_key_pem(),
            }),
        )
    }
}

fn html(status: u16, text: &str) -> Reply {
    Reply {
        status,
        performed: false,
        headers: Vec::new(),
        body: ReplyBody::Text {
            content_type: "text/html; charset=utf-8",
            text: format!("<p>{text}</p>"),
        },
    }
}
