//! `capstan check`: compile with strict variables, then lint the AST:
//! calls to functions that do not exist, duplicate phase names, unknown
//! step options, literals a step would reject (errors); script functions
//! that hide a primitive (warnings). Exit 0 clean or warnings only, 1
//! errors, 2 does not compile.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};
use serde::Serialize;

use super::args::CheckArgs;
use crate::diagnostics::{render_finding, Site};
use crate::error::Error;
use crate::exit;
use crate::launch::{compile_text, inspection};
use crate::secrets::Redactor;
use crate::state::TopLevelBudget;

/// Functions the language provides as keywords rather than registered functions.
const KEYWORD_FUNCTIONS: &[&str] =
    &["print", "debug", "type_of", "Fn", "call", "curry", "is_shared", "is_def_fn", "is_def_var", "this"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// The run would fail on it: exit 1.
    Error,
    /// Likely a mistake, yet the run would go on: exit 0.
    Warning,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Finding {
    file: String,
    line: usize,
    column: usize,
    severity: Severity,
    rule: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

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
    let loaded = match compile_text(&engine, path, text, &Redactor::new()) {
        Ok(l) => l,
        Err(e) => return Checked { code: e.code(), findings: Vec::new(), error: Some(e) },
    };
    // The top level runs here as it does for `list`: one that never ends
    // is a script error (exit 2). Its other failures depend on the
    // environment (params, files) and are the run's to report.
    if let Err(e) = crate::executor::declare(&state, &engine, &loaded.ast) {
        if crate::executor::classify::interruption(&e) == Some(crate::cancel::Interrupt::TopLevelBudget) {
            let error = Error::Script {
                diagnostic: crate::diagnostics::render_eval(&e, &path.to_string_lossy(), &Redactor::new()),
            };
            return Checked { code: error.code(), findings: Vec::new(), error: Some(error) };
        }
    }
    let mut findings = lint(&engine, &loaded.ast, path);
    let written = crate::engine::compile_as_written(path, text).unwrap_or_else(|_| loaded.ast.clone());
    findings.extend(literal_findings(&written, path));
    findings.extend(top_level_mutations(&engine, &loaded.ast, path));
    let resolver = crate::engine::resolver::SandboxResolver::new(&crate::launch::playbook_root(path));
    let primitives = crate::playbook::shadows::primitives(&engine);
    let is_primitive = |name: &str, arity: usize| primitives.contains_key(&(name.to_string(), arity));
    for shadow in crate::playbook::shadows::shadows(path, text, &written, &resolver, is_primitive) {
        let hides = primitives.get(&(shadow.name.clone(), shadow.arity)).cloned().unwrap_or_default();
        findings.push(Finding {
            file: crate::diagnostics::shorten(&shadow.file),
            line: shadow.pos.line().unwrap_or(0),
            column: shadow.pos.position().unwrap_or(1),
            severity: Severity::Warning,
            rule: "shadowed-primitive",
            message: format!("function `{}` hides the primitive `{hides}`", shadow.name),
            hint: Some(format!(
                "calls to `{}` with {} in this file run this function, not the primitive; rename it",
                shadow.name,
                plural(shadow.arity, "argument")
            )),
        });
    }
    // The playbook's own findings first, then each module's.
    let own = path.to_string_lossy().into_owned();
    findings.sort_by_key(|f| (f.file != own, f.file.clone(), f.line, f.column));
    let code = if findings.iter().any(|f| f.severity == Severity::Error) { exit::FAILED } else { exit::OK };
    Checked { code, findings, error: None }
}

/// The literals a step would reject, as error findings.
fn literal_findings(written: &AST, path: &Path) -> Vec<Finding> {
    crate::playbook::literals::bad_literals(written)
        .into_iter()
        .map(|bad| Finding {
            file: path.to_string_lossy().into_owned(),
            line: bad.pos.line().unwrap_or(0),
            column: bad.pos.position().unwrap_or(1),
            severity: Severity::Error,
            rule: bad.rule,
            message: bad.message,
            hint: Some(bad.hint),
        })
        .collect()
}

/// What `run` refuses before anything runs: the literals `check` reports
/// as errors that the run would otherwise fail on midway, after earlier
/// steps changed things, and calls at the top level that would change the
/// world before any phase (on every dry run too). The rendered errors, or
/// `None`.
pub(crate) fn refusal(engine: &Engine, ast: &AST, path: &Path, text: &str) -> Option<String> {
    let mut findings = crate::engine::compile_as_written(path, text)
        .map(|written| literal_findings(&written, path))
        .unwrap_or_default();
    findings.extend(top_level_mutations(engine, ast, path));
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

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[derive(serde::Deserialize, Default)]
struct Meta {
    #[serde(default)]
    functions: Vec<Named>,
    #[serde(default)]
    modules: HashMap<String, Meta>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
}

/// Global function names, and the functions of each namespace (`helm::`...).
fn known_functions(engine: &Engine, ast: &AST) -> (BTreeSet<String>, HashMap<String, BTreeSet<String>>) {
    let mut names: BTreeSet<String> = KEYWORD_FUNCTIONS.iter().map(|s| (*s).to_string()).collect();
    let meta: Meta = engine
        .gen_fn_metadata_with_ast_to_json(ast, true)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    names.extend(meta.functions.into_iter().map(|f| f.name));
    let modules =
        meta.modules.into_iter().map(|(name, m)| (name, m.functions.into_iter().map(|f| f.name).collect())).collect();
    (names, modules)
}

fn lint(engine: &Engine, ast: &AST, path: &Path) -> Vec<Finding> {
    let file = path.to_string_lossy().into_owned();
    let (known, modules) = known_functions(engine, ast);
    let mut imported: BTreeSet<String> = BTreeSet::new();
    let mut qualified: Vec<(String, String, Position)> = Vec::new();
    // Names bound to values may hold closures, which are called like functions.
    let mut bound: BTreeSet<String> = BTreeSet::new();
    for f in ast.iter_fn_def() {
        bound.extend(f.params.iter().map(ToString::to_string));
    }
    let mut calls: Vec<(String, Position, usize)> = Vec::new();
    let mut phases: HashMap<String, Position> = HashMap::new();
    let mut findings = Vec::new();
    let mut finding = |pos: Position, rule: &'static str, message: String, hint: Option<String>| {
        findings.push(Finding {
            file: file.clone(),
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(1),
            severity: Severity::Error,
            rule,
            message,
            hint,
        });
    };

    ast.walk(&mut |path: &[ASTNode]| {
        let Some(node) = path.last() else { return true };
        let call = match node {
            ASTNode::Stmt(Stmt::Var(x, ..)) => {
                bound.insert(x.0.name.to_string());
                None
            }
            ASTNode::Stmt(Stmt::Import(x, _)) => {
                imported.insert(x.1.name.to_string());
                None
            }
            ASTNode::Stmt(Stmt::FnCall(x, pos)) | ASTNode::Expr(Expr::FnCall(x, pos)) => Some((x, *pos)),
            _ => None,
        };
        let Some((call, pos)) = call else { return true };
        if call.op_token.is_some() {
            return true;
        }
        if !call.namespace.is_empty() {
            qualified.push((call.namespace.root().to_string(), call.name.to_string(), pos));
            return true;
        }
        let name = call.name.to_string();
        calls.push((name.clone(), pos, call.args.len()));
        if name == "phase" {
            if let Some(Expr::StringConstant(phase, ppos)) = call.args.first() {
                if let Some(first) = phases.get(phase.as_str()) {
                    finding(
                        *ppos,
                        "duplicate-phase",
                        format!("phase `{phase}` is declared twice (first at line {})", first.line().unwrap_or(0)),
                        Some("give each phase its own name".into()),
                    );
                } else {
                    phases.insert(phase.to_string(), *ppos);
                }
            }
        }
        true
    });

    for (name, pos, _arity) in calls {
        if known.contains(&name) || bound.contains(&name) || name.starts_with("anon$") {
            continue;
        }
        let similar = known.iter().filter(|k| !k.contains('$') && close(k, &name)).take(3).cloned().collect::<Vec<_>>();
        let hint = if similar.is_empty() {
            "`capstan doc` lists every function".to_string()
        } else {
            format!("did you mean {}?", similar.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or "))
        };
        finding(pos, "unknown-function", format!("call to unknown function `{name}`"), Some(hint));
    }
    for (module, name, pos) in qualified {
        if imported.contains(&module) {
            continue;
        }
        match modules.get(&module) {
            Some(functions) if functions.contains(&name) => {}
            Some(functions) => {
                let similar: Vec<String> =
                    functions.iter().filter(|k| close(k, &name)).take(3).map(|s| format!("`{module}::{s}`")).collect();
                let hint = if similar.is_empty() {
                    format!("`capstan doc` lists the functions of {module}::")
                } else {
                    format!("did you mean {}?", similar.join(" or "))
                };
                finding(pos, "unknown-function", format!("call to unknown function `{module}::{name}`"), Some(hint));
            }
            None => {
                let mut known_modules: Vec<&String> = modules.keys().collect();
                known_modules.sort();
                let list: Vec<&str> = known_modules.iter().map(|s| s.as_str()).collect();
                finding(
                    pos,
                    "unknown-module",
                    format!("`{module}::{name}`: there is no module `{module}`"),
                    Some(format!("import it first, or use one of: {}", list.join(", "))),
                );
            }
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// Calls at the top level that change the world (run refuses them).
fn top_level_mutations(engine: &Engine, ast: &AST, path: &Path) -> Vec<Finding> {
    crate::playbook::top_level_mutations(engine, ast, path, &crate::launch::playbook_root(path))
        .into_iter()
        .map(|m| Finding {
            file: crate::diagnostics::shorten(&m.file.to_string_lossy()),
            line: m.position.line().unwrap_or(0),
            column: m.position.position().unwrap_or(1),
            severity: Severity::Error,
            rule: "top-level-mutation",
            message: m.message(),
            hint: Some(m.hint()),
        })
        .collect()
}

/// Edit distance of at most 2 (or 1 for short names): a likely typo.
fn close(a: &str, b: &str) -> bool {
    let limit = if b.len() <= 4 { 1 } else { 2 };
    if a.len().abs_diff(b.len()) > limit {
        return false;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= limit
}

#[cfg(test)]
mod tests {
    use super::close;

    #[test]
    fn typos_are_close() {
        assert!(close("sh", "shh"));
        assert!(close("info", "inf"));
        assert!(!close("run", "phase"));
    }
}
