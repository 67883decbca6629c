//! Literals that would fail only when their step runs, after earlier steps
//! changed the world: a duration option that does not parse
//! (`timeout: "5 minuts"`), an unknown step option (`retry: 1`) and a step
//! name holding `/`, the separator of nested step paths. They are read from the syntax tree before anything
//! runs, so `check` reports them and `run` refuses to start. Only literals
//! are judged; a computed value is the run's to judge.
//!
//! Read them from an AST compiled as written
//! ([`crate::engine::compile_as_written`]): the optimizer folds a map of
//! constants into one value and loses each entry's position.

use std::collections::{HashMap, HashSet};

use rhai::{ASTNode, Dynamic, Expr, FnCallExpr, Position, Stmt, AST};

/// A literal the run would reject.
#[derive(Debug, Clone)]
pub struct BadLiteral {
    pub pos: Position,
    pub rule: &'static str,
    pub message: String,
    pub hint: String,
}

/// The duration-valued options of a known function: its options map is the
/// argument at `index` when it is called with `arity` arguments.
struct DurationOptions {
    /// A static module (`health`), a bundled module's import path
    /// (`capstan/canary`), or empty for a global function.
    namespace: &'static str,
    names: &'static [&'static str],
    arity: usize,
    index: usize,
    keys: &'static [&'static str],
}

/// One row of the table below: (namespace, names, arity, index, keys).
const fn options(
    namespace: &'static str,
    names: &'static [&'static str],
    arity: usize,
    index: usize,
    keys: &'static [&'static str],
) -> DurationOptions {
    DurationOptions { namespace, names, arity, index, keys }
}

const DURATION_OPTIONS: &[DurationOptions] = &[
    options("", &["step"], 3, 1, &["timeout", "retry_delay"]),
    options("", &["run", "sh"], 2, 1, &["timeout"]),
    options("health", &["check", "wait"], 2, 1, &["timeout", "interval", "within"]),
    options("health", &["probe"], 2, 1, &["duration", "timeout"]),
    options("ssh", &["run"], 3, 2, &["timeout"]),
    options("ssh", &["copy"], 4, 3, &["timeout"]),
    options("metrics", &["query", "value"], 3, 2, &["timeout"]),
    options("notify", &["webhook", "slack"], 3, 2, &["timeout", "retry_delay"]),
    options("terraform", &["init", "validate", "fmt", "plan", "drift", "apply", "output"], 2, 1, &["lock_timeout"]),
    options("capstan/canary", &["run"], 1, 0, &["hold", "interval"]),
    options("capstan/blue_green", &["run"], 1, 0, &["hold", "interval"]),
];

const DURATION_HINT: &str = "write a duration like \"30s\", \"5m\" or \"1h 30m\" (or a number of seconds)";

/// Every literal in the script that its step would reject, in source order.
pub fn bad_literals(ast: &AST) -> Vec<BadLiteral> {
    let aliases = import_aliases(ast);
    // A script function of the same name and arity is called instead.
    let defined: HashSet<(String, usize)> = ast.iter_fn_def().map(|f| (f.name.to_string(), f.params.len())).collect();
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::FnCall(call, _)) | ASTNode::Expr(Expr::FnCall(call, _))) = path.last() {
            if call.op_token.is_none() {
                check_call(call, &aliases, &defined, &mut found);
            }
        }
        true
    });
    found.sort_by_key(|b| (b.pos.line().unwrap_or(0), b.pos.position().unwrap_or(0)));
    found
}

/// `import "PATH" as ALIAS`: the path each alias names.
fn import_aliases(ast: &AST) -> HashMap<String, String> {
    let mut aliases = HashMap::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, _))) = path.last() {
            if let Expr::StringConstant(module, _) = &x.0 {
                aliases.insert(x.1.name.to_string(), module.to_string());
            }
        }
        true
    });
    aliases
}

fn check_call(
    call: &FnCallExpr,
    aliases: &HashMap<String, String>,
    defined: &HashSet<(String, usize)>,
    found: &mut Vec<BadLiteral>,
) {
    let arity = call.args.len();
    let namespace = if call.namespace.is_empty() {
        if defined.contains(&(call.name.to_string(), arity)) {
            return;
        }
        String::new()
    } else {
        let root = call.namespace.root();
        match aliases.get(root) {
            // A bundled module under the name it was imported as.
            Some(module) if module.starts_with("capstan/") => module.clone(),
            // The playbook's own module: its functions are not the primitives.
            Some(_) => return,
            None => root.to_string(),
        }
    };
    let shown =
        if call.namespace.is_empty() { call.name.to_string() } else { format!("{}::{}", call.namespace, call.name) };
    if call.namespace.is_empty() && call.name == "step" && (arity == 2 || arity == 3) {
        if let Some(Expr::StringConstant(name, pos)) = call.args.first() {
            step_name(name, *pos, found);
        }
    }
    // `step(name, #{...}, body)` and `phase(name, #{...}, body)`: literal option keys.
    let options = match call.name.as_str() {
        "step" => Some(("step", "unknown-step-option", crate::playbook::STEP_OPTION_KEYS)),
        "phase" => Some(("phase", "unknown-phase-option", crate::playbook::PHASE_OPTION_KEYS)),
        _ => None,
    };
    if let (true, 3, Some((what, rule, keys)), Some(Expr::Map(map, _))) =
        (call.namespace.is_empty(), arity, options, call.args.get(1))
    {
        for (key, pos) in map.0.iter().map(|(k, _)| (k.name.as_str(), k.pos)) {
            if !keys.contains(&key) {
                found.push(BadLiteral {
                    pos,
                    rule,
                    message: format!("unknown {what} option `{key}`"),
                    hint: format!("the options are: {}", keys.join(", ")),
                });
            }
        }
    }
    if call.namespace.is_empty() && call.name == "sleep" && arity == 1 {
        if let Some(arg) = call.args.first() {
            duration("sleep: ", arg, arg.position(), found);
        }
    }
    let Some(options) = DURATION_OPTIONS
        .iter()
        .find(|o| o.namespace == namespace && o.arity == arity && o.names.contains(&call.name.as_str()))
    else {
        return;
    };
    let Some(map) = call.args.get(options.index) else { return };
    let what = if shown == "step" { "step".to_string() } else { shown };
    match map {
        Expr::Map(entries, _) => {
            for (key, value) in &entries.0 {
                if options.keys.contains(&key.name.as_str()) {
                    duration(&format!("{what} option `{}`: ", key.name), value, value.position(), found);
                }
            }
        }
        // A map already folded into one value: its entries share its position.
        Expr::DynamicConstant(value, pos) => {
            if let Some(entries) = value.read_lock::<rhai::Map>() {
                for (key, value) in entries.iter() {
                    if options.keys.contains(&key.as_str()) {
                        let literal = Expr::DynamicConstant(Box::new(value.clone()), *pos);
                        duration(&format!("{what} option `{key}`: "), &literal, *pos, found);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A misspelt option (`retry: 1`) would fail the step (or the phase's
/// declaration) when it runs.
fn step_name(name: &str, pos: Position, found: &mut Vec<BadLiteral>) {
    if name.is_empty() {
        found.push(BadLiteral {
            pos,
            rule: "invalid-step-name",
            message: "step name is empty".into(),
            hint: "name the step after what it does, like \"migrate database\"".into(),
        });
    } else if name.contains('/') {
        let suggestion = name.replace('/', " ");
        found.push(BadLiteral {
            pos,
            rule: "invalid-step-name",
            message: format!("step name \"{name}\" contains `/`"),
            hint: format!(
                "`/` separates nested steps in step paths (`--from`, the journal); nest a step inside another \
                 step, or use another character, like \"{suggestion}\""
            ),
        });
    }
}

/// A literal that is not a duration: the run would fail on it.
fn duration(prefix: &str, value: &Expr, pos: Position, found: &mut Vec<BadLiteral>) {
    let literal: Option<Dynamic> = match value {
        Expr::StringConstant(..)
        | Expr::IntegerConstant(..)
        | Expr::FloatConstant(..)
        | Expr::BoolConstant(..)
        | Expr::CharConstant(..)
        | Expr::DynamicConstant(..) => value.get_literal_value(None),
        _ => None,
    };
    let Some(literal) = literal else { return };
    let problem = match literal.read_lock::<rhai::ImmutableString>() {
        Some(text) => humantime::parse_duration(text.trim())
            .err()
            .map(|e| format!("\"{}\" is not a duration ({e})", text.as_str())),
        None => super::parse_duration(&literal).err().map(|e| e.to_string()),
    };
    if let Some(problem) = problem {
        found.push(BadLiteral {
            pos,
            rule: "invalid-duration",
            message: format!("{prefix}{problem}"),
            hint: DURATION_HINT.into(),
        });
    }
}
