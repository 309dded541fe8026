//! Candidate findings before the verify pass: the same finding raised twice (by two chunks,
//! or twice in one answer) merged, and "findings" that report no problem dropped. Both run
//! whether the verify pass is on or not.

use crate::domain::Finding;

/// A "finding" that reports no problem: praise, or "this looks correct", with no fix and no
/// word of anything wrong in its title or body. Phrases match whole words.
pub fn reports_no_problem(f: &Finding) -> bool {
    const NO_PROBLEM: &[&str] = &[
        "no issue",
        "no issues",
        "no bug",
        "no bugs",
        "no problem",
        "no problems",
        "nothing wrong",
        "does not introduce any bugs",
        "does not introduce any issues",
        "doesn't introduce any bugs",
        "doesn't introduce any issues",
        "looks correct",
        "looks good",
        "looks fine",
        "lgtm",
        "well done",
        "good job",
        "nice work",
        "great job",
        "correctly implemented",
        "is implemented correctly",
        "no changes needed",
        "no change needed",
        "no action needed",
        "no action required",
    ];
    const BUT: &[&str] = &[
        "but",
        "however",
        "should",
        "must",
        "missing",
        "fail",
        "fails",
        "crash",
        "crashes",
        "incorrect",
        "wrong",
        "leak",
        "leaks",
        "race",
        "overflow",
        "overflows",
        "panic",
        "panics",
        "except",
        "unless",
        "instead",
    ];
    if f.suggestion.is_some() {
        return false;
    }
    let words = |text: &str| {
        let joined: Vec<String> = text
            .to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        format!(" {} ", joined.join(" "))
    };
    let title = words(&f.title);
    let first_sentence = words(f.body.split(['.', '\n']).next().unwrap_or_default());
    let everything = words(&format!("{} {}", f.title, f.body));
    let says =
        |text: &str, phrases: &[&str]| phrases.iter().any(|p| text.contains(&format!(" {p} ")));
    (says(&title, NO_PROBLEM) || says(&first_sentence, NO_PROBLEM)) && !says(&everything, BUT)
}

/// Merges findings that say the same thing about the same place: the same file and
/// category, and the same title on overlapping lines, or the same body on the same line. The
/// first is kept, with the highest severity of the group; a fix is taken over only when it
/// was written for the very same lines.
pub fn merge_duplicates(findings: Vec<Finding>) -> Vec<Finding> {
    let range = |f: &Finding| (f.start_line.unwrap_or(f.line), f.line);
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        let (s, e) = range(&f);
        let same = out.iter_mut().find(|k| {
            let (ks, ke) = range(k);
            k.path == f.path
                && k.category == f.category
                && ((ks <= e
                    && s <= ke
                    && !k.title.is_empty()
                    && k.title.eq_ignore_ascii_case(&f.title))
                    || (k.line == f.line && k.body == f.body))
        });
        match same {
            Some(kept) => {
                kept.severity = kept.severity.min(f.severity);
                if kept.suggestion.is_none() && range(kept) == (s, e) {
                    kept.suggestion = f.suggestion;
                }
            }
            None => out.push(f),
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::diff::Side;
    use crate::domain::Severity;

    /// A finding on `src/lib.rs` (the verify pass's tests use it too).
    pub(in crate::review) fn finding(line: u32, severity: Severity, title: &str) -> Finding {
        Finding {
            path: "src/lib.rs".into(),
            line,
            start_line: None,
            side: Side::Right,
            severity,
            category: "bug".into(),
            title: title.into(),
            body: format!("{title}: explained."),
            quote: None,
            suggestion: None,
            confidence: None,
        }
    }

    #[test]
    fn praise_is_not_a_finding_and_real_findings_are_not_praise() {
        let said = |title: &str, body: &str| Finding {
            title: title.into(),
            body: body.into(),
            ..finding(1, Severity::Warning, "")
        };
        assert!(reports_no_problem(&said(
            "No issues",
            "This change does not introduce any bugs."
        )));
        assert!(reports_no_problem(&said(
            "Good change",
            "Looks correct to me."
        )));
        for (title, body) in [
            ("Division by zero", "`b` can be zero here; check it first."),
            ("Looks correct, but", "The loop misses the last element."),
            (
                "Looks good, but the loop skips the last element",
                "See the bound.",
            ),
            (
                "No issuer check on JWTs",
                "Tokens from anyone are accepted.",
            ),
            (
                "Rate limit",
                "The endpoint does not introduce any rate limiting, so it can be flooded.",
            ),
        ] {
            assert!(!reports_no_problem(&said(title, body)), "{title}: {body}");
        }
        let with_fix = Finding {
            suggestion: Some("x".into()),
            ..said("Looks good", "Fine.")
        };
        assert!(!reports_no_problem(&with_fix), "a fix is not praise");
    }

    #[test]
    fn the_same_finding_twice_is_posted_once_and_neighbours_stay_apart() {
        let a = finding(10, Severity::Warning, "Off by one");
        let b = Finding {
            severity: Severity::Critical,
            ..finding(10, Severity::Warning, "off by one")
        };
        let c = finding(30, Severity::Warning, "Off by one");
        let merged = merge_duplicates(vec![a, b, c]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].severity, Severity::Critical);
        assert_eq!(merged[1].line, 30);
        // Two divisions on neighbouring lines are two findings; a fix never changes lines.
        let first = finding(10, Severity::Warning, "Division by zero");
        let second = Finding {
            suggestion: Some("    let r = b.checked_div(c);".into()),
            ..finding(11, Severity::Warning, "Division by zero")
        };
        let kept = merge_duplicates(vec![first, second]);
        assert_eq!(kept.len(), 2);
        assert!(kept[0].suggestion.is_none());
        // A range repeated with the same title is one finding, and its fix is kept.
        let range = |fix: Option<&str>| Finding {
            start_line: Some(8),
            suggestion: fix.map(str::to_owned),
            ..finding(10, Severity::Warning, "Leak")
        };
        let one = merge_duplicates(vec![range(None), range(Some("fix"))]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].suggestion.as_deref(), Some("fix"));
    }
}
