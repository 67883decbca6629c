//! A small builder: write a playbook into a temp dir, run the real binary,
//! assert on exit code, stdout, stderr and files.

#![allow(dead_code)]

pub mod chromium;
pub mod daemons;
pub mod http;
pub mod postgres;
pub mod pty;
pub mod seaweed;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn capstan_bin() -> &'static str {
    env!("CARGO_BIN_EXE_capstan")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Playbook {
    pub dir: tempfile::TempDir,
    pub name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Playbook {
    pub fn new(source: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("deploy.rhai"), source).expect("write playbook");
        Self { dir, name: "deploy.rhai".into(), args: Vec::new(), env: Vec::new() }
    }

    pub fn file(self, rel: &str, content: &str) -> Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `capstan SUBCOMMAND deploy.rhai ARGS...` in the playbook's folder.
    pub fn command(&self, subcommand: &str) -> Command {
        let mut c = Command::new(capstan_bin());
        c.current_dir(self.dir.path()).arg(subcommand).arg(&self.name).args(&self.args);
        c.env_remove("GITHUB_ACTIONS").env("NO_COLOR", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `capstan run` with plain output unless a format was given.
    pub fn run(&self) -> Run {
        let mut c = self.command("run");
        if !self.args.iter().any(|a| a.starts_with("--log-format")) {
            c.args(["--log-format", "plain"]);
        }
        Run::from(c.output().expect("run capstan"))
    }

    /// `capstan run --log-format json`.
    pub fn run_json(&self) -> Run {
        let mut c = self.command("run");
        c.args(["--log-format", "json"]);
        Run::from(c.output().expect("run capstan"))
    }

    pub fn spawn(&self, extra: &[&str]) -> Child {
        let mut c = self.command("run");
        c.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn capstan")
    }

    pub fn check(&self) -> Run {
        Run::from(self.command("check").output().expect("run capstan check"))
    }

    /// Every file under the journal folder, concatenated.
    pub fn journal_text(&self) -> String {
        let mut out = String::new();
        collect(&self.dir.path().join(".capstan"), &mut out);
        out
    }
}

fn collect(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// JSON lines from stdout; panics on a line that is not JSON.
    pub fn events(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// `capstan repl ARGS` in the playbook's folder with `input` piped in, no
/// terminal; what it printed once the input ran out.
pub fn repl_piped(pb: &Playbook, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(capstan_bin())
        .arg("repl")
        .args(args)
        .current_dir(pb.dir.path())
        .env("XDG_STATE_HOME", pb.path("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn capstan repl");
    child.stdin.take().expect("stdin").write_all(input).expect("write the input");
    child.wait_with_output().expect("capstan repl")
}

/// Events named `name` from a list.
pub fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Poll `f` until it returns true or the deadline passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The events of a journal's text, skipping lines that are not JSON.
pub fn events_in(journal: &str) -> Vec<Value> {
    journal.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// PIDs of processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        // Zombies have an empty command line and are already dead.
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) && !is_zombie(pid) {
            pids.push(pid);
        }
    }
    pids
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

/// Wait for a child with a deadline; kills it and panics on timeout.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Run {
    let end = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return Run::from(child.wait_with_output().expect("output"));
        }
        if Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("capstan did not exit in {timeout:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tests that load the machine (checkov, docker builds, a gigabyte of
/// output) and tests that measure time (probes, canary timings) take this
/// lock, so a measurement never shares the two cores with a heavy job.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
