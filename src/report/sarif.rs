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
            let region = json!({ "startLine": f.start_line, "endLine": f.end_line });
            let mut result = json!({
                "ruleId": rule,
                "level": match f.severity {
                    Severity::Critical => "error",
                    Severity::Warning => "warning",
                    Severity::Nit => "note",
                },
                "message": { "text": format!("{}\n\n{}", f.title, f.body).trim().to_string() },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.path, "uriBaseId": "SRCROOT" },
                        "region": region,
                    }
                }],
                "properties": {
                    "severity": f.severity.label(),
                    "onChangedLine": f.placement != Placement::NotOnChangedLine,
                },
            });
            if let Some(s) = &f.suggestion {
                result["fixes"] = json!([{
                    "description": { "text": "Suggested change" },
                    "artifactChanges": [{
                        "artifactLocation": { "uri": f.path, "uriBaseId": "SRCROOT" },
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
