//! `capstan new`: a new service's playbook from a template: `deploy.rhai`,
//! the `quality_gates.yaml` it reads, the rollback runbook its compliance
//! phase requires, and what the template needs besides (a Dockerfile, a
//! Terraform layout).

use std::path::{Path, PathBuf};

use super::args::{NewArgs, Template};
use crate::error::Error;

/// Where the placeholder for the service's name sits in the template files.
const SERVICE: &str = "{{service}}";

const GITIGNORE: &str = include_str!("../templates/gitignore");

/// The files of one template, as (path in the new folder, text with
/// placeholders): every template has a playbook, its quality gates and a
/// rollback runbook; the container template adds a Dockerfile.
pub(super) fn template_files(template: Template) -> Vec<(&'static str, &'static str)> {
    let (playbook, gates, rollback) = match template {
        Template::Basic => (
            include_str!("../templates/basic.rhai"),
            include_str!("../templates/basic_gates.yaml"),
            include_str!("../templates/basic_rollback.md"),
        ),
        Template::Canary => (
            include_str!("../templates/canary.rhai"),
            include_str!("../templates/canary_gates.yaml"),
            include_str!("../templates/canary_rollback.md"),
        ),
        Template::Terraform => (
            include_str!("../templates/terraform.rhai"),
            include_str!("../templates/terraform_gates.yaml"),
            include_str!("../templates/terraform_rollback.md"),
        ),
        Template::Container => (
            include_str!("../templates/container.rhai"),
            include_str!("../templates/basic_gates.yaml"),
            include_str!("../templates/container_rollback.md"),
        ),
    };
    let mut files = vec![("deploy.rhai", playbook), ("quality_gates.yaml", gates), ("docs/ROLLBACK.md", rollback)];
    if template == Template::Container {
        files.push(("Dockerfile", include_str!("../templates/Dockerfile")));
    }
    files.push((".gitignore", GITIGNORE));
    files
}

/// The Terraform layout of the terraform template, from the same code as
/// `terraform::scaffold`: two environments with their own state, one module.
fn terraform_layout(provider: &str) -> Vec<(String, String)> {
    let envs = ["staging".to_string(), "production".to_string()];
    crate::templates::terraform::files(provider, &envs, &["app".to_string()])
        .into_iter()
        .map(|(rel, text)| (format!("infrastructure/{rel}"), text))
        .collect()
}

/// A name that is safe inside the playbook's strings, YAML, HCL and file names.
pub(super) fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The service's name: `--name`, else the folder's own name.
fn service_name(args: &NewArgs) -> Result<String, Error> {
    let from_folder = args.name.is_none();
    let name = if let Some(n) = &args.name {
        n.clone()
    } else {
        let absolute = if args.dir.is_absolute() {
            args.dir.clone()
        } else {
            std::env::current_dir().map_or_else(|_| args.dir.clone(), |cwd| cwd.join(&args.dir))
        };
        // `capstan new .` names the service after the current folder.
        let normalized: PathBuf = absolute.components().collect();
        let resolved = normalized.canonicalize().unwrap_or(normalized);
        resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    if valid_name(&name) {
        return Ok(name);
    }
    let message = if from_folder {
        format!("the folder's name `{name}` is not a usable service name")
    } else {
        format!("`{name}` is not a usable service name")
    };
    Err(Error::usage_with_hint(
        message,
        "a service name is letters, digits, `-`, `_` and `.`, starting with a letter or digit; pass --name NAME",
    ))
}

/// Refuse a path that is a file, or a folder with anything in it (unless `--force`).
fn check_target(dir: &Path, force: bool) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::usage_with_hint(
            format!("{} exists and is not a folder", dir.display()),
            "choose a folder that does not exist yet",
        ));
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot read", dir.to_path_buf(), e).with_hint("check its permissions"))?;
    if entries.next().is_some() && !force {
        return Err(Error::usage_with_hint(
            format!("{} exists and is not empty", dir.display()),
            "choose a new folder, or pass --force to write the template's files into it (same names are overwritten)",
        ));
    }
    Ok(())
}

pub(super) fn write(dir: &Path, rel: &str, text: &str) -> Result<(), Error> {
    let path = dir.join(rel);
    let result = match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).and_then(|()| std::fs::write(&path, text)),
        None => std::fs::write(&path, text),
    };
    result.map_err(|e| Error::io("cannot write", path.clone(), e).with_hint("check the folder's permissions"))
}

pub fn new(args: &NewArgs) -> Result<(), Error> {
    let name = service_name(args)?;
    let provider = args.provider.as_str();
    if !provider.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
        || provider.is_empty()
    {
        return Err(Error::usage_with_hint(
            format!("`{provider}` is not a provider name"),
            "use a Terraform provider's local name such as aws, google, azurerm, or none",
        ));
    }
    check_target(&args.dir, args.force)?;
    let mut written: Vec<(String, String)> = template_files(args.template)
        .into_iter()
        .map(|(rel, text)| (rel.to_string(), text.replace(SERVICE, &name)))
        .collect();
    if args.template == Template::Terraform {
        written.extend(terraform_layout(provider));
    }
    for (rel, text) in &written {
        write(&args.dir, rel, text)?;
    }

    let dir = args.dir.display();
    let template = format!("{:?}", args.template).to_lowercase();
    crate::errln!("{} created {dir} for `{name}` from the {template} template:", console::style("✓").green());
    for (rel, _) in &written {
        crate::errln!("    {}", args.dir.join(rel).display());
    }
    let playbook = args.dir.join("deploy.rhai");
    let playbook = playbook.display();
    crate::errln!();
    let real = match args.template {
        Template::Basic | Template::Container => format!("capstan run {playbook} --param version=1.0.0"),
        Template::Canary => format!("capstan run {playbook} --param version=1.0.0 --param haproxy_socket=PATH"),
        Template::Terraform => format!("capstan run {playbook} --param env=staging --approve apply"),
    };
    let next = [
        (format!("capstan check {playbook}"), "compile and lint the playbook"),
        (format!("capstan list {playbook}"), "its phases and params"),
        (format!("capstan run {playbook} --dry-run"), "every phase; nothing is changed"),
    ];
    let width = next.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    crate::errln!("Next:");
    for (command, what) in &next {
        crate::errln!("    {command:width$}   # {what}");
    }
    crate::errln!("    {real}");
    crate::errln!();
    crate::errln!("Then edit {dir}/quality_gates.yaml (the limits the playbook enforces) and {dir}/docs/ROLLBACK.md.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn service_names() {
        for (name, valid) in
            [("checkout", true), ("shop-api_v2.1", true), ("", false), ("-x", false), ("a b", false), ("a\"b", false)]
        {
            assert_eq!(valid_name(name), valid, "{name:?}");
        }
    }
}
