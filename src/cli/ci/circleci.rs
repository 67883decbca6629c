//! `CircleCI`: one job per phase in one workflow, the journal carried in the
//! workspace. A gated phase waits for an approval job (`type: approval`)
//! placed before it.

use super::lines::{header, note, Lines, VERSION};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};

/// Where `cargo install` puts capstan, so the cache holds only capstan.
const INSTALL_ROOT: &str = "~/.capstan-bin";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "#", p, "circleci", ".circleci/config.yml");
    let context = format!("capstan-{}", identifier(&p.stem));
    let secrets = format!("Secrets the playbook reads: add them as environment variables to the context {context}:");
    note(&mut out, "#", &[&secrets], &p.secrets);
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
            [ -x {INSTALL_ROOT}/bin/capstan ] || cargo install capstan --locked --version {VERSION} --root {INSTALL_ROOT}
      - save_cache:
          key: capstan-v{VERSION}
          paths:
            - {INSTALL_ROOT}
jobs:"
    );
    out.block(0, install.lines());
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(1, format!("{}:", job.id));
        out.block(2, ["docker:", "  - image: rust:1"]);
        if i == 0 && !p.params.is_empty() {
            out.push(2, "environment:");
            for param in &p.params {
                out.push(3, format!("{}: << pipeline.parameters.{} >>", param.env, param.input));
            }
        }
        out.block(2, ["steps:", "  - checkout", "  - install-capstan"]);
        if i > 0 {
            out.block(3, ["- attach_workspace:", "    at: ."]);
        }
        out.push(3, "- run:");
        out.push(5, format!("name: {}", yaml(&format!("capstan: phase {}", job.phase))));
        out.push(5, "command: |");
        if i == 0 {
            out.block(6, p.param_checks());
        }
        out.push(6, p.command(i, "plain"));
        let keep = format!(
            "\
- persist_to_workspace:
    root: .
    paths:
      - {JOURNAL_DIR}
- store_test_results:
    path: {}
- store_artifacts:
    path: {JOURNAL_DIR}",
            p.junit(i)
        );
        out.block(3, keep.lines());
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
