//! Where runs keep their shared state (`--state URL`, `CAPSTAN_STATE`): the
//! journal folder of this machine (`file://`, the default), or a PostgreSQL
//! database (`postgres://`) that every machine's runs write their journals
//! and take their locks in. Opened, and checked, before anything runs: a
//! store that cannot be used is a usage error naming it (password masked).

pub mod db;
pub mod error;
pub mod journal;
pub mod lease;
pub mod runs;
pub mod url;

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;

/// A store that several machines share.
#[derive(Debug, Clone)]
pub struct Shared {
    pub db: Arc<db::Db>,
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
                "--state (or CAPSTAN_STATE) takes file://DIR or postgres://USER@HOST:PORT/DB",
            )
        };
        match url::parse(url).map_err(fail)? {
            url::StateUrl::File(dir) => Ok(State::Local(Some(dir))),
            url::StateUrl::Postgres(url) => {
                let db = db::Db::connect(&url).map_err(fail)?;
                Ok(State::Shared(Shared { db: Arc::new(db), shown }))
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
