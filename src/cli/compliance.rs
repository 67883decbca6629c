//! `capstan check --compliance PATH`: the scanners without a playbook, for
//! pre-commit hooks and CI.

use std::path::{Path, PathBuf};

use crate::compliance::{self, dockerfile, k8s, secrets, terraform, Finding};
use crate::error::Error;
use crate::exit;

fn is_dockerfile(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    name.starts_with("dockerfile") || name.ends_with(".dockerfile")
}

fn is_yaml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Every scanner that applies to a path.
fn scan(path: &Path) -> std::io::Result<Vec<Finding>> {
    let mut out = secrets::scan(path)?;
    if path.is_dir() || path.extension().is_some_and(|e| e == "tf") {
        out.extend(terraform::scan(path)?);
    }
    if path.is_dir() {
        for entry in
            ignore::WalkBuilder::new(path).hidden(false).filter_entry(|e| e.file_name() != ".git").build().flatten()
        {
            let p = entry.path();
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if is_dockerfile(p) {
                out.extend(dockerfile::scan(p)?);
            } else if is_yaml(p) {
                out.extend(k8s::scan(p)?);
            }
        }
    } else if is_dockerfile(path) {
        out.extend(dockerfile::scan(path)?);
    } else if is_yaml(path) {
        out.extend(k8s::scan(path)?);
    }
    Ok(out)
}

pub fn run(paths: &[PathBuf], json: bool, sarif: Option<&Path>) -> Result<(), Error> {
    let mut findings = Vec::new();
    for path in paths {
        findings.extend(scan(path).map_err(|e| Error::io("cannot scan", path.clone(), e).with_hint("check the path"))?);
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
    if let Some(file) = sarif {
        let text = serde_json::to_string_pretty(&compliance::sarif::document(&findings)).unwrap_or_default();
        if let Err(e) = std::fs::write(file, text) {
            return Err(Error::io("cannot write", file.to_path_buf(), e));
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&findings).unwrap_or_default());
    } else {
        // No source lines here: the line of a secret finding is the secret.
        for f in &findings {
            crate::errln!(
                "{}:{}: {} {}: {}",
                f.file,
                f.line,
                console::style(f.severity.as_str()).yellow(),
                f.rule,
                f.message
            );
        }
        if findings.is_empty() {
            crate::errln!("{} no compliance findings", console::style("✓").green());
        } else {
            crate::errln!("{} {} compliance finding(s)", console::style("✗").red(), findings.len());
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed { code: exit::FAILED, diagnostic: None })
    }
}
