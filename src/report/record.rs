//! The run record: the phase/step tree, gates, undo, user events and the
//! outcome, folded from events as JSON. The same fold serves a live run
//! (`summary.json`, `report::write`, `JUnit`, the GitHub summary) and a
//! journal read back from disk (`capstan runs`, `--resume`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use crate::events::{Event, Sink};

/// Output lines kept per step for `JUnit` and reports.
const TAIL_LINES: usize = 50;
/// Characters kept of each of those lines: the step log has them whole.
const MAX_TAIL_LINE: usize = 1000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    /// The playbook as it was given on the command line.
    pub playbook: String,
    /// The SHA-256 of the playbook the latest attempt ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook_sha256: Option<String>,
    /// The params as given (secrets masked, as in the journal).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, Value>,
    pub dry_run: bool,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// `running` until `run_finished`; a crashed run stays `running`.
    pub status: String,
    pub exit_code: Option<i64>,
    /// The latest attempt's duration.
    pub duration_ms: Option<u64>,
    /// Every finished attempt's duration added up: a resumed run's real
    /// running time.
    pub total_duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_at: Option<String>,
    /// How many times the run was resumed.
    pub resumes: u32,
    /// The OpenTelemetry trace of the latest attempt, when it was exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub phases: Vec<PhaseRecord>,
    pub gates: Vec<GateRecord>,
    pub undo: Vec<UndoRecord>,
    pub events: Vec<UserEvent>,
    /// Approvals being asked for, by name: since when.
    #[serde(skip)]
    pub approval_waits: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseRecord {
    pub name: String,
    pub status: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_at: Option<String>,
    pub steps: Vec<StepRecord>,
    /// When the phase (last) started: the HTML report's timeline.
    #[serde(skip)]
    pub started: Option<String>,
    /// Output of code outside any step.
    #[serde(skip)]
    pub tail: VecDeque<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StepRecord {
    pub step: String,
    #[serde(skip_serializing_if = "is_first")]
    pub occurrence: u64,
    pub status: String,
    pub duration_ms: u64,
    pub attempts: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_failure: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_at: Option<String>,
    #[serde(skip)]
    pub seq: Option<u64>,
    #[serde(skip)]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The last lines of the step's output.
    #[serde(skip)]
    pub tail: VecDeque<String>,
    /// Failed attempts that were retried: when, and the warning that said so.
    #[serde(skip)]
    pub retries: Vec<(String, String)>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_first(n: &u64) -> bool {
    *n <= 1
}

#[derive(Debug, Clone, Serialize)]
pub struct GateRecord {
    pub ts: String,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub name: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// An approval's giver and how it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// An approval asked for on a terminal: when the asking began (the
    /// timeline draws the wait).
    #[serde(skip)]
    pub waited_since: Option<String>,
}

impl GateRecord {
    /// `by alice (GITHUB_ACTOR) via --yes`, or empty.
    pub fn provenance(&self) -> String {
        match (&self.by, &self.via) {
            (Some(by), Some(via)) => format!("by {by} via {via}"),
            (Some(by), None) => format!("by {by}"),
            (None, Some(via)) => format!("via {via}"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UndoRecord {
    pub phase: Option<String>,
    pub step: Option<String>,
    pub started: String,
    pub status: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserEvent {
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub data: Value,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl RunRecord {
    /// Fold journal lines; a torn last line (a crash mid-write) is skipped.
    pub fn from_journal(text: &str) -> Self {
        let mut record = Self { status: "running".into(), ..Self::default() };
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                record.apply(&v);
            }
        }
        record
    }

    pub fn apply(&mut self, ev: &Value) {
        let ts = text(ev, "ts").unwrap_or_default();
        match ev.get("event").and_then(Value::as_str).unwrap_or("") {
            "run_started" => {
                if self.started.is_some() {
                    self.resumes += 1;
                } else {
                    self.started = Some(ts);
                }
                self.run_id = text(ev, "run_id").unwrap_or_default();
                self.playbook = text(ev, "playbook").unwrap_or_default();
                if let Some(sha) = text(ev, "playbook_sha256") {
                    self.playbook_sha256 = Some(sha);
                }
                self.trace_id = text(ev, "trace_id");
                if let Some(Value::Object(params)) = ev.get("params") {
                    for (k, v) in params {
                        self.params.insert(k.clone(), v.clone());
                    }
                }
                self.dry_run = ev.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
                self.status = "running".into();
                self.finished = None;
            }
            "phase_started" => {
                let phase = self.phase(&text(ev, "phase").unwrap_or_default());
                phase.status = "running".into();
                phase.started = Some(ts);
                phase.error = None;
                phase.error_at = None;
            }
            "phase_finished" => {
                let phase = self.phase(&text(ev, "phase").unwrap_or_default());
                phase.status = text(ev, "status").unwrap_or_default();
                phase.duration_ms = number(ev, "duration_ms");
                phase.error = text(ev, "error");
                phase.error_at = text(ev, "error_at");
            }
            "step_started" => {
                let step = self.step(ev);
                step.status = "running".into();
                step.seq = ev.get("seq").and_then(Value::as_u64);
                step.started = Some(ts);
                step.error = None;
                step.error_at = None;
                step.tail.clear();
                step.retries.clear();
            }
            "step_finished" => {
                let step = self.step(ev);
                step.status = text(ev, "status").unwrap_or_default();
                step.duration_ms = number(ev, "duration_ms");
                step.attempts = number(ev, "attempts");
                step.allow_failure = ev.get("allow_failure").and_then(Value::as_bool).unwrap_or(false);
                step.resumed = ev.get("resumed").and_then(Value::as_bool).unwrap_or(false);
                step.error = text(ev, "error");
                step.error_at = text(ev, "error_at");
                step.finished = Some(ts);
            }
            "output" => {
                let line = text(ev, "line").unwrap_or_default();
                let seq = ev.get("seq").and_then(Value::as_u64);
                let phase_name = text(ev, "phase");
                let Some(phase) = phase_name.and_then(|p| self.phases.iter_mut().find(|x| x.name == p)) else { return };
                let tail = match phase.steps.iter_mut().rev().find(|s| s.seq.is_some() && s.seq == seq) {
                    Some(step) => &mut step.tail,
                    None => &mut phase.tail,
                };
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.chars().take(MAX_TAIL_LINE).collect());
            }
            // The executor's warning before a retry (`attempt 1/3 failed: ...`).
            "log" if text(ev, "message").is_some_and(|m| m.starts_with("attempt ") && m.contains(" failed: ")) => {
                let seq = ev.get("seq").and_then(Value::as_u64);
                let phase_name = text(ev, "phase");
                let Some(phase) = phase_name.and_then(|p| self.phases.iter_mut().find(|x| x.name == p)) else { return };
                if let Some(step) = phase.steps.iter_mut().rev().find(|s| s.seq.is_some() && s.seq == seq) {
                    step.retries.push((ts, text(ev, "message").unwrap_or_default()));
                }
            }
            // Logged (at debug) when a terminal is asked for an approval.
            "log" if text(ev, "message").is_some_and(|m| m.starts_with("waiting for approval `")) => {
                let message = text(ev, "message").unwrap_or_default();
                if let Some(name) = message.strip_prefix("waiting for approval `").and_then(|r| r.strip_suffix('`')) {
                    self.approval_waits.insert(name.to_string(), ts);
                }
            }
            "gate" => self.gates.push(GateRecord {
                waited_since: text(ev, "name")
                    .as_deref()
                    .and_then(|n| n.strip_prefix("approval: "))
                    .and_then(|n| self.approval_waits.remove(n)),
                ts,
                phase: text(ev, "phase"),
                step: text(ev, "step"),
                name: text(ev, "name").unwrap_or_default(),
                passed: ev.get("passed").and_then(Value::as_bool).unwrap_or(false),
                hint: text(ev, "hint"),
                by: text(ev, "by"),
                via: text(ev, "via"),
            }),
            "undo_started" => self.undo.push(UndoRecord {
                phase: text(ev, "phase"),
                step: text(ev, "step"),
                started: ts,
                status: "running".into(),
                duration_ms: 0,
                error: None,
            }),
            "undo_finished" => {
                let step = text(ev, "step");
                if let Some(u) = self.undo.iter_mut().rev().find(|u| u.step == step && u.status == "running") {
                    u.status = text(ev, "status").unwrap_or_default();
                    u.duration_ms = number(ev, "duration_ms");
                    u.error = text(ev, "error");
                }
            }
            "event" => self.events.push(UserEvent {
                ts,
                kind: text(ev, "type").unwrap_or_default(),
                phase: text(ev, "phase"),
                step: text(ev, "step"),
                data: ev.get("data").cloned().unwrap_or(Value::Null),
            }),
            "run_finished" => {
                self.finished = Some(ts);
                self.status = text(ev, "status").unwrap_or_default();
                self.exit_code = ev.get("exit_code").and_then(Value::as_i64);
                self.duration_ms = ev.get("duration_ms").and_then(Value::as_u64);
                self.total_duration_ms += self.duration_ms.unwrap_or(0);
                self.error = text(ev, "error");
                self.error_at = text(ev, "error_at");
            }
            _ => {}
        }
    }

    fn phase(&mut self, name: &str) -> &mut PhaseRecord {
        if let Some(i) = self.phases.iter().position(|p| p.name == name) {
            return &mut self.phases[i];
        }
        self.phases.push(PhaseRecord { name: name.to_string(), status: "running".into(), ..PhaseRecord::default() });
        self.phases.last_mut().expect("just pushed")
    }

    /// The step an event names, by path and occurrence; created when new.
    fn step(&mut self, ev: &Value) -> &mut StepRecord {
        let path = text(ev, "step").unwrap_or_default();
        let occurrence = ev.get("occurrence").and_then(Value::as_u64).unwrap_or(1);
        let phase = self.phase(&text(ev, "phase").unwrap_or_default());
        if let Some(i) = phase.steps.iter().position(|s| s.step == path && s.occurrence.max(1) == occurrence) {
            return &mut phase.steps[i];
        }
        phase.steps.push(StepRecord { step: path, occurrence, ..StepRecord::default() });
        phase.steps.last_mut().expect("just pushed")
    }

    /// Every step, with its phase.
    pub fn steps(&self) -> impl Iterator<Item = (&PhaseRecord, &StepRecord)> {
        self.phases.iter().flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }

    /// The first step that failed for good (not allowed to fail), innermost first.
    pub fn failed_step(&self) -> Option<(&PhaseRecord, &StepRecord)> {
        let mut failed = self.steps().filter(|(_, s)| s.status == "failed" && !s.allow_failure);
        let first = failed.next()?;
        Some(first)
    }
}

/// Keeps the shared live record up to date; added to the bus first.
pub struct Recorder {
    record: Arc<Mutex<RunRecord>>,
}

impl Recorder {
    pub fn new() -> (Self, Arc<Mutex<RunRecord>>) {
        let record = Arc::new(Mutex::new(RunRecord { status: "running".into(), ..RunRecord::default() }));
        (Self { record: record.clone() }, record)
    }
}

impl Sink for Recorder {
    fn emit(&mut self, event: &Event) {
        if let Ok(v) = serde_json::to_value(event) {
            lock(&self.record).apply(&v);
        }
    }
}

pub fn lock(record: &Mutex<RunRecord>) -> MutexGuard<'_, RunRecord> {
    record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_steps_update_the_same_entry() {
        let journal = [
            r#"{"ts":"t1","run_id":"r","event":"run_started","playbook":"p"}"#,
            r#"{"ts":"t1","run_id":"r","event":"phase_started","phase":"do"}"#,
            r#"{"ts":"t1","run_id":"r","event":"step_started","phase":"do","step":"a","seq":1}"#,
            r#"{"ts":"t1","run_id":"r","event":"step_finished","phase":"do","step":"a","status":"ok","duration_ms":5,"attempts":1}"#,
            r#"{"ts":"t1","run_id":"r","event":"step_started","phase":"do","step":"b","seq":2}"#,
            r#"{"ts":"t2","run_id":"r","event":"run_started","playbook":"p"}"#,
            r#"{"ts":"t2","run_id":"r","event":"phase_started","phase":"do"}"#,
            r#"{"ts":"t2","run_id":"r","event":"step_finished","phase":"do","step":"a","status":"ok","duration_ms":0,"attempts":0,"resumed":true}"#,
            r#"{"ts":"t2","run_id":"r","event":"step_started","phase":"do","step":"b","seq":3}"#,
            r#"{"ts":"t2","run_id":"r","event":"step_finished","phase":"do","step":"b","status":"ok","duration_ms":7,"attempts":1}"#,
            r#"{"ts":"t2","run_id":"r","event":"run_finished","status":"ok","exit_code":0,"duration_ms":9}"#,
            r#"{"ts":"t2","run_id":"r","event":"run_fin"#,
        ]
        .join("\n");
        let r = RunRecord::from_journal(&journal);
        assert_eq!(r.resumes, 1);
        assert_eq!(r.started.as_deref(), Some("t1"));
        assert_eq!(r.status, "ok");
        let steps: Vec<_> = r.steps().map(|(_, s)| (s.step.as_str(), s.status.as_str(), s.resumed)).collect();
        assert_eq!(steps, [("a", "ok", true), ("b", "ok", false)]);
    }
}
