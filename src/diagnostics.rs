//! Rendering script errors: `file:line:col`, the source line with a caret at
//! the innermost position, the outer frames as a trace, and a hint. The
//! text is masked where it is shown (`Services::render_error`).

use std::fmt::Write as _;
use std::path::Path;

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};

use crate::engine::stdlib;
use crate::failure::{error_hint, error_message};

/// A point in a source file.
#[derive(Debug, Clone)]
pub struct Site {
    pub source: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

fn site(source: &str, pos: Position) -> Option<Site> {
    Some(Site { source: shorten(source), line: pos.line()?, column: pos.position().unwrap_or(1) })
}

/// Module files are known by their canonical path; show them relative to
/// the working directory when they are under it.
pub fn shorten(source: &str) -> String {
    let path = Path::new(source);
    if path.is_absolute() {
        if let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) {
            if let Ok(rel) = path.strip_prefix(&cwd) {
                return rel.to_string_lossy().into_owned();
            }
        }
    }
    source.to_string()
}

/// One frame of the call chain: what was called, and from where.
struct Frame {
    what: String,
    at: Option<Site>,
}

/// The chain of calls down to the innermost error, and that error's site.
struct Unwound<'e> {
    frames: Vec<Frame>,
    innermost: &'e EvalAltResult,
    at: Option<Site>,
}

fn unwind<'e>(err: &'e EvalAltResult, default_source: &str) -> Unwound<'e> {
    let mut frames = Vec::new();
    let mut source = default_source.to_string();
    let mut current = err;
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                let what = if name.starts_with("anon$") { "closure".to_string() } else { format!("function `{name}`") };
                frames.push(Frame { what, at: site(&source, *pos) });
                if !src.is_empty() {
                    source.clone_from(src);
                }
                current = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                frames.push(Frame { what: format!("module \"{path}\""), at: site(&source, *pos) });
                source = module_source(&source, path);
                current = inner;
            }
            other => {
                return Unwound { frames, innermost: other, at: site(&source, other.position()) };
            }
        }
    }
}

/// The file a module import refers to, relative to the importing source.
fn module_source(importer: &str, path: &str) -> String {
    if stdlib::source(path).is_some() {
        return path.to_string();
    }
    let base = Path::new(importer).parent().unwrap_or(Path::new("."));
    let mut file = base.join(path);
    if file.extension().is_none() {
        file.set_extension("rhai");
    }
    file.canonicalize().unwrap_or(file).to_string_lossy().into_owned()
}

/// `file:line:col` of the innermost error, when it has a position.
pub fn innermost_location(err: &EvalAltResult) -> Option<String> {
    // Events do not know the playbook path; the chain's own sources do.
    let u = unwind(err, "");
    u.at.filter(|s| !s.source.is_empty()).map(|s| s.to_string())
}

/// `file:line:col` of the error in the user's own files: the innermost
/// position outside the bundled stdlib, so a failure inside `canary::run`
/// points at the playbook line that called it. When the chain never leaves
/// the stdlib (a step the stdlib declared), the innermost position.
pub fn error_location(err: &EvalAltResult) -> Option<String> {
    let u = unwind(err, "");
    let sites = u.frames.iter().filter_map(|f| f.at.as_ref()).chain(u.at.as_ref());
    let known: Vec<&Site> = sites.filter(|s| !s.source.is_empty()).collect();
    known.iter().rev().find(|s| stdlib::source(&s.source).is_none()).or(known.last()).map(ToString::to_string)
}

/// Whether a `file:line:col` lies in a bundled stdlib module.
pub fn in_stdlib(location: &str) -> bool {
    let mut parts = location.rsplitn(3, ':');
    let (_col, _line) = (parts.next(), parts.next());
    parts.next().is_some_and(|source| stdlib::source(source).is_some())
}

/// The full diagnostic for a runtime error.
pub fn render_eval(err: &EvalAltResult, playbook: &str) -> String {
    let u = unwind(err, playbook);
    let message = error_message(err);
    let mut out = format!("error: {message}\n");
    if let Some(at) = &u.at {
        snippet(&mut out, at);
    }
    for frame in u.frames.iter().rev() {
        match &frame.at {
            Some(at) => {
                let _ = writeln!(out, "   = in {} called at {at}", frame.what);
            }
            None => {
                let _ = writeln!(out, "   = in {}", frame.what);
            }
        }
    }
    if let Some(hint) = error_hint(err).or_else(|| eval_hint(u.innermost)) {
        let _ = writeln!(out, "   = hint: {hint}");
    }
    out
}

/// The diagnostic for a compile error.
pub fn render_parse(err: &ParseError, source: &str) -> String {
    let message = parse_message(err);
    let mut out = format!("error: {message}\n");
    if let Some(at) = site(source, err.position()) {
        snippet(&mut out, &at);
    }
    if let Some(hint) = parse_hint(err.err_type()) {
        let _ = writeln!(out, "   = hint: {hint}");
    }
    out
}

/// A finding from `check`, rendered the same way; `level` is `error` or
/// `warning`.
pub fn render_finding(site: &Site, level: &str, message: &str, hint: Option<&str>) -> String {
    let mut out = format!("{level}: {message}\n");
    snippet(&mut out, site);
    if let Some(h) = hint {
        let _ = writeln!(out, "   = hint: {h}");
    }
    out
}

pub fn parse_message(err: &ParseError) -> String {
    let mut text = err.err_type().to_string();
    if let Some(i) = text.rfind(" (line ") {
        text.truncate(i);
    }
    text
}

fn source_text(source: &str) -> Option<String> {
    if let Some(text) = virtual_sources().get(source) {
        return Some(text.clone());
    }
    stdlib::source(source).map(str::to_string).or_else(|| std::fs::read_to_string(source).ok())
}

fn virtual_sources() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, String>> {
    static SOURCES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        std::sync::OnceLock::new();
    SOURCES.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Source text that is not in a file (the REPL's input, named `<repl>`), so
/// its errors show the offending line and a caret like a playbook's.
pub fn set_virtual_source(name: &str, text: &str) {
    virtual_sources().insert(name.to_string(), text.to_string());
}

#[cfg(test)]
mod shorten_tests {
    #[test]
    fn relative_sources_stay_as_given() {
        assert_eq!(super::shorten("deploy.rhai"), "deploy.rhai");
        assert_eq!(super::shorten("capstan/semver"), "capstan/semver");
    }

    #[test]
    fn stdlib_locations_are_told_apart() {
        assert!(super::in_stdlib("capstan/canary:80:21"));
        assert!(!super::in_stdlib("deploy.rhai:3:13"));
        assert!(!super::in_stdlib("lib/capstan/canary.rhai:1:1"));
        assert!(!super::in_stdlib(""));
    }
}

fn snippet(out: &mut String, at: &Site) {
    let _ = writeln!(out, "  --> {at}");
    let Some(text) = source_text(&at.source) else { return };
    let Some(line) = text.lines().nth(at.line.saturating_sub(1)) else { return };
    let gutter = at.line.to_string().len();
    let pad = " ".repeat(gutter);
    let line = line.replace('\t', "    ");
    let col = at.column.saturating_sub(1);
    let prefix: String = line.chars().take(col).collect();
    let width = token_width(&line.chars().skip(col).collect::<String>());
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{} | {line}", at.line);
    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(prefix.chars().count()), "^".repeat(width));
}

/// Width of the token starting a text: a string literal through its
/// closing quote, an identifier path, or one char.
fn token_width(rest: &str) -> usize {
    if let Some(body) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.chars().enumerate() {
            match c {
                '"' if !escaped => return i + 2,
                '\\' if !escaped => escaped = true,
                _ => escaped = false,
            }
        }
        return 1;
    }
    let n = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').count();
    n.max(1)
}

fn eval_hint(err: &EvalAltResult) -> Option<String> {
    Some(match err {
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig);
            format!("no function matches `{sig}`; check the name and argument types (`capstan doc {name}`)")
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => format!("declare `{name}` with `let` before using it"),
        EvalAltResult::ErrorPropertyNotFound(name, _) => {
            format!("the map has no `{name}`; check the spelling, or test with `\"{name}\" in map`")
        }
        EvalAltResult::ErrorModuleNotFound(..) => {
            "imports are relative to the playbook's folder; bundled modules are named `capstan/...`".into()
        }
        EvalAltResult::ErrorStackOverflow(..) => {
            format!("calls nest at most {} levels; look for unbounded recursion", crate::engine::limits::CALL_LEVELS)
        }
        EvalAltResult::ErrorDataTooLarge(..) => {
            "strings are limited to 16 MiB and arrays to a million items; stream large data through files".into()
        }
        EvalAltResult::ErrorTerminated(payload, _)
            if crate::cancel::Stop::of(payload)
                .is_some_and(|s| s.reason == crate::cancel::Interrupt::TopLevelBudget) =>
        {
            "the top level only declares phases, params and secrets; move loops and work into a phase".into()
        }
        EvalAltResult::ErrorMismatchDataType(..) | EvalAltResult::ErrorMismatchOutputType(..) => {
            "convert the value first, e.g. `x.to_string()` or `s.parse_int()`".into()
        }
        _ => return None,
    })
}

fn parse_hint(err: &ParseErrorType) -> Option<String> {
    Some(match err {
        ParseErrorType::Reserved(word) if word.as_str() == "var" => {
            "`var` is reserved in Rhai; read parameters with `param(\"name\")`".into()
        }
        ParseErrorType::Reserved(word) => format!("`{word}` is a reserved word in Rhai; pick another name"),
        ParseErrorType::VariableUndefined(name) => {
            format!("declare `{name}` with `let` before using it (variables are checked before the playbook runs)")
        }
        ParseErrorType::MissingToken(token, _) => format!("add the missing `{token}`"),
        ParseErrorType::UnknownOperator(op) if op.as_str() == "eval" => "`eval` is disabled in playbooks".into(),
        ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => "close the string with a matching quote".into(),
        ParseErrorType::BadInput(_) => "the code before this point is incomplete or has a typo".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_width_covers_identifiers() {
        assert_eq!(token_width("shh(\"x\")"), 3);
        assert_eq!(token_width("helm::upgrade(x)"), 13);
        assert_eq!(token_width("+ 1"), 1);
        assert_eq!(token_width("\"5 minuts\" }"), 10);
        assert_eq!(token_width("\"a\\\"b\", 1"), 6);
        assert_eq!(token_width("\"unterminated"), 1);
    }
}
