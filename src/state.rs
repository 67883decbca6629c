//! The state one run shares between the script's primitives and the
//! executor: services, params, the declared model and the undo stack.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::events::Location;
use crate::playbook::{DeferredCall, Inputs, Model};
use crate::replay::resume::Resume;
use crate::report::RunRecord;
use crate::services::Services;

/// Why the playbook is being evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A real run (or a dry run).
    Run,
    /// `list` and `check`: evaluate the top level to learn the model;
    /// missing params and secrets are recorded, not fatal.
    Inspect,
}

/// A completed step's undo, waiting on the stack.
pub struct UndoEntry {
    pub at: Location,
    /// The step's `step_key`: resume learns from `undo_finished` that the
    /// step's work was taken back.
    pub step_key: String,
    pub call: DeferredCall,
}

/// Run settings the primitives consult.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--yes`: every approval is given.
    pub approve_all: bool,
    /// `--approve NAME`: these approvals are given.
    pub approvals: Vec<String>,
    /// Ask on the terminal when an approval is not given on the command line.
    pub interactive: bool,
    /// Where lock files live (`JOURNAL_ROOT/.capstan/locks`).
    pub lock_dir: PathBuf,
    /// `--undo-timeout`: how long undo and `on_failure` handlers may take
    /// after the run failed or its `--timeout` expired.
    pub undo_timeout: Option<std::time::Duration>,
    /// `--state` when it is shared: locks are leases in it.
    pub store: Option<crate::store::Shared>,
    /// `--lock-wait`: how long to wait in line for a held lock.
    pub lock_wait: Option<std::time::Duration>,
    /// `--lock-ttl`: a lease's life unless renewed.
    pub lock_ttl: std::time::Duration,
}

impl Settings {
    /// The settings `--yes`, `--approve` and the journal folder give; asking
    /// on the terminal when both stdin and stderr are one.
    pub fn from_cli(approve_all: bool, approvals: &[String], journal_root: &std::path::Path) -> Self {
        use std::io::IsTerminal;
        Self {
            approve_all,
            approvals: approvals.to_vec(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            lock_dir: journal_root.join(".capstan").join("locks"),
            undo_timeout: None,
            store: None,
            lock_wait: None,
            lock_ttl: std::time::Duration::from_secs(60),
        }
    }
}

/// How much the top level may spend before it is stopped as a script error.
/// The product uses [`crate::engine::limits`]; an embedder (the fuzz
/// harness) may lower it.
#[derive(Debug, Clone, Copy)]
pub struct TopLevelBudget {
    pub operations: u64,
    pub time: std::time::Duration,
}

impl Default for TopLevelBudget {
    fn default() -> Self {
        Self { operations: crate::engine::limits::TOP_LEVEL_OPERATIONS, time: crate::engine::limits::TOP_LEVEL_TIME }
    }
}

/// Mask the values of the hosts' secret-named variables in every output.
pub fn mask_inventory_secrets(services: &Services, hosts: &[crate::inventory::Host]) {
    for (name, value) in hosts.iter().flat_map(crate::inventory::Host::secret_vars) {
        services.redactor.add_quietly(name, value);
    }
}

pub struct RunState {
    pub services: Arc<Services>,
    pub inputs: Inputs,
    /// The hosts of `-i` after `--limit`: what `inventory()` returns.
    pub inventory: Vec<crate::inventory::Host>,
    pub mode: Mode,
    pub settings: Settings,
    /// The live record of this run, for reports.
    pub record: Arc<Mutex<RunRecord>>,
    /// The run being resumed, if any.
    pub resume: Option<Resume>,
    /// Salt of the step keys (`run_started` records it; a resumed run keeps it).
    pub step_key_salt: String,
    /// The top level's budget (set before the state is shared).
    pub top_level: TopLevelBudget,
    occurrences: Mutex<HashMap<(Arc<str>, String), u32>>,
    /// Temporary folders handed to the script, removed when the run ends.
    temp_dirs: Mutex<Vec<tempfile::TempDir>>,
    /// Locks held for the run; released when the state is dropped.
    pub locks: Mutex<Vec<crate::lock::LockGuard>>,
    declaring: AtomicBool,
    /// When the top level started, for its time budget.
    declare_started: Mutex<Option<std::time::Instant>>,
    model: Mutex<Model>,
    undo: Mutex<Vec<UndoEntry>>,
    failed: Mutex<Option<Location>>,
}

impl RunState {
    pub fn new(services: Arc<Services>, inputs: Inputs, mode: Mode) -> Self {
        Self {
            services,
            inputs,
            inventory: Vec::new(),
            mode,
            settings: Settings::default(),
            record: Arc::default(),
            resume: None,
            step_key_salt: String::new(),
            top_level: TopLevelBudget::default(),
            occurrences: Mutex::default(),
            locks: Mutex::default(),
            temp_dirs: Mutex::default(),
            declaring: AtomicBool::new(true),
            declare_started: Mutex::default(),
            model: Mutex::default(),
            undo: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// Count how often this phase has reached a step path; loops repeat names.
    pub fn next_occurrence(&self, phase: &Arc<str>, path: &str) -> u32 {
        let mut map = self.occurrences.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry((phase.clone(), path.to_string())).or_insert(0);
        *n += 1;
        *n
    }

    /// The key `--resume` knows a step by.
    pub fn step_key(&self, phase: &str, path: &str, occurrence: u32) -> String {
        crate::replay::record::step_key(&self.step_key_salt, &self.services.redactor, phase, path, occurrence)
    }

    /// The recorded value of a step that completed in the run being resumed,
    /// with the secrets it holds as they are now.
    pub fn resumed_value(&self, key: &str, phase: &str, path: &str, occurrence: u32) -> Option<serde_json::Value> {
        self.resume.as_ref()?.replay(key, (phase, path, occurrence), &self.services.redactor)
    }

    /// The hosts `inventory()` returns; the values of their secret-named
    /// variables (`ansible_password`...) are masked from now on.
    pub fn set_inventory(&mut self, hosts: Vec<crate::inventory::Host>) {
        mask_inventory_secrets(&self.services, &hosts);
        self.inventory = hosts;
    }

    /// Keep a temporary folder alive until the run ends.
    pub fn keep_until_end(&self, dir: tempfile::TempDir) {
        self.temp_dirs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(dir);
    }

    /// True while the top level is being evaluated.
    pub fn is_declaring(&self) -> bool {
        self.declaring.load(Ordering::SeqCst)
    }

    /// Has the top level used up its budget after `operations`?
    pub fn top_level_spent(&self, operations: u64) -> bool {
        if operations > self.top_level.operations {
            return true;
        }
        let mut started = self.declare_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        started.get_or_insert_with(std::time::Instant::now).elapsed() > self.top_level.time
    }

    pub fn finish_declaring(&self) {
        self.declaring.store(false, Ordering::SeqCst);
    }

    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push_undo(&self, entry: UndoEntry) {
        self.undo_stack().push(entry);
    }

    pub fn pop_undo(&self) -> Option<UndoEntry> {
        self.undo_stack().pop()
    }

    /// How many undo entries wait on the stack.
    pub fn undo_depth(&self) -> usize {
        self.undo_stack().len()
    }

    /// The newest entry, if the stack holds more than `depth`.
    pub fn pop_undo_above(&self, depth: usize) -> Option<UndoEntry> {
        let mut stack = self.undo_stack();
        if stack.len() > depth {
            stack.pop()
        } else {
            None
        }
    }

    /// Remember where the run failed: the innermost failing step wins over
    /// the steps (and phase) that failed because of it.
    pub fn note_failure(&self, at: &Location) {
        let mut failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let inside = failed.as_ref().is_some_and(|prev| {
            prev.phase == at.phase
                && match (&prev.step, &at.step) {
                    (Some(p), Some(a)) => p.starts_with(&format!("{a}/")) || p == a,
                    (_, None) => true,
                    (None, Some(_)) => false,
                }
        });
        if !inside {
            *failed = Some(at.clone());
        }
    }

    pub fn failed_step(&self) -> Option<Location> {
        self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn undo_stack(&self) -> MutexGuard<'_, Vec<UndoEntry>> {
        self.undo.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
