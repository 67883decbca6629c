//! SSH connections for the whole run: one `ControlMaster` per host, started
//! on first use and closed when the run ends (or by the reaper when capstan
//! dies), at most `--ssh-starts` handshakes in flight at once (sshd's
//! `MaxStartups` drops the ones above its limit), and at most
//! [`SESSIONS_PER_MASTER`] commands at once through one master (sshd's
//! `MaxSessions` refuses the ones above its limit).
//!
//! A master is started with `ssh -M -N -f`: ssh returns once it is
//! authenticated and leaves the master running in the background, tagged
//! with the run's token so the end of the run and the reaper find it.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::failure::{failure_with_hint, terminated, FailureKind, HostFailure, RhaiResultOf};
use crate::process::tree::{self, Tree};
use crate::services::{frame, Services};

/// Handshakes in flight at once unless `--ssh-starts` says otherwise: below
/// the 10 of sshd's default `MaxStartups 10:30:100`.
pub const DEFAULT_STARTS: usize = 10;
/// Commands at once through one master: below sshd's default `MaxSessions 10`.
pub const SESSIONS_PER_MASTER: usize = 8;
/// How often a wait looks at cancellation and step deadlines.
const TICK: Duration = Duration::from_millis(50);

static STARTS: AtomicUsize = AtomicUsize::new(DEFAULT_STARTS);

/// `--ssh-starts N`: handshakes in flight at once (at least 1).
pub fn set_max_starts(n: usize) {
    STARTS.store(n.max(1), Ordering::Relaxed);
}

/// How to reach one host: what the master is started with. Two calls with
/// the same target share a master.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `user@address` or `address`.
    pub destination: String,
    pub port: Option<i64>,
    /// `ssh -F FILE`.
    pub config: Option<String>,
    /// Arguments every ssh to this target gets (`-i`, `-o ...`).
    pub args: Vec<String>,
}

impl Target {
    /// `-F`, `-p`/`-P` and the shared arguments, for ssh (`port_flag` `-p`) or scp (`-P`).
    pub fn base_args(&self, port_flag: &str) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["-F".to_string(), config.clone()]);
        }
        if let Some(port) = self.port {
            args.extend([port_flag.to_string(), port.to_string()]);
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// A held slot of a [`Gate`], given back when dropped.
pub struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.lock() -= 1;
        self.0.freed.notify_one();
    }
}

/// A counting semaphore whose waits stop on Ctrl-C, `--timeout` and step timeouts.
#[derive(Default)]
struct Gate {
    used: Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(&self, limit: usize, services: &Services) -> RhaiResultOf<Permit<'_>> {
        let mut used = self.lock();
        loop {
            if *used < limit {
                *used += 1;
                return Ok(Permit(self));
            }
            if let Some(reason) = frame::check(&services.cancel) {
                return Err(terminated(reason));
            }
            used = self.freed.wait_timeout(used, TICK).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

enum State {
    Down,
    Starting,
    Up,
    /// The last start failed with this error (the waiters get it too).
    Failed(String),
}

struct Host {
    socket: PathBuf,
    /// The `NAME=VALUE`s the ssh client would send with each session
    /// (`SendEnv`, `SetEnv`), found when the master starts.
    env: Mutex<Vec<String>>,
    state: Mutex<State>,
    changed: Condvar,
    sessions: Gate,
}

#[derive(Default)]
struct Pool {
    hosts: Mutex<HashMap<Target, Arc<Host>>>,
    starts: Gate,
    /// The masters started, for [`close_all`].
    masters: Mutex<Vec<Tree>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// The run's folder of control sockets (their paths must stay short).
fn socket_dir() -> PathBuf {
    crate::process::reaper::ssh_socket_dir(tree::run_token())
}

/// [`socket_dir`], made private to this user if it does not exist yet.
fn made_socket_dir() -> PathBuf {
    let dir = socket_dir();
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
    }
    dir
}

/// A connection through the target's master, holding one of its session
/// slots until dropped: the `-o` arguments that use the master.
pub struct Session {
    host: Arc<Host>,
    pub args: Vec<String>,
    /// The connection to the master made to see that it listens, for the
    /// session to use.
    control: Mutex<Option<UnixStream>>,
}

impl Session {
    /// The master's control socket.
    pub fn socket(&self) -> &Path {
        &self.host.socket
    }

    /// What a session asked of the master sends as its environment, as the
    /// ssh client would (`SendEnv` names from capstan's environment, then `SetEnv`).
    pub fn env(&self) -> Vec<String> {
        self.host.env.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The connection to the master already made, if one was.
    pub fn take_control(&self) -> Option<UnixStream> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Run `f` holding a session slot of this host's master.
    pub fn with<T>(&self, services: &Services, f: impl FnOnce() -> T) -> RhaiResultOf<T> {
        let _permit = self.host.sessions.acquire(SESSIONS_PER_MASTER, services)?;
        let out = f();
        // A master that died (the host rebooted) is started again by the
        // next call; until then ssh falls back to a connection of its own.
        if !self.host.socket.exists() {
            let mut state = self.host.state.lock().unwrap_or_else(PoisonError::into_inner);
            if matches!(*state, State::Up) {
                *state = State::Down;
            }
        }
        Ok(out)
    }
}

/// The target's master, started now if it is not running (at most
/// `--ssh-starts` starts at once). A host that cannot be reached is an
/// `unreachable` failure of the step, with ssh's own words.
pub fn session(services: &Services, target: &Target) -> RhaiResultOf<Session> {
    let pool = pool();
    let host = {
        let mut hosts = pool.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = hosts.len();
        hosts
            .entry(target.clone())
            .or_insert_with(|| {
                Arc::new(Host {
                    socket: made_socket_dir().join(n.to_string()),
                    env: Mutex::new(Vec::new()),
                    state: Mutex::new(State::Down),
                    changed: Condvar::new(),
                    sessions: Gate::default(),
                })
            })
            .clone()
    };
    let args = vec![
        "-o".to_string(),
        "ControlMaster=no".into(),
        "-o".into(),
        format!("ControlPath={}", host.socket.display()),
    ];
    let mut state = host.state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut waited = false;
    loop {
        match &*state {
            // A master killed outright (SIGKILL, the OOM killer) leaves its
            // socket with nobody listening: start a new one now, rather than
            // have every later command make a connection of its own.
            State::Up => match listening(&host.socket) {
                Listening::Yes(control) => {
                    return Ok(Session { host: host.clone(), args, control: Mutex::new(control) })
                }
                Listening::No => {
                    tracing::debug!("the ssh master of {} is gone; starting it again", target.destination);
                    break;
                }
            },
            State::Failed(message) if waited => return Err(unreachable(&target.destination, message)),
            State::Down | State::Failed(_) => break,
            State::Starting => {
                if let Some(reason) = frame::check(&services.cancel) {
                    return Err(terminated(reason));
                }
                waited = true;
                state = host.changed.wait_timeout(state, TICK).unwrap_or_else(PoisonError::into_inner).0;
            }
        }
    }
    *state = State::Starting;
    drop(state);
    let started = {
        match pool.starts.acquire(STARTS.load(Ordering::Relaxed), services) {
            Ok(_permit) => {
                // What the client would send with each session, asked of
                // `ssh -G` while the master shakes hands.
                let config = Command::new("ssh")
                    .args(target.base_args("-p"))
                    .args(["-G", &target.destination])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn();
                let started = start(services, target, &host.socket);
                if let Ok(out) = config.and_then(std::process::Child::wait_with_output) {
                    let env = session_env(&String::from_utf8_lossy(&out.stdout), std::env::vars_os());
                    *host.env.lock().unwrap_or_else(PoisonError::into_inner) = env;
                }
                started
            }
            Err(err) => Err(Start::Stopped(err)),
        }
    };
    let mut state = host.state.lock().unwrap_or_else(PoisonError::into_inner);
    let result = match started {
        Ok(master) => {
            pool.masters.lock().unwrap_or_else(PoisonError::into_inner).push(master);
            *state = State::Up;
            Ok(Session { host: host.clone(), args, control: Mutex::new(None) })
        }
        Err(Start::Refused(message)) => {
            *state = State::Failed(message.clone());
            Err(unreachable(&target.destination, &message))
        }
        Err(Start::Stopped(err)) => {
            *state = State::Down;
            Err(err)
        }
    };
    host.changed.notify_all();
    result
}

enum Listening {
    /// With the connection made to see it, when there was one.
    Yes(Option<UnixStream>),
    No,
}

/// Whether a master still listens on `socket`: gone, or refused (it died
/// and left its socket), it does not. Something there that is not a socket
/// is not a master's; the ssh client is left to judge it.
fn listening(socket: &Path) -> Listening {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(socket) else { return Listening::No };
    if !meta.file_type().is_socket() {
        return Listening::Yes(None);
    }
    match UnixStream::connect(socket) {
        Ok(stream) => Listening::Yes(Some(stream)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Listening::No,
        Err(_) => Listening::Yes(None),
    }
}

/// The environment a session gets from the ssh client, from its effective
/// configuration (`ssh -G`: `sendenv PATTERN` and `setenv NAME=VALUE`
/// lines) and the client's environment: the variables whose names match a
/// `SendEnv` pattern, in the environment's order, then the `SetEnv` ones.
fn session_env(config: &str, vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> Vec<String> {
    let mut send = Vec::new();
    let mut set = Vec::new();
    for line in config.lines() {
        match line.split_once(' ') {
            Some(("sendenv", pattern)) => send.push(pattern.trim()),
            Some(("setenv", pair)) if pair.contains('=') => set.push(pair.trim().to_string()),
            _ => {}
        }
    }
    let mut env: Vec<String> = if send.is_empty() {
        Vec::new()
    } else {
        vars.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| !k.is_empty() && send.iter().any(|p| glob(p.as_bytes(), k.as_bytes())))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    };
    env.extend(set);
    env
}

/// OpenSSH's `match_pattern`: `*` any run of characters, `?` any one.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

fn unreachable(destination: &str, message: &str) -> Box<rhai::EvalAltResult> {
    let words = if message.is_empty() { "ssh exited with 255".to_string() } else { message.to_string() };
    HostFailure::new(FailureKind::Unreachable, format!("ssh could not reach {destination}: {words}"))
        .with_hint("check the host's address, port, user and key (and that sshd runs there)")
        .into()
}

enum Start {
    /// ssh said no: its last words.
    Refused(String),
    /// Ctrl-C, a timeout, or no ssh at all.
    Stopped(Box<rhai::EvalAltResult>),
}

impl From<Box<rhai::EvalAltResult>> for Start {
    fn from(err: Box<rhai::EvalAltResult>) -> Self {
        Start::Stopped(err)
    }
}

/// `ssh -M -N -f`: returns once the master is authenticated and in the background.
fn start(services: &Services, target: &Target, socket: &Path) -> Result<Tree, Start> {
    // A master killed outright leaves its socket, which the new one could not bind.
    let _ = std::fs::remove_file(socket);
    let tag = tree::new_tag(false);
    services.reaper_told_of(&tag);
    let errors = socket.with_extension("err");
    let stderr = std::fs::File::create(&errors).map_err(|e| Start::Refused(format!("cannot create {e}")))?;
    let mut args = target.base_args("-p");
    if !target.args.iter().any(|a| a.starts_with("ConnectTimeout")) {
        args.extend(["-o".to_string(), "ConnectTimeout=10".into()]);
    }
    args.extend([
        "-o".to_string(),
        "ControlMaster=yes".into(),
        "-o".into(),
        format!("ControlPath={}", socket.display()),
        "-o".into(),
        "ControlPersist=yes".into(),
        "-N".into(),
        "-f".into(),
        target.destination.clone(),
    ]);
    let mut command = Command::new("ssh");
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .env(tree::TAG_VAR, tree::env_value(&tag))
        .process_group(0);
    use std::os::unix::process::CommandExt;
    let mut child = tree::spawn(&mut command).map_err(|e| {
        Start::Stopped(failure_with_hint(
            FailureKind::Command,
            format!("cannot run ssh: {e}"),
            "install OpenSSH's client",
        ))
    })?;
    let master = Tree { pgid: 0, tag };
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break status;
        }
        if let Some(reason) = frame::check(&services.cancel) {
            tree::kill_all(&[Tree { pgid: child.id() as i32, tag: master.tag.clone() }]);
            let _ = child.wait();
            tree::forget(child.id() as i32);
            return Err(terminated(reason).into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    tree::forget(child.id() as i32);
    let said = std::fs::read_to_string(&errors).unwrap_or_default();
    let _ = std::fs::remove_file(&errors);
    if status.success() {
        Ok(master)
    } else {
        master.kill();
        Err(Start::Refused(said.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()))
    }
}

/// Close every master of the run and remove its sockets: the run is over.
pub fn close_all() {
    let pool = pool();
    let masters = std::mem::take(&mut *pool.masters.lock().unwrap_or_else(PoisonError::into_inner));
    tree::kill_all(&masters);
    let mut hosts = pool.hosts.lock().unwrap_or_else(PoisonError::into_inner);
    if !hosts.is_empty() {
        hosts.clear();
        let _ = std::fs::remove_dir_all(socket_dir());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_send_the_variables_ssh_would() {
        let config = "user deploy\nsendenv LANG\nsendenv LC_*\nsetenv APP_ENV=prod\nport 22\n";
        let vars = [("PATH", "/bin"), ("LC_ALL", "C.UTF-8"), ("LANG", "en_US.UTF-8"), ("LANGUAGE", "en")];
        let vars = vars.iter().map(|(k, v)| ((*k).into(), (*v).into()));
        assert_eq!(session_env(config, vars), ["LC_ALL=C.UTF-8", "LANG=en_US.UTF-8", "APP_ENV=prod"]);
        let none = [("LANG", "C")].iter().map(|(k, v)| ((*k).into(), (*v).into()));
        assert!(session_env("user deploy\n", none).is_empty());
        assert!(glob(b"L?_*", b"LC_TIME") && !glob(b"LC_*", b"LANG") && glob(b"*", b""));
    }
}
