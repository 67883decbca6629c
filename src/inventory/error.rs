//! What goes wrong reading an inventory: a problem at a line of a file
//! (what every reader reports), or a file that cannot be read at all.

use std::fmt;
use std::path::PathBuf;

/// A problem at a line of an inventory, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl Located {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into(), hint: None }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// An inventory that cannot be read or does not make sense.
#[derive(Debug)]
pub enum InventoryError {
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The name says neither INI nor YAML.
    Format {
        file: PathBuf,
    },
    At {
        file: PathBuf,
        problem: Located,
    },
}

impl InventoryError {
    /// What to do next.
    pub fn hint(&self) -> String {
        match self {
            InventoryError::Read { .. } => "check the inventory's path (-i FILE) and its permissions".into(),
            InventoryError::Format { .. } => {
                "name an INI inventory `hosts`, `*.ini` or `*.cfg`, a YAML one `*.yml` or `*.yaml`".into()
            }
            InventoryError::At { problem, .. } => problem.hint.clone().unwrap_or_else(|| "fix the inventory".into()),
        }
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::Read { file, source } => write!(f, "cannot read inventory {}: {source}", file.display()),
            InventoryError::Format { file } => {
                write!(f, "{}: unknown inventory format (not INI or YAML by its name)", file.display())
            }
            InventoryError::At { file, problem } => {
                write!(f, "{}:{}: {}", file.display(), problem.line, problem.message)
            }
        }
    }
}

impl std::error::Error for InventoryError {}
