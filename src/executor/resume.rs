//! `--resume`: read an earlier run's journal and answer, for each step by
//! phase, path and occurrence, whether it completed and with what value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::report::{runs_dir, RunRecord};

/// A step's identity across attempts of a run.
pub type StepKey = (String, String, u32);

pub struct Resume {
    pub run_id: String,
    pub dir: PathBuf,
    pub playbook_sha256: Option<String>,
    pub params: Value,
    /// The highest step number used, so new step logs do not collide.
    pub max_seq: u32,
    /// The record so far, so the resumed run's summary covers both attempts.
    pub record: RunRecord,
    completed: HashMap<StepKey, Value>,
}

impl Resume {
    /// Load run `id` (or the newest run for `last`) under a journal root.
    pub fn load(root: &Path, id: &str) -> Result<Self, String> {
        let runs = runs_dir(root);
        let run_id = if id == "last" {
            latest(&runs).ok_or_else(|| format!("no runs to resume under {}", runs.display()))?
        } else {
            id.to_string()
        };
        let dir = runs.join(&run_id);
        let text = std::fs::read_to_string(dir.join("journal.jsonl"))
            .map_err(|e| format!("cannot read the journal of run {run_id} in {}: {e}", dir.display()))?;
        let mut resume = Self {
            run_id,
            dir,
            playbook_sha256: None,
            params: Value::Null,
            max_seq: 0,
            record: RunRecord::from_journal(&text),
            completed: HashMap::new(),
        };
        for line in text.lines() {
            let Ok(ev) = serde_json::from_str::<Value>(line) else { continue };
            resume.apply(&ev);
        }
        Ok(resume)
    }

    fn apply(&mut self, ev: &Value) {
        if let Some(seq) = ev.get("seq").and_then(Value::as_u64) {
            self.max_seq = self.max_seq.max(u32::try_from(seq).unwrap_or(u32::MAX));
        }
        match ev.get("event").and_then(Value::as_str) {
            Some("run_started") if self.playbook_sha256.is_none() => {
                self.playbook_sha256 = ev.get("playbook_sha256").and_then(Value::as_str).map(str::to_string);
                self.params = ev.get("params").cloned().unwrap_or(Value::Null);
            }
            Some("step_finished") => {
                let ok = ev.get("status").and_then(Value::as_str) == Some("ok");
                let unrecorded = ev.get("value_unrecorded").and_then(Value::as_bool).unwrap_or(false);
                if ok && !unrecorded {
                    let key = (
                        text(ev, "phase"),
                        text(ev, "step"),
                        ev.get("occurrence").and_then(Value::as_u64).map_or(1, |n| u32::try_from(n).unwrap_or(1)),
                    );
                    self.completed.insert(key, ev.get("value").cloned().unwrap_or(Value::Null));
                }
            }
            _ => {}
        }
    }

    /// The recorded value of a step that completed, if it did.
    pub fn value(&self, phase: &str, step: &str, occurrence: u32) -> Option<&Value> {
        self.completed.get(&(phase.to_string(), step.to_string(), occurrence))
    }

    pub fn completed_steps(&self) -> usize {
        self.completed.len()
    }
}

fn text(ev: &Value, key: &str) -> String {
    ev.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The newest run id under a runs folder (ids sort by time).
pub fn latest(runs: &Path) -> Option<String> {
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .filter(|e| e.path().join("journal.jsonl").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
}
