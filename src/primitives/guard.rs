//! `lock(name)` and `approve(name, message)`: what keeps two deploys of
//! one environment apart, and a person in the loop where the playbook asks.

use std::fs::File;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use rhai::Engine;
use serde::{Deserialize, Serialize};

use super::func;
use crate::events::{EventKind, Level};
use crate::failure::Failure;
use crate::failure::{failure_with_hint, RhaiResultOf};
use crate::services::frame;
use crate::state::RunState;

/// Who holds a lock, as written into the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {} (pid {} on {}, since {})", self.run_id, self.pid, self.host, self.since)
    }
}

/// A held lock: released (emptied and unlocked) when dropped. The kernel
/// releases it too when capstan dies, so a crashed holder never wedges it.
pub struct LockGuard {
    name: String,
    file: Flock<File>,
}

impl LockGuard {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Empty means "released cleanly"; a stale holder line means it died.
        let _ = self.file.set_len(0);
    }
}

/// Why a lock could not be taken.
pub enum LockError {
    Held(Option<Holder>),
    Invalid(String),
}

/// Take lock `name` under `dir`; `Ok((guard, Some(holder)))` means a dead
/// holder's lock was taken over.
pub fn acquire(dir: &Path, name: &str, run_id: &str) -> Result<(LockGuard, Option<Holder>), LockError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || name.starts_with('.')
    {
        return Err(LockError::Invalid(format!("lock name \"{name}\" may use only letters, digits, '-', '_' and '.'")));
    }
    std::fs::create_dir_all(dir).map_err(|e| LockError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    let path: PathBuf = dir.join(format!("{name}.lock"));
    let file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Invalid(format!("cannot open {}: {e}", path.display())))?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        Err((mut file, _)) => return Err(LockError::Held(read_holder(&mut file))),
    };
    let stale = read_holder(&mut file);
    let me = Holder {
        run_id: run_id.to_string(),
        pid: std::process::id(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        since: crate::events::timestamp(SystemTime::now()),
    };
    let text = serde_json::to_string(&me).unwrap_or_default();
    let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        return Err(LockError::Invalid(format!("cannot write {}: {e}", path.display())));
    }
    let _ = file.sync_data();
    Ok((LockGuard { name: name.to_string(), file }, stale))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Take a lock for the run, or say who holds it (exit 3).
pub fn take(state: &RunState, name: &str) -> RhaiResultOf<()> {
    if state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|g| g.name() == name) {
        return Ok(());
    }
    if state.services.dry_run() {
        state.services.log(Level::Info, format!("would take lock `{name}`"));
        return Ok(());
    }
    match acquire(&state.settings.lock_dir, name, state.services.run_id()) {
        Ok((guard, previous)) => {
            if let Some(old) = previous {
                state.services.log(Level::Warn, format!("took over lock `{name}` from {old}: that process is gone"));
            } else {
                state.services.log(Level::Debug, format!("lock `{name}` taken"));
            }
            state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(guard);
            Ok(())
        }
        Err(LockError::Held(holder)) => {
            let who = holder.map_or_else(|| "another run".to_string(), |h| h.to_string());
            Err(failure_with_hint(
                Failure::BLOCKED,
                format!("lock `{name}` is held by {who}"),
                "wait for that run to finish; a lock whose process died is taken over automatically",
            ))
        }
        Err(LockError::Invalid(m)) => Err(failure_with_hint(Failure::USAGE, m, "pick another lock name")),
    }
}

/// Ask for an approval: on the command line, on the terminal, or block.
pub fn approve(state: &RunState, name: &str, message: &str) -> RhaiResultOf<bool> {
    let services = &state.services;
    let settings = &state.settings;
    let gate = |passed: bool, hint: Option<String>, given: Option<(String, String)>| {
        let (by, via) = given.map_or((None, None), |(b, v)| (Some(b), Some(v)));
        services.emit(EventKind::Gate {
            at: frame::location(),
            name: format!("approval: {name}"),
            passed,
            hint,
            by,
            via,
        });
    };
    if services.dry_run() {
        services.log(Level::Info, format!("would ask for approval `{name}`: {message}"));
        return Ok(true);
    }
    if settings.approve_all || settings.approvals.iter().any(|a| a == name) {
        let how = if settings.approve_all { "--yes".to_string() } else { format!("--approve {name}") };
        let who = ci_actor().unwrap_or_else(local_user);
        services.log(Level::Info, format!("approval `{name}` given by {who} via {how}: {message}"));
        gate(true, None, Some((who, how)));
        return Ok(true);
    }
    if settings.interactive {
        let mut answer = String::new();
        let shown = services.redactor.redact(message).into_owned();
        services.bus.suspend(&mut || {
            crate::err!("? {shown}\n  approve `{name}`? [y/N] ");
            let _ = std::io::stderr().flush();
            let _ = std::io::stdin().lock().read_line(&mut answer);
        });
        let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
        let who = local_user();
        services.log(
            Level::Info,
            format!("approval `{name}` {} by {who} on the terminal", if yes { "given" } else { "refused" }),
        );
        gate(yes, None, Some((who, "terminal".into())));
        if yes {
            return Ok(true);
        }
        return Err(failure_with_hint(
            Failure::BLOCKED,
            format!("approval `{name}` was refused"),
            format!("re-run when it should go ahead, or pass --approve {name}"),
        ));
    }
    let hint = format!("re-run with --approve {name} (or --yes to give every approval)");
    gate(false, Some(hint.clone()), None);
    Err(failure_with_hint(Failure::BLOCKED, format!("approval `{name}` is needed: {message}"), hint))
}

/// The CI platform's account that started the job, where it says so:
/// `alice (GITHUB_ACTOR)`.
fn ci_actor() -> Option<String> {
    ["GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "CIRCLE_USERNAME"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()).map(|v| format!("{v} ({var})")))
}

/// The account capstan runs as, on this host: `alice@build-7`.
fn local_user() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    format!("{user}@{}", gethostname::gethostname().to_string_lossy())
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let s = state.clone();
    func(
        engine,
        "lock",
        &["name: &str", "()"],
        "Take an exclusive lock for the rest of the run (like `--lock NAME`). Another run\n\
         holding it stops this one with exit 3, naming the holder; a lock whose process\n\
         died is taken over with a warning.\n```rhai\nlock(`deploy-${env}`);\n```",
        move |name: &str| take(&s, name),
    );
    let s = state.clone();
    func(
        engine,
        "approve",
        &["name: &str", "message: &str", "bool"],
        "Ask a person to approve. On a terminal capstan asks y/N; otherwise the approval\n\
         must be given with `--approve NAME` or `--yes`, or the run stops with exit 3.\n\
         ```rhai\napprove(\"prod\", `deploy ${version} to production?`);\n```",
        move |name: &str, message: &str| approve(&s, name, message),
    );
}
