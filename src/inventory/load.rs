//! Reading an inventory file: its format from its name (`.yml`, `.yaml`,
//! `.json` are YAML; `.ini`, `.cfg`, `.hosts` or no extension are INI, as
//! Ansible's `hosts` files are), and errors that name `file:line`.

use std::path::Path;

use super::error::{InventoryError, Located};
use super::graph::Parsed;
use super::host::Host;
use super::{ini, vars_files, yaml};

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
    let at = |problem| InventoryError::At { file: path.to_path_buf(), problem };
    let mut parsed = read(&text, format).map_err(at)?;
    vars_files::apply(&mut parsed, path.parent().unwrap_or(Path::new(".")))?;
    parsed.hosts().map_err(at)
}

fn read(text: &str, format: Format) -> Result<Parsed, Located> {
    match format {
        Format::Ini => ini::parse(text),
        Format::Yaml => yaml::parse(text),
    }
}

/// The hosts of an inventory's text (tests read inventories without files).
#[cfg(test)]
fn parse(text: &str, format: Format) -> Result<Vec<Host>, Located> {
    read(text, format)?.hosts()
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
