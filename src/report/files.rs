//! `report::write(dir)`: `report.json` and `report.md` from the run record,
//! with an incident summary when the run failed. Valid mid-run: a report
//! written by `on_failure` already shows what was undone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::format::format_duration;
use super::record::{PhaseRecord, RunRecord, StepRecord};

#[derive(Debug, Serialize)]
pub struct Incident {
    pub phase: String,
    pub step: String,
    pub error: Option<String>,
    pub error_at: Option<String>,
    pub failed_at: Option<String>,
    pub undone: Vec<Undone>,
    /// From the start of the run to the failure.
    pub time_to_failure_ms: Option<u64>,
    /// From the failure to the end of the last undo: how long until restored.
    pub time_to_restore_ms: Option<u64>,
    /// The analysis that failed, when a delivery strategy decided to roll back:
    /// the rung, the checks with their thresholds, the raw sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    /// From the failing decision to the traffic weight being 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach_to_restored_ms: Option<i64>,
}

/// Decision records are user events whose type ends in `_decision`.
pub fn decisions(record: &RunRecord) -> impl Iterator<Item = &super::record::UserEvent> {
    record.events.iter().filter(|e| e.kind.ends_with("_decision"))
}

#[derive(Debug, Serialize)]
pub struct Undone {
    pub step: String,
    pub status: String,
    pub duration_ms: u64,
}

fn parse(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(ts).ok()
}

fn between(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<u64> {
    Some(b?.duration_since(a?).ok()?.as_millis() as u64)
}

/// Where a failure is in the user's files. A step that a bundled module
/// declared (a canary rung) failed inside that module: the nearest
/// enclosing failed step, or else the phase, knows the playbook line that
/// called the module.
fn user_location(phase: &PhaseRecord, step: &StepRecord) -> Option<String> {
    let outside = |at: &Option<String>| at.clone().filter(|a| !crate::diagnostics::in_stdlib(a));
    let mut enclosing: Vec<&StepRecord> =
        phase.steps.iter().filter(|s| s.status == "failed" && step.step.starts_with(&format!("{}/", s.step))).collect();
    enclosing.sort_by_key(|s| std::cmp::Reverse(s.step.len()));
    outside(&step.error_at)
        .or_else(|| enclosing.iter().find_map(|s| outside(&s.error_at)))
        .or_else(|| outside(&phase.error_at))
        .or_else(|| step.error_at.clone())
}

/// What failed, what was undone, and how long it took, if the run failed.
pub fn incident(record: &RunRecord) -> Option<Incident> {
    let (phase, step) = record.failed_step()?;
    let failed_at = step.finished.clone();
    let restored =
        record.undo.iter().filter_map(|u| parse(&u.started).map(|t| t + Duration::from_millis(u.duration_ms))).max();
    let failed = failed_at.as_deref().and_then(parse);
    Some(Incident {
        phase: phase.name.clone(),
        step: step.step.clone(),
        error: step.error.clone(),
        error_at: user_location(phase, step),
        failed_at: failed_at.clone(),
        undone: record
            .undo
            .iter()
            .map(|u| Undone {
                step: u.step.clone().unwrap_or_default(),
                status: u.status.clone(),
                duration_ms: u.duration_ms,
            })
            .collect(),
        time_to_failure_ms: between(record.started.as_deref().and_then(parse), failed),
        time_to_restore_ms: between(failed, restored),
        decision: decisions(record).filter(|d| d.data["verdict"] == "fail").last().map(|d| d.data.clone()),
        breach_to_restored_ms: record
            .events
            .iter()
            .rev()
            .find(|e| e.kind.ends_with("_rollback"))
            .and_then(|e| e.data["breach_to_restored_ms"].as_i64()),
    })
}

/// The run's outcome so far: a report written mid-run says "running".
pub fn status(record: &RunRecord) -> String {
    if record.status == "running" && record.failed_step().is_some() {
        "failed".into()
    } else {
        record.status.clone()
    }
}

pub fn write(record: &RunRecord, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let json_path = dir.join("report.json");
    let md_path = dir.join("report.md");
    let incident = incident(record);
    let mut doc = serde_json::to_value(record).map_err(std::io::Error::other)?;
    doc["status"] = status(record).into();
    doc["incident"] = serde_json::to_value(&incident).map_err(std::io::Error::other)?;
    std::fs::write(&json_path, serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?)?;
    std::fs::write(&md_path, markdown(record, incident.as_ref()))?;
    Ok((json_path, md_path))
}

fn ms(n: u64) -> String {
    format_duration(Duration::from_millis(n))
}

fn ms_i(n: i64) -> String {
    ms(u64::try_from(n).unwrap_or(0))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(record: &RunRecord, incident: Option<&Incident>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Run report: {}\n", record.playbook);
    let exit = record.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
    let took = record.duration_ms.map(|d| format!(", took {}", ms(d))).unwrap_or_default();
    let _ = writeln!(
        md,
        "Run `{}`: **{}**{exit}, started {}{took}{}.\n",
        record.run_id,
        status(record),
        record.started.as_deref().unwrap_or("?"),
        if record.dry_run { " (dry run)" } else { "" }
    );
    if let Some(sha) = &record.playbook_sha256 {
        let _ = writeln!(md, "- **Playbook:** `{}` (sha256 `{sha}`)", cell(&record.playbook));
    }
    if record.resumes > 0 {
        let _ =
            writeln!(md, "- **Attempts:** {} ({} running in all)", record.resumes + 1, ms(record.total_duration_ms));
    }
    if !record.params.is_empty() {
        let params: Vec<String> =
            record.params.iter().map(|(k, v)| format!("`{k}` = `{}`", cell(&v.to_string()))).collect();
        let _ = writeln!(md, "- **Params:** {}", params.join(", "));
    }
    if record.playbook_sha256.is_some() || record.resumes > 0 || !record.params.is_empty() {
        md.push('\n');
    }
    if let Some(i) = incident {
        let _ = writeln!(md, "## Incident\n");
        let at = i.error_at.as_deref().map(|a| format!(" at `{a}`")).unwrap_or_default();
        let _ =
            writeln!(md, "- **What failed:** `{}/{}`{at}: {}", i.phase, i.step, cell(i.error.as_deref().unwrap_or("")));
        if i.undone.is_empty() {
            let _ = writeln!(md, "- **What was undone:** nothing");
        } else {
            let list: Vec<String> =
                i.undone.iter().map(|u| format!("`{}` ({}, {})", u.step, u.status, ms(u.duration_ms))).collect();
            let _ = writeln!(md, "- **What was undone:** {}", list.join(", "));
        }
        let mut timings = Vec::new();
        if let Some(t) = i.time_to_failure_ms {
            timings.push(format!("failed {} after the start", ms(t)));
        }
        if let Some(t) = i.time_to_restore_ms {
            timings.push(format!("undo finished {} after the failure", ms(t)));
        }
        if !timings.is_empty() {
            let _ = writeln!(md, "- **Timings:** {}", timings.join("; "));
        }
        if let Some(d) = &i.decision {
            let title = d["title"].as_str().unwrap_or("analysis");
            let _ = writeln!(md, "- **Decision:** {title}: {}", cell(d["reason"].as_str().unwrap_or("")));
            for c in d["checks"].as_array().into_iter().flatten() {
                let limit = c
                    .get("threshold")
                    .or_else(|| c.get("limit"))
                    .or_else(|| c.get("max_ratio"))
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "  - `{}`: {} (limit {limit}) {}",
                    c["metric"].as_str().unwrap_or(""),
                    c["value"],
                    if c["ok"] == false { "**breach**" } else { "ok" }
                );
            }
            let _ = writeln!(md, "  - sample: `{}`", cell(&d["sample"].to_string()));
        }
        if let Some(ms) = i.breach_to_restored_ms {
            let _ = writeln!(md, "- **Breach to traffic restored:** {}", ms_i(ms));
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Phases\n");
    for phase in &record.phases {
        let _ = writeln!(md, "### {}: {} ({})\n", phase.name, phase.status, ms(phase.duration_ms));
        if phase.steps.is_empty() {
            continue;
        }
        let _ = writeln!(md, "| step | status | duration | attempts | error |\n| --- | --- | --- | --- | --- |");
        for s in &phase.steps {
            let status = if s.allow_failure { format!("{} (allowed)", s.status) } else { s.status.clone() };
            let _ = writeln!(
                md,
                "| {} | {status} | {} | {} | {} |",
                cell(&s.step),
                ms(s.duration_ms),
                s.attempts,
                cell(s.error.as_deref().unwrap_or(""))
            );
        }
        md.push('\n');
    }
    if !record.gates.is_empty() {
        let _ = writeln!(md, "## Gates\n\n| gate | result | where | given |\n| --- | --- | --- | --- |");
        for g in &record.gates {
            let place = [g.phase.as_deref(), g.step.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("/");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&g.name),
                if g.passed { "passed" } else { "failed" },
                cell(&place),
                cell(&g.provenance())
            );
        }
        md.push('\n');
    }
    let made: Vec<_> = decisions(record).collect();
    if !made.is_empty() {
        let _ = writeln!(md, "## Decisions\n\n| time | decision | verdict | checks |\n| --- | --- | --- | --- |");
        for d in made {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                d.ts,
                cell(d.data["title"].as_str().unwrap_or(&d.kind)),
                d.data["verdict"].as_str().unwrap_or(""),
                cell(d.data["summary"].as_str().unwrap_or(""))
            );
        }
        md.push('\n');
    }
    if !record.undo.is_empty() {
        let _ = writeln!(md, "## Undo\n\n| step | status | duration | error |\n| --- | --- | --- | --- |");
        for u in &record.undo {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(u.step.as_deref().unwrap_or("")),
                u.status,
                ms(u.duration_ms),
                cell(u.error.as_deref().unwrap_or(""))
            );
        }
        md.push('\n');
    }
    if !record.events.is_empty() {
        let _ = writeln!(md, "## Events\n\n| time | type | data |\n| --- | --- | --- |");
        for e in &record.events {
            let _ = writeln!(md, "| {} | {} | `{}` |", e.ts, cell(&e.kind), cell(&e.data.to_string()));
        }
        md.push('\n');
    }
    md
}
