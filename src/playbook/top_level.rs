//! Calls that change the world made at a playbook's top level. The top
//! level declares (phases, params, secrets) and runs on every `list`,
//! `check` and `--dry-run`; a deploy there would run before any phase, with
//! no step, no undo and no dry-run plan. So `check` reports such a call and
//! `run` refuses the playbook before anything runs.
//!
//! Top level means what runs while the top level is evaluated: its own
//! statements (inside `if` and loops too), the bodies of the script
//! functions it calls, and the top level of the modules it imports from the
//! playbook's folder (a module's statements run at import). Closures
//! (phases, steps, undo, `on_failure`) and functions nobody calls there run
//! later and are not looked at. Whether a primitive changes the world comes
//! from [`crate::api::effects::effect`].

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rhai::{ASTNode, Engine, Expr, FnCallExpr, Position, Stmt, AST};

use crate::api::effects::{effect, Effect};
use crate::engine::resolver::SandboxResolver;

/// One call that changes the world at the top level.
#[derive(Debug, Clone)]
pub struct TopLevelMutation {
    /// The primitive, as the script names it (`docker::build`).
    pub name: String,
    /// The file the call is in: the playbook or a module it imports.
    pub file: PathBuf,
    pub position: Position,
    /// The script function the top level called to get there, and where.
    pub via: Option<(String, Position)>,
    pub effect: Effect,
}

impl TopLevelMutation {
    pub fn message(&self) -> String {
        let via = match &self.via {
            Some((f, at)) => format!(" (through `{f}()`, called at line {})", at.line().unwrap_or(0)),
            None => String::new(),
        };
        format!("`{}` changes the world at the top level of the playbook{via}", self.name)
    }

    pub fn hint(&self) -> String {
        let mut hint = "move it into a phase, e.g. `phase(\"prepare\", || { ... });`: the top level only \
                        declares, and runs on every `list`, `check` and `--dry-run`"
            .to_string();
        match self.effect {
            Effect::MutatingUnless(flag) => {
                let _ = write!(hint, "; if it only reads, say so with `#{{ {flag}: true }}`");
            }
            Effect::MutatingWith(flag) => {
                let _ = write!(hint, "; without `{flag}: true` it only reads");
            }
            Effect::ReadOnly | Effect::Mutating => {}
        }
        hint
    }
}

/// The mutating calls made at the top level of `ast` (compiled from `file`)
/// and of the modules it imports from the folder `root`, in source order.
pub fn mutations(engine: &Engine, ast: &AST, file: &Path, root: &Path) -> Vec<TopLevelMutation> {
    let resolver = SandboxResolver::new(root);
    let mut found = Vec::new();
    let mut files_seen: HashSet<PathBuf> = HashSet::new();
    let mut files = VecDeque::from([(file.to_path_buf(), ast.clone())]);
    while let Some((path, ast)) = files.pop_front() {
        if !files_seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())) {
            continue;
        }
        let imports = scan_file(&ast, &path, &mut found);
        for import in imports {
            if import.starts_with("capstan/") {
                continue;
            }
            // A module that cannot be found or compiled is the run's to
            // report, with the error it gets at import.
            let Ok(located) = resolver.locate(Some(&path.to_string_lossy()), &import) else { continue };
            let Ok(text) = std::fs::read_to_string(&located) else { continue };
            let Ok(module_ast) = engine.compile(&text) else { continue };
            files.push_back((located, module_ast));
        }
    }
    found
}

/// A script function by name and arity.
type FunctionKey = (String, usize);

/// A script function's body to walk (`None`: the top level's statements)
/// and the top-level call that led there.
type Visit = (Option<FunctionKey>, Option<(String, Position)>);

/// One file's top level; returns the paths it imports.
fn scan_file(ast: &AST, file: &Path, found: &mut Vec<TopLevelMutation>) -> Vec<String> {
    let defined: HashSet<FunctionKey> = ast.iter_fn_def().map(|f| (f.name.to_string(), f.params.len())).collect();
    let mut imports = Vec::new();
    let mut seen: HashSet<FunctionKey> = HashSet::new();
    // The top level's statements, then each script function it calls.
    let mut queue: VecDeque<Visit> = VecDeque::from([(None, None)]);
    while let Some((function, via)) = queue.pop_front() {
        let body = match &function {
            None => AST::new(ast.statements().to_vec(), rhai::Module::new()),
            Some((name, arity)) => {
                let mut lib = rhai::Module::new();
                for f in ast.iter_fn_def().filter(|f| f.name == name && f.params.len() == *arity) {
                    lib.set_script_fn(f.clone());
                }
                AST::new(Vec::new(), lib)
            }
        };
        body.walk(&mut |path: &[ASTNode]| {
            let Some(node) = path.last() else { return true };
            let (call, pos) = match node {
                ASTNode::Stmt(Stmt::Import(x, _)) if function.is_none() => {
                    if let Expr::StringConstant(s, _) = &x.0 {
                        imports.push(s.to_string());
                    }
                    return true;
                }
                ASTNode::Stmt(Stmt::FnCall(call, pos)) | ASTNode::Expr(Expr::FnCall(call, pos)) => (call, *pos),
                _ => return true,
            };
            if call.op_token.is_some() {
                return true;
            }
            let key = (call.name.to_string(), call.args.len());
            if call.namespace.is_empty() && defined.contains(&key) {
                // A script function shadows a primitive of the same name.
                if seen.insert(key.clone()) {
                    let at = via.clone().unwrap_or_else(|| (key.0.clone(), pos));
                    queue.push_back((Some(key), Some(at)));
                }
                return true;
            }
            // A qualified call's position is its function name's; the
            // namespace's is where the call starts.
            let (name, pos) = if call.namespace.is_empty() {
                (call.name.to_string(), pos)
            } else {
                (format!("{}::{}", call.namespace.root(), call.name), call.namespace.position())
            };
            let effect = effect(&name);
            if effect.mutates(effect.flag().and_then(|flag| option_flag(call, flag))) {
                found.push(TopLevelMutation {
                    name,
                    file: file.to_path_buf(),
                    position: pos,
                    via: via.clone(),
                    effect,
                });
            }
            true
        });
    }
    imports
}

/// The value of `flag` in a call's options map, when it is written as a
/// literal (`#{ read_only: true }`); `None` when absent or computed.
fn option_flag(call: &FnCallExpr, flag: &str) -> Option<bool> {
    match call.args.last()? {
        Expr::Map(map, _) => map.0.iter().find(|(k, _)| k.name == flag).and_then(|(_, v)| match v {
            Expr::BoolConstant(b, _) => Some(*b),
            _ => None,
        }),
        // A map of constants is folded into one constant by the optimizer.
        Expr::DynamicConstant(value, _) => {
            value.read_lock::<rhai::Map>().and_then(|m| m.get(flag).and_then(|v| v.as_bool().ok()))
        }
        _ => None,
    }
}
