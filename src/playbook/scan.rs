//! What the inspection model does not record, read from the compiled script:
//! the approvals each phase asks for (`capstan ci` gates on them), the
//! secrets read anywhere (`capstan ci` maps them to the platform's store;
//! a run masks their values before the playbook's first line runs), and the
//! first arguments of other calls (`require_tools`, `lock`).
//!
//! Evaluating the top level records the phases, the params and the secrets
//! read there, but a phase's closure only runs in a real run. So the closure
//! is found in the AST by its function name and walked, following the
//! closures, `Fn("name")` pointers and script functions it refers to. A call
//! to `approve(...)` (or `guard::approve(...)`) anywhere in that reach makes
//! the phase a gated one. A walk of the syntax tree rather than of the source
//! text is not fooled by comments or strings that mention `approve(`. Calls
//! made through imported modules are out of its reach.

use std::collections::{BTreeSet, HashSet, VecDeque};

use rhai::{ASTNode, Expr, FnCallExpr, FnPtr, Stmt, AST};

/// The approvals a phase asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Approvals {
    /// Names given as string literals, sorted.
    pub names: Vec<String>,
    /// An approval whose name is computed at run time.
    pub computed: bool,
}

impl Approvals {
    pub fn gated(&self) -> bool {
        self.computed || !self.names.is_empty()
    }

    /// The `capstan run` flags that give these approvals: the CI platform's
    /// gate has already asked a person.
    pub fn flags(&self) -> Vec<String> {
        if self.computed {
            return vec!["--yes".into()];
        }
        self.names.iter().flat_map(|n| ["--approve".to_string(), n.clone()]).collect()
    }
}

/// The approvals reachable from the script function `entry` (a phase's closure).
pub fn approvals(ast: &AST, entry: &str) -> Approvals {
    let defined: HashSet<String> = ast.iter_fn_def().map(|f| f.name.to_string()).collect();
    let mut names = BTreeSet::new();
    let mut computed = false;
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue = VecDeque::from([entry.to_string()]);
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        // One function's body as an AST of its own, so `walk` sees only it.
        let mut lib = rhai::Module::new();
        for f in ast.iter_fn_def().filter(|f| f.name == name) {
            lib.set_script_fn(f.clone());
        }
        let only = AST::new(Vec::new(), lib);
        only.walk(&mut |path: &[ASTNode]| {
            let Some(node) = path.last() else { return true };
            let mut follow = |target: &str| {
                if defined.contains(target) && !seen.contains(target) {
                    queue.push_back(target.to_string());
                }
            };
            match node {
                ASTNode::Stmt(Stmt::FnCall(call, _))
                | ASTNode::Expr(Expr::FnCall(call, _) | Expr::MethodCall(call, _)) => {
                    if call.name == "approve" {
                        match literal_first_arg(call) {
                            Some(n) if !matches!(node, ASTNode::Expr(Expr::MethodCall(..))) => {
                                names.insert(n);
                            }
                            _ => computed = true,
                        }
                    } else if call.name == "Fn" {
                        if let Some(target) = literal_first_arg(call) {
                            follow(&target);
                        }
                    } else if call.namespace.is_empty() {
                        follow(&call.name);
                    }
                }
                ASTNode::Expr(Expr::DynamicConstant(value, _)) => {
                    if let Some(ptr) = value.read_lock::<FnPtr>() {
                        follow(ptr.fn_name());
                    }
                }
                ASTNode::Expr(Expr::Variable(var, ..)) => follow(&var.1),
                _ => {}
            }
            true
        });
    }
    Approvals { names: names.into_iter().collect(), computed }
}

/// Names of secrets read with a literal name anywhere in the script, in
/// source order.
pub fn secrets(ast: &AST) -> Vec<String> {
    let mut found: Vec<((usize, usize), String)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos)) | ASTNode::Expr(Expr::FnCall(call, pos))) => Some((call, pos)),
            _ => None,
        };
        if let Some((call, pos)) = call {
            if call.name == "secret" && call.namespace.is_empty() {
                if let Some(name) = literal_first_arg(call) {
                    found.push(((pos.line().unwrap_or(0), pos.position().unwrap_or(0)), name));
                }
            }
        }
        true
    });
    in_source_order(found)
}

/// The phases the script declares, in source order, when every `phase(...)`
/// call names its phase with a literal; `None` when a name is computed (the
/// top level must run to know them).
pub fn phase_names(ast: &AST) -> Option<Vec<String>> {
    let mut found: Vec<((usize, usize), String)> = Vec::new();
    let mut computed = false;
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::FnCall(call, pos)) | ASTNode::Expr(Expr::FnCall(call, pos))) = path.last() {
            if call.name == "phase" && call.namespace.is_empty() {
                match literal_first_arg(call) {
                    Some(name) => found.push(((pos.line().unwrap_or(0), pos.position().unwrap_or(0)), name)),
                    None => computed = true,
                }
            }
        }
        true
    });
    if computed {
        return None;
    }
    Some(in_source_order(found))
}

/// Names of params (given as literals) whose default expression calls
/// `secret(...)`: `param("token", secret("TOKEN"))`.
pub fn params_defaulting_to_secrets(ast: &AST) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let is_secret_call = matches!(
            path.last(),
            Some(ASTNode::Stmt(Stmt::FnCall(call, _)) | ASTNode::Expr(Expr::FnCall(call, _)))
                if call.name == "secret" && call.namespace.is_empty()
        );
        if is_secret_call {
            let param = path[..path.len() - 1].iter().rev().find_map(|node| match node {
                ASTNode::Stmt(Stmt::FnCall(call, _)) | ASTNode::Expr(Expr::FnCall(call, _))
                    if call.name == "param" && call.namespace.is_empty() =>
                {
                    literal_first_arg(call)
                }
                _ => None,
            });
            if let Some(name) = param.filter(|n| !names.contains(n)) {
                names.push(name);
            }
        }
        true
    });
    names
}

/// What calls to the global function `name` anywhere in the script pass as
/// their first argument, where it is a literal string or a literal list of
/// strings: the strings, in source order. Computed arguments are not known
/// before the run and are left out.
pub fn first_args(ast: &AST, name: &str) -> Vec<String> {
    let mut found: Vec<((usize, usize), String)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::FnCall(call, pos)) | ASTNode::Expr(Expr::FnCall(call, pos))) = path.last() {
            if call.name == name && call.namespace.is_empty() {
                let at = (pos.line().unwrap_or(0), pos.position().unwrap_or(0));
                match call.args.first() {
                    Some(Expr::StringConstant(s, _)) => found.push((at, s.to_string())),
                    Some(Expr::Array(items, _)) => {
                        for item in items {
                            if let Expr::StringConstant(s, _) = item {
                                found.push((at, s.to_string()));
                            }
                        }
                    }
                    // A literal list the optimizer folded into one value.
                    Some(Expr::DynamicConstant(value, _)) => {
                        if let Some(items) = value.read_lock::<rhai::Array>() {
                            for item in items.iter() {
                                if let Some(s) = item.read_lock::<rhai::ImmutableString>() {
                                    found.push((at, s.to_string()));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        true
    });
    in_source_order(found)
}

/// Names found at (line, column) positions, in source order, each once.
fn in_source_order(mut found: Vec<((usize, usize), String)>) -> Vec<String> {
    found.sort();
    let mut names: Vec<String> = Vec::new();
    for (_, name) in found {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn literal_first_arg(call: &FnCallExpr) -> Option<String> {
    match call.args.first() {
        Some(Expr::StringConstant(s, _)) => Some(s.to_string()),
        _ => None,
    }
}

/// Mask, before anything runs, the values of the secrets a playbook reads
/// with a literal name (`secret("TOKEN")`) anywhere: a value is then masked
/// even in output printed before the `secret()` call that reads it.
pub fn mask_secrets_early(ast: &AST, redactor: &crate::secrets::Redactor) {
    for name in secrets(ast) {
        if let Ok(value) = std::env::var(&name) {
            redactor.add_quietly(&name, &value);
        }
    }
}
