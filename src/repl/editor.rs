//! The line editor's helpers: completion of every function, variable and
//! command; multi-line input when a statement is not finished; the history
//! file of the project.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rhai::{Engine, LexError, ParseErrorType};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use sha2::{Digest, Sha256};

/// The REPL's own commands, as `:help` lists them.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list"),
    (":phases", "the loaded playbook's phases, in order"),
    (":run PHASE...", "run phases of the loaded playbook (undo runs if one fails)"),
    (":doc NAME", "a function's signature and documentation (`:doc health::check`)"),
    (":vars", "the variables in the session"),
    (":dry-run on|off", "show what would change instead of changing it"),
    (":quit", "leave (Ctrl-D does the same)"),
];

const KEYWORDS: &[&str] = &[
    "let", "const", "if", "else", "switch", "while", "loop", "for", "in", "do", "until", "break", "continue", "return",
    "throw", "try", "catch", "fn", "import", "export", "as", "true", "false",
];

pub struct ReplHelper {
    /// The bare language, to tell an unfinished statement from a finished one.
    engine: Engine,
    /// Function names and signatures; refreshed when a command imports a module.
    pub functions: Arc<Mutex<Catalog>>,
    /// The session's variables, refreshed after every command.
    pub variables: Arc<Mutex<Vec<String>>>,
}

impl ReplHelper {
    pub fn new(session_engine: &Engine) -> Self {
        let functions = Catalog::of(session_engine);
        Self { engine: syntax_engine(), functions: Arc::new(Mutex::new(functions)), variables: Arc::default() }
    }
}

/// The language without strict variables: undefined names are the
/// session's business, not a sign that the input goes on.
fn syntax_engine() -> Engine {
    let mut engine = crate::engine::bare();
    engine.set_strict_variables(false);
    engine
}

/// Every function a script can call: the primitives (with their namespace),
/// the bundled language functions and imported modules; operators left out.
#[derive(Default, Clone)]
pub struct Catalog {
    /// Names, namespaced ones as `ns::name`, sorted.
    pub names: Vec<String>,
    /// Each name's parameter lists and return types: `(target, options: Map) -> Map`.
    signatures: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    pub fn of(engine: &Engine) -> Self {
        let mut signatures: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sig in engine.gen_fn_signatures(false) {
            let Some((name, rest)) = sig.split_once('(') else { continue };
            let name = name.trim();
            let plain = name.rsplit("::").next().unwrap_or(name);
            let is_ident = plain.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && plain.chars().all(|c| c.is_alphanumeric() || c == '_');
            if is_ident && !plain.starts_with("get$") && !plain.starts_with("set$") {
                let list = signatures.entry(name.to_string()).or_default();
                let shown = format!("({rest}").replace(": ?", "");
                if !list.contains(&shown) {
                    list.push(shown);
                }
            }
        }
        Self { names: signatures.keys().cloned().collect(), signatures }
    }

    /// The hint after `name(`: its signatures, the shortest first.
    fn hint(&self, name: &str) -> Option<String> {
        let mut list = self.signatures.get(name)?.clone();
        list.sort_by_key(String::len);
        let mut text = list.join("  |  ");
        if text.chars().count() > 120 {
            text = text.chars().take(119).collect::<String>() + "…";
        }
        Some(text)
    }
}

/// A signature shown after the cursor; it is not text to accept.
pub struct SignatureHint(String);

impl rustyline::hint::Hint for SignatureHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if before.starts_with(':') && !before.contains(' ') {
            let found = COMMANDS
                .iter()
                .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                .filter(|c| c.starts_with(before))
                .map(|c| Pair { display: c.to_string(), replacement: c.to_string() })
                .collect();
            return Ok((0, found));
        }
        let start = name_start(before);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let variables = self.variables.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let functions = self.functions.lock().unwrap_or_else(PoisonError::into_inner).names.clone();
        let mut found: Vec<Pair> = functions
            .iter()
            .map(String::as_str)
            .chain(variables.iter().map(String::as_str))
            .chain(KEYWORDS.iter().copied())
            .filter(|name| name.starts_with(word))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|name| Pair { display: name.to_string(), replacement: name.to_string() })
            .collect();
        found.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, found))
    }
}

/// Where the (possibly namespaced) name that ends `text` starts.
fn name_start(text: &str) -> usize {
    text.char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.engine, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// Does the input stop in the middle of a statement (an open block, call or
/// string), so that Enter should continue it on the next line?
pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    if input.trim_start().starts_with(':') || input.trim().is_empty() {
        return false;
    }
    let Err(err) = engine.compile(input) else { return false };
    // The parser ran off the end of the input (not an error in the middle).
    let at_end = {
        let trimmed = input.trim_end();
        let lines = trimmed.lines().count().max(1);
        let last_len = trimmed.lines().last().map_or(0, |l| l.chars().count());
        let pos = err.position();
        match (pos.line(), pos.position()) {
            (None, _) => true,
            (Some(l), _) if l > lines => true,
            (Some(l), Some(c)) => l == lines && c > last_len,
            (Some(l), None) => l == lines,
        }
    };
    if matches!(err.err_type(), ParseErrorType::BadInput(LexError::UnterminatedString)) {
        // The string runs to the end, wherever it starts.
        return !input.ends_with('\n');
    }
    let open = matches!(
        err.err_type(),
        ParseErrorType::MissingToken(..)
            | ParseErrorType::UnexpectedEOF
            | ParseErrorType::ExprExpected(..)
            | ParseErrorType::FnMissingBody(..)
    );
    // An empty line ends the input anyway, to show the error.
    open && at_end && !input.ends_with('\n')
}

impl Hinter for ReplHelper {
    type Hint = SignatureHint;

    /// After `name(` at the end of the line, the function's signatures.
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SignatureHint> {
        let before = line.get(..pos)?.strip_suffix('(')?;
        if pos != line.len() {
            return None;
        }
        let start = name_start(before);
        let name = &before[start..];
        let hint = self.functions.lock().unwrap_or_else(PoisonError::into_inner).hint(name)?;
        Some(SignatureHint(hint.strip_prefix('(').map_or(hint.clone(), str::to_string)))
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(console::style(hint).dim().to_string())
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Helper for ReplHelper {}

/// The history file of a project (the playbook's folder, or the current
/// one): `$XDG_STATE_HOME/capstan/history/NAME-HASH`, so each project keeps
/// its own commands.
pub fn history_path(project: &Path) -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))?;
    let project = project.canonicalize().unwrap_or_else(|_| project.to_path_buf());
    let hash = format!("{:x}", Sha256::digest(project.to_string_lossy().as_bytes()));
    let name: String = project.file_name().map_or_else(
        || "root".into(),
        |n| n.to_string_lossy().chars().map(|c| if c.is_alphanumeric() { c } else { '-' }).collect(),
    );
    Some(state.join("capstan").join("history").join(format!("{name}-{}", &hash[..12])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_statements_continue_and_errors_do_not() {
        let engine = syntax_engine();
        assert!(is_incomplete(&engine, "if x > 1 {"));
        assert!(is_incomplete(&engine, "let a = [1, 2,"));
        assert!(is_incomplete(&engine, "let s = \"abc"));
        assert!(is_incomplete(&engine, "fn f(x) {\n  x + 1"));
        assert!(!is_incomplete(&engine, "if x > 1 { 2 }"));
        assert!(!is_incomplete(&engine, "1 +* 2"));
        assert!(!is_incomplete(&engine, ":run plan"));
        assert!(!is_incomplete(&engine, "let x = ;"), "an error in the middle is reported, not continued");
        assert!(!is_incomplete(&engine, "if x > 1 {\n"), "an empty line ends the input");
    }
}
