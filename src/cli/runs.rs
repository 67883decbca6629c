//! `capstan runs`: past runs from the journal.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use console::style;

use super::args::{RunsAction, RunsArgs};
use crate::error::Error;
use crate::replay::resume::find;
use crate::report::format::format_duration;
use crate::report::{runs_dir, RunRecord};
use crate::store::error::StoreError;
use crate::store::{Shared, State};

pub fn runs(args: &RunsArgs) -> Result<(), Error> {
    let state = State::open(args.state.as_deref())?;
    if let Some(shared) = state.shared() {
        return stored(args, shared);
    }
    let root = state.journal_root(args.journal_dir.as_ref(), ".".into())?;
    let dir = runs_dir(&root);
    let hint = if args.journal_dir.is_none() { elsewhere(&root, "runs") } else { None };
    match &args.action {
        None | Some(RunsAction::List) => {
            list(&dir, args.json, hint.as_deref());
            Ok(())
        }
        Some(RunsAction::Show { run, html }) => show(&dir, run, args.json, html.as_deref(), hint.as_deref()),
    }
}

/// `capstan run` journals next to the playbook: when the current folder has
/// no runs, name the folders below it that do.
pub(super) fn elsewhere(root: &Path, command: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| !ids(&runs_dir(&e.path())).is_empty())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let first = found.first()?;
    Some(format!(
        "capstan run keeps the journal next to the playbook; runs are under {}: capstan {command} --journal-dir {first}",
        found.join(", ")
    ))
}

fn read(dir: &Path, id: &str) -> Option<RunRecord> {
    // A line that is not UTF-8 (a damaged journal) must not hide the rest.
    let bytes = std::fs::read(dir.join(id).join("journal.jsonl")).ok()?;
    Some(RunRecord::from_journal(&String::from_utf8_lossy(&bytes)))
}

pub(super) fn ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("journal.jsonl").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn took(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |m| format_duration(Duration::from_millis(m)))
}

fn list(dir: &Path, json: bool, hint: Option<&str>) {
    let records: Vec<RunRecord> = ids(dir).iter().filter_map(|id| read(dir, id)).collect();
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id, "playbook": r.playbook, "status": r.status, "exit_code": r.exit_code,
                    "started": r.started, "duration_ms": r.duration_ms, "resumes": r.resumes, "dry_run": r.dry_run,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return;
    }
    if records.is_empty() {
        crate::errln!("no runs under {}", dir.display());
        if let Some(h) = hint {
            crate::errln!("   = hint: {h}");
        }
        return;
    }
    outln!("{:<26} {:<12} {:>8}  PLAYBOOK", "RUN", "STATUS", "TOOK");
    for r in &records {
        let status = if r.status == "running" { "incomplete".to_string() } else { r.status.clone() };
        outln!("{:<26} {:<12} {:>8}  {}", r.run_id, status, took(r.duration_ms), r.playbook);
    }
}

fn show(dir: &Path, id: &str, json: bool, html: Option<&Path>, hint: Option<&str>) -> Result<(), Error> {
    let id = match find(dir, id) {
        Some(found) => found,
        None if id == "last" => {
            return Err(Error::Usage {
                message: format!("no runs under {}", dir.display()),
                hint: hint.map(str::to_string),
            })
        }
        None => id.to_string(),
    };
    let Some(r) = read(dir, &id) else {
        return Err(Error::usage_with_hint(
            format!("no run {id} under {}", dir.display()),
            "`capstan runs` lists the runs",
        ));
    };
    page(&r, html)?;
    tell(&r, json);
    Ok(())
}

/// `runs show --html FILE`: the page `report::write` writes, for a past run.
fn page(r: &RunRecord, html: Option<&Path>) -> Result<(), Error> {
    let Some(file) = html else { return Ok(()) };
    crate::report::html::write(r, file)
        .map_err(|e| Error::usage_with_hint(format!("cannot write {}: {e}", file.display()), "check the path"))?;
    crate::errln!("wrote {}", file.display());
    Ok(())
}

/// `runs` and `runs show` with a shared `--state`: every machine's runs.
fn stored(args: &RunsArgs, shared: &Shared) -> Result<(), Error> {
    let failed = |e: StoreError| Error::usage(format!("cannot read the runs in the state store {}: {e}", shared.shown));
    match &args.action {
        None | Some(RunsAction::List) => {
            let runs = crate::store::runs::list(&shared.backend).map_err(failed)?;
            if args.json {
                let rows: Vec<serde_json::Value> = runs
                    .iter()
                    .map(|s| {
                        let r = &s.record;
                        serde_json::json!({
                            "run_id": r.run_id, "playbook": r.playbook, "status": r.status, "exit_code": r.exit_code,
                            "started": r.started, "duration_ms": r.duration_ms, "resumes": r.resumes,
                            "dry_run": r.dry_run, "where": s.place, "params": r.params,
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
            } else if runs.is_empty() {
                crate::errln!("no runs in {}", shared.shown);
            } else {
                outln!("{:<26} {:<12} {:>8}  {:<24}  PLAYBOOK  WHERE  PARAMS", "RUN", "STATUS", "TOOK", "STARTED");
                for s in &runs {
                    let r = &s.record;
                    let status = if r.status == "running" { "incomplete" } else { r.status.as_str() };
                    let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={}", shown(v))).collect();
                    outln!(
                        "{:<26} {:<12} {:>8}  {:<24}  {}  {}  {}",
                        r.run_id,
                        status,
                        took(r.duration_ms),
                        r.started.as_deref().unwrap_or("?"),
                        r.playbook,
                        s.place,
                        params.join(" ")
                    );
                }
            }
            Ok(())
        }
        Some(RunsAction::Show { run, html }) => {
            let id = match crate::store::runs::find(&shared.backend, run).map_err(failed)? {
                Some(found) => found,
                None if run == "last" => return Err(Error::usage(format!("no runs in {}", shared.shown))),
                None => run.clone(),
            };
            let Some(journal) = crate::store::runs::journal(&shared.backend, &id).map_err(failed)? else {
                return Err(Error::usage_with_hint(
                    format!("no run {id} in {}", shared.shown),
                    "`capstan runs --state URL` lists the runs",
                ));
            };
            let record = RunRecord::from_journal(&journal);
            page(&record, html.as_deref())?;
            tell(&record, args.json);
            Ok(())
        }
    }
}

/// A param's value as the command line gives it.
fn shown(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// One run as a tree (or JSON).
fn tell(r: &RunRecord, json: bool) {
    let r = r.clone();
    if json {
        let doc = serde_json::json!({ "run": r, "incident": crate::report::files::incident(&r) });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    // Statuses read as words (`dry run`), as the live output says them.
    let status = if r.status == "running" {
        "incomplete (the run did not finish)".to_string()
    } else {
        r.status.replace('_', " ")
    };
    let exit_code = r.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
    outln!("{} {} {}{exit_code}", style(format!("run {}", r.run_id)).bold(), r.playbook, status);
    let duration = if r.resumes > 0 {
        format!(
            "{} over {} attempts (the last took {})",
            took(Some(r.total_duration_ms)),
            r.resumes + 1,
            took(r.duration_ms)
        )
    } else {
        took(r.duration_ms)
    };
    outln!("  started {}, took {duration}", r.started.as_deref().unwrap_or("?"));
    if let Some(sha) = &r.playbook_sha256 {
        outln!("  playbook sha256 {sha}");
    }
    if !r.params.is_empty() {
        let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={}", shown(v))).collect();
        outln!("  params {}", params.join(" "));
    }
    let mut told_errors: Vec<String> = Vec::new();
    for phase in &r.phases {
        outln!("▸ {} {} {}", phase.name, phase.status.replace('_', " "), took(Some(phase.duration_ms)));
        for g in r.gates.iter().filter(|g| g.phase.as_deref() == Some(phase.name.as_str()) && g.step.is_none()) {
            let given = g.provenance();
            let given = if given.is_empty() { given } else { format!("  ({given})") };
            outln!("  {} gate: {}{given}", if g.passed { "✓" } else { "✗" }, g.name);
        }
        for s in &phase.steps {
            let depth = s.step.matches('/').count() + 1;
            let mark = match s.status.as_str() {
                "ok" => "✓",
                "skipped" => "↷",
                "dry_run" => "○",
                "running" => "…",
                _ => "✗",
            };
            let name = s.step.rsplit('/').next().unwrap_or(&s.step);
            let when = if s.status == "skipped" { "skipped".to_string() } else { took(Some(s.duration_ms)) };
            let mut line = format!("{}{mark} {name} {when}", "  ".repeat(depth));
            if s.status == "dry_run" {
                line.push_str(" (dry run)");
            }
            if s.attempts > 1 {
                let _ = write!(line, " ({} attempts)", s.attempts);
            }
            if s.resumed {
                line.push_str(" (from the earlier attempt)");
            }
            if s.status == "running" {
                line.push_str(" in flight when the run stopped");
            }
            if let Some(e) = &s.error {
                let _ = write!(line, "  {e}");
                // A position inside a bundled module (a canary rung) is told
                // by the phase's error instead, at the playbook's line.
                match s.error_at.as_deref().filter(|at| !crate::diagnostics::in_stdlib(at)) {
                    Some(at) => {
                        let _ = write!(line, " ({at})");
                        told_errors.push(e.clone());
                    }
                    None if s.error_at.is_none() => told_errors.push(e.clone()),
                    None => {}
                }
            }
            outln!("{line}");
            for g in r.gates.iter().filter(|g| {
                g.phase.as_deref() == Some(phase.name.as_str()) && g.step.as_deref() == Some(s.step.as_str())
            }) {
                let given = g.provenance();
                let given = if given.is_empty() { given } else { format!("  ({given})") };
                outln!("{}  {} gate: {}{given}", "  ".repeat(depth), if g.passed { "✓" } else { "✗" }, g.name);
            }
        }
        // A phase that failed because a step did repeats the step's error:
        // it is shown once, at the step.
        if let Some(e) = phase.error.as_deref().filter(|e| !told(&told_errors, e)) {
            outln!("  error: {e}");
            told_errors.push(e.to_string());
        }
    }
    let decisions: Vec<_> = crate::report::files::decisions(&r).collect();
    if !decisions.is_empty() {
        outln!("decisions:");
        for d in decisions {
            let verdict = d.data["verdict"].as_str().unwrap_or("");
            let mark = match verdict {
                "pass" => "✓",
                "inconclusive" => "?",
                _ => "✗",
            };
            let title = d.data["title"].as_str().unwrap_or(&d.kind);
            let summary = d.data["summary"].as_str().unwrap_or("");
            let mut line = format!("  {mark} {title}: {summary}");
            if verdict != "pass" {
                let _ = write!(line, " -> {verdict}: {}", d.data["reason"].as_str().unwrap_or(""));
            }
            outln!("{line}");
        }
    }
    if !r.undo.is_empty() {
        outln!("undo:");
        for u in &r.undo {
            let err = u.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default();
            outln!("  ↶ {} {} {}{err}", u.step.as_deref().unwrap_or(""), u.status, took(Some(u.duration_ms)));
        }
    }
    if let Some(e) = r.error.as_deref().filter(|e| !told(&told_errors, e)) {
        outln!("error: {e}");
    }
}

/// Whether `error` was already shown, perhaps without the ` (file:line:col)`
/// a phase or run error adds to its step's message.
fn told(shown: &[String], error: &str) -> bool {
    let bare = match error.rsplit_once(" (") {
        Some((message, at)) if at.ends_with(')') && at.contains(':') => message,
        _ => error,
    };
    shown.iter().any(|s| s == error || s == bare)
}
