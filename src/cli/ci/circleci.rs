//! `CircleCI`: one job per phase in one workflow, the journal and the
//! phases' artifacts carried in the workspace (which gathers what every
//! earlier job persisted). A gated phase waits for an approval job
//! (`type: approval`) placed before it. The jobs are in one serial group
//! per playbook and environment.

use super::lines::{header, note, tools_note, Lines};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};
use super::setup::{cargo_install, Install, VERSION};
use crate::cli::args::Platform;

/// Where `cargo install` puts capstan, so the cache holds only capstan.
const INSTALL_ROOT: &str = "~/.capstan-bin";

/// With `--state`, the run's name: the workflow's id.
const RUN_NAME: &str = "\"circleci-$CIRCLE_WORKFLOW_ID\"";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "#", p, "circleci", ".circleci/config.yml");
    let context = format!("capstan-{}", identifier(&p.stem));
    let secrets = format!("Secrets the playbook reads: add them as environment variables to the context {context}:");
    note(&mut out, "#", &[&secrets], &p.secrets);
    tools_note(&mut out, "#", Platform::Circleci, &p.settings, &p.tools);
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
    match &p.settings.install {
        Install::Cargo => {
            let install = format!(
                "\
commands:
  install-capstan:
    steps:
      - restore_cache:
          keys:
            - capstan-v{VERSION}
      - run:
          name: Install capstan
          command: |
            echo 'export PATH=\"$HOME/.capstan-bin/bin:$PATH\"' >> \"$BASH_ENV\"
            [ -x {INSTALL_ROOT}/bin/capstan ] || {} --root {INSTALL_ROOT}
      - save_cache:
          key: capstan-v{VERSION}
          paths:
            - {INSTALL_ROOT}",
                cargo_install()
            );
            out.block(0, install.lines());
        }
        Install::Command(line) => {
            out.block(0, ["commands:", "  install-capstan:", "    steps:", "      - run:"]);
            out.block(5, ["name: Install capstan", "command: |"]);
            out.push(6, line);
        }
        Install::Nothing => {}
    }
    out.push(0, "jobs:");
    let first_steps: &[&str] = match p.settings.install {
        Install::Nothing => &["steps:", "  - checkout"],
        _ => &["steps:", "  - checkout", "  - install-capstan"],
    };
    for (i, check) in p.checks.iter().enumerate() {
        out.push(1, format!("{}:", check.id));
        out.block(2, ["docker:".to_string(), format!("  - image: {}", p.settings.image())]);
        params_env(&mut out, p);
        out.block(2, first_steps);
        restore_caches(&mut out, p);
        out.push(3, "- run:");
        out.push(5, format!("name: {}", yaml(&format!("capstan: check {}", check.phase))));
        out.push(5, "command: |");
        out.block(6, p.param_checks());
        out.push(6, p.check_command(i, "plain"));
        save_caches(&mut out, p);
        out.block(3, ["- store_test_results:".to_string(), format!("    path: {}", p.check_junit(i))]);
    }
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(1, format!("{}:", job.id));
        out.block(2, ["docker:".to_string(), format!("  - image: {}", p.settings.image())]);
        if i == 0 {
            params_env(&mut out, p);
        }
        out.block(2, first_steps);
        restore_caches(&mut out, p);
        if i > 0 && !p.carried(i - 1).is_empty() {
            out.block(3, ["- attach_workspace:", "    at: ."]);
        }
        out.push(3, "- run:");
        out.push(5, format!("name: {}", yaml(&format!("capstan: phase {}", job.phase))));
        out.push(5, "command: |");
        if i == 0 {
            out.block(6, p.param_checks());
        }
        out.push(6, p.command(i, "plain", RUN_NAME));
        save_caches(&mut out, p);
        let shared = p.settings.state.is_some();
        if !shared || !job.artifacts.is_empty() {
            out.block(3, ["- persist_to_workspace:", "    root: .", "    paths:"]);
        }
        if !shared {
            out.push(6, format!("- {JOURNAL_DIR}"));
        }
        for a in &job.artifacts {
            out.push(6, format!("- {}", yaml(a.trim_end_matches('/'))));
        }
        out.block(3, ["- store_test_results:".to_string(), format!("    path: {}", p.junit(i))]);
        if !shared {
            out.block(3, ["- store_artifacts:".to_string(), format!("    path: {JOURNAL_DIR}")]);
        }
    }
    out.push(0, "workflows:");
    out.push(1, format!("{}:", identifier(&p.stem)));
    out.push(2, "jobs:");
    // Serial groups span the organisation: the project's slug keeps
    // another project's deploy of the same name apart.
    let group = format!(
        "<< pipeline.project.slug >>/{}",
        p.concurrency_group(|param| format!("<< pipeline.parameters.{} >>", param.input))
    );
    for check in &p.checks {
        // Checks take no serial group: they would wait for each other.
        out.push(3, format!("- {}:", check.id));
        out.push(5, format!("name: {}", check.id));
        if !p.secrets.is_empty() {
            out.push(5, format!("context: [{context}]"));
        }
    }
    // A failed check fails the workflow, and the first phase never starts.
    let mut previous: Option<String> = if p.checks.is_empty() { None } else { Some(p.check_ids().join(", ")) };
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
        let mut options = vec![format!("serial-group: {}", yaml(&group))];
        if !p.secrets.is_empty() {
            options.push(format!("context: [{context}]"));
        }
        if let Some(prev) = &previous {
            options.push(format!("requires: [{prev}]"));
        }
        // Never `- build:` with nothing under it (null, which CircleCI's
        // schema rejects): every job has its serial group.
        out.push(3, format!("- {}:", job.id));
        for option in options {
            out.push(5, option);
        }
        previous = Some(job.id.clone());
    }
    out.finish()
}

/// The params, for the jobs that start a run.
fn params_env(out: &mut Lines, p: &Pipeline) {
    if !p.params.is_empty() {
        out.push(2, "environment:");
        for param in &p.params {
            out.push(3, format!("{}: << pipeline.parameters.{} >>", param.env, param.input));
        }
    }
}

/// `{{ checksum "LOCK" }}` of each lock file: the dependency cache's key.
fn cache_key(cache: &super::shape::Cache) -> String {
    let sums: Vec<String> = cache.lock_files.iter().map(|f| format!("{{{{ checksum {} }}}}", json_string(f))).collect();
    format!("{}-v1-{}", cache.name, sums.join("-"))
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn restore_caches(out: &mut Lines, p: &Pipeline) {
    for cache in &p.caches {
        out.block(3, ["- restore_cache:", "    keys:"]);
        out.push(5, format!("- {}", yaml(&cache_key(cache))));
        out.push(5, format!("- {}-v1-", cache.name));
    }
}

fn save_caches(out: &mut Lines, p: &Pipeline) {
    for cache in &p.caches {
        out.block(
            3,
            ["- save_cache:".to_string(), format!("    key: {}", yaml(&cache_key(cache))), "    paths:".into()],
        );
        for path in cache.paths {
            out.push(5, format!("- {path}"));
        }
    }
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
