//! The lint engine: what `check` finds in a compiled playbook without
//! running it. Calls to functions that do not exist, duplicate phase names,
//! unknown step options, literals a step would reject and calls at the top
//! level that change the world (errors); script functions that hide a
//! primitive (warnings). `cli/check.rs` renders the findings; `run` refuses
//! to start on [`refusals`].

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};
use serde::Serialize;

/// Functions the language provides as keywords rather than registered functions.
const KEYWORD_FUNCTIONS: &[&str] =
    &["print", "debug", "type_of", "Fn", "call", "curry", "is_shared", "is_def_fn", "is_def_var", "this"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The run would fail on it: exit 1.
    Error,
    /// Likely a mistake, yet the run would go on: exit 0.
    Warning,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One thing `check` reports, at a position in the playbook or a module.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub rule: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Every finding for one compiled playbook and the modules it imports: the
/// playbook's own first. `engine` has evaluated its top level (the
/// functions and namespaces it defines are known), `text` is its source.
pub fn findings(engine: &Engine, ast: &AST, path: &Path, text: &str) -> Vec<Finding> {
    let mut findings = lint(engine, ast, path);
    // The engine compiles as written ([`crate::engine::build`]).
    let written = ast;
    findings.extend(literal_findings(written, path));
    findings.extend(top_level_mutations(engine, ast, path));
    let resolver = crate::engine::resolver::SandboxResolver::new(&crate::launch::playbook_root(path));
    let primitives = crate::playbook::shadows::primitives(engine);
    let is_primitive = |name: &str, arity: usize| primitives.contains_key(&(name.to_string(), arity));
    for shadow in crate::playbook::shadows::shadows(path, text, written, &resolver, is_primitive) {
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
    findings
}

/// What `run` refuses before anything runs: the literals `check` reports
/// as errors that the run would otherwise fail on midway, after earlier
/// steps changed things, and calls at the top level that would change the
/// world before any phase (on every dry run too).
pub fn refusals(engine: &Engine, ast: &AST, path: &Path) -> Vec<Finding> {
    let mut findings = literal_findings(ast, path);
    findings.extend(top_level_mutations(engine, ast, path));
    findings
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

pub(crate) fn plural(n: usize, what: &str) -> String {
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
        for (a, b, typo) in [("sh", "shh", true), ("info", "inf", true), ("run", "phase", false)] {
            assert_eq!(close(a, b), typo, "{a} ~ {b}");
        }
    }
}
