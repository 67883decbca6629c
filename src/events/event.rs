//! The one event type: what happened, where in the playbook, stamped with
//! time and run id. Everything a run does is one of these.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

/// One thing that happened during a run, stamped with time and run id.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub ts: String,
    pub run_id: Arc<str>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The event as one line of JSON, newline included: what `--log-format
    /// json` prints and the journal's `events.jsonl` holds, written here
    /// for both.
    pub fn write_json_line(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

/// Outcome of a step, phase or run as the outputs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
    DryRun,
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::DryRun => "dry_run",
            Status::Interrupted => "interrupted",
        }
    }
}

/// Which pipe a child's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Severity of a `log` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where in the playbook an event happened: the phase and the step path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Arc<str>>,
    /// Sequence number of the step in this run; names its log file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
}

impl Location {
    /// Depth of nesting, for indentation: 0 for phase-level code.
    pub fn depth(&self) -> usize {
        self.step.as_deref().map_or(0, |s| s.split('/').count())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        playbook: String,
        dry_run: bool,
        version: &'static str,
        phases: Vec<String>,
        /// SHA-256 of the playbook file, so `--resume` can tell it changed.
        playbook_sha256: String,
        /// The params as given, so `--resume` can reuse them.
        params: serde_json::Value,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        /// Salt of the run's `step_key`s; a resumed run keeps the first one.
        #[serde(skip_serializing_if = "String::is_empty")]
        step_key_salt: String,
        /// The OpenTelemetry trace the run is exported as, when it is.
        #[serde(skip_serializing_if = "Option::is_none")]
        trace_id: Option<String>,
    },
    PhaseStarted {
        phase: Arc<str>,
    },
    StepStarted {
        #[serde(flatten)]
        at: Location,
        /// Which time this phase reaches this step path (loops repeat names).
        #[serde(skip_serializing_if = "is_first")]
        occurrence: u32,
        /// What `--resume` knows the step by (see [`crate::replay::record::step_key`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        step_key: Option<String>,
    },
    Output {
        #[serde(flatten)]
        at: Location,
        stream: Stream,
        line: String,
        /// `quiet: true` on the command: kept in the journal, not shown.
        #[serde(skip)]
        quiet: bool,
    },
    Log {
        #[serde(flatten)]
        at: Location,
        level: Level,
        message: String,
    },
    Gate {
        #[serde(flatten)]
        at: Location,
        name: String,
        passed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// An approval: who gave (or refused) it, and how (`terminal`,
        /// `--yes`, `--approve NAME`).
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    StepFinished {
        #[serde(flatten)]
        at: Location,
        #[serde(skip_serializing_if = "is_first")]
        occurrence: u32,
        status: Status,
        duration_ms: u64,
        attempts: u32,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        allow_failure: bool,
        /// Completed in an earlier attempt of this run; not executed again.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        /// The step prepares the workspace (`every_job: true`, or it ran
        /// `terraform init`): a resumed run runs it again.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        every_job: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// `file:line:col` of the error in the playbook.
        #[serde(skip_serializing_if = "Option::is_none")]
        error_at: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        step_key: Option<String>,
        /// The step's value as the journal keeps it.
        #[serde(flatten)]
        recorded: RecordedValue,
    },
    PhaseFinished {
        phase: Arc<str>,
        status: Status,
        duration_ms: u64,
        /// A phase runs once per attempt of the run (SPEC §3 lists the field).
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// `file:line:col` in the playbook (or a module of its folder) where
        /// the phase's failure came from, outside the bundled stdlib.
        #[serde(skip_serializing_if = "Option::is_none")]
        error_at: Option<String>,
    },
    UndoStarted {
        #[serde(flatten)]
        at: Location,
    },
    UndoFinished {
        #[serde(flatten)]
        at: Location,
        status: Status,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The undone step's `step_key`: `--resume` runs an undone step again.
        #[serde(skip_serializing_if = "Option::is_none")]
        step_key: Option<String>,
    },
    #[serde(rename = "event")]
    User {
        #[serde(flatten)]
        at: Location,
        #[serde(rename = "type")]
        kind: String,
        data: serde_json::Value,
        /// A log line already told it (a decision record): the terminal
        /// shows it only with `-v`; every other output keeps it.
        #[serde(skip)]
        quiet: bool,
    },
    /// How far a long primitive has come (a probe, a wait, a canary rung).
    /// Drawn as a progress bar on a terminal; not written to JSON lines or
    /// the journal, which record the outcome instead.
    Progress {
        #[serde(flatten)]
        at: Location,
        label: String,
        done: u64,
        total: u64,
    },
    RunFinished {
        status: Status,
        exit_code: i32,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_at: Option<String>,
    },
}

/// A step's value in `step_finished`: inline, in a file of the run's folder
/// when it is big, or why it could not be recorded; and where secrets sit
/// in it, by name, so `--resume` puts their values back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordedValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// A value too big to sit in a line is in this file, relative to the
    /// run's folder (`values/NNN.json`); the journal writes it from `large`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_file: Option<String>,
    #[serde(skip)]
    pub large: Option<Box<serde_json::Value>>,
    /// The strings of the value that hold a secret, as references by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub value_secrets: Vec<crate::replay::secret_ref::SecretRef>,
    /// The value could not be recorded so that `--resume` can replay it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub value_unrecorded: bool,
    /// Why not: "a closure", "nested deeper than 100 levels"...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_unrecorded_why: Option<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_first(n: &u32) -> bool {
    *n <= 1
}

/// RFC 3339 UTC with milliseconds, as every output stamps events.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
