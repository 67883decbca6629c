//! The reaper: a small companion process that kills the process groups of
//! the children capstan is running if capstan itself dies without cleaning
//! up (SIGKILL, the OOM killer, a crash).
//!
//! capstan tells it, over a pipe, its run token (`@TOKEN`), each child's tag
//! before the child exists (`+0 TAG`), each process tree it starts
//! (`+PGID TAG`) and each one that is done (`-PGID TAG`).
//! When the pipe closes, because capstan exited for whatever reason, the
//! reaper kills the trees still listed and whatever the run's children left
//! in the background (their tags start with the token; detached steps' do
//! not), and exits. A normal exit lists none and leaves nothing behind. The
//! reaper runs in a process group of its own, so a Ctrl-C on the terminal
//! does not reach it.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;

use super::tree::Tree;

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
    /// Told before the child is spawned: the tag alone (group 0, none yet).
    pub fn starting(&self, tag: &str) {
        self.send(&format!("+0 {tag}\n"));
    }

    pub fn started(&self, tree: &Tree) {
        self.send(&format!("+{} {}\n", tree.pgid, tree.tag));
    }

    pub fn finished(&self, tree: &Tree) {
        self.send(&format!("-{} {}\n", tree.pgid, tree.tag));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*pipe, Pipe::NotStarted) {
            *pipe = spawn().map_or(Pipe::Gone, Pipe::Open);
            if let Pipe::Open(stdin) = &mut *pipe {
                if writeln!(stdin, "@{}", super::tree::run_token()).is_err() {
                    *pipe = Pipe::Gone;
                }
            }
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
    let mut command = Command::new(exe);
    command
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove(super::tree::TAG_VAR)
        .process_group(0);
    let mut child = super::tree::spawn(&mut command).map_err(|e| tracing::debug!("no reaper: {e}")).ok()?;
    let stdin = child.stdin.take();
    // Its exit status is of no interest; a thread collects it so it does not
    // linger as a zombie while capstan runs.
    std::thread::spawn(move || child.wait());
    stdin
}

/// The reaper's own main: read the pipe until it closes, then kill what is left.
pub fn run() -> i32 {
    let mut token = None;
    let mut trees: Vec<Tree> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(t) = line.strip_prefix('@') {
            token = Some(t.to_string());
        } else if let Some(tree) = line.strip_prefix('+').and_then(parse_tree) {
            trees.push(tree);
        } else if let Some(tree) = line.strip_prefix('-').and_then(parse_tree) {
            // Its tag's entries go with it (the one sent before it started too).
            trees.retain(|t| t.tag != tree.tag);
        }
    }
    super::tree::kill_listed(&trees);
    if let Some(token) = token {
        super::tree::kill_leftovers_of(&token);
        let _ = std::fs::remove_dir_all(ssh_socket_dir(&token));
    }
    0
}

/// The folder of the run's ssh control sockets (`services::ssh_masters`),
/// which the reaper removes when capstan could not.
pub fn ssh_socket_dir(token: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("capstan-ssh-{token}"))
}

fn parse_tree(line: &str) -> Option<Tree> {
    let (pgid, tag) = line.split_once(' ')?;
    Some(Tree { pgid: pgid.parse().ok()?, tag: tag.to_string() })
}
