//! The reaper: a small companion process that kills the process groups of
//! the children capstan is running if capstan itself dies without cleaning
//! up (SIGKILL, the OOM killer, a crash).
//!
//! capstan tells it, over a pipe, each process group it starts (`+PGID`) and
//! each one that is done (`-PGID`). When the pipe closes, because capstan
//! exited for whatever reason, the reaper kills the groups still listed and
//! exits. A normal exit lists none. The reaper runs in a process group of its
//! own, so a Ctrl-C on the terminal does not reach it.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// The hidden subcommand the reaper runs as.
pub const SUBCOMMAND: &str = "__reap";

/// capstan's end of the pipe, started with the first child.
#[derive(Default)]
pub struct Reaper {
    pipe: Mutex<Pipe>,
}

#[derive(Default)]
enum Pipe {
    #[default]
    NotStarted,
    Open(ChildStdin),
    /// It could not be started, or it died: not tried again.
    Gone,
}

impl Reaper {
    pub fn started(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    pub fn finished(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*pipe, Pipe::NotStarted) {
            *pipe = spawn().map_or(Pipe::Gone, Pipe::Open);
        }
        if let Pipe::Open(stdin) = &mut *pipe {
            if stdin.write_all(line.as_bytes()).is_err() {
                *pipe = Pipe::Gone;
            }
        }
    }
}

fn spawn() -> Option<ChildStdin> {
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| tracing::debug!("no reaper: {e}"))
        .ok()?;
    let stdin = child.stdin.take();
    // Its exit status is of no interest; a thread collects it so it does not
    // linger as a zombie while capstan runs.
    std::thread::spawn(move || child.wait());
    stdin
}

/// The reaper's own main: read the pipe until it closes, then kill what is left.
pub fn run() -> i32 {
    let mut groups: HashSet<i32> = HashSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(pgid) = line.strip_prefix('+').and_then(|p| p.parse().ok()) {
            groups.insert(pgid);
        } else if let Some(pgid) = line.strip_prefix('-').and_then(|p| p.parse::<i32>().ok()) {
            groups.remove(&pgid);
        }
    }
    for pgid in groups {
        super::kill_group(pgid);
    }
    0
}
