//! The lock file that keeps two deploys of one environment apart: an
//! exclusive `flock` held for the run, with who holds it written inside.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Who holds a lock, as written into the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    /// The account the run ran as (older lock files do not say).
    #[serde(default)]
    pub user: String,
    pub pid: u32,
    pub host: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = if self.user.is_empty() { String::new() } else { format!(" as {}", self.user) };
        write!(f, "run {} (pid {} on {}{user}, since {})", self.run_id, self.pid, self.host, self.since)
    }
}

/// A held lock, released when dropped: a lock file here, or a lease in a
/// state store.
pub struct LockGuard {
    name: String,
    /// A lease's fencing token: it grows with every holder of the lock.
    pub token: Option<i64>,
    _held: Box<dyn std::any::Any + Send>,
}

impl LockGuard {
    pub fn new(name: &str, held: impl std::any::Any + Send) -> Self {
        Self { name: name.to_string(), token: None, _held: Box::new(held) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A lock file held: emptied and unlocked when dropped. The kernel releases
/// it too when capstan dies, so a crashed holder never wedges it.
struct FileHeld(Flock<File>);

impl Drop for FileHeld {
    fn drop(&mut self) {
        // Empty means "released cleanly"; a stale holder line means it died.
        let _ = self.0.set_len(0);
    }
}

/// Why a lock could not be taken.
pub enum LockError {
    Held(Option<Holder>),
    /// Still held after waiting: by whom, as told.
    HeldBy(String),
    Invalid(String),
}

impl LockError {
    /// The same refusal naming `who` holds the lock.
    #[must_use]
    pub fn with_who(self, who: String) -> Self {
        match self {
            LockError::Held(_) => LockError::HeldBy(who),
            other => other,
        }
    }
}

/// Take lock `name` under `dir`; `Ok((guard, Some(holder)))` means a dead
/// holder's lock was taken over.
pub fn acquire(dir: &Path, name: &str, run_id: &str) -> Result<(LockGuard, Option<Holder>), LockError> {
    check_name(name)?;
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
        user: user(),
        pid: std::process::id(),
        host: host(),
        since: crate::events::timestamp(SystemTime::now()),
    };
    let text = serde_json::to_string(&me).unwrap_or_default();
    let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        return Err(LockError::Invalid(format!("cannot write {}: {e}", path.display())));
    }
    let _ = file.sync_data();
    Ok((LockGuard::new(name, FileHeld(file)), stale))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Lock names are file names and keys: letters, digits, '-', '_' and '.'.
pub fn check_name(name: &str) -> Result<(), LockError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || name.starts_with('.')
    {
        return Err(LockError::Invalid(format!("lock name \"{name}\" may use only letters, digits, '-', '_' and '.'")));
    }
    Ok(())
}

/// The account capstan runs as.
pub fn user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

/// The machine capstan runs on.
pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
