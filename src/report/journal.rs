//! The journal: `.capstan/runs/RUN_ID/` with `journal.jsonl` (every event
//! but child output), `steps/NNN-name.log` (each step's full output) and
//! `summary.json`. Events are written through to the OS at every step
//! boundary, so a SIGKILL loses nothing finished, and a syncer thread
//! `fdatasync`s behind them, at most [`SYNC_WINDOW`] later, so a power cut
//! loses at most the steps of that window.
//!
//! A write that fails (a full disk, an I/O error, a file size limit) is
//! remembered in the run's [`JournalHealth`]: the executor stops the run at
//! the next step boundary and says what could not be written, where and why.
//! After a failed write the journal writes no more events, so it stays a
//! readable prefix of the run (its last line may be torn).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::record::{lock, RunRecord};
use crate::events::{Event, EventKind, Location, Sink};
use crate::services::JournalHealth;

/// Where the runs of a journal root live.
pub fn runs_dir(root: &Path) -> PathBuf {
    root.join(".capstan").join("runs")
}

pub struct Journal {
    dir: PathBuf,
    events: BufWriter<File>,
    logs: HashMap<u32, BufWriter<File>>,
    record: Arc<Mutex<RunRecord>>,
    syncer: Option<Syncer>,
    health: Arc<JournalHealth>,
    /// A write of `journal.jsonl` failed: no more events are written.
    lost: bool,
}

impl Journal {
    /// Create the run's folder under `root/.capstan/runs/`.
    pub fn create(
        root: &Path,
        run_id: &str,
        record: Arc<Mutex<RunRecord>>,
        health: Arc<JournalHealth>,
    ) -> std::io::Result<Self> {
        let dir = runs_dir(root).join(run_id);
        std::fs::create_dir_all(dir.join("steps"))?;
        let file = File::options().create_new(true).append(true).open(dir.join("journal.jsonl"))?;
        Ok(Self::with_file(dir, file, record, health))
    }

    /// Append to an earlier run's journal (`--resume`). A line torn by a
    /// crash is cut off first so every line parses.
    pub fn reopen(dir: &Path, record: Arc<Mutex<RunRecord>>, health: Arc<JournalHealth>) -> std::io::Result<Self> {
        let path = dir.join("journal.jsonl");
        let text = std::fs::read(&path)?;
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = File::options().write(true).open(&path)?;
        file.set_len(keep as u64)?;
        drop(file);
        std::fs::create_dir_all(dir.join("steps"))?;
        let file = File::options().append(true).open(&path)?;
        Ok(Self::with_file(dir.to_path_buf(), file, record, health))
    }

    fn with_file(dir: PathBuf, file: File, record: Arc<Mutex<RunRecord>>, health: Arc<JournalHealth>) -> Self {
        let journal = dir.join("journal.jsonl");
        let syncer = file.try_clone().ok().map(|f| Syncer::start(f, journal, health.clone()));
        Self {
            dir,
            events: BufWriter::with_capacity(64 * 1024, file),
            logs: HashMap::new(),
            record,
            syncer,
            health,
            lost: false,
        }
    }

    /// Remember that writing `path` failed.
    fn failed(&self, what: &str, path: &Path, err: &std::io::Error) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.health.failed(format!("cannot write {what} {}: {err}", path.display()));
    }

    fn events_failed(&mut self, err: &std::io::Error) {
        self.lost = true;
        self.failed("the journal", &self.dir.join("journal.jsonl"), err);
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
            match File::options().create(true).append(true).open(&path) {
                Ok(file) => {
                    self.logs.insert(seq, BufWriter::with_capacity(64 * 1024, file));
                }
                Err(e) => {
                    self.failed("the step log", &path, &e);
                    return None;
                }
            }
        }
        self.logs.get_mut(&seq)
    }

    fn write_log(&mut self, at: &Location, line: &str) {
        let Some(log) = self.log_file(at) else { return };
        if let Err(e) = log.write_all(line.as_bytes()).and_then(|()| log.write_all(b"\n")) {
            self.log_failed(at, &e);
        }
    }

    fn close_log(&mut self, at: &Location) {
        if let Some(mut log) = at.seq.and_then(|seq| self.logs.remove(&seq)) {
            if let Err(e) = log.flush() {
                self.log_failed(at, &e);
            }
        }
    }

    fn log_failed(&self, at: &Location, err: &std::io::Error) {
        let step = at.step.as_deref().unwrap_or_default();
        let path = std::path::absolute(self.dir.join("steps")).unwrap_or_else(|_| self.dir.join("steps"));
        self.health.failed(format!("cannot write the log of step `{step}` in {}: {err}", path.display()));
    }

    fn write_event(&mut self, event: &Event) {
        if self.lost {
            return;
        }
        if let Err(e) = event.write_json_line(&mut self.events) {
            self.events_failed(&e);
        }
    }

    /// A value too big for a line goes to its own file, durable before the
    /// line that names it.
    fn write_value_file(&mut self, file: &str, value: &serde_json::Value) {
        let path = self.dir.join(file);
        let written = (|| {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = BufWriter::new(File::create(&path)?);
            serde_json::to_writer(&mut out, value)?;
            let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            file.sync_data()
        })();
        if let Err(e) = written {
            self.failed("a step's value", &path, &e);
        }
    }

    /// Write through to the OS now, and have the syncer make it durable.
    fn boundary(&mut self) {
        if self.lost {
            return;
        }
        if let Err(e) = self.events.flush() {
            self.events_failed(&e);
            return;
        }
        if let Some(s) = &self.syncer {
            s.request();
        }
    }

    fn write_summary(&self) {
        let path = self.dir.join("summary.json");
        let tmp = self.dir.join("summary.json.tmp");
        let record = lock(&self.record).clone();
        if let Ok(text) = serde_json::to_vec_pretty(&record) {
            match std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
                Ok(()) => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    self.failed("the summary", &path, &e);
                }
            }
        }
    }
}

impl Sink for Journal {
    fn emit(&mut self, event: &Event) {
        if let EventKind::Progress { .. } = event.kind {
            return;
        }
        if let EventKind::Output { at, line, .. } = &event.kind {
            self.write_log(at, line);
            return;
        }
        if let EventKind::StepFinished { recorded, .. } = &event.kind {
            if let (Some(file), Some(value), false) = (&recorded.value_file, &recorded.large, self.lost) {
                self.write_value_file(file, value);
            }
        }
        self.write_event(event);
        match &event.kind {
            EventKind::StepStarted { .. } | EventKind::PhaseStarted { .. } | EventKind::UndoStarted { .. } => {
                self.boundary();
            }
            EventKind::StepFinished { at, .. } | EventKind::UndoFinished { at, .. } => {
                self.close_log(at);
                self.boundary();
            }
            EventKind::PhaseFinished { .. } | EventKind::RunFinished { .. } => {
                self.boundary();
                self.write_summary();
            }
            _ => {}
        }
    }

    fn flush(&mut self) {
        let mut failed = None;
        for log in self.logs.values_mut() {
            if let Err(e) = log.flush() {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            self.failed("a step log in", &self.dir.join("steps"), &e);
        }
    }

    fn finish(&mut self) {
        self.flush();
        self.logs.clear();
        self.boundary();
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        if !self.lost {
            if let Err(e) = self.events.get_ref().sync_data() {
                self.events_failed(&e);
            }
        }
        self.write_summary();
    }
}

/// How long the syncer gathers step boundaries into one `fdatasync`. Syncing
/// every boundary of a run of short steps would cost each step ~0.1 ms of
/// blocked writes; one sync per window costs nothing measurable.
pub const SYNC_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

/// `fdatasync`s the journal off the step's path: the requests of one
/// window are served by one sync.
struct Syncer {
    tx: Option<Sender<Wake>>,
    thread: Option<JoinHandle<()>>,
}

enum Wake {
    Sync,
    Stop,
}

impl Syncer {
    fn start(file: File, path: PathBuf, health: Arc<JournalHealth>) -> Self {
        let path = std::path::absolute(&path).unwrap_or(path);
        let (tx, rx) = channel::<Wake>();
        let thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                while let Ok(Wake::Sync) = rx.recv() {
                    // Gather the window's boundaries; stop early when told to.
                    let until = std::time::Instant::now() + SYNC_WINDOW;
                    let mut stop = false;
                    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                        match rx.recv_timeout(left) {
                            Ok(Wake::Sync) => {}
                            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => {
                                stop = true;
                                break;
                            }
                            Err(RecvTimeoutError::Timeout) => break,
                        }
                    }
                    if let Err(e) = file.sync_data() {
                        health.failed(format!("cannot write the journal {}: {e}", path.display()));
                    }
                    if stop {
                        break;
                    }
                }
            })
            .ok();
        Self { tx: Some(tx), thread }
    }

    fn request(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Wake::Sync);
        }
    }

    fn stop(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Wake::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
