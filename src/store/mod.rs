//! Where runs keep their shared state (`--state URL`, `CAPSTAN_STATE`): the
//! journal folder of this machine (`file://`, the default), or a PostgreSQL
//! database (`postgres://`) or an S3 bucket (`s3://`) that every machine's
//! runs write their journals and take their locks in. Opened, and checked, before anything runs: a
//! store that cannot be used is a usage error naming it (password masked).

pub mod db;
pub mod error;
pub mod heartbeat;
pub mod journal;
pub mod lease;
pub mod runs;
pub mod s3;
pub mod url;

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;

/// Where a shared store keeps its state.
#[derive(Debug, Clone)]
pub enum Backend {
    Postgres(Arc<db::Db>),
    S3(Arc<s3::S3>),
}

/// A store that several machines share.
#[derive(Debug, Clone)]
pub struct Shared {
    pub backend: Backend,
    /// The URL as messages show it (password masked).
    pub shown: String,
}

/// The state a command uses.
#[derive(Debug, Clone)]
pub enum State {
    /// This machine's journal folder; `Some` when `file://DIR` names it.
    Local(Option<PathBuf>),
    Shared(Shared),
}

impl State {
    /// Parse and open `--state` (or `CAPSTAN_STATE`): connect, create or
    /// migrate the schema.
    pub fn open(url: Option<&str>) -> Result<Self, Error> {
        let Some(url) = url.filter(|u| !u.is_empty()) else { return Ok(State::Local(None)) };
        let shown = url::masked(url);
        let fail = |why: error::StoreError| {
            Error::usage_with_hint(
                format!("cannot use the state store {shown}: {why}"),
                "--state (or CAPSTAN_STATE) takes file://DIR, postgres://USER@HOST:PORT/DB or s3://BUCKET/PREFIX?endpoint=URL",
            )
        };
        match url::parse(url).map_err(fail)? {
            url::StateUrl::File(dir) => Ok(State::Local(Some(dir))),
            url::StateUrl::Postgres(url) => {
                let db = db::Db::connect(&url).map_err(fail)?;
                Ok(State::Shared(Shared { backend: Backend::Postgres(Arc::new(db)), shown }))
            }
            url::StateUrl::S3 { bucket, prefix, endpoint, region } => {
                let s3 = s3::S3::connect(&bucket, &prefix, endpoint.as_deref(), region.as_deref()).map_err(fail)?;
                Ok(State::Shared(Shared { backend: Backend::S3(Arc::new(s3)), shown }))
            }
        }
    }

    pub fn shared(&self) -> Option<&Shared> {
        match self {
            State::Shared(s) => Some(s),
            State::Local(_) => None,
        }
    }

    /// The journal root: `--journal-dir`, else `file://DIR`, else `default`.
    pub fn journal_root(&self, journal_dir: Option<&PathBuf>, default: PathBuf) -> Result<PathBuf, Error> {
        match (self, journal_dir) {
            (State::Local(Some(dir)), Some(given)) if dir != given => Err(Error::usage(format!(
                "--journal-dir {} and --state file://{} name two journal folders; give one",
                given.display(),
                dir.display()
            ))),
            (_, Some(given)) => Ok(given.clone()),
            (State::Local(Some(dir)), None) => Ok(dir.clone()),
            _ => Ok(default),
        }
    }
}
