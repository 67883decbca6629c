//! GitLab CI: one stage and one job per phase. Gated phases are manual jobs
//! (`when: manual`, blocking) in an environment named after the phase, so a
//! protected environment can say who may start them.

use super::lines::{header, Lines, VERSION};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};

/// Where `cargo install` puts capstan: GitLab caches only paths inside the project.
const INSTALL_ROOT: &str = ".capstan-bin";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "#", p, "gitlab", ".gitlab-ci.yml");
    let gated: Vec<&str> = p.jobs.iter().filter(|j| j.approvals.gated()).map(|j| j.id.as_str()).collect();
    if !gated.is_empty() {
        out.push(0, "#");
        out.push(0, "# Approvals: these jobs are started by hand; protect their environments");
        out.push(0, "# (Settings > CI/CD > Protected environments) to say who may start them:");
        out.push(0, format!("#   {}", gated.join(", ")));
    }
    if !p.secrets.is_empty() {
        out.push(0, "#");
        out.push(0, "# Secrets the playbook reads: add them as masked CI/CD variables");
        out.push(0, "# (Settings > CI/CD > Variables); GitLab gives them to every job as");
        out.push(0, "# environment variables of the same name:");
        out.push(0, format!("#   {}", p.secrets.join(", ")));
    }
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
    out.push(0, "default:");
    out.push(1, "image: rust:1");
    out.push(1, "cache:");
    out.push(2, "key: capstan-$CAPSTAN_VERSION");
    out.push(2, "paths:");
    out.push(3, format!("- {INSTALL_ROOT}/"));
    out.push(1, "before_script:");
    out.push(2, yaml_item(&format!("export PATH=\"$CI_PROJECT_DIR/{INSTALL_ROOT}/bin:$PATH\"")));
    out.push(
        2,
        yaml_item(&format!(
            "capstan --version 2>/dev/null | grep -qxF \"capstan $CAPSTAN_VERSION\" || cargo install capstan --locked --version \"$CAPSTAN_VERSION\" --root \"$CI_PROJECT_DIR/{INSTALL_ROOT}\""
        )),
    );
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
        out.push(1, "artifacts:");
        out.push(2, "when: always");
        out.push(2, "paths:");
        out.push(3, format!("- {JOURNAL_DIR}/"));
        out.push(2, "reports:");
        out.push(3, format!("junit: {}", p.junit(i)));
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
