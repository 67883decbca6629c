//! GitHub Actions: a workflow started by hand (`workflow_dispatch`), one job
//! per phase. Gated phases run in a protected environment named after the
//! phase, whose required reviewers are the approval. Each job uploads the
//! journal and the artifacts so far as one artifact; the next job downloads
//! it. One workflow run per playbook and environment at a time.

use super::lines::{header, note, tools_note, Lines};
use super::pipeline::{yaml, Pipeline};
use super::setup::{cargo_install, Install, VERSION};
use crate::cli::args::Platform;

/// With `--state`, the run's name: GitHub's id of the workflow run, which
/// re-running failed jobs keeps.
const RUN_NAME: &str = "\"gh-$GITHUB_RUN_ID\"";

/// `secrets.NAME`, or `secrets['NAME']` for a name that is not an identifier.
fn secret_ref(name: &str) -> String {
    let identifier = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        format!("secrets.{name}")
    } else {
        format!("secrets['{}']", name.replace('\'', "''"))
    }
}

pub fn render(p: &Pipeline) -> String {
    let mut out = Lines::default();
    let output = format!(".github/workflows/{}.yml", p.stem);
    header(&mut out, "#", p, "github", &output);
    let gated: Vec<&str> = p.jobs.iter().filter(|j| j.approvals.gated()).map(|j| j.id.as_str()).collect();
    note(
        &mut out,
        "#",
        &["Approvals: add required reviewers to these environments (Settings > Environments):"],
        &gated,
    );
    note(&mut out, "#", &["Secrets the playbook reads (Settings > Secrets and variables > Actions):"], &p.secrets);
    tools_note(&mut out, "#", Platform::Github, &p.settings, &p.tools);
    out.push(0, format!("name: {}", yaml(&format!("capstan {}", p.stem))));
    out.push(0, "on:");
    out.push(1, "workflow_dispatch:");
    if !p.params.is_empty() {
        out.push(2, "inputs:");
        for param in &p.params {
            out.push(3, format!("{}:", param.input));
            out.push(4, format!("description: {}", yaml(&param.description())));
            out.push(4, format!("required: {}", param.required));
            out.push(4, "type: string");
            if let Some(d) = &param.default {
                out.push(4, format!("default: {}", yaml(d)));
            }
        }
    }
    out.push(0, "permissions:");
    out.push(1, "contents: read");
    // A second run of the same deploy waits for the first instead of
    // cancelling it halfway.
    out.push(0, "concurrency:");
    out.push(1, format!("group: {}", p.concurrency_group(|param| format!("${{{{ inputs.{} }}}}", param.input))));
    out.push(1, "cancel-in-progress: false");
    out.push(0, "jobs:");
    for (i, check) in p.checks.iter().enumerate() {
        out.push(1, format!("{}:", check.id));
        out.push(2, format!("name: {}", yaml(&format!("check {}", check.phase))));
        out.push(2, format!("runs-on: {}", p.settings.runs_on()));
        env(&mut out, p, true);
        out.block(2, ["steps:", "  - uses: actions/checkout@v5"]);
        install(&mut out, &p.settings.install);
        caches(&mut out, p);
        out.push(3, format!("- name: {}", yaml(&format!("capstan: check {}", check.phase))));
        out.push(4, "run: |");
        out.block(5, p.param_checks());
        out.push(5, p.check_command(i, "github"));
        upload_junit(&mut out, &check.id, &p.check_junit(i));
    }
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(1, format!("{}:", job.id));
        out.push(2, format!("name: {}", yaml(&format!("phase {}", job.phase))));
        if i > 0 {
            out.push(2, format!("needs: {}", p.jobs[i - 1].id));
        } else if !p.checks.is_empty() {
            // A failed check fails the workflow, and this job never starts.
            out.push(2, format!("needs: [{}]", p.check_ids().join(", ")));
        }
        if job.approvals.gated() {
            out.push(2, format!("environment: {}", job.id));
        }
        out.push(2, format!("runs-on: {}", p.settings.runs_on()));
        env(&mut out, p, i == 0);
        out.block(2, ["steps:", "  - uses: actions/checkout@v5"]);
        install(&mut out, &p.settings.install);
        caches(&mut out, p);
        if i > 0 && !p.carried(i - 1).is_empty() {
            let download = format!(
                "\
- name: Download the journal and the artifacts
  uses: actions/download-artifact@v7
  with:
    name: capstan-workspace-{}
    path: {}",
                p.jobs[i - 1].id,
                artifact_root(&p.carried(i - 1))
            );
            out.block(3, download.lines());
        }
        out.push(3, format!("- name: {}", yaml(&format!("capstan: phase {}", job.phase))));
        out.push(4, "run: |");
        if i == 0 {
            for check in p.param_checks() {
                out.push(5, check);
            }
        }
        out.push(5, p.command(i, "github", RUN_NAME));
        if !p.carried(i).is_empty() {
            let upload = format!(
                "\
- name: Upload the journal and the artifacts
  if: always()
  uses: actions/upload-artifact@v6
  with:
    name: capstan-workspace-{id}
    path: |
{paths}
    include-hidden-files: true",
                id = job.id,
                paths = p.carried(i).iter().map(|a| format!("      {a}")).collect::<Vec<_>>().join("\n"),
            );
            out.block(3, upload.lines());
        }
        upload_junit(&mut out, &job.id, &p.junit(i));
    }
    out.finish()
}

/// A job's environment: the secrets, and with `params` the params.
fn env(out: &mut Lines, p: &Pipeline, params: bool) {
    let params = if params { &p.params[..] } else { &[] };
    if !p.secrets.is_empty() || !params.is_empty() {
        out.push(2, "env:");
        for s in &p.secrets {
            out.push(3, format!("{}: ${{{{ {} }}}}", yaml(s), secret_ref(s)));
        }
        for param in params {
            out.push(3, format!("{}: ${{{{ inputs.{} }}}}", param.env, param.input));
        }
    }
}

fn upload_junit(out: &mut Lines, id: &str, junit: &str) {
    let upload = format!(
        "\
- name: Upload the JUnit report
  if: always()
  uses: actions/upload-artifact@v6
  with:
    name: junit-{id}
    path: {junit}
    if-no-files-found: ignore"
    );
    out.block(3, upload.lines());
}

/// The dependency caches, keyed on the hash of the stack's lock files.
fn caches(out: &mut Lines, p: &Pipeline) {
    for cache in &p.caches {
        let files: Vec<String> = cache.lock_files.iter().map(|f| format!("'**/{f}'")).collect();
        let name = cache.name;
        let step = format!(
            "\
- name: Cache the {name} dependencies
  uses: actions/cache@v5
  with:
    path: |
{paths}
    key: ${{{{ runner.os }}}}-{name}-${{{{ hashFiles({files}) }}}}
    restore-keys: |
      ${{{{ runner.os }}}}-{name}-",
            paths = cache.paths.iter().map(|a| format!("      {a}")).collect::<Vec<_>>().join("\n"),
            files = files.join(", "),
        );
        out.block(3, step.lines());
    }
}

/// The steps that put capstan on PATH.
fn install(out: &mut Lines, install: &Install) {
    match install {
        Install::Cargo => {
            let steps = format!(
                "\
- name: Restore capstan from the cache
  id: capstan-cache
  uses: actions/cache@v5
  with:
    path: ~/.cargo/bin/capstan
    key: capstan-${{{{ runner.os }}}}-{VERSION}
- name: Install capstan
  if: steps.capstan-cache.outputs.cache-hit != 'true'
  run: {}",
                cargo_install()
            );
            out.block(3, steps.lines());
        }
        Install::Command(line) => {
            out.block(3, ["- name: Install capstan", "  run: |"]);
            out.push(5, line);
        }
        Install::Nothing => {}
    }
}

/// Where the next job downloads the artifact to: upload-artifact stores
/// paths from the longest folder all its search paths (each path up to its
/// first wildcard) share, so the download goes back there.
fn artifact_root(paths: &[String]) -> String {
    let search: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| {
            let literal = p.find(['*', '?', '[']).map_or(p.as_str(), |i| &p[..i]);
            let mut parts: Vec<&str> = literal.split('/').filter(|s| !s.is_empty()).collect();
            // `dir/*.txt` searches `dir`; `dir/file` is its own search path.
            if literal.len() < p.len() && !literal.ends_with('/') {
                parts.pop();
            }
            parts
        })
        .collect();
    let Some(first) = search.first() else { return ".".into() };
    let mut common = first.clone();
    if search.len() > 1 {
        for parts in &search[1..] {
            let n = common.iter().zip(parts).take_while(|(a, b)| a == b).count();
            common.truncate(n);
        }
    }
    if common.is_empty() {
        ".".into()
    } else {
        common.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::artifact_root;

    #[test]
    fn the_artifact_root_is_the_search_paths_common_folder() {
        let root = |paths: &[&str]| artifact_root(&paths.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(root(&[".capstan-ci/"]), ".capstan-ci");
        assert_eq!(root(&[".capstan-ci/", "infra/capstan.tfplan"]), ".");
        assert_eq!(root(&[".capstan-ci/", ".capstan-ci/extra/*.json"]), ".capstan-ci");
        assert_eq!(root(&["dist/a/*.tar", "dist/b/x"]), "dist");
    }
}
