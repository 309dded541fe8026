//! The report as SARIF 2.1.0, the format GitHub code scanning and editors read: one result
//! per finding, its severity as the level, its lines as the region, a suggested change as a
//! fix.

use serde_json::{Value, json};

use crate::domain::Severity;

use super::{Placement, Report};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

pub fn sarif(report: &Report) -> Value {
    let mut rules: Vec<String> = Vec::new();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let rule = if f.category.is_empty() {
                "finding".to_string()
            } else {
                f.category.clone()
            };
            if !rules.contains(&rule) {
                rules.push(rule.clone());
            }
            // SARIF regions are in the file as analysed (the head): a finding on removed
            // lines names the file without a region.
            let region = (f.side == crate::domain::Side::Right)
                .then(|| json!({ "startLine": f.start_line, "endLine": f.end_line }));
            let uri = uri_of(&f.path);
            let mut location =
                json!({ "artifactLocation": { "uri": uri, "uriBaseId": "SRCROOT" } });
            if let Some(region) = &region {
                location["region"] = region.clone();
            }
            let mut result = json!({
                "ruleId": rule,
                "level": match f.severity {
                    Severity::Critical => "error",
                    Severity::Warning => "warning",
                    Severity::Nit => "note",
                },
                "message": { "text": format!("{}\n\n{}", f.title, f.body).trim().to_string() },
                "locations": [{ "physicalLocation": location }],
                "properties": {
                    "severity": f.severity.label(),
                    "onChangedLine": f.placement != Placement::NotOnChangedLine,
                },
            });
            if let (Some(s), Some(region)) = (&f.suggestion, &region) {
                result["fixes"] = json!([{
                    "description": { "text": "Suggested change" },
                    "artifactChanges": [{
                        "artifactLocation": { "uri": uri, "uriBaseId": "SRCROOT" },
                        "replacements": [{
                            "deletedRegion": region,
                            "insertedContent": { "text": format!("{s}\n") },
                        }],
                    }],
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "Critic",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules.iter().map(|r| json!({ "id": r })).collect::<Vec<_>>(),
                }
            },
            "properties": { "base": report.base, "head": report.head },
            "results": results,
        }]
    })
}

/// A repository path as a relative URI reference: each segment percent-encoded (a space, a
/// `%` or a non-ASCII name would otherwise make it invalid).
fn uri_of(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            url::form_urlencoded::byte_serialize(segment.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_become_valid_uri_references() {
        assert_eq!(super::uri_of("src/a b/ü%.rs"), "src/a%20b/%C3%BC%25.rs");
        assert_eq!(super::uri_of("src/lib.rs"), "src/lib.rs");
    }
}
