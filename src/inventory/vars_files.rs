//! `group_vars/` and `host_vars/` next to an inventory file, as Ansible
//! reads them: `group_vars/web.yml` (or `.yaml`, `.json`, no extension) or a
//! folder `group_vars/web/` of such files, read in name order. A host's
//! file wins over its inventory vars; groups' files win over the
//! inventory's group vars, `group_vars/all` only over `all`'s.

use std::path::{Path, PathBuf};

use super::error::InventoryError;
use super::graph::Parsed;
use super::yaml;

const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

/// Every vars file for the inventory's groups and hosts, applied.
pub fn apply(parsed: &mut Parsed, dir: &Path) -> Result<(), InventoryError> {
    // `group_vars/all.yml` applies even when the inventory never names `all`.
    parsed.group("all");
    let (groups, hosts) = parsed.names();
    // One look for each folder, not four for each of 100,000 hosts.
    let (group_vars, host_vars) = (dir.join("group_vars"), dir.join("host_vars"));
    let groups = if group_vars.is_dir() { groups } else { Vec::new() };
    let hosts = if host_vars.is_dir() { hosts } else { Vec::new() };
    for group in groups {
        for file in files(&group_vars, &group) {
            let vars = read(&file)?;
            parsed.set_group_file_vars(&group, vars);
        }
    }
    for host in hosts {
        for file in files(&host_vars, &host) {
            let vars = read(&file)?;
            parsed.set_host_vars(&host, vars);
        }
    }
    Ok(())
}

fn read(file: &Path) -> Result<serde_json::Map<String, serde_json::Value>, InventoryError> {
    let text =
        std::fs::read_to_string(file).map_err(|source| InventoryError::Read { file: file.to_path_buf(), source })?;
    yaml::vars_file(&text).map_err(|problem| InventoryError::At { file: file.to_path_buf(), problem })
}

/// The vars files of `name` in `folder`, in the order they apply.
fn files(folder: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ext in EXTENSIONS {
        let candidate = folder.join(format!("{name}{ext}"));
        if candidate.is_file() {
            out.push(candidate);
        } else if ext.is_empty() && candidate.is_dir() {
            walk(&candidate, &mut out);
        }
    }
    out
}

/// The vars files under a folder, sorted, sub-folders in place.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if EXTENSIONS[1..].iter().any(|e| name.ends_with(e)) || !name.contains('.') {
            out.push(path);
        }
    }
}
