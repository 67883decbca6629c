//! Running an external tool (terraform, docker, helm, kubectl, ssh) for a
//! primitive: through the one dry-run decision and the one process runner,
//! with failures turned into script errors that keep the tool's own words.

use crate::failure::{failure, failure_with_hint, terminated, FailureKind, HostFailure, RhaiResultOf};
use crate::process::{self, CommandSpec, Outcome, ProcessError};
use crate::services::{Action, Services};

/// One invocation of a tool: the command as the process runner takes it,
/// and whether it may run under `--dry-run`.
#[derive(Debug, Clone, Default)]
pub struct ToolCall {
    pub spec: CommandSpec,
    /// Runs under `--dry-run` too (plans, queries, templates).
    pub read_only: bool,
}

impl std::ops::Deref for ToolCall {
    type Target = CommandSpec;

    fn deref(&self) -> &CommandSpec {
        &self.spec
    }
}

impl std::ops::DerefMut for ToolCall {
    fn deref_mut(&mut self) -> &mut CommandSpec {
        &mut self.spec
    }
}

impl ToolCall {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { spec: CommandSpec::new(program, args.into_iter().map(Into::into).collect()), read_only: false }
    }

    /// The command as `would run:` shows it, with the folder it runs in.
    pub fn display(&self) -> String {
        let cmd = self.spec.display();
        match &self.cwd {
            Some(dir) => format!("{cmd} (in {})", dir.display()),
            None => cmd,
        }
    }
}

/// What to say when a command cannot be started, and when reading it fails.
pub struct Hints<'a> {
    pub spawn: &'a str,
    pub other: Option<&'a str>,
}

/// The one way a primitive runs a command: the dry-run decision, then the
/// process runner, with its failures as script errors. `None` when dry-run
/// skipped it; otherwise the finished process, whatever its exit status.
pub fn act(
    services: &Services,
    spec: &CommandSpec,
    description: &str,
    read_only: bool,
    hints: &Hints<'_>,
) -> RhaiResultOf<Option<Outcome>> {
    act_with(services, description, read_only, hints, || process::execute(services, spec))
}

/// [`act`] with another way of running the command than spawning it.
pub fn act_with(
    services: &Services,
    description: &str,
    read_only: bool,
    hints: &Hints<'_>,
    run: impl FnOnce() -> Result<Outcome, ProcessError>,
) -> RhaiResultOf<Option<Outcome>> {
    if !services.should_act(&Action { description, read_only }) {
        return Ok(None);
    }
    match run() {
        Ok(outcome) => Ok(Some(outcome)),
        Err(ProcessError::Interrupted(reason)) => Err(terminated(reason)),
        Err(e @ ProcessError::Spawn { .. }) => Err(failure_with_hint(FailureKind::Command, e.to_string(), hints.spawn)),
        Err(e) => Err(match hints.other {
            Some(h) => failure_with_hint(FailureKind::Command, e.to_string(), h),
            None => failure(FailureKind::Command, e.to_string()),
        }),
    }
}

/// A tool call through [`act`].
pub fn call(services: &Services, call: &ToolCall) -> RhaiResultOf<Option<Outcome>> {
    call_with(services, call, || process::execute(services, &call.spec))
}

/// A tool call through [`act_with`]: `run` runs it.
pub fn call_with(
    services: &Services,
    call: &ToolCall,
    run: impl FnOnce() -> Result<Outcome, ProcessError>,
) -> RhaiResultOf<Option<Outcome>> {
    let spawn = format!("install `{}` or put it on PATH", call.program);
    act_with(
        services,
        &call.display(),
        call.read_only,
        &Hints { spawn: &spawn, other: Some("see the step's output") },
        run,
    )
}

/// A tool call through [`call`] whose non-zero exit is an error carrying
/// the tool's own words and `hint`. `None` when dry-run skipped it.
pub fn checked(services: &Services, call: &ToolCall, hint: Option<&str>) -> RhaiResultOf<Option<Outcome>> {
    match self::call(services, call)? {
        Some(out) if !out.success() => Err(failed(call, &out, hint.map(Into::into))),
        other => Ok(other),
    }
}

/// The error for a tool that exited non-zero: its own words, trimmed, and
/// as `data` the `program`, its `args`, the `exit_code` (`()` when a signal
/// ended it) and the `stderr` tail.
pub fn failed(call: &ToolCall, outcome: &Outcome, hint: Option<String>) -> Box<rhai::EvalAltResult> {
    let stderr = last_lines(&outcome.stderr, 12);
    let words = stderr.clone().or_else(|| last_lines(&outcome.stdout, 12)).unwrap_or_default();
    // No redactor here: the error is masked where it is shown, and the
    // redactor knows the quoted form of a secret (`it'\''s`) too.
    let mut message = format!("`{}` failed with {}", call.spec.display(), outcome.describe(call.timeout));
    if !words.is_empty() {
        message.push_str(":\n");
        message.push_str(&words);
    }
    let args: rhai::Array = call.spec.args.iter().map(|a| a.clone().into()).collect();
    HostFailure::new(FailureKind::Command, message)
        .with_hint(hint.unwrap_or_else(|| "the tool's own message is above; the step log has its full output".into()))
        .with_data("program", call.spec.program.clone())
        .with_data("args", args)
        .with_data("exit_code", outcome.code.map_or(rhai::Dynamic::UNIT, |c| i64::from(c).into()))
        .with_data("stderr", stderr.unwrap_or_default())
        .into()
}

/// The last `n` non-empty lines of a text, or `None` if it has none.
pub fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}
