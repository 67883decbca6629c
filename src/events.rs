//! The one event type. The executor, the primitives and the process runner
//! emit [`EventKind`]s through the [`Bus`]; every output (terminal, JSON
//! lines, journal, step logs) is a [`Sink`] fed from that one stream.
//! Secrets are masked here, once, before any sink sees an event.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::secrets::Redactor;

/// One thing that happened during a run, stamped with time and run id.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub ts: String,
    pub run_id: Arc<str>,
    #[serde(flatten)]
    pub kind: EventKind,
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

impl EventKind {
    /// Replace every secret in every text this event carries.
    fn redact(&mut self, redactor: &Redactor) {
        let mask = |s: &mut String| {
            if let Some(masked) = redactor.redact_owned(s) {
                *s = masked;
            }
        };
        let mask_opt = |s: &mut Option<String>| {
            if let Some(s) = s {
                mask(s);
            }
        };
        // Phase and step names are text the playbook builds: they may hold a secret too.
        let mask_name = |s: &mut Arc<str>| {
            if let Some(masked) = redactor.redact_owned(s) {
                *s = masked.into();
            }
        };
        let mask_at = |at: &mut Location| {
            if let Some(p) = &mut at.phase {
                mask_name(p);
            }
            if let Some(s) = &mut at.step {
                mask_name(s);
            }
        };
        match self {
            EventKind::Output { at, line, .. } => {
                mask_at(at);
                mask(line);
            }
            EventKind::Log { at, message, .. } => {
                mask_at(at);
                mask(message);
            }
            EventKind::Gate { at, name, hint, by, .. } => {
                mask_at(at);
                mask(name);
                mask_opt(hint);
                mask_opt(by);
            }
            EventKind::StepFinished { at, error, error_at, recorded, .. } => {
                mask_at(at);
                mask_opt(error);
                mask_opt(error_at);
                if let Some(v) = &mut recorded.value {
                    redact_json(v, redactor);
                }
                if let Some(v) = &mut recorded.large {
                    redact_json(v, redactor);
                }
                for r in &mut recorded.value_secrets {
                    r.redact(redactor);
                }
                mask_opt(&mut recorded.value_unrecorded_why);
            }
            EventKind::UndoFinished { at, error, .. } => {
                mask_at(at);
                mask_opt(error);
            }
            EventKind::PhaseFinished { phase, error, error_at, .. } => {
                mask_name(phase);
                mask_opt(error);
                mask_opt(error_at);
            }
            EventKind::RunFinished { error, error_at, .. } => {
                mask_opt(error);
                mask_opt(error_at);
            }
            EventKind::User { at, kind, data, .. } => {
                mask_at(at);
                mask(kind);
                redact_json(data, redactor);
            }
            EventKind::RunStarted { params, phases, playbook, .. } => {
                redact_json(params, redactor);
                for p in phases.iter_mut() {
                    mask(p);
                }
                mask(playbook);
            }
            EventKind::Progress { at, label, .. } => {
                mask_at(at);
                mask(label);
            }
            EventKind::PhaseStarted { phase } => mask_name(phase),
            EventKind::StepStarted { at, .. } | EventKind::UndoStarted { at } => mask_at(at),
        }
    }
}

/// Mask secrets inside every value of a JSON document, keys included. A
/// number or a bool is checked as it is rendered (`parse_int(pin)` prints the
/// pin): one that shows a secret becomes the masked text.
fn redact_json(value: &mut serde_json::Value, redactor: &Redactor) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(m) = redactor.redact_owned(s) {
                *s = m;
            }
        }
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
            if let Some(m) = redactor.redact_owned(&value.to_string()) {
                *value = serde_json::Value::String(m);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, redactor)),
        serde_json::Value::Object(map) => {
            let needs_key_mask = map.keys().any(|k| redactor.redact_owned(k).is_some());
            if needs_key_mask {
                let old = std::mem::take(map);
                for (k, v) in old {
                    let k = redactor.redact_owned(&k).unwrap_or(k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(|v| redact_json(v, redactor));
        }
        serde_json::Value::Null => {}
    }
}

/// A consumer of the event stream.
pub trait Sink: Send {
    fn emit(&mut self, event: &Event);
    /// Push buffered output to its destination (called after each batch of
    /// child output and at step boundaries).
    fn flush(&mut self) {}
    /// The run is over: write summaries, close files.
    fn finish(&mut self) {}
    /// Whether this sink draws on the terminal (spinners).
    fn draws(&self) -> bool {
        false
    }
    /// Run `f` (which uses the terminal directly) with this sink's drawing paused.
    fn suspend(&mut self, f: &mut dyn FnMut()) {
        f();
    }
}

/// Fans every event out to the sinks, masking secrets first. The bus is
/// the one place a secret is masked: events here in [`Bus::emit`], and the
/// text that reaches an output without being an event (a rendered error,
/// a REPL result, `list` data, a webhook body) through [`Bus::mask`] and
/// [`Bus::mask_json`], which the services handle passes on.
pub struct Bus {
    run_id: Arc<str>,
    redactor: Arc<Redactor>,
    sinks: Mutex<Vec<Box<dyn Sink>>>,
}

impl Bus {
    pub fn new(run_id: Arc<str>, redactor: Arc<Redactor>) -> Self {
        Self { run_id, redactor, sinks: Mutex::new(Vec::new()) }
    }

    pub fn run_id(&self) -> &Arc<str> {
        &self.run_id
    }

    pub fn add_sink(&self, sink: Box<dyn Sink>) {
        self.lock().push(sink);
    }

    /// `text` with every secret the run knows masked.
    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.redactor.redact(text)
    }

    /// A JSON document with every secret masked, keys included.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        redact_json(value, &self.redactor);
    }

    pub fn emit(&self, mut kind: EventKind) {
        kind.redact(&self.redactor);
        let event = Event { ts: timestamp(SystemTime::now()), run_id: self.run_id.clone(), kind };
        for sink in self.lock().iter_mut() {
            sink.emit(&event);
        }
    }

    pub fn flush(&self) {
        for sink in self.lock().iter_mut() {
            sink.flush();
        }
    }

    /// Pause terminal drawing while `f` talks to the user (a prompt).
    pub fn suspend(&self, f: &mut dyn FnMut()) {
        let mut sinks = self.lock();
        let mut f = Some(f);
        let mut run = || {
            if let Some(f) = f.take() {
                f();
            }
        };
        match sinks.iter_mut().find(|s| s.draws()) {
            Some(sink) => sink.suspend(&mut run),
            None => run(),
        }
    }

    pub fn finish(&self) {
        for sink in self.lock().iter_mut() {
            sink.finish();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Sink>>> {
        // A sink that panicked must not take every later event down with it.
        self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// RFC 3339 UTC with milliseconds, as every output stamps events.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
