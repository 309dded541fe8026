//! The real pull requests of the test data (`scenarios/`: diffs and contents, see
//! `test_env`) loaded into the fake.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::super::test_env;
use super::FakeGitHub;
use super::world::{PullFile, PullRequest};

/// The folder of the real pull request `name`, e.g. `scenario_dir("tokio-rs__axum__2be79168d8")`,
/// or `None` on a machine without the real data: the calling test is then skipped, and says so.
pub fn scenario_dir(name: &str) -> Option<PathBuf> {
    Some(test_env::data("scenarios")?.join(name))
}

/// The folders of all the real pull requests in `scenarios` (from `test_env::data`, or
/// `test_env::required_data` in a bench), sorted.
pub fn scenario_dirs(scenarios: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", scenarios.display()))
        .map(|entry| entry.expect("scenario dir entry").path())
        .collect();
    dirs.sort();
    dirs
}

/// What [`FakeGitHub::load_scenario`] set up.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub full_name: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub base_sha: String,
    pub head_sha: String,
    pub files: Vec<PullFile>,
}

#[derive(Deserialize)]
struct ScenarioMeta {
    base: String,
    head: String,
    title: String,
    #[serde(default)]
    body: String,
}

impl FakeGitHub {
    /// Loads a scenario's folder (see `scenario_dir`) as PR `number` of `full_name`:
    /// metadata from `meta.json`, files from `pr.diff` and contents at the base and head SHAs.
    pub fn load_scenario(
        &self,
        dir: &Path,
        full_name: &str,
        number: u64,
        installation_id: u64,
    ) -> Scenario {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.join(name).display()))
        };
        let meta: ScenarioMeta = serde_json::from_slice(&read("meta.json"))
            .unwrap_or_else(|e| panic!("bad meta.json in {}: {e}", dir.display()));
        let diff = String::from_utf8_lossy(&read("pr.diff")).into_owned();
        let files = PullFile::from_diff(&diff);

        if !self
            .world()
            .repos
            .contains_key(&full_name.to_ascii_lowercase())
        {
            self.add_repo(full_name, installation_id);
        }
        self.add_pull(
            full_name,
            PullRequest {
                number,
                title: meta.title.clone(),
                body: meta.body.clone(),
                user_login: "octocat".to_owned(),
                draft: false,
                base_ref: "main".to_owned(),
                base_sha: meta.base.clone(),
                head_ref: format!("scenario-{number}"),
                head_sha: meta.head.clone(),
                state: "open".to_owned(),
                labels: Vec::new(),
            },
        );
        self.set_pull_files(full_name, number, files.clone());
        for (side, sha) in [("base", &meta.base), ("head", &meta.head)] {
            let root = dir.join("files").join(side);
            for (path, bytes) in read_tree(&root) {
                self.put_content(full_name, sha, &path, bytes);
            }
        }
        Scenario {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            full_name: full_name.to_owned(),
            number,
            title: meta.title,
            body: meta.body,
            base_sha: meta.base,
            head_sha: meta.head,
            files,
        }
    }
}

/// Reads every file under `root` as (relative path with `/`, bytes); empty if `root` is missing.
fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push((rel, bytes));
            }
        }
    }
    out
}
