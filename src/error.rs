//! The one error a command fails with, its exit code, and its rendering.
//! Commands and the REPL return `Result<(), Error>`; `cli::main` renders the
//! error once and exits with [`Error::code`].
//!
//! A script error is rendered into a diagnostic (`file:line:col`, the source
//! line with a caret, the call trace, a hint) by [`crate::diagnostics`] and
//! masked by the run's bus ([`Services::render_error`]) when the error is
//! made: that needs the playbook's source and the run's services, which live
//! as long as the command, not until the edge.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use rhai::EvalAltResult;

use crate::exit;
use crate::failure::FailureKind;
use crate::services::Services;

#[derive(Debug)]
pub enum Error {
    /// The command line asks for what cannot be done; nothing ran.
    Usage { message: String, hint: Option<String> },
    /// What the playbook was given (params, a params file, a run to resume)
    /// is wrong; nothing ran.
    Input { source: Box<dyn std::error::Error + Send + Sync>, hint: Option<String> },
    /// A file could not be read or written: what was being done, the path
    /// when there is one, and why.
    Io { doing: &'static str, path: Option<PathBuf>, source: std::io::Error, hint: Option<String> },
    /// A playbook that does not compile, or whose top level failed: the
    /// rendered diagnostic, masked.
    Script { diagnostic: String },
    /// A `--lock` is held by another run: the rendered diagnostic.
    Blocked { diagnostic: String },
    /// A run to resume has a step whose undo failed: what the step changed
    /// is half there and a person decides.
    HalfUndone { run_id: String, step: String, error: String },
    /// The command ran and did not succeed. What failed was told as it
    /// happened (events, findings); `diagnostic` is the failing error
    /// rendered once more at the end, when there is one.
    Failed { code: i32, diagnostic: Option<String> },
    /// Stopped by a signal; the output said so as it happened.
    Interrupted,
    /// The journal of a run is incomplete (lost after its last step
    /// boundary); the run's own outcome, `None` for success, stands.
    JournalIncomplete { run_id: String, why: String, outcome: Option<Box<Error>> },
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: None }
    }

    pub fn usage_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    pub fn input(source: impl std::error::Error + Send + Sync + 'static, hint: impl Into<String>) -> Self {
        Error::Input { source: Box::new(source), hint: Some(hint.into()) }
    }

    /// An [`Error::Input`] whose message says all there is to say.
    pub fn invalid(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Input { source: Box::new(source), hint: None }
    }

    pub fn io(doing: &'static str, path: impl Into<Option<PathBuf>>, source: std::io::Error) -> Self {
        Error::Io { doing, path: path.into(), source, hint: None }
    }

    /// The same error with `hint` as what to do next.
    #[must_use]
    pub fn with_hint(mut self, new: impl Into<String>) -> Self {
        match &mut self {
            Error::Usage { hint, .. } | Error::Input { hint, .. } | Error::Io { hint, .. } => *hint = Some(new.into()),
            _ => {}
        }
        self
    }

    /// A script error before anything ran, rendered against `source` and
    /// masked: a held `--lock` is [`Error::Blocked`], anything else a
    /// [`Error::Script`].
    pub fn script(err: &EvalAltResult, source: &str, services: &Services) -> Self {
        let diagnostic = services.render_error(err, source);
        if FailureKind::of(err) == Some(FailureKind::Blocked) {
            Error::Blocked { diagnostic }
        } else {
            Error::Script { diagnostic }
        }
    }

    /// The process's exit code for this error (SPEC §2).
    pub fn code(&self) -> i32 {
        match self {
            Error::Usage { .. } | Error::Input { .. } | Error::Io { .. } | Error::Script { .. } => exit::USAGE,
            Error::Blocked { .. } => exit::BLOCKED,
            Error::HalfUndone { .. } => exit::UNDO_FAILED,
            Error::Failed { code, .. } => *code,
            Error::Interrupted => exit::INTERRUPTED,
            Error::JournalIncomplete { outcome, .. } => outcome.as_ref().map_or(exit::OK, |e| e.code()),
        }
    }

    /// The error as the terminal shows it; `styled` colours the `error:`
    /// label when the terminal takes colour. Every line ends in a newline;
    /// an error told as it happened renders as nothing.
    pub fn render(&self, styled: bool) -> String {
        let label = if styled { console::style("error:").red().bold().to_string() } else { "error:".to_string() };
        let said = |message: &dyn fmt::Display, hint: Option<&str>| {
            let mut out = format!("{label} {message}\n");
            if let Some(h) = hint {
                let _ = writeln!(out, "   = hint: {h}");
            }
            out
        };
        match self {
            Error::Usage { message, hint } => said(message, hint.as_deref()),
            Error::Input { source, hint } => said(source, hint.as_deref()),
            Error::Io { doing, path: Some(path), source, hint } => {
                said(&format_args!("{doing} {}: {source}", path.display()), hint.as_deref())
            }
            Error::Io { doing, path: None, source, hint } => said(&format_args!("{doing}: {source}"), hint.as_deref()),
            Error::Script { diagnostic } | Error::Blocked { diagnostic } => diagnostic.clone(),
            Error::HalfUndone { run_id, step, error } => said(
                &format_args!(
                    "cannot resume run {run_id}: the undo of step `{step}` failed ({error}), so what the step \
                     changed is neither in place nor taken back; nothing was run"
                ),
                Some(&format!(
                    "fix by hand what `{step}` changed (finish or take it back), then start a fresh run without --resume"
                )),
            ),
            Error::Failed { diagnostic, .. } => diagnostic.clone().unwrap_or_default(),
            Error::Interrupted => String::new(),
            Error::JournalIncomplete { run_id, why, outcome } => {
                let mut out = outcome.as_ref().map(|e| e.render(styled)).unwrap_or_default();
                let _ = writeln!(out, "{label} the journal of run {run_id} is incomplete: {why}");
                out
            }
        }
    }
}

impl Error {
    /// Print the error to stderr, as the terminal shows it.
    pub fn report(&self) {
        crate::err!("{}", self.render(true));
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_spec() {
        assert_eq!(Error::usage("x").code(), exit::USAGE);
        assert_eq!(Error::Blocked { diagnostic: String::new() }.code(), exit::BLOCKED);
        assert_eq!(Error::HalfUndone { run_id: "r".into(), step: "s".into(), error: "e".into() }.code(), 4);
        assert_eq!(Error::Interrupted.code(), exit::INTERRUPTED);
        let lost = |outcome| Error::JournalIncomplete { run_id: "r".into(), why: "w".into(), outcome };
        assert_eq!(lost(None).code(), exit::OK);
        assert_eq!(lost(Some(Box::new(Error::Failed { code: 1, diagnostic: None }))).code(), exit::FAILED);
    }

    #[test]
    fn usage_and_io_errors_say_what_and_what_next() {
        let e = Error::io("cannot read playbook", PathBuf::from("x.rhai"), std::io::ErrorKind::NotFound.into())
            .with_hint("check the path");
        assert_eq!(e.to_string(), "error: cannot read playbook x.rhai: entity not found\n   = hint: check the path\n");
        assert_eq!(Error::usage("no phase `x`").to_string(), "error: no phase `x`\n");
    }
}
