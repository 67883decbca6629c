//! A command as plain data (argv, never a shell string), and what running
//! it gave: the outcome or why it could not run.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::Interrupt;

/// How much of each stream a result keeps in memory by default.
pub const DEFAULT_CAPTURE: usize = 4 << 20;

/// A command to run: argv, never a shell string.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub timeout: Option<Duration>,
    /// Keep the child's lines out of the terminal and JSON output (the step
    /// log still gets them).
    pub quiet: bool,
    /// Bytes of stdout (and of stderr) kept for the result.
    pub capture: usize,
}

impl CommandSpec {
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        Self { program: program.into(), args, capture: DEFAULT_CAPTURE, ..Self::default() }
    }

    /// The argv as a shell would need it quoted: what `would run:` and
    /// errors show. It is masked where it reaches an output, and the
    /// redactor knows the quoted form of a secret (`'it'\''s'`) too.
    pub fn display(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    }
}

/// Quote one argument for display, the way a POSIX shell would read it back.
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// What a finished child left behind.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code; `None` when a signal ended the child.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub duration: Duration,
    /// The command's own `timeout` expired and the tree was killed.
    pub timed_out: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit status 2`, `killed by signal 9`, or `timed out after 1s`.
    pub fn describe(&self, timeout: Option<Duration>) -> String {
        if self.timed_out {
            let limit = timeout.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default();
            return format!("timed out after {limit}");
        }
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "ended without a status".into(),
        }
    }
}

#[derive(Debug)]
pub enum ProcessError {
    /// The program could not be started (not found, not executable, bad cwd).
    Spawn {
        program: String,
        cwd: Option<PathBuf>,
        source: std::io::Error,
    },
    /// The step or run was stopped while the child ran; the tree is dead.
    Interrupted(Interrupt),
    Io(std::io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Spawn { program, cwd, source } => {
                if source.kind() == std::io::ErrorKind::NotFound {
                    if let Some(dir) = cwd.as_ref().filter(|d| !d.is_dir()) {
                        return write!(
                            f,
                            "cannot start `{program}`: working directory {} does not exist",
                            dir.display()
                        );
                    }
                    write!(f, "cannot start `{program}`: program not found on PATH")
                } else {
                    write!(f, "cannot start `{program}`: {source}")
                }
            }
            ProcessError::Interrupted(i) => write!(f, "{}", i.message()),
            ProcessError::Io(e) => write!(f, "reading child output: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let spec = CommandSpec::new("echo", vec!["a b".into(), "it's".into(), "x=1".into()]);
        assert_eq!(spec.display(), r"echo 'a b' 'it'\''s' x=1");
        assert_eq!(quote("deploy.rhai"), "deploy.rhai");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_quoted_secret_is_still_masked() {
        let redactor = crate::secrets::Redactor::new();
        redactor.add("pa'ss word");
        let spec = CommandSpec::new("login", vec!["--password=pa'ss word".into(), "pa'ss word".into()]);
        assert_eq!(redactor.redact(&spec.display()), "login '--password=***' '***'");
    }
}
