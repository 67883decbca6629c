//! The reference outputs: editor definitions, the Markdown API reference and
//! the man page cover what the binary really has.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::{capstan_bin, Run};

fn capstan(args: &[&str]) -> Run {
    Run::from(Command::new(capstan_bin()).args(args).env("NO_COLOR", "1").output().expect("run capstan"))
}

/// Every documented function, namespaced ones as `ns::name`.
fn documented() -> BTreeSet<String> {
    let r = capstan(&["doc", "--json"]);
    r.code(0);
    let list: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("doc --json is JSON");
    list.iter().map(|f| f["name"].as_str().expect("a name").to_string()).collect()
}

/// `fn NAME(` declarations of the `.d.rhai` files, keyed by namespace: the
/// file `helm.d.rhai` (`module helm;`) declares `helm::` functions, and
/// `__static__.d.rhai` the top-level ones.
fn declared(dir: &std::path::Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".d.rhai") else { continue };
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let prefix = if stem.starts_with("__") { String::new() } else { format!("{stem}::") };
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("fn ") {
                let name = rest.split('(').next().unwrap_or_default().trim();
                names.insert(format!("{prefix}{name}"));
            }
        }
    }
    names
}

#[test]
fn definitions_declare_every_function() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("defs");
    capstan(&["doc", "--definitions", defs.to_str().unwrap()]).code(0);
    let declared = declared(&defs);
    let documented = documented();
    assert!(documented.len() > 80, "the API has its primitives: {documented:?}");
    for ns in ["fs", "health", "terraform", "helm", "kubectl", "docker", "traffic", "compliance", "yaml"] {
        assert!(documented.iter().any(|n| n.starts_with(&format!("{ns}::"))), "{ns}:: documented");
    }
    let missing: Vec<&String> = documented.difference(&declared).collect();
    assert!(missing.is_empty(), "not in the definitions: {missing:?}");
    // And the other way: nothing registered lacks documentation.
    let undocumented: Vec<&String> = declared.difference(&documented).collect();
    assert!(undocumented.is_empty(), "registered without documentation: {undocumented:?}");
}

#[test]
fn markdown_lists_every_function_under_its_namespace() {
    let r = capstan(&["doc", "--markdown"]);
    r.code(0);
    let mut sections: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut current = String::new();
    for line in r.stdout.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            current = h.to_string();
            order.push(current.clone());
        } else if let Some(h) = line.strip_prefix("### ") {
            sections.entry(current.clone()).or_default().insert(h.trim_matches('`').to_string());
        }
    }
    assert_eq!(order.first().map(String::as_str), Some("Top-level functions"), "{order:?}");
    let mut namespaces = order[1..].to_vec();
    namespaces.sort();
    assert_eq!(order[1..], namespaces[..], "namespaces in order");
    for name in documented() {
        let heading = match name.rsplit_once("::") {
            Some((ns, _)) => format!("{ns}::"),
            None => "Top-level functions".to_string(),
        };
        assert!(sections.get(&heading).is_some_and(|s| s.contains(&name)), "`{name}` is not under `## {heading}`");
    }
    // Each entry carries its signature and its documentation.
    let entry = r.stdout.split("### `fs::exists`").nth(1).expect("fs::exists entry");
    assert!(entry.contains("fs::exists(path: &str) -> bool"), "{entry}");
    assert!(entry.contains("True when the file or folder exists."), "{entry}");
    // The bundled modules are documented under the namespace they are
    // imported as, with the import line.
    for f in ["canary::run", "blue_green::run", "rolling::run", "fleet::run", "gates::evaluate", "semver::parse"] {
        let ns = f.split("::").next().unwrap();
        assert!(sections.get(&format!("{ns}::")).is_some_and(|s| s.contains(f)), "`{f}` is in the reference");
        assert!(r.stdout.contains(&format!("`import \"capstan/{ns}\" as {ns};`")), "{ns}'s import line");
    }
}

#[test]
fn markdown_goes_to_the_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("API.md");
    let r = capstan(&["doc", "--markdown", "-o", file.to_str().unwrap()]);
    r.code(0);
    assert!(r.stdout.is_empty());
    assert!(std::fs::read_to_string(file).unwrap().starts_with("# capstan script API"));
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let r = capstan(&["man"]);
    r.code(0);
    assert!(r.stdout.starts_with(".TH capstan 1"), "{}", &r.stdout[..r.stdout.len().min(200)]);
    for section in
        [".SH SYNOPSIS", ".SH \"EXIT STATUS\"", ".SH \"CAPSTAN RUN\"", ".SH \"CAPSTAN NEW\"", ".SH \"CAPSTAN MAN\""]
    {
        assert!(r.stdout.contains(section), "{section} missing");
    }
    assert!(r.stdout.contains(r"\-\-dry\-run"), "run's options are there");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capstan.1");
    capstan(&["man", "-o", file.to_str().unwrap()]).code(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), r.stdout);

    // groff comes with scripts/install-test-deps.
    let Ok(out) = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&file).output() else {
        eprintln!("groff is not installed: rendering skipped (scripts/install-test-deps installs it)");
        return;
    };
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warnings.trim().is_empty(), "groff: {warnings}");
}
