//! Running an external tool (terraform, docker, helm, kubectl, ssh) for a
//! primitive: through the one dry-run decision and the one process runner,
//! with failures turned into script errors that keep the tool's own words.

use std::path::PathBuf;
use std::time::Duration;

use super::errors::Failure;
use super::{failure_with_hint, terminated, RhaiResultOf};
use crate::process::{self, CommandSpec, Outcome, ProcessError};
use crate::services::Action;
use crate::state::RunState;

/// One invocation of a tool.
#[derive(Debug, Clone, Default)]
pub struct ToolCall {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub timeout: Option<Duration>,
    /// Runs under `--dry-run` too (plans, queries, templates).
    pub read_only: bool,
    /// Keep the output out of the terminal (machine-readable output).
    pub quiet: bool,
}

impl ToolCall {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { program: program.to_string(), args: args.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    pub fn spec(&self) -> CommandSpec {
        let mut spec = CommandSpec::new(self.program.clone(), self.args.clone());
        spec.cwd.clone_from(&self.cwd);
        spec.env.clone_from(&self.env);
        spec.stdin.clone_from(&self.stdin);
        spec.timeout = self.timeout;
        spec.quiet = self.quiet;
        spec
    }

    /// The command as `would run:` shows it, with the folder it runs in.
    pub fn display(&self) -> String {
        let cmd = self.spec().display();
        match &self.cwd {
            Some(dir) => format!("{cmd} (in {})", dir.display()),
            None => cmd,
        }
    }
}

/// `None` when dry-run skipped it; otherwise the finished process, whatever
/// its exit status.
pub fn call(state: &RunState, call: &ToolCall) -> RhaiResultOf<Option<Outcome>> {
    if !state.services.should_act(&Action { description: &call.display(), read_only: call.read_only }) {
        return Ok(None);
    }
    match process::execute(&state.services, &call.spec()) {
        Ok(outcome) => Ok(Some(outcome)),
        Err(ProcessError::Interrupted(reason)) => Err(terminated(reason)),
        Err(e @ ProcessError::Spawn { .. }) => Err(failure_with_hint(
            Failure::COMMAND,
            e.to_string(),
            format!("install `{}` or put it on PATH", call.program),
        )),
        Err(e) => Err(failure_with_hint(Failure::COMMAND, e.to_string(), "see the step's output")),
    }
}

/// The error for a tool that exited non-zero: its own words, trimmed.
pub fn failed(call: &ToolCall, outcome: &Outcome, hint: Option<String>) -> Box<rhai::EvalAltResult> {
    let words = last_lines(&outcome.stderr, 12).or_else(|| last_lines(&outcome.stdout, 12)).unwrap_or_default();
    let mut message = format!("`{}` failed with {}", call.spec().display(), outcome.describe(call.timeout));
    if !words.is_empty() {
        message.push_str(":\n");
        message.push_str(&words);
    }
    failure_with_hint(
        Failure::COMMAND,
        message,
        hint.unwrap_or_else(|| "the tool's own message is above; the step log has its full output".into()),
    )
}

/// The last `n` non-empty lines of a text, or `None` if it has none.
pub fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}
