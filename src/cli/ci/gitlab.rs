//! GitLab CI: one stage and one job per phase. Gated phases are manual jobs
//! (`when: manual`, blocking) in an environment named after the phase, so a
//! protected environment can say who may start them. Each job's artifacts
//! are the journal and the phases' artifacts so far (`needs` hands a job only
//! those of the job before it); every job is in one resource group per
//! playbook and environment.

use super::lines::{header, note, tools_note, Lines};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};
use super::setup::{install_unless_present, Install, VERSION};
use crate::cli::args::Platform;

/// Where `cargo install` puts capstan: GitLab caches only paths inside the project.
const INSTALL_ROOT: &str = ".capstan-bin";

/// With `--state`, the run's name: the pipeline's id, which retrying a job keeps.
const RUN_NAME: &str = "\"gl-$CI_PIPELINE_ID\"";

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
    tools_note(&mut out, "#", Platform::Gitlab, &p.settings, &p.tools);
    let checks_stage = if p.jobs.iter().any(|j| j.id == "checks") { "capstan-checks" } else { "checks" };
    out.push(0, "stages:");
    if !p.checks.is_empty() {
        out.push(1, format!("- {checks_stage}"));
    }
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
    // GitLab caches only paths inside the project: the package managers
    // are told to keep their downloads there.
    for (name, value) in p.caches.iter().filter_map(|c| c.gitlab_env) {
        out.push(1, format!("{name}: {}", yaml_quoted(value)));
    }
    out.push(0, "default:");
    out.push(1, format!("image: {}", p.settings.image()));
    match &p.settings.install {
        Install::Cargo => {
            let cache = format!(
                "\
cache:
  key: capstan-$CAPSTAN_VERSION
  paths:
    - {INSTALL_ROOT}/
before_script:"
            );
            out.block(1, cache.lines());
            out.push(2, yaml_item(&format!("export PATH=\"$CI_PROJECT_DIR/{INSTALL_ROOT}/bin:$PATH\"")));
            out.push(2, yaml_item(&format!("{} --root \"$CI_PROJECT_DIR/{INSTALL_ROOT}\"", install_unless_present())));
        }
        Install::Command(line) => {
            out.push(1, "before_script:");
            out.push(2, yaml_item(line));
        }
        Install::Nothing => {}
    }
    let group = p.concurrency_group(|param| format!("${}", param.env));
    // Checks take no resource group: they would wait for each other.
    for (i, check) in p.checks.iter().enumerate() {
        out.push(0, "");
        out.push(0, format!("{}:", check.id));
        out.push(1, format!("stage: {checks_stage}"));
        out.push(1, "needs: []");
        caches(&mut out, p);
        out.push(1, "script:");
        for line in p.param_checks() {
            out.push(2, yaml_item(&line));
        }
        out.push(2, yaml_item(&p.check_command(i, "plain")));
        out.block(1, ["artifacts:", "  when: always"]);
        out.block(2, ["reports:".to_string(), format!("  junit: {}", p.check_junit(i))]);
    }
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(0, "");
        out.push(0, format!("{}:", job.id));
        out.push(1, format!("stage: {}", job.id));
        if i > 0 {
            out.push(1, format!("needs: [{}]", p.jobs[i - 1].id));
        } else if !p.checks.is_empty() {
            // A failed check fails the pipeline, and this job never starts.
            out.push(1, format!("needs: [{}]", p.check_ids().join(", ")));
        }
        out.push(1, format!("resource_group: {}", yaml(&group)));
        if job.approvals.gated() {
            out.push(1, "when: manual");
            out.push(1, "allow_failure: false");
            out.push(1, "environment:");
            out.push(2, format!("name: {}", job.id));
        }
        caches(&mut out, p);
        out.push(1, "script:");
        if i == 0 {
            for check in p.param_checks() {
                out.push(2, yaml_item(&check));
            }
        }
        out.push(2, yaml_item(&p.command(i, "plain", RUN_NAME)));
        out.block(1, ["artifacts:", "  when: always"]);
        let carried = p.carried(i);
        if !carried.is_empty() {
            out.push(2, "paths:");
        }
        for path in &carried {
            // The journal's folder reads back as itself; an artifact may hold a glob.
            out.push(
                3,
                if path == &format!("{JOURNAL_DIR}/") { format!("- {path}") } else { format!("- {}", yaml(path)) },
            );
        }
        out.block(2, ["reports:".to_string(), format!("  junit: {}", p.junit(i))]);
    }
    out.finish()
}

/// A job's caches: capstan's own (a job's `cache` replaces the default's)
/// and each dependency cache, keyed on its lock files (GitLab takes two).
fn caches(out: &mut Lines, p: &Pipeline) {
    if p.caches.is_empty() {
        return;
    }
    out.push(1, "cache:");
    if p.settings.install == Install::Cargo {
        out.block(
            2,
            ["- key: capstan-$CAPSTAN_VERSION".to_string(), "  paths:".into(), format!("    - {INSTALL_ROOT}/")],
        );
    }
    for cache in &p.caches {
        out.block(2, ["- key:", "    files:"]);
        for file in cache.lock_files.iter().take(2) {
            out.push(4, format!("- {}", yaml(file)));
        }
        out.push(3, format!("  prefix: {}", cache.name));
        out.push(2, "  paths:");
        for path in cache.gitlab_paths {
            out.push(4, format!("- {path}"));
        }
    }
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
