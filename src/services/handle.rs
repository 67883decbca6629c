//! The services handle every primitive gets: the event bus, the redactor,
//! dry-run, cancellation, the async runtime, the run's process groups.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::frame;
use crate::cancel::Cancel;
use crate::events::{Bus, EventKind, Level};
use crate::secrets::Redactor;

/// Something a primitive wants to do to the world, described for dry-run.
pub struct Action<'a> {
    /// The exact command or change, as `would run:` shows it.
    pub description: &'a str,
    /// Safe to perform in dry-run (reads, queries, scans).
    pub read_only: bool,
}

/// The first write to the journal that failed: the journal sets it, the
/// executor reads it at every step boundary and stops the run.
#[derive(Default)]
pub struct JournalHealth(Mutex<Option<String>>);

impl JournalHealth {
    /// Remember a failure; only the first is kept. `true` if it was the first.
    pub fn failed(&self, message: String) -> bool {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        *slot = Some(message);
        true
    }

    pub fn failure(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

pub struct Services {
    /// For primitives that await I/O (HTTP): `block_on` from the script thread.
    pub runtime: Option<tokio::runtime::Handle>,
    pub bus: Bus,
    pub redactor: Arc<Redactor>,
    pub cancel: Cancel,
    dry_run: AtomicBool,
    live_groups: Mutex<Vec<crate::process::Tree>>,
    /// Kills the live groups if capstan dies without doing it (SIGKILL).
    reaper: crate::process::reaper::Reaper,
    step_seq: AtomicU32,
    /// Whether the journal could be written so far.
    pub journal_health: Arc<JournalHealth>,
    /// The run's HTTP client, built on first use ([`super::http::client`]).
    pub(super) http: std::sync::OnceLock<reqwest::Client>,
    /// Records the top level made before the journal existed (the commit
    /// `git::sha` read), emitted once the run has started; `None` after.
    held: Mutex<Option<Vec<EventKind>>>,
}

impl Services {
    pub fn new(run_id: Arc<str>, redactor: Arc<Redactor>, dry_run: bool) -> Self {
        Self {
            runtime: tokio::runtime::Handle::try_current().ok(),
            bus: Bus::new(run_id, redactor.clone()),
            redactor,
            cancel: Cancel::default(),
            dry_run: AtomicBool::new(dry_run),
            live_groups: Mutex::new(Vec::new()),
            reaper: crate::process::reaper::Reaper::default(),
            step_seq: AtomicU32::new(0),
            journal_health: Arc::default(),
            http: std::sync::OnceLock::new(),
            held: Mutex::new(Some(Vec::new())),
        }
    }

    /// Emit `kind`, or, from the top level before the run has started, keep
    /// it for [`Services::release_held`]: the journal begins with
    /// `run_started`, after the top level ran, and must still record it.
    pub fn emit_for_journal(&self, kind: EventKind) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.as_mut() {
            Some(held) if frame::location().phase.is_none() => held.push(kind),
            _ => {
                drop(held);
                self.emit(kind);
            }
        }
    }

    /// Emit what the top level held back; called right after `run_started`.
    pub fn release_held(&self) {
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        for kind in held.unwrap_or_default() {
            self.emit(kind);
        }
    }

    pub fn run_id(&self) -> &Arc<str> {
        self.bus.run_id()
    }

    /// Is this a dry run? (The REPL's `:dry-run on|off` changes it between commands.)
    pub fn dry_run(&self) -> bool {
        self.dry_run.load(Ordering::Relaxed)
    }

    pub fn set_dry_run(&self, on: bool) {
        self.dry_run.store(on, Ordering::Relaxed);
    }

    /// The dry-run decision, made here and nowhere else: `true` means act.
    /// In dry-run a mutating action is logged as `would run: ...` instead.
    pub fn should_act(&self, action: &Action<'_>) -> bool {
        if !self.dry_run() || action.read_only {
            return true;
        }
        self.log(Level::Info, format!("would run: {}", action.description));
        false
    }

    /// A log line at the current phase and step.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.bus.emit(EventKind::Log { at: frame::location(), level, message: message.into() });
    }

    /// Progress of a long primitive at the current phase and step.
    pub fn progress(&self, label: impl Into<String>, done: u64, total: u64) {
        self.progress_at(frame::location(), label, done, total);
    }

    /// Progress from a thread that is not the script's (a probe's timer).
    pub fn progress_at(&self, at: crate::events::Location, label: impl Into<String>, done: u64, total: u64) {
        self.bus.emit(EventKind::Progress { at, label: label.into(), done: done.min(total), total });
    }

    pub fn emit(&self, kind: EventKind) {
        self.bus.emit(kind);
    }

    /// Text bound for an output that is not an event (a rendered error, a
    /// REPL result, `list` and `ci` data, a prompt), masked as the bus
    /// masks events.
    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.bus.mask(text)
    }

    /// A JSON document bound for an output (`list --json`, a webhook body), masked.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        self.bus.mask_json(value);
    }

    /// A script error rendered with its position and trace, masked: what
    /// every command prints when a playbook fails.
    pub fn render_error(&self, error: &rhai::EvalAltResult, playbook: &str) -> String {
        self.mask(&crate::diagnostics::render_eval(error, playbook)).into_owned()
    }

    /// A compile error rendered with its position, masked.
    pub fn render_parse_error(&self, error: &rhai::ParseError, source: &str) -> String {
        self.mask(&crate::diagnostics::render_parse(error, source)).into_owned()
    }

    /// Continue numbering after an earlier attempt's steps (`--resume`).
    pub fn start_step_seq_after(&self, seq: u32) {
        self.step_seq.store(seq, Ordering::Relaxed);
    }

    pub fn next_step_seq(&self) -> u32 {
        self.step_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A child with this tag is about to start: the reaper (started now if
    /// it is not running) knows it before it exists, so a SIGKILL of
    /// capstan at any moment after leaves nothing of it behind.
    pub fn reaper_told_of(&self, tag: &str) {
        self.reaper.starting(tag);
    }

    /// A child's process group is alive; a signal to capstan must kill it.
    pub fn track_group(&self, tree: &crate::process::Tree) {
        self.groups().push(tree.clone());
        self.reaper.started(tree);
    }

    pub fn untrack_group(&self, tree: &crate::process::Tree) {
        self.groups().retain(|t| t != tree);
        self.reaper.finished(tree);
    }

    /// Interrupt: stop everything running now. Called from the signal task.
    pub fn interrupt(&self) {
        self.cancel.interrupt();
        let groups: Vec<crate::process::Tree> = self.groups().clone();
        crate::process::tree::kill_all(&groups);
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, Vec<crate::process::Tree>> {
        self.live_groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
