//! `report.html`: one self-contained page for a run, live (`report::write`)
//! or past (`capstan runs show RUN --html FILE`). Inline CSS and SVG only,
//! no script and nothing fetched, so it opens offline, from an email
//! attachment, and prints. The page is a minijinja template with
//! auto-escaping; the drawings are SVG our code writes, escaping its text.

mod analysis;
mod chart;
mod svg;
mod timeline;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::files::{incident, status, Incident};
use super::format::format_duration;
use super::record::RunRecord;

const TEMPLATE: &str = include_str!("report.html");

#[derive(Serialize)]
struct Page<'a> {
    run: &'a RunRecord,
    status: String,
    took: String,
    params: Vec<(String, String)>,
    timeline: String,
    legend: String,
    failure: Option<Failure>,
    incident: Option<Incident>,
    restored_in: String,
    breach_to_restored: String,
    analyses: Vec<analysis::Analysis>,
    readiness: Vec<analysis::Readiness>,
    approvals: Vec<Approval>,
    gates: Vec<Approval>,
    scans: Vec<Scan>,
    links: Vec<Link>,
    phases: Vec<Phase>,
    undo: Vec<Row>,
    events: Vec<Row>,
}

/// The step that failed the run, with its error and output tail.
#[derive(Serialize)]
struct Failure {
    phase: String,
    step: String,
    error: String,
    at: String,
    attempts: u64,
    retries: Vec<String>,
    tail: Vec<String>,
}

#[derive(Serialize)]
struct Approval {
    anchor: String,
    name: String,
    passed: bool,
    place: String,
    given: String,
    ts: String,
}

#[derive(Serialize)]
struct Scan {
    anchor: String,
    scanner: String,
    path: String,
    place: String,
    findings: Vec<Value>,
    /// `2 high, 1 low`, worst first.
    counts: String,
}

/// One thing that led to another: a breach to the rollback it caused.
#[derive(Serialize)]
struct Link {
    from: String,
    from_anchor: String,
    to: String,
    to_anchor: String,
}

#[derive(Serialize)]
struct Phase {
    name: String,
    status: String,
    took: String,
    error: String,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Step {
    name: String,
    depth: usize,
    status: String,
    took: String,
    attempts: u64,
    error: String,
    failing: bool,
}

/// A row of a plain table: undo entries, other events.
#[derive(Serialize)]
struct Row {
    anchor: String,
    cells: Vec<String>,
}

fn took(ms: u64) -> String {
    format_duration(std::time::Duration::from_millis(ms))
}

fn place(phase: Option<&str>, step: Option<&str>) -> String {
    [phase, step].into_iter().flatten().collect::<Vec<_>>().join(" / ")
}

/// The page for `record`.
pub fn render(record: &RunRecord) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let page = page(record);
    env.get_template("report.html")?.render(minijinja::value::Serde(&page))
}

/// Write the page to `path`.
pub fn write(record: &RunRecord, path: &Path) -> std::io::Result<()> {
    let html = render(record).map_err(std::io::Error::other)?;
    std::fs::write(path, html)
}

fn page(record: &RunRecord) -> Page<'_> {
    let failed = record.failed_step();
    let incident = incident(record);
    let failure = failed.map(|(phase, step)| Failure {
        phase: phase.name.clone(),
        step: step.step.clone(),
        error: step.error.clone().unwrap_or_default(),
        at: incident.as_ref().and_then(|i| i.error_at.clone()).unwrap_or_default(),
        attempts: step.attempts,
        retries: step.retries.iter().map(|(ts, m)| format!("{ts}: {m}")).collect(),
        tail: if step.tail.is_empty() {
            phase.tail.iter().cloned().collect()
        } else {
            step.tail.iter().cloned().collect()
        },
    });
    // Approvals are gates named `approval: NAME`; the anchors number all gates.
    let (mut approvals, mut gates) = (Vec::new(), Vec::new());
    for (n, g) in record.gates.iter().enumerate() {
        let approval = g.name.strip_prefix("approval: ");
        let row = Approval {
            anchor: format!("gate-{n}"),
            name: approval.unwrap_or(&g.name).to_string(),
            passed: g.passed,
            place: place(g.phase.as_deref(), g.step.as_deref()),
            given: g.provenance(),
            ts: g.ts.clone(),
        };
        if approval.is_some() {
            approvals.push(row);
        } else {
            gates.push(row);
        }
    }
    Page {
        status: status(record),
        took: record.duration_ms.map(took).unwrap_or_default(),
        params: record
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        timeline: timeline::draw(record, failed.map(|(p, s)| (p.name.as_str(), s.step.as_str()))),
        legend: timeline::legend(),
        failure,
        restored_in: incident.as_ref().and_then(|i| i.time_to_restore_ms).map(took).unwrap_or_default(),
        breach_to_restored: incident
            .as_ref()
            .and_then(|i| i.breach_to_restored_ms)
            .map(|ms| took(u64::try_from(ms).unwrap_or(0)))
            .unwrap_or_default(),
        incident,
        analyses: analysis::analyses(record),
        readiness: analysis::readiness(record),
        links: links(record),
        approvals,
        gates,
        scans: scans(record),
        phases: record
            .phases
            .iter()
            .map(|p| Phase {
                name: p.name.clone(),
                status: p.status.replace('_', " "),
                took: took(p.duration_ms),
                error: p.error.clone().unwrap_or_default(),
                steps: p
                    .steps
                    .iter()
                    .map(|s| Step {
                        name: s.step.rsplit('/').next().unwrap_or(&s.step).to_string(),
                        depth: s.step.matches('/').count(),
                        status: s.status.replace('_', " "),
                        took: took(s.duration_ms),
                        attempts: s.attempts,
                        error: s.error.clone().unwrap_or_default(),
                        failing: failed.is_some_and(|(fp, fs)| fp.name == p.name && fs.step == s.step),
                    })
                    .collect(),
            })
            .collect(),
        undo: record
            .undo
            .iter()
            .map(|u| Row {
                anchor: String::new(),
                cells: vec![
                    u.step.clone().unwrap_or_default(),
                    u.status.clone(),
                    took(u.duration_ms),
                    u.error.clone().unwrap_or_default(),
                ],
            })
            .collect(),
        events: record
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| !shown_elsewhere(&e.kind))
            .map(|(n, e)| Row {
                anchor: format!("event-{n}"),
                cells: vec![
                    e.ts.clone(),
                    e.kind.clone(),
                    place(e.phase.as_deref(), e.step.as_deref()),
                    e.data.to_string(),
                ],
            })
            .collect(),
        run: record,
    }
}

/// Events with a section of their own.
fn shown_elsewhere(kind: &str) -> bool {
    kind.ends_with("_decision") || kind == "compliance_scan" || kind == "readiness"
}

fn scans(record: &RunRecord) -> Vec<Scan> {
    record
        .events
        .iter()
        .filter(|e| e.kind == "compliance_scan")
        .enumerate()
        .map(|(n, e)| {
            let mut findings: Vec<Value> = e.data["findings"].as_array().cloned().unwrap_or_default();
            let rank = |f: &Value| ["critical", "high", "medium", "low"].iter().position(|s| f["severity"] == *s);
            findings.sort_by_key(rank);
            let mut counts: Vec<String> = Vec::new();
            for severity in ["critical", "high", "medium", "low"] {
                let k = findings.iter().filter(|f| f["severity"] == severity).count();
                if k > 0 {
                    counts.push(format!("{k} {severity}"));
                }
            }
            Scan {
                anchor: format!("scan-{n}"),
                scanner: e.data["scan"].as_str().unwrap_or("").to_string(),
                path: e.data["path"].as_str().unwrap_or("").to_string(),
                place: place(e.phase.as_deref(), e.step.as_deref()),
                findings,
                counts: if counts.is_empty() { "no findings".into() } else { counts.join(", ") },
            }
        })
        .collect()
}

/// What led to what: a failing decision to the rollback (or switch back) it
/// caused, that to the failed step, a scan with findings to the gate that
/// failed after it, the failure to the undo it set off.
fn links(record: &RunRecord) -> Vec<Link> {
    let mut links = Vec::new();
    let decisions: Vec<_> = analysis::decisions(record).collect();
    let failing = record.failed_step();
    for (n, e) in record.events.iter().enumerate() {
        let Some(strategy) = e.kind.strip_suffix("_rollback").or_else(|| e.kind.strip_suffix("_switch_back")) else {
            continue;
        };
        let cause = decisions
            .iter()
            .rev()
            .find(|(_, d)| d.kind == format!("{strategy}_decision") && d.data["verdict"] == "fail" && d.ts <= e.ts);
        let restored = e.data["breach_to_restored_ms"]
            .as_i64()
            .map(|ms| format!(", traffic restored {} after the decision", took(u64::try_from(ms).unwrap_or(0))))
            .unwrap_or_default();
        let what = format!("{}{restored}", e.kind.replace('_', " "));
        if let Some((k, d)) = cause {
            let title = d.data["title"].as_str().unwrap_or(&d.kind);
            let reason = d.data["reason"].as_str().unwrap_or("");
            links.push(Link {
                from: format!("breach: {title}: {reason}"),
                from_anchor: analysis::anchor(*k),
                to: what.clone(),
                to_anchor: format!("event-{n}"),
            });
        }
        if let Some((_, s)) = failing {
            links.push(Link {
                from: what,
                from_anchor: format!("event-{n}"),
                to: format!("step `{}` failed", s.step),
                to_anchor: "failure".into(),
            });
        }
    }
    for (n, e) in record.events.iter().filter(|e| e.kind == "compliance_scan").enumerate() {
        let found = e.data["findings"].as_array().map_or(0, Vec::len);
        let gate = record
            .gates
            .iter()
            .enumerate()
            .find(|(_, g)| !g.passed && g.ts >= e.ts && g.phase == e.phase && g.step == e.step);
        if let (true, Some((k, g))) = (found > 0, gate) {
            let scan = e.data["scan"].as_str().unwrap_or("");
            links.push(Link {
                from: format!("{scan} scan: {found} findings"),
                from_anchor: format!("scan-{n}"),
                to: format!("gate `{}` failed", g.name),
                to_anchor: format!("gate-{k}"),
            });
        }
    }
    if let Some((_, s)) = failing.filter(|_| !record.undo.is_empty()) {
        links.push(Link {
            from: format!("step `{}` failed", s.step),
            from_anchor: "failure".into(),
            to: format!("{} undo actions ran", record.undo.len()),
            to_anchor: "undo".into(),
        });
    }
    links
}

#[cfg(test)]
mod tests;
