//! The journal: `.capstan/runs/RUN_ID/` with `journal.jsonl` (every event
//! but child output), `steps/NNN-name.log` (each step's full output) and
//! `summary.json`. Events are written through to the OS at every step
//! boundary, so a SIGKILL loses nothing finished, and a syncer thread
//! `fdatasync`s behind them, at most [`SYNC_WINDOW`] later, so a power cut
//! loses at most the steps of that window.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::record::{lock, RunRecord};
use crate::events::{Event, EventKind, Location, Sink};

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
}

impl Journal {
    /// Create the run's folder under `root/.capstan/runs/`.
    pub fn create(root: &Path, run_id: &str, record: Arc<Mutex<RunRecord>>) -> std::io::Result<Self> {
        let dir = runs_dir(root).join(run_id);
        std::fs::create_dir_all(dir.join("steps"))?;
        let file = File::options().create_new(true).append(true).open(dir.join("journal.jsonl"))?;
        Ok(Self::with_file(dir, file, record))
    }

    /// Append to an earlier run's journal (`--resume`). A line torn by a
    /// crash is cut off first so every line parses.
    pub fn reopen(dir: &Path, record: Arc<Mutex<RunRecord>>) -> std::io::Result<Self> {
        let path = dir.join("journal.jsonl");
        let text = std::fs::read(&path)?;
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = File::options().write(true).open(&path)?;
        file.set_len(keep as u64)?;
        drop(file);
        std::fs::create_dir_all(dir.join("steps"))?;
        let file = File::options().append(true).open(&path)?;
        Ok(Self::with_file(dir.to_path_buf(), file, record))
    }

    fn with_file(dir: PathBuf, file: File, record: Arc<Mutex<RunRecord>>) -> Self {
        let syncer = file.try_clone().ok().map(Syncer::start);
        Self { dir, events: BufWriter::with_capacity(64 * 1024, file), logs: HashMap::new(), record, syncer }
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
            let file = File::options().create(true).append(true).open(path).ok()?;
            self.logs.insert(seq, BufWriter::with_capacity(64 * 1024, file));
        }
        self.logs.get_mut(&seq)
    }

    fn write_event(&mut self, event: &Event) {
        if serde_json::to_writer(&mut self.events, event).is_ok() {
            let _ = self.events.write_all(b"\n");
        }
    }

    /// Write through to the OS now, and have the syncer make it durable.
    fn boundary(&mut self) {
        let _ = self.events.flush();
        if let Some(s) = &self.syncer {
            s.request();
        }
    }

    fn write_summary(&self) {
        let path = self.dir.join("summary.json");
        let tmp = self.dir.join("summary.json.tmp");
        let record = lock(&self.record).clone();
        if let Ok(text) = serde_json::to_vec_pretty(&record) {
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(tmp, path);
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
            if let Some(log) = self.log_file(at) {
                let _ = log.write_all(line.as_bytes());
                let _ = log.write_all(b"\n");
            }
            return;
        }
        self.write_event(event);
        match &event.kind {
            EventKind::StepStarted { .. } | EventKind::PhaseStarted { .. } | EventKind::UndoStarted { .. } => {
                self.boundary();
            }
            EventKind::StepFinished { at, .. } | EventKind::UndoFinished { at, .. } => {
                if let Some(mut log) = at.seq.and_then(|seq| self.logs.remove(&seq)) {
                    let _ = log.flush();
                }
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
        for log in self.logs.values_mut() {
            let _ = log.flush();
        }
    }

    fn finish(&mut self) {
        self.flush();
        self.logs.clear();
        let _ = self.events.flush();
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        let _ = self.events.get_ref().sync_data();
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
    fn start(file: File) -> Self {
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
                    let _ = file.sync_data();
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
