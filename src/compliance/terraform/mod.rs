//! Terraform rules, on files read as HCL: a remote backend for every non-dev
//! environment, no state files in the repository, no credentials in provider
//! blocks, no security group open to the world on admin ports, no IAM
//! wildcards. Rule summaries name the checkov checks they match.
//!
//! A file that does not parse as a whole is read top-level block by block
//! (`hcl::File::parse`): the blocks that parse are checked, the others are
//! skipped, and nothing fails.

mod hcl;
mod iam;
mod network;
mod providers;
mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use self::hcl::File;
use super::finding::Finding;
use rules::finding;

pub use rules::RULES;

const DEV_NAMES: &[&str] = &["dev", "development", "sandbox", "local", "test", "testing", "ci"];

/// What a file says about its module's state: whether it makes the folder a
/// root module, and the backends it configures (kind, line).
struct ModuleFacts {
    root: bool,
    backends: Vec<(String, usize)>,
}

fn module_facts(file: &File) -> ModuleFacts {
    let mut facts = ModuleFacts { root: false, backends: Vec::new() };
    for (at, block) in file.blocks() {
        match block.ident.as_str() {
            "provider" => facts.root = true,
            "terraform" => {
                facts.root = true;
                for backend in block.body.get_blocks("backend") {
                    let kind = hcl::labels(backend).first().map_or_else(String::new, |k| (*k).to_string());
                    facts.backends.push((kind, at.line(backend)));
                }
                // HCP Terraform (`cloud {}`) keeps state remotely too.
                for cloud in block.body.get_blocks("cloud") {
                    facts.backends.push(("cloud".into(), at.line(cloud)));
                }
            }
            _ => {}
        }
    }
    facts
}

fn is_dev(dir: &Path) -> bool {
    dir.components().any(|c| {
        let name = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        DEV_NAMES.contains(&name.as_str())
    })
}

/// Scan a folder of Terraform code (or one file).
pub fn scan(root: &Path) -> std::io::Result<Vec<Finding>> {
    let mut out = Vec::new();
    // A module is a folder: variables and backends are read across its files.
    let mut dirs: BTreeMap<PathBuf, Vec<(PathBuf, File)>> = BTreeMap::new();
    for entry in ignore::WalkBuilder::new(root)
        .hidden(false)
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != ".terraform")
        .build()
        .flatten()
    {
        let p = entry.path();
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".tfstate") || name.ends_with(".tfstate.backup") {
            out.push(finding("terraform/state-committed", &p.to_string_lossy(), 1, "a Terraform state file is in the repository: it holds secrets and drifts; keep state in a remote backend and ignore *.tfstate".into()));
        }
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("tf")) {
            let file = File::parse(&std::fs::read_to_string(p)?);
            dirs.entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
                .or_default()
                .push((p.to_path_buf(), file));
        }
    }
    for (dir, files) in &dirs {
        let defaults = providers::variable_defaults(files.iter().map(|(_, f)| f));
        for (p, file) in files {
            let path = p.to_string_lossy();
            providers::check(file, &path, &defaults, &mut out);
            network::check(file, &path, &mut out);
            iam::check(file, &path, &mut out);
        }
        backend(root, dir, files, &mut out);
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(out)
}

/// A root module (it configures providers or terraform itself) outside
/// modules/ and outside a dev folder must keep its state remotely.
fn backend(root: &Path, dir: &Path, files: &[(PathBuf, File)], out: &mut Vec<Finding>) {
    let facts: Vec<(&PathBuf, ModuleFacts)> = files.iter().map(|(p, f)| (p, module_facts(f))).collect();
    let is_module = dir.components().any(|c| c.as_os_str() == "modules");
    if !facts.iter().any(|(_, f)| f.root) || is_module || is_dev(dir.strip_prefix(root).unwrap_or(dir)) {
        return;
    }
    let local = facts.iter().find_map(|(p, f)| f.backends.iter().find(|(k, _)| k == "local").map(|(_, l)| (p, *l)));
    if let Some((file, line)) = local {
        out.push(finding(
            "terraform/local-backend",
            &file.to_string_lossy(),
            line,
            format!("{} uses the local backend: configure a remote backend for a shared environment", dir.display()),
        ));
    } else if facts.iter().all(|(_, f)| f.backends.is_empty()) {
        out.push(finding(
            "terraform/local-backend",
            &facts[0].0.to_string_lossy(),
            1,
            format!(
                "{} has no backend: its state stays on one machine; configure a remote backend (s3, gcs, azurerm...)",
                dir.display()
            ),
        ));
    }
}

/// The lines of what one check finds in a file's text, for the checks' tests.
#[cfg(test)]
fn lines_found(check: fn(&File, &str, &mut Vec<Finding>), text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    check(&File::parse(text), "main.tf", &mut out);
    out.iter().map(|f| f.line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloud_block_is_a_remote_backend() {
        let facts = module_facts(&File::parse("terraform {\n  cloud {\n    organization = \"acme\"\n  }\n}\n"));
        assert!(facts.root);
        assert_eq!(facts.backends, vec![("cloud".to_string(), 2)]);
    }
}
