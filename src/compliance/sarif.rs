//! SARIF 2.1.0, the format GitHub code scanning reads.

use serde_json::{json, Value};

use super::catalog::rules;

use super::finding::{Finding, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

pub fn document(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = rules()
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id.replace(['/', '-'], "_"),
                "shortDescription": { "text": r.summary },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "security-severity": match r.severity { Severity::Critical => "9.0", Severity::High => "7.5", Severity::Medium => "5.0", Severity::Low => "2.0" } },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": f.file.trim_start_matches("./") },
                    "region": { "startLine": f.line.max(1) },
                } }],
            })
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": { "name": "capstan", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    })
}
