//! Script functions that hide a primitive. Rhai calls a script's own
//! function before a registered one, so `fn run(argv)` in a playbook, or
//! in a module it imports from its folder, is what `run([...])` calls in
//! that file: the primitive never runs there. `check` warns about each one.
//! The bundled modules (`capstan/...`) are capstan's own and are left out.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};

use crate::engine::resolver::SandboxResolver;

/// A script function with the name and arity of a primitive.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// The file that defines it, as the playbook path was given or, for a
    /// module, its canonical path.
    pub file: String,
    /// The function's name in its `fn` line.
    pub pos: Position,
    pub name: String,
    pub arity: usize,
}

/// Functions in the playbook (`path`, compiled as `ast` from `text`) and in
/// the modules it imports from its folder, transitively, whose name and
/// arity `is_primitive`.
pub fn shadows(
    path: &Path,
    text: &str,
    ast: &AST,
    resolver: &SandboxResolver,
    is_primitive: impl Fn(&str, usize) -> bool,
) -> Vec<Shadow> {
    let mut found = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut queue: Vec<(String, String, AST)> =
        vec![(path.to_string_lossy().into_owned(), text.to_string(), ast.clone())];
    while let Some((file, text, ast)) = queue.pop() {
        for f in ast.iter_fn_def() {
            if f.name.starts_with("anon$") || !is_primitive(&f.name, f.params.len()) {
                continue;
            }
            let body = f.body.start_position();
            found.push(Shadow {
                file: file.clone(),
                pos: name_position(&text, body, &f.name).unwrap_or(body),
                name: f.name.to_string(),
                arity: f.params.len(),
            });
        }
        for import in imports(&ast) {
            // A module that cannot be found or compiled is the run's to report.
            let Ok(module) = resolver.locate(Some(&file), &import) else { continue };
            if !seen.insert(module.clone()) {
                continue;
            }
            let Ok(module_text) = std::fs::read_to_string(&module) else { continue };
            let Ok(module_ast) = crate::engine::compile_as_written(&module, &module_text) else { continue };
            queue.push((module.to_string_lossy().into_owned(), module_text, module_ast));
        }
    }
    found
}

/// The global primitives by name and arity, with how `capstan doc` shows
/// their parameters (`run(argv)`).
pub fn primitives(engine: &Engine) -> HashMap<(String, usize), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Function {
        name: String,
        num_params: usize,
        #[serde(default)]
        params: Vec<Param>,
    }
    #[derive(serde::Deserialize)]
    struct Param {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Functions {
        #[serde(default)]
        functions: Vec<Function>,
    }
    let meta: Functions = engine
        .gen_fn_metadata_to_json(false)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or(Functions { functions: Vec::new() });
    meta.functions
        .into_iter()
        .map(|f| {
            let params: Vec<String> = f.params.into_iter().map(|p| p.name.unwrap_or_else(|| "_".into())).collect();
            let shown = format!("{}({})", f.name, params.join(", "));
            ((f.name, f.num_params), shown)
        })
        .collect()
}

/// The literal paths of the script's imports that are not bundled modules.
fn imports(ast: &AST) -> Vec<String> {
    let mut paths = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, _))) = path.last() {
            if let Expr::StringConstant(module, _) = &x.0 {
                if !module.starts_with("capstan/") {
                    paths.push(module.to_string());
                }
            }
        }
        true
    });
    paths
}

/// Rhai keeps where a function's body starts, not its `fn`: find the name
/// in the `fn NAME(` before the body (its parameters may span lines).
fn name_position(text: &str, body: Position, name: &str) -> Option<Position> {
    let (line, column) = (body.line()?, body.position()?);
    let lines: Vec<&str> = text.lines().take(line).collect();
    for index in (0..lines.len()).rev().take(20) {
        let full = lines[index];
        let before: String =
            if index + 1 == line { full.chars().take(column.saturating_sub(1)).collect() } else { full.to_string() };
        if let Some(at) = fn_name_column(&before, name) {
            let line = u16::try_from(index + 1).ok()?;
            let column = u16::try_from(at + 1).ok()?;
            return Some(Position::new(line, column));
        }
    }
    None
}

/// The 0-based character column of `name` in the last `fn NAME` of a line.
fn fn_name_column(line: &str, name: &str) -> Option<usize> {
    let chars: Vec<char> = line.chars().collect();
    let wanted: Vec<char> = name.chars().collect();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    (0..chars.len()).rev().find(|&at| {
        let ends = at + wanted.len();
        if ends > chars.len() || chars[at..ends] != wanted[..] || chars.get(ends).is_some_and(|c| is_ident(*c)) {
            return false;
        }
        let mut k = at;
        if k == 0 || !chars[k - 1].is_whitespace() {
            return false;
        }
        while k > 0 && chars[k - 1].is_whitespace() {
            k -= 1;
        }
        k >= 2 && chars[k - 2..k] == ['f', 'n'] && (k == 2 || !is_ident(chars[k - 3]))
    })
}

#[cfg(test)]
mod tests {
    use super::fn_name_column;

    #[test]
    fn finds_the_name_after_fn() {
        assert_eq!(fn_name_column("fn run(argv) ", "run"), Some(3));
        assert_eq!(fn_name_column("private fn  run(", "run"), Some(12));
        assert_eq!(fn_name_column("fn rerun(", "run"), None);
        assert_eq!(fn_name_column("let run = 1; defn run(", "run"), None);
    }
}
