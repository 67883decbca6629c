//! `capstan init`: analyse an existing repository and write its deployment:
//! `deploy.rhai` with the stack's own commands, a Dockerfile and
//! `.dockerignore` when it has none, Kubernetes manifests when it deploys to
//! Kubernetes, and the quality gates and rollback runbook `capstan new`
//! writes. Existing files are kept unless `--force`.

pub(super) mod detect;
mod dockerfile;
mod k8s;
mod playbook;

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::args::{InitArgs, Template};
use super::new::{template_files, valid_name, write};
use crate::error::Error;
use detect::Project;

/// One file `init` would write, and what happened to it.
#[derive(Debug, Serialize)]
struct Planned {
    path: String,
    /// `written`, `replaced` (`--force`), `kept` (exists; not touched), or
    /// `would write` / `would replace` under `--dry-run`.
    action: &'static str,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    dir: String,
    detected: &'a Project,
    /// Why each generated piece is there, as sentences.
    notes: Vec<String>,
    files: Vec<Planned>,
    dry_run: bool,
}

/// A name Kubernetes, Docker and the playbook all take: lower case,
/// letters, digits and `-`.
fn sanitized(name: &str) -> String {
    let mapped: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    mapped.trim_matches('-').to_string()
}

/// The service's name: `--name`, the manifest's, else the folder's.
fn service_name(args: &InitArgs, root: &Path) -> Result<String, Error> {
    if let Some(given) = &args.name {
        if !valid_name(given) {
            return Err(Error::usage_with_hint(
                format!("`{given}` is not a usable service name"),
                "a service name is letters, digits, `-`, `_` and `.`, starting with a letter or digit",
            ));
        }
        return Ok(given.clone());
    }
    let folder = root.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    [detect::manifest_name(root), folder]
        .into_iter()
        .flatten()
        .map(|n| sanitized(&n))
        .find(|n| valid_name(n))
        .ok_or_else(|| {
            Error::usage_with_hint(
                format!("no usable service name in {}", root.display()),
                "pass --name NAME (letters, digits, `-`, `_` and `.`)",
            )
        })
}

/// The deploy targets the playbook drives, with what `init` writes itself.
fn targets<'a>(p: &'a Project, manifests: &'a [(String, String)], own: bool, image: bool) -> playbook::Targets<'a> {
    playbook::Targets {
        image,
        terraform: &p.deploy.terraform,
        charts: &p.deploy.charts,
        manifests,
        own_deployment: own,
    }
}

fn plan_files(args: &InitArgs, p: &Project, notes: &mut Vec<String>) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let stack = p.stack.as_ref();
    // A Dockerfile an earlier `capstan init` wrote is its own to rewrite (with --force).
    let ours_before = std::fs::read_to_string(args.dir.join("Dockerfile"))
        .is_ok_and(|t| t.lines().next().is_some_and(|l| l.contains(dockerfile::MARK)));
    let write_dockerfile = stack.is_some() && (!p.deploy.dockerfile || ours_before);
    let image = p.deploy.dockerfile || write_dockerfile;
    if let Some(stack) = stack.filter(|_| write_dockerfile) {
        files.push(("Dockerfile".to_string(), dockerfile::render(p, stack)));
        notes.push(match &p.health_path {
            Some(path) => format!("Dockerfile written; HEALTHCHECK probes {path} (named in the sources)"),
            None => "Dockerfile written; no health route named in the sources, so HEALTHCHECK probes /".to_string(),
        });
    } else if p.deploy.dockerfile && !write_dockerfile {
        notes.push("Dockerfile found: the playbook builds and pushes it".to_string());
    }
    if image {
        files.push((".dockerignore".to_string(), dockerfile::DOCKERIGNORE.to_string()));
    }
    // Manifests an earlier `capstan init` wrote are its own again, not the repository's.
    let ours = |m: &(String, String)| m.0.starts_with(&format!("{}/", k8s::DIR));
    let written_before = p.deploy.manifests.iter().any(ours);
    let mut manifests: Vec<(String, String)> = p.deploy.manifests.iter().filter(|m| !ours(m)).cloned().collect();
    let own_k8s = stack.is_some() && manifests.is_empty() && p.deploy.charts.is_empty();
    let own_k8s = own_k8s && (args.k8s || p.deploy.kubernetes || written_before);
    if own_k8s {
        for (file, text) in k8s::render(p) {
            files.push((format!("{}/{file}", k8s::DIR), text));
        }
        manifests.push((k8s::DIR.to_string(), format!("deployment/{}", p.name)));
        notes.push(format!("{}/ written: Deployment, Service, HorizontalPodAutoscaler, NetworkPolicy", k8s::DIR));
    }
    for (m, w) in p.deploy.manifests.iter().filter(|m| !ours(m)) {
        notes.push(format!("Kubernetes manifest {m}: kubectl apply, then rollout status of {w}"));
    }
    for c in &p.deploy.charts {
        notes.push(format!("Helm chart {c}: helm upgrade --install"));
    }
    for t in &p.deploy.terraform {
        notes.push(format!("Terraform in {t}: plan, approval, apply"));
    }
    let t = targets(p, &manifests, own_k8s, image);
    let dockerfile = image;
    files.insert(0, ("deploy.rhai".to_string(), playbook::render(p, &t, dockerfile)));
    // The gates and runbook of the `new` template that deploys the same way.
    let template = if image {
        Template::Container
    } else if p.deploy.terraform.is_empty() {
        Template::Basic
    } else {
        Template::Terraform
    };
    for (rel, text) in template_files(template) {
        if rel == "quality_gates.yaml" || rel == "docs/ROLLBACK.md" {
            files.push((rel.to_string(), text.replace("{{service}}", &p.name)));
        }
        if rel == ".gitignore" && !Path::new(&args.dir).join(".gitignore").exists() {
            files.push((
                rel.to_string(),
                format!("{text}# Dependencies and build output\n.venv/\nnode_modules/\ntarget/\n"),
            ));
        }
    }
    files
}

fn commands_line(name: &str, commands: &[detect::Command]) -> Option<String> {
    (!commands.is_empty()).then(|| {
        format!("{name}: {}", commands.iter().map(|c| format!("`{}`", c.argv.join(" "))).collect::<Vec<_>>().join(", "))
    })
}

pub fn init(args: &InitArgs) -> Result<(), Error> {
    let root = args.dir.as_path();
    if !root.is_dir() {
        return Err(Error::usage_with_hint(
            format!("{} is not a folder", root.display()),
            "pass the root of a repository: capstan init [DIR]",
        ));
    }
    // The one manifest read as data: a broken one is said, not guessed around.
    let package_json = root.join("package.json");
    if let Ok(text) = std::fs::read_to_string(&package_json) {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            return Err(Error::usage_with_hint(
                format!("{}:{}:{}: {message}", package_json.display(), e.line(), e.column()),
                "fix package.json (npm install would fail on it too), then run capstan init again",
            ));
        }
    }
    let Some(mut project) = detect::detect(root, String::new()) else {
        return Err(Error::usage_with_hint(
            format!("found nothing to build or deploy in {}", root.display()),
            format!("capstan init looked for {}", detect::LOOKED_FOR),
        ));
    };
    project.name = service_name(args, root)?;
    let mut notes: Vec<String> = ["lint", "build"]
        .iter()
        .zip([&project.commands.lint, &project.commands.build])
        .filter_map(|(n, c)| commands_line(n, c))
        .collect();
    if project.stack.is_some() && project.commands.test.is_empty() {
        notes.push("tests: none found".to_string());
    }
    let mut files = Vec::new();
    for (rel, text) in plan_files(args, &project, &mut notes) {
        let exists = root.join(&rel).exists();
        let action = match (exists, args.force, args.dry_run) {
            (true, false, _) => "kept",
            (true, true, false) => "replaced",
            (true, true, true) => "would replace",
            (false, _, false) => "written",
            (false, _, true) => "would write",
        };
        files.push(Planned { path: rel, action, text });
    }
    if !args.dry_run {
        for f in files.iter().filter(|f| f.action == "written" || f.action == "replaced") {
            write(root, &f.path, &f.text)?;
        }
    }
    let report = Report { dir: root.display().to_string(), detected: &project, notes, files, dry_run: args.dry_run };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &Report) {
    let p = r.detected;
    let mut headline = p.summary.clone();
    if !p.commands.test.is_empty() {
        let tests: Vec<String> = p.commands.test.iter().map(|t| format!("`{}`", t.argv.join(" "))).collect();
        let _ = write!(headline, "; tests: {}", tests.join(", "));
    }
    if let Some(f) = r.files.iter().find(|f| f.path == "Dockerfile") {
        let done = match f.action {
            "would write" => "to be written",
            "would replace" => "to be replaced",
            "kept" => "kept",
            other => other,
        };
        let _ = write!(headline, "; Dockerfile {done}");
    }
    crate::errln!("{} {headline}", console::style("✓").green());
    for note in &r.notes {
        crate::errln!("    {note}");
    }
    crate::errln!();
    for f in &r.files {
        let path = Path::new(&r.dir).join(&f.path);
        crate::errln!("    {:<14} {}", f.action, path.display());
    }
    let kept: Vec<&str> = r.files.iter().filter(|f| f.action == "kept").map(|f| f.path.as_str()).collect();
    if !kept.is_empty() {
        crate::errln!("\n{} exist already and were not touched; --force replaces them.", kept.join(", "));
    }
    let playbook = Path::new(&r.dir).join("deploy.rhai");
    crate::errln!("\nNext:\n    capstan check {0}\n    capstan run {0} --dry-run\n    capstan run {0} --to plan   # install, lint, test, build", playbook.display());
}
