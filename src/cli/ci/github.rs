//! GitHub Actions: a workflow started by hand (`workflow_dispatch`), one job
//! per phase. Gated phases run in a protected environment named after the
//! phase, whose required reviewers are the approval.

use super::lines::{header, note, Lines, VERSION};
use super::pipeline::{yaml, Pipeline, JOURNAL_DIR};

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
    out.push(0, "jobs:");
    for (i, job) in p.jobs.iter().enumerate() {
        out.push(1, format!("{}:", job.id));
        out.push(2, format!("name: {}", yaml(&format!("phase {}", job.phase))));
        if i > 0 {
            out.push(2, format!("needs: {}", p.jobs[i - 1].id));
        }
        if job.approvals.gated() {
            out.push(2, format!("environment: {}", job.id));
        }
        out.push(2, "runs-on: ubuntu-latest");
        let params = if i == 0 { &p.params[..] } else { &[] };
        if !p.secrets.is_empty() || !params.is_empty() {
            out.push(2, "env:");
            for s in &p.secrets {
                out.push(3, format!("{}: ${{{{ {} }}}}", yaml(s), secret_ref(s)));
            }
            for param in params {
                out.push(3, format!("{}: ${{{{ inputs.{} }}}}", param.env, param.input));
            }
        }
        let install = format!(
            "\
steps:
  - uses: actions/checkout@v5
  - name: Restore capstan from the cache
    id: capstan-cache
    uses: actions/cache@v5
    with:
      path: ~/.cargo/bin/capstan
      key: capstan-${{{{ runner.os }}}}-{VERSION}
  - name: Install capstan
    if: steps.capstan-cache.outputs.cache-hit != 'true'
    run: cargo install capstan --locked --version {VERSION}"
        );
        out.block(2, install.lines());
        if i > 0 {
            let download = format!(
                "\
- name: Download the journal
  uses: actions/download-artifact@v7
  with:
    name: capstan-journal-{}
    path: {JOURNAL_DIR}",
                p.jobs[i - 1].id
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
        out.push(5, p.command(i, "github"));
        let upload = format!(
            "\
- name: Upload the journal
  if: always()
  uses: actions/upload-artifact@v6
  with:
    name: capstan-journal-{id}
    path: {JOURNAL_DIR}
    include-hidden-files: true
- name: Upload the JUnit report
  if: always()
  uses: actions/upload-artifact@v6
  with:
    name: junit-{id}
    path: {junit}
    if-no-files-found: ignore",
            id = job.id,
            junit = p.junit(i)
        );
        out.block(3, upload.lines());
    }
    out.finish()
}
