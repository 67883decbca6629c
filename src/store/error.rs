//! Why a state store could not be used: a leaf the store's files share.
//! The subcommands render it once, naming the store (password masked).

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum StoreError {
    /// The state URL names no store capstan can use; says why.
    Url(String),
    /// The database refused, failed or went away, in the driver's words.
    Database(String),
    /// The S3 server refused, failed or went away; says why.
    S3(String),
    /// A file the store writes here (a resumed run's journal).
    Io { path: PathBuf, source: std::io::Error },
}

impl StoreError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Url(why) | StoreError::Database(why) | StoreError::S3(why) => f.write_str(why),
            StoreError::Io { path, source } => write!(f, "cannot write {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}
