//! `--resume`: read an earlier run's journal and answer, for each step by
//! its `step_key`, whether it completed and with what value.
//!
//! The journal may be damaged: a crash or a full disk tears its last line,
//! a bad disk or a hand edit leaves a line that is not UTF-8 or not JSON.
//! Such lines are skipped and named ([`Resume::ignored`]); the steps they
//! would have told about run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::record::substitute;

use super::secret_ref::SecretRef;
use crate::report::format::pick_run;
use crate::report::{runs_dir, RunRecord};
use crate::secrets::Redactor;

/// What the journal says about a step that completed.
enum Completed {
    /// Its value comes back on resume, with these secrets put back in.
    Replay { step: String, value: Value, secrets: Vec<SecretRef> },
    /// It completed but its value cannot come back: it runs again.
    Rerun { step: String, seq: u64, why: String },
    /// It prepares the workspace, which a resumed run (a later CI job on a
    /// fresh checkout) may not have: it runs again.
    EveryJob { step: String, seq: u64 },
}

pub struct Resume {
    pub run_id: String,
    pub dir: PathBuf,
    pub playbook_sha256: Option<String>,
    pub params: Value,
    /// The salt of the run's step keys (`None`: a journal older than them,
    /// whose steps are known by phase, masked name and occurrence).
    pub salt: Option<String>,
    /// The highest step number used, so new step logs do not collide.
    pub max_seq: u32,
    /// The record so far, so the resumed run's summary covers both attempts.
    pub record: RunRecord,
    /// Journal lines that could not be read: line number (from 1) and why.
    pub ignored: Vec<(usize, &'static str)>,
    completed: HashMap<String, Completed>,
    /// Steps whose undo ran last: they run again, and re-arm their undo.
    undone: std::collections::HashSet<String>,
    /// Steps whose undo failed or was cut short, by key: step and error.
    /// Their state is unknown, so resume refuses until a person looks.
    undo_failed: HashMap<String, (String, String)>,
}

/// Why a run cannot be loaded for `--resume`.
#[derive(Debug)]
pub enum LoadError {
    /// `--resume last` and the journal root has no runs.
    NoRuns { runs: std::path::PathBuf },
    /// The run's journal cannot be read.
    Unreadable { run_id: String, dir: std::path::PathBuf, source: std::io::Error },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NoRuns { runs } => write!(f, "no runs to resume under {}", runs.display()),
            LoadError::Unreadable { run_id, dir, source } => {
                write!(f, "cannot read the journal of run {run_id} in {}: {source}", dir.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl Resume {
    /// Load run `id` (or the newest run for `last`) under a journal root.
    pub fn load(root: &Path, id: &str) -> Result<Self, LoadError> {
        let runs = runs_dir(root);
        let run_id = match find(&runs, id) {
            Some(found) => found,
            None if id == "last" => return Err(LoadError::NoRuns { runs }),
            None => id.to_string(),
        };
        let dir = runs.join(&run_id);
        let bytes = match std::fs::read(dir.join("journal.jsonl")) {
            Ok(bytes) => bytes,
            Err(source) => return Err(LoadError::Unreadable { run_id, dir, source }),
        };
        let mut resume = Self {
            run_id,
            dir,
            playbook_sha256: None,
            params: Value::Null,
            salt: None,
            max_seq: 0,
            record: RunRecord::from_journal(""),
            ignored: Vec::new(),
            completed: HashMap::new(),
            undone: std::collections::HashSet::new(),
            undo_failed: HashMap::new(),
        };
        let (events, ignored) = read_lines(&bytes);
        resume.ignored = ignored;
        for ev in &events {
            resume.record.apply(ev);
            resume.apply(ev);
        }
        Ok(resume)
    }

    fn apply(&mut self, ev: &Value) {
        let seq = ev.get("seq").and_then(Value::as_u64);
        if let Some(seq) = seq {
            self.max_seq = self.max_seq.max(u32::try_from(seq).unwrap_or(u32::MAX));
        }
        match ev.get("event").and_then(Value::as_str) {
            Some("run_started") if self.playbook_sha256.is_none() => {
                self.playbook_sha256 = ev.get("playbook_sha256").and_then(Value::as_str).map(str::to_string);
                self.params = ev.get("params").cloned().unwrap_or(Value::Null);
                self.salt = ev.get("step_key_salt").and_then(Value::as_str).map(str::to_string);
            }
            Some("step_finished") => {
                // A journal begun before step keys keeps the old identity for
                // every attempt, including those that wrote keys.
                let key = match ev.get("step_key").and_then(Value::as_str).filter(|_| self.salt.is_some()) {
                    Some(k) => k.to_string(),
                    None => legacy_key(&text(ev, "phase"), &text(ev, "step"), occurrence(ev)),
                };
                match ev.get("status").and_then(Value::as_str) {
                    Some("ok") => {
                        let entry = self.completed_entry(ev, seq.unwrap_or(0));
                        self.undo_failed.remove(&key);
                        self.undone.remove(&key);
                        self.completed.insert(key, entry);
                    }
                    Some("failed" | "interrupted") => {
                        self.completed.remove(&key);
                    }
                    _ => {}
                }
            }
            // The step's work was taken back: it is no longer completed.
            Some("undo_finished") => {
                let key = match ev.get("step_key").and_then(Value::as_str).filter(|_| self.salt.is_some()) {
                    Some(k) => k.to_string(),
                    None => legacy_key(&text(ev, "phase"), &text(ev, "step"), 1),
                };
                self.completed.remove(&key);
                if ev.get("status").and_then(Value::as_str) == Some("ok") {
                    self.undone.insert(key);
                } else {
                    let step = format!("{}/{}", text(ev, "phase"), text(ev, "step"));
                    self.undo_failed.insert(key, (step, text(ev, "error")));
                }
            }
            _ => {}
        }
    }

    /// How many steps an earlier attempt undid: they run again.
    pub fn undone_steps(&self) -> usize {
        self.undone.len()
    }

    /// A step whose undo failed in an earlier attempt, with the error: what
    /// it changed is neither there nor gone, so it must not run again blind.
    pub fn failed_undo(&self) -> Option<&(String, String)> {
        self.undo_failed.values().min()
    }

    fn completed_entry(&self, ev: &Value, seq: u64) -> Completed {
        let step = format!("{}/{}", text(ev, "phase"), text(ev, "step"));
        if ev.get("every_job").and_then(Value::as_bool).unwrap_or(false) {
            return Completed::EveryJob { step, seq };
        }
        if ev.get("value_unrecorded").and_then(Value::as_bool).unwrap_or(false) {
            let why = ev.get("value_unrecorded_why").and_then(Value::as_str).unwrap_or("not recorded");
            return Completed::Rerun { step, seq, why: why.to_string() };
        }
        let secrets: Vec<SecretRef> =
            ev.get("value_secrets").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
        let value = match ev.get("value_file").and_then(Value::as_str) {
            Some(file) => match read_value_file(&self.dir, file) {
                Ok(v) => v,
                Err(why) => return Completed::Rerun { step, seq, why },
            },
            None => ev.get("value").cloned().unwrap_or(Value::Null),
        };
        Completed::Replay { step, value, secrets }
    }

    /// The value of a step that completed and can be replayed, secrets put
    /// back with the values they have now (and registered with `redactor`).
    /// `key` is the step's key; `legacy` its phase, path and occurrence for
    /// a journal older than step keys.
    pub fn replay(&self, key: &str, legacy: (&str, &str, u32), redactor: &Redactor) -> Option<Value> {
        let key = if self.salt.is_some() {
            key.to_string()
        } else {
            legacy_key(&redactor.redact(legacy.0), &redactor.redact(legacy.1), legacy.2)
        };
        let Some(Completed::Replay { value, secrets, .. }) = self.completed.get(&key) else { return None };
        let mut value = value.clone();
        let lookup = |name: &str| {
            let v = std::env::var(name).ok()?;
            redactor.add_quietly(name, &v);
            Some(v)
        };
        // Every named secret was checked to be set before the run started.
        substitute(&mut value, secrets, &lookup).ok()?;
        Some(value)
    }

    /// Steps that will not run again.
    pub fn completed_steps(&self) -> usize {
        self.completed.values().filter(|c| matches!(c, Completed::Replay { .. })).count()
    }

    /// Steps that completed but whose value cannot be replayed, so they will
    /// run again: `(phase/step, why)`, in the order they ran.
    pub fn reruns(&self) -> Vec<(String, String)> {
        let mut out: Vec<(u64, String, String)> = self
            .completed
            .values()
            .filter_map(|c| match c {
                Completed::Rerun { step, seq, why } => Some((*seq, step.clone(), why.clone())),
                Completed::Replay { .. } | Completed::EveryJob { .. } => None,
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, s, w)| (s, w)).collect()
    }

    /// Completed steps that prepare the workspace and so run again, in the
    /// order they ran.
    pub fn every_job_steps(&self) -> Vec<String> {
        let mut out: Vec<(u64, String)> = self
            .completed
            .values()
            .filter_map(|c| match c {
                Completed::EveryJob { step, seq } => Some((*seq, step.clone())),
                _ => None,
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// A secret that a replayed value holds but that is not set now, and the
    /// step: the run cannot be resumed with the right values.
    pub fn missing_secret(&self, is_set: &dyn Fn(&str) -> bool) -> Option<(String, String)> {
        let mut missing: Vec<(String, String)> = self
            .completed
            .values()
            .filter_map(|c| match c {
                Completed::Replay { step, secrets, .. } => secrets
                    .iter()
                    .flat_map(SecretRef::names)
                    .find(|n| !is_set(n))
                    .map(|n| (n.to_string(), step.clone())),
                Completed::Rerun { .. } | Completed::EveryJob { .. } => None,
            })
            .collect();
        missing.sort();
        missing.into_iter().next()
    }

    /// What [`Resume::ignored`] says, for the user: `None` when nothing was.
    pub fn ignored_message(&self) -> Option<String> {
        if self.ignored.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.ignored.iter().map(|(n, why)| format!("line {n} ({why})")).collect();
        Some(format!(
            "the journal of run {} has lines that cannot be read, ignored: {}; the steps they recorded run again",
            self.run_id,
            lines.join(", ")
        ))
    }
}

/// Parse journal bytes line by line: the events, and the lines skipped.
/// The last line is torn when it does not end in a newline (the journal is
/// cut there before appending, so it is skipped even if it parses).
fn read_lines(bytes: &[u8]) -> (Vec<Value>, Vec<(usize, &'static str)>) {
    let mut events = Vec::new();
    let mut ignored = Vec::new();
    let mut chunks: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // After a final newline, split yields an empty last chunk.
    let torn = chunks.pop().filter(|last| !last.is_empty());
    for (i, line) in chunks.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            ignored.push((i + 1, "not UTF-8"));
            continue;
        };
        match serde_json::from_str::<Value>(line) {
            Ok(ev) => events.push(ev),
            Err(_) => ignored.push((i + 1, "not a JSON event")),
        }
    }
    if torn.is_some() {
        ignored.push((chunks.len() + 1, "cut off: no end of line"));
    }
    (events, ignored)
}

fn read_value_file(dir: &Path, file: &str) -> Result<Value, String> {
    // The name is the journal's own `values/NNN.json`; refuse anything else.
    let plain = Path::new(file).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(format!("its value file `{file}` is not inside the run's folder"));
    }
    let path = dir.join(file);
    let text = std::fs::read(&path).map_err(|e| format!("its value file {} cannot be read: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("its value file {} cannot be read: {e}", path.display()))
}

fn legacy_key(phase: &str, step: &str, occurrence: u32) -> String {
    format!("{phase}\0{step}\0{occurrence}")
}

fn occurrence(ev: &Value) -> u32 {
    ev.get("occurrence").and_then(Value::as_u64).map_or(1, |n| u32::try_from(n).unwrap_or(1))
}

fn text(ev: &Value, key: &str) -> String {
    ev.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The newest run id under a runs folder (ids sort by time).
pub fn latest(runs: &Path) -> Option<String> {
    find(runs, "last")
}

/// The run under `runs` that `wanted` picks (`last`, a run id, or a
/// `--run-name`: see [`pick_run`]).
pub fn find(runs: &Path, wanted: &str) -> Option<String> {
    let ids = std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .filter(|e| e.path().join("journal.jsonl").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    pick_run(ids, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_older_than_step_keys_resumes_by_name() {
        let root = tempfile::tempdir().unwrap();
        let dir = runs_dir(root.path()).join("r1");
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            r#"{"event":"run_started","playbook_sha256":"x","params":{}}"#,
            r#"{"event":"step_finished","phase":"do","step":"a","seq":2,"status":"ok","value":5}"#,
            r#"{"event":"step_finished","phase":"do","step":"a","occurrence":2,"seq":3,"status":"failed"}"#,
            // A later attempt wrote keys; the journal keeps the old identity.
            r#"{"event":"run_started","step_key_salt":"s"}"#,
            r#"{"event":"step_finished","phase":"do","step":"b","step_key":"k","seq":4,"status":"ok","value":6}"#,
        ];
        std::fs::write(dir.join("journal.jsonl"), lines.join("\n") + "\n").unwrap();
        let r = Resume::load(root.path(), "last").unwrap();
        let redactor = Redactor::new();
        assert_eq!(r.salt, None);
        assert_eq!(r.replay("?", ("do", "a", 1), &redactor), Some(Value::from(5)));
        assert_eq!(r.replay("?", ("do", "a", 2), &redactor), None);
        assert_eq!(r.replay("k", ("do", "b", 1), &redactor), Some(Value::from(6)));
        assert_eq!((r.completed_steps(), r.max_seq), (2, 4));
    }

    #[test]
    fn damaged_lines_are_named() {
        let mut bytes = b"{\"event\":\"a\"}\n\xff\xfe{}\n\n{\"event\"\n{\"event\":\"b\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"event\":\"c\"}");
        let (events, ignored) = read_lines(&bytes);
        assert_eq!(events.len(), 2);
        assert_eq!(ignored, [(2, "not UTF-8"), (4, "not a JSON event"), (6, "cut off: no end of line")]);
        let (events, ignored) = read_lines(b"{\"event\":\"a\"}\n");
        assert_eq!((events.len(), ignored.len()), (1, 0));
    }
}
