//! `CircleCI`: one job per phase in one workflow, the journal carried in the
//! workspace. A gated phase waits for an approval job (`type: approval`)
//! placed before it.

use super::lines::{header, Lines, VERSION};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};

/// Where `cargo install` puts capstan, so the cache holds only capstan.
const INSTALL_ROOT: &str = "~/.capstan-bin";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "#", p, "circleci", ".circleci/config.yml");
    let context = format!("capstan-{}", identifier(&p.stem));
    if !p.secrets.is_empty() {
        out.push(0, "#");
        out.push(
            0,
            format!("# Secrets the playbook reads: add them as environment variables to the context {context}:"),
        );
        out.push(0, format!("#   {}", p.secrets.join(", ")));
    }
    out.push(0, "version: 2.1");
    if !p.params.is_empty() {
        out.push(0, "parameters:");
        for param in &p.params {
            out.push(1, format!("{}:", param.input));
            out.push(2, "type: string");
            out.push(2, format!("default: {}", yaml_string(param.default.as_deref().unwrap_or(""))));
            out.push(2, format!("description: {}", yaml(&param.description())));
        }
    }
    out.push(0, "commands:");
    out.push(1, "install-capstan:");
    out.push(2, "steps:");
    out.push(3, "- restore_cache:");
    out.push(5, "keys:");
    out.push(6, format!("- capstan-v{VERSION}"));
    out.push(3, "- run:");
    out.push(5, "name: Install capstan");
    out.push(5, "command: |");
    out.push(6, "echo 'export PATH=\"$HOME/.capstan-bin/bin:$PATH\"' >> \"$BASH_ENV\"");
    out.push(
        6,
        format!("[ -x {INSTALL_ROOT}/bin/capstan ] || cargo install capstan --locked --version {VERSION} --root {INSTALL_ROOT}"),
    );
    out.push(3, "- save_cache:");
    out.push(5, format!("key: capstan-v{VERSION}"));
    out.push(5, "paths:");
    out.push(6, format!("- {INSTALL_ROOT}"));
    out.push(0, "jobs:");
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(1, format!("{}:", job.id));
        out.push(2, "docker:");
        out.push(3, "- image: rust:1");
        if i == 0 && !p.params.is_empty() {
            out.push(2, "environment:");
            for param in &p.params {
                out.push(3, format!("{}: << pipeline.parameters.{} >>", param.env, param.input));
            }
        }
        out.push(2, "steps:");
        out.push(3, "- checkout");
        out.push(3, "- install-capstan");
        if i > 0 {
            out.push(3, "- attach_workspace:");
            out.push(5, "at: .");
        }
        out.push(3, "- run:");
        out.push(5, format!("name: {}", yaml(&format!("capstan: phase {}", job.phase))));
        out.push(5, "command: |");
        if i == 0 {
            out.block(6, &p.param_checks());
        }
        out.push(6, p.command(i, "plain"));
        out.push(3, "- persist_to_workspace:");
        out.push(5, "root: .");
        out.push(5, "paths:");
        out.push(6, format!("- {JOURNAL_DIR}"));
        out.push(3, "- store_test_results:");
        out.push(5, format!("path: {}", p.junit(i)));
        out.push(3, "- store_artifacts:");
        out.push(5, format!("path: {JOURNAL_DIR}"));
    }
    out.push(0, "workflows:");
    out.push(1, format!("{}:", identifier(&p.stem)));
    out.push(2, "jobs:");
    let mut previous: Option<String> = None;
    for job in &p.jobs {
        if job.approvals.gated() {
            let gate = format!("approve-{}", job.id);
            out.push(3, format!("- {gate}:"));
            out.push(5, "type: approval");
            if let Some(prev) = &previous {
                out.push(5, format!("requires: [{prev}]"));
            }
            previous = Some(gate);
        }
        let mut options = Vec::new();
        if !p.secrets.is_empty() {
            options.push(format!("context: [{context}]"));
        }
        if let Some(prev) = &previous {
            options.push(format!("requires: [{prev}]"));
        }
        // `- build:` with nothing under it is null, which CircleCI's schema
        // rejects: a job without options is listed by name alone.
        if options.is_empty() {
            out.push(3, format!("- {}", job.id));
        } else {
            out.push(3, format!("- {}:", job.id));
            for option in options {
                out.push(5, option);
            }
        }
        previous = Some(job.id.clone());
    }
    out.finish()
}

/// A string that always reads back as a string, the empty one included.
fn yaml_string(s: &str) -> String {
    if s.is_empty() {
        "\"\"".into()
    } else {
        yaml(s)
    }
}

/// Letters, digits, `-` and `_`, for context and workflow names.
fn identifier(s: &str) -> String {
    let id: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    if id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id
    } else {
        format!("p{id}")
    }
}
