//! The journal: `.capstan/runs/RUN_ID/` with `journal.jsonl` (every event
//! but child output, flushed at step starts and synced at step ends),
//! `steps/NNN-name.log` (each step's full output) and `summary.json`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::events::{Event, EventKind, Location, Sink};

pub struct Journal {
    dir: PathBuf,
    events: BufWriter<File>,
    logs: HashMap<u32, BufWriter<File>>,
    summary: Summary,
}

impl Journal {
    /// Create the run's folder under `root/.capstan/runs/`.
    pub fn create(root: &Path, run_id: &str, playbook: &Path) -> std::io::Result<Self> {
        let dir = root.join(".capstan").join("runs").join(run_id);
        std::fs::create_dir_all(dir.join("steps"))?;
        let events = BufWriter::with_capacity(64 * 1024, File::create(dir.join("journal.jsonl"))?);
        let summary =
            Summary { run_id: run_id.to_string(), playbook: playbook.display().to_string(), ..Summary::default() };
        Ok(Self { dir, events, logs: HashMap::new(), summary })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn log_file(&mut self, at: &Location) -> Option<&mut BufWriter<File>> {
        let seq = at.seq?;
        if !self.logs.contains_key(&seq) {
            let name =
                at.step.as_deref().and_then(|s| s.rsplit('/').next()).or(at.phase.as_deref()).unwrap_or("output");
            let path = self.dir.join("steps").join(format!("{seq:03}-{}.log", sanitize(name)));
            let file = File::options().create(true).append(true).open(path).ok()?;
            self.logs.insert(seq, BufWriter::with_capacity(64 * 1024, file));
        }
        self.logs.get_mut(&seq)
    }

    fn write_event(&mut self, event: &Event) {
        if serde_json::to_writer(&mut self.events, event).is_ok() {
            let _ = self.events.write_all(b"\n");
        }
    }

    fn sync(&mut self) {
        let _ = self.events.flush();
        let _ = self.events.get_ref().sync_data();
    }

    fn write_summary(&self) {
        let path = self.dir.join("summary.json");
        let tmp = self.dir.join("summary.json.tmp");
        if let Ok(text) = serde_json::to_vec_pretty(&self.summary.to_json()) {
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(tmp, path);
            }
        }
    }
}

impl Sink for Journal {
    fn emit(&mut self, event: &Event) {
        if let EventKind::Output { at, line, .. } = &event.kind {
            if let Some(log) = self.log_file(at) {
                let _ = log.write_all(line.as_bytes());
                let _ = log.write_all(b"\n");
            }
            return;
        }
        self.write_event(event);
        self.summary.apply(event);
        match &event.kind {
            EventKind::StepStarted { .. } | EventKind::PhaseStarted { .. } | EventKind::UndoStarted { .. } => {
                let _ = self.events.flush();
            }
            EventKind::StepFinished { at, .. } | EventKind::UndoFinished { at, .. } => {
                if let Some(seq) = at.seq {
                    if let Some(mut log) = self.logs.remove(&seq) {
                        let _ = log.flush();
                    }
                }
                self.sync();
            }
            EventKind::PhaseFinished { .. } => self.sync(),
            EventKind::RunFinished { .. } => {
                self.sync();
                self.write_summary();
            }
            _ => {}
        }
    }

    fn flush(&mut self) {
        for log in self.logs.values_mut() {
            let _ = log.flush();
        }
    }

    fn finish(&mut self) {
        self.flush();
        self.logs.clear();
        self.sync();
        self.write_summary();
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .take(60)
        .collect();
    if s.is_empty() {
        "step".into()
    } else {
        s
    }
}

/// What `summary.json` says, folded from the events.
#[derive(Default)]
struct Summary {
    run_id: String,
    playbook: String,
    started: Option<String>,
    finished: Option<String>,
    dry_run: bool,
    status: Option<String>,
    exit_code: Option<i32>,
    duration_ms: Option<u64>,
    error: Option<String>,
    phases: Vec<(String, Value)>,
    undo: Vec<Value>,
}

impl Summary {
    fn phase(&mut self, name: &str) -> &mut Value {
        if !self.phases.iter().any(|(n, _)| n == name) {
            self.phases.push((name.to_string(), json!({ "name": name, "status": "running", "steps": [] })));
        }
        &mut self.phases.iter_mut().find(|(n, _)| n == name).expect("inserted above").1
    }

    fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted { dry_run, .. } => {
                self.started = Some(event.ts.clone());
                self.dry_run = *dry_run;
            }
            EventKind::PhaseStarted { phase } => {
                self.phase(phase);
            }
            EventKind::PhaseFinished { phase, status, duration_ms, error } => {
                let p = self.phase(phase);
                p["status"] = json!(status);
                p["duration_ms"] = json!(duration_ms);
                if let Some(e) = error {
                    p["error"] = json!(e);
                }
            }
            EventKind::StepFinished { at, status, duration_ms, attempts, allow_failure, error, .. } => {
                let Some(phase) = at.phase.as_deref() else { return };
                let mut step =
                    json!({ "step": at.step, "status": status, "duration_ms": duration_ms, "attempts": attempts });
                if *allow_failure {
                    step["allow_failure"] = json!(true);
                }
                if let Some(e) = error {
                    step["error"] = json!(e);
                }
                if let Some(steps) = self.phase(phase)["steps"].as_array_mut() {
                    steps.push(step);
                }
            }
            EventKind::UndoFinished { at, status, duration_ms, error } => {
                self.undo.push(json!({ "phase": at.phase, "step": at.step, "status": status, "duration_ms": duration_ms, "error": error }));
            }
            EventKind::RunFinished { status, exit_code, duration_ms, error } => {
                self.finished = Some(event.ts.clone());
                self.status = Some(status.as_str().to_string());
                self.exit_code = Some(*exit_code);
                self.duration_ms = Some(*duration_ms);
                self.error.clone_from(error);
            }
            _ => {}
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "playbook": self.playbook,
            "dry_run": self.dry_run,
            "started": self.started,
            "finished": self.finished,
            "status": self.status.clone().unwrap_or_else(|| "running".into()),
            "exit_code": self.exit_code,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "phases": self.phases.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            "undo": self.undo,
        })
    }
}
