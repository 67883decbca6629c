//! Reading an inventory file: its format from its name (`.yml`, `.yaml`,
//! `.json` are YAML; `.ini`, `.cfg`, `.hosts` or no extension are INI, as
//! Ansible's `hosts` files are), and errors that name `file:line`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::host::Host;
use super::located::Located;
use super::{ini, yaml};

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

#[derive(Clone, Copy)]
enum Format {
    Ini,
    Yaml,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("yml" | "yaml" | "json") => Some(Format::Yaml),
        None | Some("ini" | "cfg" | "hosts" | "inventory" | "txt") => Some(Format::Ini),
        Some(_) => None,
    }
}

/// The hosts of the inventory at `path`, in the order they first appear.
pub fn load(path: &Path) -> Result<Vec<Host>, InventoryError> {
    let format = format_of(path).ok_or_else(|| InventoryError::Format { file: path.to_path_buf() })?;
    let text =
        std::fs::read_to_string(path).map_err(|source| InventoryError::Read { file: path.to_path_buf(), source })?;
    parse(&text, format).map_err(|problem| InventoryError::At { file: path.to_path_buf(), problem })
}

fn parse(text: &str, format: Format) -> Result<Vec<Host>, Located> {
    match format {
        Format::Ini => ini::parse(text)?.hosts(),
        Format::Yaml => yaml::parse(text)?.hosts(),
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
