//! `capstan check`: the arguments and the rendering. Each playbook is
//! compiled with strict variables and its top level evaluated as `list`
//! does; the lint engine ([`crate::playbook::lint`]) finds what is wrong.
//! Exit 0 clean or warnings only, 1 errors, 2 does not compile.

use std::path::Path;

use rhai::{Engine, AST};

use super::args::CheckArgs;
use crate::diagnostics::{render_finding, Site};
use crate::error::Error;
use crate::exit;
use crate::launch::compile_text;
use crate::playbook::lint::{self, plural, Finding, Severity};
use crate::session::inspection;
use crate::state::TopLevelBudget;

pub fn check(args: &CheckArgs) -> Result<(), Error> {
    if !args.compliance.is_empty() {
        return super::compliance::run(&args.compliance, args.json, args.sarif.as_deref());
    }
    let mut worst = exit::OK;
    let mut all = Vec::new();
    for path in &args.playbooks {
        // One playbook that cannot be read or compiled does not stop the others.
        let text = match crate::launch::read_playbook(path) {
            Ok(t) => t,
            Err(e) => {
                worst = worst.max(e.code());
                e.report();
                continue;
            }
        };
        let checked = check_text(path, &text, TopLevelBudget::default());
        if let Some(error) = &checked.error {
            error.report();
        }
        worst = worst.max(checked.code);
        all.extend(checked.findings);
    }
    if args.json {
        outln!("{}", findings_json(&all));
    } else {
        crate::err!("{}", render_findings(&all));
        if worst == exit::OK {
            let warnings = if all.is_empty() { "no findings".to_string() } else { plural(all.len(), "warning") };
            crate::errln!(
                "{} {} checked, {warnings}",
                console::style("✓").green(),
                plural(args.playbooks.len(), "playbook")
            );
        } else if !all.is_empty() {
            crate::errln!("{} {}", console::style("✗").red(), plural(all.len(), "finding"));
        }
    }
    if worst == exit::OK {
        Ok(())
    } else {
        Err(Error::Failed { code: worst, diagnostic: None })
    }
}

/// What checking one playbook found.
pub(crate) struct Checked {
    /// 0 clean, 1 findings, 2 does not compile or the top level never ends.
    pub code: i32,
    pub findings: Vec<Finding>,
    /// The error that stopped the check (exit 2).
    pub error: Option<Error>,
}

/// Check one playbook's text; `path` names it (and is its import root's child).
pub(crate) fn check_text(path: &Path, text: &str, budget: TopLevelBudget) -> Checked {
    let (state, engine) = inspection(&crate::launch::playbook_root(path), budget);
    let loaded = match compile_text(&engine, path, text, &state.services) {
        Ok(l) => l,
        Err(e) => return Checked { code: e.code(), findings: Vec::new(), error: Some(e) },
    };
    // The top level runs here as it does for `list`: one that never ends
    // is a script error (exit 2). Its other failures depend on the
    // environment (params, files) and are the run's to report.
    if let Err(e) = crate::executor::declare(&state, &engine, &loaded.ast) {
        if crate::executor::classify::interruption(&e) == Some(crate::cancel::Interrupt::TopLevelBudget) {
            let error = Error::Script { diagnostic: state.services.render_error(&e, &path.to_string_lossy()) };
            return Checked { code: error.code(), findings: Vec::new(), error: Some(error) };
        }
    }
    let findings = lint::findings(&engine, &loaded.ast, path, text);
    let code = if findings.iter().any(|f| f.severity == Severity::Error) { exit::FAILED } else { exit::OK };
    Checked { code, findings, error: None }
}

/// What `run` refuses before anything runs ([`lint::refusals`]), rendered;
/// `None` when nothing is refused.
pub(crate) fn refusal(engine: &Engine, ast: &AST, path: &Path) -> Option<String> {
    let findings = lint::refusals(engine, ast, path);
    (!findings.is_empty()).then(|| render_findings(&findings))
}

/// `check --json`: the findings as a JSON array.
pub(crate) fn findings_json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_default()
}

/// The findings as the terminal shows them.
pub(crate) fn render_findings(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let site = Site { source: f.file.clone(), line: f.line, column: f.column };
        out.push_str(&render_finding(&site, f.severity.label(), &f.message, f.hint.as_deref()));
    }
    out
}
