//! Jenkins: a declarative pipeline, one stage per phase. Each stage takes an
//! agent of its own and gets the journal and the phases' artifacts from the
//! stage before with `stash`/`unstash`; a gated stage waits at an `input`
//! before it takes one. One build of the job at a time.

use super::lines::{header, note, tools_note, Lines};
use super::pipeline::{Pipeline, JOURNAL_DIR};
use super::setup::{install_unless_present, Install, VERSION};
use crate::cli::args::Platform;

const STASH: &str = "capstan-workspace";

/// With `--state`, the run's name: the build's tag (job and build number).
const RUN_NAME: &str = "\"$BUILD_TAG\"";

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    header(&mut out, "//", p, "jenkins", "Jenkinsfile");
    let gated: Vec<&str> = p.jobs.iter().filter(|j| j.approvals.gated()).map(|j| j.phase.as_str()).collect();
    note(&mut out, "//", &["Approvals: these stages wait for a person at an input step:"], &gated);
    let secrets = "Secrets the playbook reads: add them as \"Secret text\" credentials with these ids:";
    note(&mut out, "//", &[secrets], &p.secrets);
    tools_note(&mut out, "//", Platform::Jenkins, &p.settings, &p.tools);
    // Four spaces per level, as Jenkinsfiles are usually written.
    let d = |n: usize| n * 2;
    out.push(0, "pipeline {");
    out.push(d(1), "agent none");
    // A second build waits for the first: two deploys at once would race.
    out.block(d(1), ["options {", "    disableConcurrentBuilds()", "}"]);
    if !p.params.is_empty() {
        out.push(d(1), "parameters {");
        for param in &p.params {
            out.push(
                d(2),
                format!(
                    "string(name: {}, defaultValue: {}, description: {})",
                    groovy(&param.env),
                    groovy(param.default.as_deref().unwrap_or("")),
                    groovy(&param.description())
                ),
            );
        }
        out.push(d(1), "}");
    }
    out.push(d(1), "environment {");
    out.push(d(2), format!("CAPSTAN_VERSION = {}", groovy(VERSION)));
    out.push(d(1), "}");
    out.push(d(1), "stages {");
    if !p.checks.is_empty() {
        // `failFast` stops the other checks when one fails; the stages
        // after this one never start.
        out.push(d(2), "stage('checks') {");
        out.push(d(3), "failFast true");
        out.push(d(3), "parallel {");
        for (i, check) in p.checks.iter().enumerate() {
            out.push(d(4), format!("stage({}) {{", groovy(&check.phase)));
            out.push(d(5), "agent any");
            out.push(d(5), "steps {");
            let mut script = install_lines(p);
            script.extend(p.param_checks());
            script.push(p.check_command(i, "plain"));
            shell(&mut out, p, d(6), &script);
            out.push(d(5), "}");
            out.block(d(5), ["post {", "    always {"]);
            out.push(d(7), format!("junit testResults: {}, allowEmptyResults: true", groovy(&p.check_junit(i))));
            out.block(d(5), ["    }", "}"]);
            out.push(d(4), "}");
        }
        out.push(d(3), "}");
        out.push(d(2), "}");
    }
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(d(2), format!("stage({}) {{", groovy(&job.phase)));
        if job.approvals.gated() {
            out.push(d(3), "input {");
            out.push(d(4), format!("message {}", groovy(&format!("Run phase {} of {}?", job.phase, p.playbook))));
            out.push(d(4), format!("ok {}", groovy(&format!("Run {}", job.phase))));
            out.push(d(3), "}");
        }
        out.push(d(3), "agent any");
        out.push(d(3), "steps {");
        if i > 0 && !p.carried(i - 1).is_empty() {
            out.push(d(4), format!("unstash {}", groovy(STASH)));
        }
        let mut script = install_lines(p);
        if i == 0 {
            script.extend(p.param_checks());
        }
        script.push(p.command(i, "plain", RUN_NAME));
        shell(&mut out, p, d(4), &script);
        out.push(d(3), "}");
        out.push(d(3), "post {");
        out.push(d(4), "always {");
        let carried = p.carried(i);
        if !carried.is_empty() {
            let stash = format!(
                "stash name: {}, includes: {}, allowEmpty: true",
                groovy(STASH),
                groovy(&ant_patterns(&carried))
            );
            out.push(d(5), stash);
        }
        if p.settings.state.is_none() {
            let archive = groovy(&format!("{JOURNAL_DIR}/**"));
            out.push(d(5), format!("archiveArtifacts artifacts: {archive}, allowEmptyArchive: true"));
        }
        out.push(d(5), format!("junit testResults: {}, allowEmptyResults: true", groovy(&p.junit(i))));
        out.push(d(4), "}");
        out.push(d(3), "}");
        out.push(d(2), "}");
    }
    out.push(d(1), "}");
    out.push(0, "}");
    out.finish()
}

/// The shell lines that put capstan on PATH.
fn install_lines(p: &Pipeline) -> Vec<String> {
    match &p.settings.install {
        Install::Cargo => vec!["export PATH=\"$HOME/.cargo/bin:$PATH\"".to_string(), install_unless_present()],
        Install::Command(line) => vec![line.clone()],
        Install::Nothing => Vec::new(),
    }
}

/// An `sh` step running `script`, with the secrets bound as credentials.
fn shell(out: &mut Lines, p: &Pipeline, depth: usize, script: &[String]) {
    let mut inner = depth;
    if !p.secrets.is_empty() {
        let bindings: Vec<String> = p
            .secrets
            .iter()
            .map(|s| format!("string(credentialsId: {}, variable: {})", groovy(s), groovy(s)))
            .collect();
        out.push(depth, format!("withCredentials([{}]) {{", bindings.join(", ")));
        inner += 2;
    }
    out.push(inner, "sh '''");
    let lines: Vec<String> = script.iter().map(|l| groovy_escape(l)).collect();
    out.block(inner + 2, &lines);
    out.push(inner, "'''");
    if !p.secrets.is_empty() {
        out.push(depth, "}");
    }
}

/// `stash`'s `includes`: Ant patterns, comma-separated. A folder is its
/// files (`dir/**`); a path that may be either gets both.
fn ant_patterns(paths: &[String]) -> String {
    let mut patterns = Vec::new();
    for p in paths {
        if let Some(dir) = p.strip_suffix('/') {
            patterns.push(format!("{dir}/**"));
        } else {
            patterns.push(p.clone());
            patterns.push(format!("{p}/**"));
        }
    }
    patterns.join(", ")
}

/// A Groovy single-quoted string: no interpolation.
fn groovy(s: &str) -> String {
    format!("'{}'", groovy_escape(s))
}

fn groovy_escape(s: &str) -> String {
    s.replace('\\', r"\\").replace('\'', r"\'")
}
