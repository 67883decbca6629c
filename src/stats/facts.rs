//! What one run's journal tells the delivery statistics: the playbook and
//! environment, each attempt's end and outcome, every step execution with
//! its duration and whether it was flaky, and the commit it deployed.
//!
//! The journal is folded by [`RunRecord`] for what it already knows (the
//! playbook, params, dry-run, outcome); attempts and flaky steps need the
//! event order the record folds away (a step that failed, then passed on
//! resume, keeps only its last status there), so the same lines are read
//! once more here.

use std::collections::HashMap;

use serde_json::Value;

use crate::exit;
use crate::report::RunRecord;

/// One attempt of a run: `run_started` to `run_finished` (a resumed run has several).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When its `run_finished` was written, in ms since the epoch.
    pub ended_ms: i64,
    pub outcome: Outcome,
}

/// What an attempt did to the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ended `ok`, nothing undone or rolled back: the environment is good.
    Succeeded,
    /// Failed, or undid steps, or rolled back: a change failure.
    Failed,
    /// Interrupted without undoing anything: neither.
    Neither,
    /// Exit 2 (nothing ran) or 3 (blocked): not a deployment attempt.
    Skipped,
}

/// One execution of a step (not a skipped, dry-run or replayed one).
#[derive(Debug, Clone)]
pub struct StepRun {
    /// `phase/step/path`: a step's name across runs.
    pub step: String,
    pub ended_ms: i64,
    pub duration_ms: u64,
    /// Passed, but only after a retry (`attempts` > 1).
    pub passed_after_retry: bool,
    /// Passed after it had failed in an earlier attempt of the same run.
    pub passed_on_resume: bool,
}

impl StepRun {
    pub fn flaky(&self) -> bool {
        self.passed_after_retry || self.passed_on_resume
    }
}

/// A run as the statistics see it.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    /// As given on the command line, without a leading `./`.
    pub playbook: String,
    /// The values of the environment params, `/`-joined in name order; empty when none.
    pub environment: String,
    pub dry_run: bool,
    /// A REPL session: its ad-hoc commands ran in the REPL's own phase.
    pub repl: bool,
    pub attempts: Vec<Attempt>,
    pub steps: Vec<StepRun>,
    /// The committer time of the last commit `git::sha` read, ms since the epoch.
    pub committed_ms: Option<i64>,
    /// The sha of that commit.
    pub commit: Option<String>,
}

/// ms since the epoch of an RFC 3339 time.
pub fn millis(ts: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// The environment of a run: its environment params' values (see
/// [`crate::playbook::is_environment_param`]).
pub fn environment(params: &serde_json::Map<String, Value>) -> String {
    let mut found: Vec<(&String, String)> = params
        .iter()
        .filter(|(k, _)| crate::playbook::is_environment_param(k))
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    found.sort();
    found.into_iter().map(|(_, v)| v).collect::<Vec<_>>().join("/")
}

/// The attempt being read: its failures so far.
#[derive(Default)]
struct Open {
    undone: bool,
    rolled_back: bool,
}

impl RunFacts {
    /// Fold one run's journal lines; lines that do not parse are skipped.
    pub fn from_journal(text: &str) -> Self {
        let mut record = RunRecord { status: "running".into(), ..RunRecord::default() };
        let mut attempts = Vec::new();
        let mut steps = Vec::new();
        let mut last_status: HashMap<(String, u64), String> = HashMap::new();
        let mut open = Open::default();
        let (mut repl, mut declared) = (false, Vec::new());
        for line in text.lines() {
            let Ok(ev) = serde_json::from_str::<Value>(line) else { continue };
            record.apply(&ev);
            let ts = ev.get("ts").and_then(Value::as_str).and_then(millis);
            match ev.get("event").and_then(Value::as_str).unwrap_or("") {
                "run_started" => {
                    open = Open::default();
                    declared = ev.get("phases").and_then(Value::as_array).cloned().unwrap_or_default();
                }
                // The REPL runs typed commands in a phase of its own, which
                // no playbook declared: a session, not a deployment.
                "phase_started" => {
                    let phase = ev.get("phase").cloned().unwrap_or_default();
                    repl |= phase == crate::repl::view::PHASE && !declared.contains(&phase);
                }
                "undo_started" => open.undone = true,
                "event" if ev.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("_rollback")) => {
                    open.rolled_back = true;
                }
                "step_finished" => {
                    if let Some(run) = step_run(&ev, ts, &mut last_status) {
                        steps.push(run);
                    }
                }
                "run_finished" => {
                    let Some(ended_ms) = ts else { continue };
                    let status = ev.get("status").and_then(Value::as_str).unwrap_or("");
                    let code = ev.get("exit_code").and_then(Value::as_i64).unwrap_or(-1);
                    let outcome = if code == i64::from(exit::USAGE) || code == i64::from(exit::BLOCKED) {
                        Outcome::Skipped
                    } else if status == "failed" || open.undone || open.rolled_back {
                        Outcome::Failed
                    } else if status == "ok" {
                        Outcome::Succeeded
                    } else {
                        Outcome::Neither
                    };
                    attempts.push(Attempt { ended_ms, outcome });
                }
                _ => {}
            }
        }
        let commit = record.events.iter().rev().find(|e| e.kind == "git_commit");
        Self {
            run_id: record.run_id.clone(),
            playbook: record.playbook.trim_start_matches("./").to_string(),
            environment: environment(&record.params),
            dry_run: record.dry_run,
            repl,
            attempts,
            steps,
            committed_ms: commit.and_then(|e| e.data["committed_at"].as_str()).and_then(millis),
            commit: commit.and_then(|e| e.data["sha"].as_str()).map(str::to_string),
        }
    }

    /// A deployment: not a dry run nor a REPL session, and an attempt that acted ended.
    pub fn is_deployment(&self) -> bool {
        !self.dry_run && !self.repl && self.attempts.iter().any(|a| a.outcome != Outcome::Skipped)
    }

    /// When the run last ended (its last attempt that acted).
    pub fn ended_ms(&self) -> Option<i64> {
        self.attempts.iter().rev().find(|a| a.outcome != Outcome::Skipped).map(|a| a.ended_ms)
    }

    /// A change failure: an attempt failed, undid steps or rolled back.
    pub fn failed(&self) -> bool {
        self.attempts.iter().any(|a| a.outcome == Outcome::Failed)
    }

    /// From the commit to the end of the run, when the run recorded its
    /// commit and ended well.
    pub fn lead_time_ms(&self) -> Option<i64> {
        let last = self.attempts.iter().rev().find(|a| a.outcome != Outcome::Skipped)?;
        (last.outcome == Outcome::Succeeded).then_some(())?;
        Some(last.ended_ms - self.committed_ms?).filter(|ms| *ms >= 0)
    }
}

/// A `step_finished` that executed the step, with its flakiness; `None`
/// for skipped, dry-run and replayed steps (they ran nothing).
fn step_run(ev: &Value, ts: Option<i64>, last_status: &mut HashMap<(String, u64), String>) -> Option<StepRun> {
    let text = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("");
    let step = format!("{}/{}", text("phase"), text("step"));
    let occurrence = ev.get("occurrence").and_then(Value::as_u64).unwrap_or(1);
    let status = text("status").to_string();
    let resumed = ev.get("resumed").and_then(Value::as_bool).unwrap_or(false);
    let before = last_status.insert((step.clone(), occurrence), status.clone());
    if resumed || !(status == "ok" || status == "failed") {
        return None;
    }
    let ok = status == "ok";
    Some(StepRun {
        passed_after_retry: ok && ev.get("attempts").and_then(Value::as_u64).unwrap_or(1) > 1,
        passed_on_resume: ok && before.as_deref() == Some("failed"),
        step,
        ended_ms: ts?,
        duration_ms: ev.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#""run_id":"r""#;

    fn line(ts: &str, rest: &str) -> String {
        format!(r#"{{"ts":"{ts}",{T},{rest}}}"#)
    }

    #[test]
    fn a_failed_attempt_resumed_to_success_is_one_failed_deployment_with_a_flaky_step() {
        let journal = [
            line("2026-01-01T00:00:00.000Z", r#""event":"run_started","playbook":"./d.rhai","dry_run":false,"params":{"env":"prod","version":"1"}"#),
            line("2026-01-01T00:00:01.000Z", r#""event":"step_finished","phase":"do","step":"a","status":"ok","duration_ms":10,"attempts":3"#),
            line("2026-01-01T00:00:02.000Z", r#""event":"step_finished","phase":"do","step":"b","status":"failed","duration_ms":20,"attempts":1"#),
            line("2026-01-01T00:00:03.000Z", r#""event":"undo_started","phase":"do","step":"a""#),
            line("2026-01-01T00:00:04.000Z", r#""event":"run_finished","status":"failed","exit_code":1,"duration_ms":4000"#),
            line("2026-01-01T01:00:00.000Z", r#""event":"run_started","playbook":"./d.rhai","dry_run":false,"params":{"env":"prod","version":"1"},"resumed":true"#),
            line("2026-01-01T01:00:00.000Z", r#""event":"event","type":"git_commit","data":{"sha":"abc","committed_at":"2025-12-31T23:00:00Z"}"#),
            line("2026-01-01T01:00:01.000Z", r#""event":"step_finished","phase":"do","step":"a","status":"ok","duration_ms":0,"attempts":0,"resumed":true"#),
            line("2026-01-01T01:00:02.000Z", r#""event":"step_finished","phase":"do","step":"b","status":"ok","duration_ms":30,"attempts":1"#),
            line("2026-01-01T01:00:03.000Z", r#""event":"run_finished","status":"ok","exit_code":0,"duration_ms":3000"#),
        ]
        .join("\n");
        let f = RunFacts::from_journal(&journal);
        assert_eq!((f.playbook.as_str(), f.environment.as_str()), ("d.rhai", "prod"));
        assert!(f.is_deployment() && f.failed());
        let outcomes: Vec<_> = f.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::Succeeded]);
        let steps: Vec<_> = f
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.duration_ms, s.passed_after_retry, s.passed_on_resume))
            .collect();
        assert_eq!(steps, [("do/a", 10, true, false), ("do/b", 20, false, false), ("do/b", 30, false, true)]);
        assert_eq!(f.lead_time_ms(), Some(2 * 3_600_000 + 3000));
        assert_eq!(f.commit.as_deref(), Some("abc"));
    }

    #[test]
    fn blocked_and_dry_runs_are_not_deployments() {
        let blocked = line("2026-01-01T00:00:00.000Z", r#""event":"run_finished","status":"failed","exit_code":3"#);
        assert!(!RunFacts::from_journal(&blocked).is_deployment());
        let dry = [
            line("2026-01-01T00:00:00.000Z", r#""event":"run_started","playbook":"d.rhai","dry_run":true"#),
            line("2026-01-01T00:00:01.000Z", r#""event":"run_finished","status":"ok","exit_code":0"#),
        ]
        .join("\n");
        assert!(!RunFacts::from_journal(&dry).is_deployment());
    }

    #[test]
    fn repl_sessions_are_not_deployments_but_a_declared_repl_phase_is() {
        let run = |declared: &str| {
            [
                line(
                    "2026-01-01T00:00:00.000Z",
                    &format!(r#""event":"run_started","playbook":"d.rhai","phases":[{declared}]"#),
                ),
                line("2026-01-01T00:00:00.000Z", r#""event":"phase_started","phase":"repl""#),
                line("2026-01-01T00:00:01.000Z", r#""event":"run_finished","status":"ok","exit_code":0"#),
            ]
            .join("\n")
        };
        assert!(!RunFacts::from_journal(&run(r#""do""#)).is_deployment());
        assert!(RunFacts::from_journal(&run(r#""repl""#)).is_deployment());
    }

    #[test]
    fn environments_join_the_environment_params_in_name_order() {
        let params = serde_json::json!({ "region": "eu", "env": "prod", "version": "2", "replicas": 3 });
        assert_eq!(environment(params.as_object().unwrap()), "prod/eu");
    }
}
