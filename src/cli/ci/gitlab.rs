//! GitLab CI: one stage and one job per phase. Gated phases are manual jobs
//! (`when: manual`, blocking) in an environment named after the phase, so a
//! protected environment can say who may start them.

use super::lines::{header, note, Lines, INSTALL_UNLESS_PRESENT, VERSION};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};

/// Where `cargo install` puts capstan: GitLab caches only paths inside the project.
const INSTALL_ROOT: &str = ".capstan-bin";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "#", p, "gitlab", ".gitlab-ci.yml");
    let gated: Vec<&str> = p.jobs.iter().filter(|j| j.approvals.gated()).map(|j| j.id.as_str()).collect();
    let approvals = [
        "Approvals: these jobs are started by hand; protect their environments",
        "(Settings > CI/CD > Protected environments) to say who may start them:",
    ];
    note(&mut out, "#", &approvals, &gated);
    let secrets = [
        "Secrets the playbook reads: add them as masked CI/CD variables",
        "(Settings > CI/CD > Variables); GitLab gives them to every job as",
        "environment variables of the same name:",
    ];
    note(&mut out, "#", &secrets, &p.secrets);
    out.push(0, "stages:");
    for job in &p.jobs {
        out.push(1, format!("- {}", job.id));
    }
    out.push(0, "variables:");
    out.push(1, format!("CAPSTAN_VERSION: {}", yaml(VERSION)));
    for param in &p.params {
        out.push(1, format!("{}:", param.env));
        out.push(2, format!("value: {}", yaml(param.default.as_deref().unwrap_or(""))));
        out.push(2, format!("description: {}", yaml(&param.description())));
    }
    let default = format!(
        "\
default:
  image: rust:1
  cache:
    key: capstan-$CAPSTAN_VERSION
    paths:
      - {INSTALL_ROOT}/
  before_script:"
    );
    out.block(0, default.lines());
    out.push(2, yaml_item(&format!("export PATH=\"$CI_PROJECT_DIR/{INSTALL_ROOT}/bin:$PATH\"")));
    out.push(2, yaml_item(&format!("{INSTALL_UNLESS_PRESENT} --root \"$CI_PROJECT_DIR/{INSTALL_ROOT}\"")));
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(0, "");
        out.push(0, format!("{}:", job.id));
        out.push(1, format!("stage: {}", job.id));
        if i > 0 {
            out.push(1, format!("needs: [{}]", p.jobs[i - 1].id));
        }
        if job.approvals.gated() {
            out.push(1, "when: manual");
            out.push(1, "allow_failure: false");
            out.push(1, "environment:");
            out.push(2, format!("name: {}", job.id));
        }
        out.push(1, "script:");
        if i == 0 {
            for check in p.param_checks() {
                out.push(2, yaml_item(&check));
            }
        }
        out.push(2, yaml_item(&p.command(i, "plain")));
        let artifacts = format!(
            "\
artifacts:
  when: always
  paths:
    - {JOURNAL_DIR}/
  reports:
    junit: {}",
            p.junit(i)
        );
        out.block(1, artifacts.lines());
    }
    out.finish()
}

/// A list item holding one shell line.
fn yaml_item(line: &str) -> String {
    let plain = !line.contains([':', '#', '"', '\'', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`'])
        && !line.starts_with(['-', '?', ' ']);
    if plain {
        format!("- {line}")
    } else {
        format!("- {}", yaml_quoted(line))
    }
}

fn yaml_quoted(s: &str) -> String {
    let q = yaml(s);
    if q.starts_with(['\'', '"']) {
        q
    } else {
        format!("'{s}'")
    }
}
