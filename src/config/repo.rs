//! Per-repository settings: `.github/critic.toml` on the repository's default branch,
//! merged over the organisation's `critic.toml` in its `.github` repository, merged over
//! the server's `[review]` settings.
//!
//! Read from the default branch, never from the pull request's head: a pull request must not
//! be able to change how it is reviewed, or spend more of the organisation's tokens.
//!
//! ```toml
//! [review]
//! enabled = true                       # automatic review on open and push
//! drafts = false
//! skip_authors = ["renovate[bot]"]
//! skip_bots = true                     # any author whose login ends in [bot]
//! skip_labels = ["no-review"]
//! skip_title_markers = ["[skip review]"]
//! paths = ["src/**"]                   # review only these (empty: everything)
//! ignore = ["**/*.snap"]               # never these
//! instructions = "We use thiserror in libraries."
//! language = "German"                  # language of the comments
//! min_severity = "warning"             # lowest severity posted as a thread
//! max_comments = 10
//! resolve_addressed = true             # resolve threads whose code a push changed
//!
//! [[review.path_instructions]]
//! paths = ["migrations/**"]
//! instructions = "Migrations must be reversible."
//!
//! [models]
//! review = "big"                       # endpoint names from the server's settings
//! ```

use serde::Deserialize;

use super::ReviewSettings;
use super::globs::IgnoreGlobs;
use crate::domain::Severity;
use crate::domain::Task;

/// One settings file as written; every key optional, unknown keys an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoFile {
    #[serde(default)]
    pub review: RepoReview,
    #[serde(default)]
    pub models: RepoModels,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoReview {
    pub enabled: Option<bool>,
    pub drafts: Option<bool>,
    pub skip_authors: Option<Vec<String>>,
    pub skip_bots: Option<bool>,
    pub skip_labels: Option<Vec<String>>,
    pub skip_title_markers: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub instructions: Option<String>,
    #[serde(default)]
    pub path_instructions: Vec<PathInstructions>,
    pub language: Option<String>,
    pub min_severity: Option<Severity>,
    #[serde(alias = "max_findings")]
    pub max_comments: Option<usize>,
    pub resolve_addressed: Option<bool>,
    pub suggest_tests: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathInstructions {
    pub paths: Vec<String>,
    pub instructions: String,
}

/// Endpoint names (from the server's `[llm.endpoints]`) per task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoModels {
    pub review: Option<String>,
    pub describe: Option<String>,
    pub improve: Option<String>,
    pub ask: Option<String>,
    pub tests: Option<String>,
    pub verify: Option<String>,
}

impl RepoModels {
    /// The endpoint named for `task`, if one is.
    pub fn get(&self, task: Task) -> Option<&str> {
        match task {
            Task::Review => self.review.as_deref(),
            Task::Describe => self.describe.as_deref(),
            Task::Improve => self.improve.as_deref(),
            Task::Ask => self.ask.as_deref(),
            Task::Tests => self.tests.as_deref(),
            Task::Verify => self.verify.as_deref(),
        }
    }

    fn slot(&mut self, task: Task) -> &mut Option<String> {
        match task {
            Task::Review => &mut self.review,
            Task::Describe => &mut self.describe,
            Task::Improve => &mut self.improve,
            Task::Ask => &mut self.ask,
            Task::Tests => &mut self.tests,
            Task::Verify => &mut self.verify,
        }
    }
}

/// A settings file that cannot be used, said on the PR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct RepoConfigError {
    /// `owner/repo:.github/critic.toml`.
    pub source_name: String,
    pub message: String,
}

/// The settings in force for one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoPolicy {
    pub enabled: bool,
    pub drafts: bool,
    pub skip_authors: Vec<String>,
    pub skip_bots: bool,
    pub skip_labels: Vec<String>,
    pub skip_title_markers: Vec<String>,
    /// Review only paths matching one of these (empty: all).
    pub paths: Vec<String>,
    /// Server's, organisation's and repository's ignore globs together.
    pub ignore: Vec<String>,
    /// Server's, organisation's and repository's instructions, in that order.
    pub instructions: Vec<String>,
    pub path_instructions: Vec<PathInstructions>,
    pub language: Option<String>,
    pub min_severity: Severity,
    pub max_comments: usize,
    pub resolve_addressed: bool,
    /// The first review of a pull request also suggests tests.
    pub suggest_tests: bool,
    /// The repository's choice of endpoint per task (tried first; the server's chain after).
    pub models: RepoModels,
    /// Instructions learned from how the repository's people answered Critic's threads (see
    /// `jobs::learn`); added to every review prompt after the others, and shown in the summary.
    pub learned: Vec<String>,
    /// Which file set each `review.*` and `models.*` key (the last one that did; for lists that
    /// add up, each file that added to it), for `/config`. A key absent here is the server's.
    pub sources: std::collections::BTreeMap<String, String>,
}

/// Why an automatic review does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Disabled,
    Draft,
    Author(String),
    Label(String),
    TitleMarker(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Disabled => write!(f, "automatic review is disabled for this repository"),
            Skip::Draft => write!(f, "draft"),
            Skip::Author(a) => write!(f, "author {a} is skipped"),
            Skip::Label(l) => write!(f, "label `{l}`"),
            Skip::TitleMarker(m) => write!(f, "title contains `{m}`"),
        }
    }
}

/// The pull request facts the skip rules look at.
pub struct PrFacts<'a> {
    pub draft: bool,
    pub author: &'a str,
    pub author_is_bot: bool,
    pub labels: &'a [String],
    pub title: &'a str,
}

impl RepoPolicy {
    /// The server's settings, before any file.
    pub fn from_server(r: &ReviewSettings) -> RepoPolicy {
        RepoPolicy {
            enabled: r.enabled,
            drafts: r.review_drafts,
            skip_authors: r.skip_authors.clone(),
            skip_bots: r.skip_bots,
            skip_labels: r.skip_labels.clone(),
            skip_title_markers: r.skip_title_markers.clone(),
            paths: Vec::new(),
            ignore: r.ignore.clone(),
            instructions: r.instructions.iter().cloned().collect(),
            path_instructions: Vec::new(),
            language: r.language.clone(),
            min_severity: r.min_severity,
            max_comments: r.max_comments,
            resolve_addressed: r.resolve_addressed,
            suggest_tests: r.suggest_tests,
            models: RepoModels::default(),
            learned: Vec::new(),
            sources: Default::default(),
        }
    }

    /// Parses `text` (from `source_name`) and lays it over `self`. On any error `self` is
    /// left as it was: a broken file is reported, never half applied.
    pub fn apply(
        &mut self,
        source_name: &str,
        text: &str,
        endpoints: &[&str],
    ) -> Result<(), RepoConfigError> {
        let err = |message: String| RepoConfigError {
            source_name: source_name.to_string(),
            message,
        };
        let file: RepoFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let r = file.review;
        for (key, globs) in [("review.paths", &r.paths), ("review.ignore", &r.ignore)] {
            if let Some(globs) = globs
                && let Err(e) = IgnoreGlobs::new(globs)
            {
                return Err(err(format!("`{key}`: {e}")));
            }
        }
        for (n, p) in r.path_instructions.iter().enumerate() {
            if let Err(e) = IgnoreGlobs::new(&p.paths) {
                return Err(err(format!("`review.path_instructions[{n}].paths`: {e}")));
            }
        }
        if let Some(m) = r.max_comments
            && !(1..=50).contains(&m)
        {
            return Err(err("`review.max_comments` must be between 1 and 50".into()));
        }
        let models = file.models;
        for task in Task::ALL {
            if let Some(name) = models.get(task)
                && !endpoints.contains(&name)
            {
                return Err(err(format!(
                    "`models.{}`: no endpoint named `{name}` on this server (known: {})",
                    task.label(),
                    endpoints.join(", ")
                )));
            }
        }
        let mut next = self.clone();
        let mut set_by = |key: &str, adds: bool| {
            let by = match next.sources.get(key) {
                Some(before) if adds => format!("{before} + {source_name}"),
                _ => source_name.to_string(),
            };
            next.sources.insert(key.to_string(), by);
        };
        for (key, given, adds) in [
            ("enabled", r.enabled.is_some(), false),
            ("drafts", r.drafts.is_some(), false),
            ("skip_authors", r.skip_authors.is_some(), false),
            ("skip_bots", r.skip_bots.is_some(), false),
            ("skip_labels", r.skip_labels.is_some(), false),
            ("skip_title_markers", r.skip_title_markers.is_some(), false),
            ("paths", r.paths.is_some(), false),
            ("min_severity", r.min_severity.is_some(), false),
            ("max_comments", r.max_comments.is_some(), false),
            ("resolve_addressed", r.resolve_addressed.is_some(), false),
            ("suggest_tests", r.suggest_tests.is_some(), false),
            (
                "language",
                r.language.as_ref().is_some_and(|l| !l.trim().is_empty()),
                false,
            ),
            (
                "ignore",
                r.ignore.as_ref().is_some_and(|i| !i.is_empty()),
                true,
            ),
            (
                "instructions",
                r.instructions
                    .as_ref()
                    .is_some_and(|i| !i.trim().is_empty()),
                true,
            ),
            ("path_instructions", !r.path_instructions.is_empty(), true),
        ] {
            if given {
                set_by(&format!("review.{key}"), adds);
            }
        }
        for task in Task::ALL {
            if models.get(task).is_some() {
                set_by(&format!("models.{}", task.label()), false);
            }
        }
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = r.$field {
                    next.$field = v;
                }
            };
        }
        set!(enabled);
        set!(drafts);
        set!(skip_authors);
        set!(skip_bots);
        set!(skip_labels);
        set!(skip_title_markers);
        set!(paths);
        set!(min_severity);
        set!(max_comments);
        set!(resolve_addressed);
        set!(suggest_tests);
        if let Some(l) = r.language.filter(|l| !l.trim().is_empty()) {
            next.language = Some(l);
        }
        next.ignore.extend(r.ignore.unwrap_or_default());
        next.instructions
            .extend(r.instructions.filter(|i| !i.trim().is_empty()));
        next.path_instructions.extend(r.path_instructions);
        for task in Task::ALL {
            if let Some(choice) = models.get(task) {
                *next.models.slot(task) = Some(choice.to_string());
            }
        }
        *self = next;
        Ok(())
    }

    /// The endpoint the repository chose for `task`, if it chose one.
    pub fn model_for(&self, task: Task) -> Option<&str> {
        self.models.get(task)
    }

    /// Why an automatic review of this PR should not run, if it should not.
    pub fn skip(&self, pr: &PrFacts<'_>) -> Option<Skip> {
        if !self.enabled {
            return Some(Skip::Disabled);
        }
        if pr.draft && !self.drafts {
            return Some(Skip::Draft);
        }
        let author = pr.author.to_ascii_lowercase();
        if (self.skip_bots && (pr.author_is_bot || author.ends_with("[bot]")))
            || self
                .skip_authors
                .iter()
                .any(|a| a.to_ascii_lowercase() == author)
        {
            return Some(Skip::Author(pr.author.to_string()));
        }
        if let Some(l) = pr
            .labels
            .iter()
            .find(|l| self.skip_labels.iter().any(|s| s.eq_ignore_ascii_case(l)))
        {
            return Some(Skip::Label(l.clone()));
        }
        let title = pr.title.to_ascii_lowercase();
        self.skip_title_markers
            .iter()
            .find(|m| !m.is_empty() && title.contains(&m.to_ascii_lowercase()))
            .map(|m| Skip::TitleMarker(m.clone()))
    }

    /// All instructions for a prompt: general ones, then those whose paths match a file in
    /// the request, then the language to write in.
    pub fn instructions_for<'a>(&self, paths: impl Iterator<Item = &'a str> + Clone) -> String {
        let mut out: Vec<String> = self.instructions.clone();
        out.extend(self.learned.iter().cloned());
        for p in &self.path_instructions {
            let Ok(globs) = IgnoreGlobs::new(&p.paths) else {
                continue;
            };
            let matching: Vec<&str> = paths
                .clone()
                .filter(|f| globs.first_match(f).is_some())
                .collect();
            if !matching.is_empty() {
                out.push(format!(
                    "For {}: {}",
                    p.paths.join(", "),
                    p.instructions.trim()
                ));
            }
        }
        if let Some(l) = &self.language {
            out.push(format!(
                "Write the summary, titles and bodies in {l}; keep code, paths and the JSON keys as they are."
            ));
        }
        out.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> RepoPolicy {
        RepoPolicy {
            enabled: true,
            drafts: false,
            skip_authors: Vec::new(),
            skip_bots: true,
            skip_labels: Vec::new(),
            skip_title_markers: vec!["[skip review]".into()],
            paths: Vec::new(),
            ignore: vec!["vendor/**".into()],
            instructions: vec!["Server rule.".into()],
            path_instructions: Vec::new(),
            language: None,
            min_severity: Severity::Warning,
            max_comments: 20,
            resolve_addressed: false,
            suggest_tests: false,
            models: RepoModels::default(),
            learned: Vec::new(),
            sources: Default::default(),
        }
    }

    #[test]
    fn repo_over_org_over_server() {
        let mut p = server();
        p.apply(
            "acme/.github:critic.toml",
            "[review]\nmax_comments = 5\nignore = [\"docs/**\"]\ninstructions = \"Org rule.\"\nlanguage = \"German\"\n",
            &["default"],
        )
        .expect("org");
        p.apply(
            "acme/widgets:.github/critic.toml",
            "[review]\nmax_comments = 8\nmin_severity = \"nit\"\nskip_labels = [\"no-review\"]\ninstructions = \"Repo rule.\"\n[[review.path_instructions]]\npaths = [\"migrations/**\"]\ninstructions = \"Reversible.\"\n[models]\nreview = \"big\"\n",
            &["default", "big"],
        )
        .expect("repo");
        assert_eq!(p.max_comments, 8);
        assert_eq!(p.min_severity, Severity::Nit);
        assert_eq!(p.ignore, ["vendor/**", "docs/**"]);
        assert_eq!(p.instructions, ["Server rule.", "Org rule.", "Repo rule."]);
        assert_eq!(p.language.as_deref(), Some("German"));
        assert_eq!(p.model_for(Task::Review), Some("big"));
        assert_eq!(p.model_for(Task::Describe), None);
        // Where each setting came from, for `/config`: the last file that set it, and every
        // file that added to a list.
        assert_eq!(
            p.sources.get("review.max_comments").map(String::as_str),
            Some("acme/widgets:.github/critic.toml")
        );
        assert_eq!(
            p.sources.get("review.ignore").map(String::as_str),
            Some("acme/.github:critic.toml")
        );
        assert_eq!(
            p.sources.get("review.instructions").map(String::as_str),
            Some("acme/.github:critic.toml + acme/widgets:.github/critic.toml")
        );
        assert_eq!(p.sources.get("review.drafts"), None, "the server's");
        p.apply(
            "acme/widgets:x",
            "[models]\ndescribe = \"default\"\nverify = \"big\"\n[review]\nsuggest_tests = true\n",
            &["default", "big"],
        )
        .expect("models");
        assert_eq!(p.model_for(Task::Describe), Some("default"));
        assert_eq!(
            p.model_for(Task::Verify),
            Some("big"),
            "a verify endpoint applies"
        );
        assert!(p.suggest_tests);
        assert_eq!(
            p.model_for(Task::Review),
            Some("big"),
            "kept from the file before"
        );
        let text = p.instructions_for(["migrations/1.sql", "src/a.rs"].into_iter());
        assert!(text.contains("Org rule.") && text.contains("For migrations/**: Reversible."));
        assert!(text.ends_with("keep code, paths and the JSON keys as they are."));
        let text = p.instructions_for(["src/a.rs"].into_iter());
        assert!(!text.contains("Reversible"));
    }

    #[test]
    fn a_broken_file_is_an_error_and_changes_nothing() {
        for (text, says) in [
            ("[review]\nenabeld = false\n", "enabeld"),
            ("[reviews]\n", "reviews"),
            ("[review]\nmax_comments = \"ten\"\n", "max_comments"),
            ("[review]\nmin_severity = \"blocker\"\n", "blocker"),
            ("[review]\nmax_comments = 500\n", "max_comments"),
            ("[review]\nignore = [\"!x\"]\n", "review.ignore"),
            ("[models]\nreview = \"gpt-9\"\n", "gpt-9"),
            ("[review\n", "critic.toml"),
        ] {
            let mut p = server();
            let e = p
                .apply("acme/widgets:.github/critic.toml", text, &["default"])
                .expect_err(text);
            assert!(e.to_string().contains(says), "{text}: {e}");
            assert!(
                e.to_string()
                    .starts_with("acme/widgets:.github/critic.toml"),
                "{e}"
            );
            assert_eq!(p, server(), "{text}");
        }
    }

    #[test]
    fn skip_rules() {
        let mut p = server();
        p.skip_labels = vec!["No-Review".into()];
        p.skip_authors = vec!["Mallory".into()];
        let pr = |author: &'static str, labels: &'static [String], title: &'static str| PrFacts {
            draft: false,
            author,
            author_is_bot: false,
            labels,
            title,
        };
        assert_eq!(p.skip(&pr("alice", &[], "Fix it")), None);
        assert_eq!(
            p.skip(&pr("dependabot[bot]", &[], "Bump x")),
            Some(Skip::Author("dependabot[bot]".into()))
        );
        assert_eq!(
            p.skip(&pr("mallory", &[], "x")),
            Some(Skip::Author("mallory".into()))
        );
        static LABELS: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["no-review".into()]);
        assert_eq!(
            p.skip(&pr("alice", &LABELS, "x")),
            Some(Skip::Label("no-review".into()))
        );
        assert_eq!(
            p.skip(&pr("alice", &[], "WIP [Skip Review] later")),
            Some(Skip::TitleMarker("[skip review]".into()))
        );
        let draft = PrFacts {
            draft: true,
            ..pr("alice", &[], "x")
        };
        assert_eq!(p.skip(&draft), Some(Skip::Draft));
        p.enabled = false;
        assert_eq!(p.skip(&pr("alice", &[], "x")), Some(Skip::Disabled));
    }
}
