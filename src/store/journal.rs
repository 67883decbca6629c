//! The journal of a run, written to a shared state store as it happens:
//! the same event lines as `journal.jsonl`, appended in one round trip when
//! a step (or undo, phase, run) finishes; large recorded values; and of each
//! step's log the last [`TAIL_LINES`] lines with where the whole log is kept.
//! The connection commits asynchronously (`synchronous_commit = off`), as the
//! journal on disk syncs behind its writes: a crash of capstan loses at most
//! the step in flight, a crash of the database server its last fraction of a
//! second. A write that fails
//! is remembered in the run's [`JournalHealth`], so the run stops at the next
//! step boundary as it does on a full disk.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::StoreError;
use super::Backend;
use crate::events::{Event, EventKind};
use crate::services::JournalHealth;

/// How many lines of a step's log the store keeps.
pub const TAIL_LINES: usize = 100;

pub struct StoreJournal {
    backend: Backend,
    /// The number of the next batch in an S3 store (`None`: not yet looked up).
    next_batch: Option<u64>,
    /// The store as messages show it (password masked).
    shown: String,
    run_id: String,
    /// Where this machine keeps the run's full step logs.
    place: String,
    local_dir: PathBuf,
    pending: Vec<String>,
    /// Step logs' tails to write with the next lines: step number, tail, location.
    pending_logs: Vec<(i32, String, String)>,
    tails: HashMap<u32, VecDeque<String>>,
    health: Arc<JournalHealth>,
    lost: bool,
}

impl StoreJournal {
    /// The journal of run `run_id`, whose full step logs this machine keeps
    /// under `journal_root`.
    pub fn new(backend: Backend, shown: String, run_id: &str, journal_root: &Path, health: Arc<JournalHealth>) -> Self {
        let local_dir = crate::report::runs_dir(journal_root).join(run_id);
        Self {
            backend,
            next_batch: None,
            shown,
            run_id: run_id.to_string(),
            place: super::lease::place(journal_root),
            local_dir,
            pending: Vec::new(),
            pending_logs: Vec::new(),
            tails: HashMap::new(),
            health,
            lost: false,
        }
    }

    fn failed(&mut self, err: &StoreError) {
        self.lost = true;
        self.health.failed(format!("cannot write the journal to the state store {}: {err}", self.shown));
    }

    /// Append the lines (and step log tails) gathered since the last
    /// boundary, in one round trip.
    fn boundary(&mut self) {
        if self.lost || self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending);
        let logs = std::mem::take(&mut self.pending_logs);
        let run_id = self.run_id.clone();
        let db = match &self.backend {
            Backend::Postgres(db) => db,
            Backend::S3(s3) => {
                if let Err(e) = super::s3::journal::append(s3, &run_id, &mut self.next_batch, &lines, &logs) {
                    self.failed(&e);
                }
                return;
            }
        };
        let written = db.call(move |c| async move {
            c.execute("INSERT INTO capstan_events (run_id, line) SELECT $1, unnest($2::text[])", &[&run_id, &lines])
                .await?;
            for (seq, tail, location) in &logs {
                c.execute(
                    "INSERT INTO capstan_step_logs (run_id, seq, tail, location) VALUES ($1, $2, $3, $4)",
                    &[&run_id, seq, tail, location],
                )
                .await?;
            }
            Ok(())
        });
        if let Err(e) = written {
            self.failed(&e);
        }
    }

    fn started(&mut self, playbook: &str, params: &serde_json::Value) {
        let (run_id, playbook, params) = (self.run_id.clone(), playbook.to_string(), params.clone());
        let (user, host) = (crate::lock::user(), crate::lock::host());
        let place = self.place.clone();
        let since = crate::events::timestamp(std::time::SystemTime::now());
        let db = match &self.backend {
            Backend::Postgres(db) => db,
            Backend::S3(s3) => {
                let meta = super::s3::journal::Meta { playbook, user, host, place, started: since, params };
                if let Err(e) = super::s3::journal::started(s3, &run_id, &meta) {
                    self.failed(&e);
                }
                return;
            }
        };
        let written = db.call(move |c| async move {
            // A resumed run keeps its row; where it ran last is added.
            c.execute(
                "INSERT INTO capstan_runs (run_id, playbook, username, host, place, started, params)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (run_id) DO UPDATE SET place = CASE
                    WHEN position(excluded.place IN capstan_runs.place) > 0 THEN capstan_runs.place
                    ELSE capstan_runs.place || ', ' || excluded.place END",
                &[&run_id, &playbook, &user, &host, &place, &since, &params],
            )
            .await
        });
        if let Err(e) = written {
            self.failed(&e);
        }
    }

    fn value(&mut self, file: &str, value: &serde_json::Value) {
        let (run_id, file, value) = (self.run_id.clone(), file.to_string(), value.to_string());
        let db = match &self.backend {
            Backend::Postgres(db) => db,
            Backend::S3(s3) => {
                if let Err(e) = super::s3::journal::value(s3, &run_id, &file, value) {
                    self.failed(&e);
                }
                return;
            }
        };
        let written = db.call(move |c| async move {
            c.execute(
                "INSERT INTO capstan_values (run_id, file, value) VALUES ($1, $2, $3)
                 ON CONFLICT (run_id, file) DO UPDATE SET value = excluded.value",
                &[&run_id, &file, &value],
            )
            .await
        });
        if let Err(e) = written {
            self.failed(&e);
        }
    }

    fn step_log(&mut self, seq: u32) {
        let Some(tail) = self.tails.remove(&seq) else { return };
        let tail: Vec<String> = tail.into();
        let location = format!("{} ({})", self.local_dir.join("steps").display(), self.place);
        self.pending_logs.push((i32::try_from(seq).unwrap_or(i32::MAX), tail.join("\n"), location));
    }
}

impl crate::events::Sink for StoreJournal {
    fn emit(&mut self, event: &Event) {
        match &event.kind {
            EventKind::Progress { .. } => return,
            EventKind::Output { at, line, .. } => {
                if let Some(seq) = at.seq {
                    let tail = self.tails.entry(seq).or_default();
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.clone());
                }
                return;
            }
            EventKind::RunStarted { playbook, params, .. } if !self.lost => self.started(playbook, params),
            EventKind::StepFinished { recorded, .. } => {
                if let (Some(file), Some(value), false) = (&recorded.value_file, &recorded.large, self.lost) {
                    self.value(file, value);
                }
            }
            _ => {}
        }
        if self.lost {
            return;
        }
        let mut line = Vec::new();
        if event.write_json_line(&mut line).is_ok() {
            self.pending.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        match &event.kind {
            EventKind::StepFinished { at, .. } | EventKind::UndoFinished { at, .. } => {
                if let Some(seq) = at.seq {
                    self.step_log(seq);
                }
                self.boundary();
            }
            // A step's start travels with its end: a crash loses at most
            // the step in flight, as the journal on disk does.
            EventKind::RunStarted { .. } | EventKind::PhaseFinished { .. } | EventKind::RunFinished { .. } => {
                self.boundary();
            }
            _ => {}
        }
    }

    fn flush(&mut self) {}

    fn finish(&mut self) {
        self.boundary();
    }
}
