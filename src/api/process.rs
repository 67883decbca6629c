//! `run(argv, opts)` and `sh(script, opts)`: children through the one
//! process runner, dry-run through the one decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Array, Engine, ImmutableString, Map};
use serde::{Deserialize, Serialize};

use super::options::{Seconds, Text};
use super::registration::{docs, Api};
use super::tool;
use super::values::to_map;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::process::{self, CommandSpec, Outcome};
use crate::services::Services;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RunOptions {
    cwd: Option<Text>,
    env: BTreeMap<String, Text>,
    stdin: Option<Text>,
    timeout: Option<Seconds>,
    check: bool,
    read_only: bool,
    quiet: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            cwd: None,
            env: BTreeMap::new(),
            stdin: None,
            timeout: None,
            check: true,
            read_only: false,
            quiet: false,
        }
    }
}

impl RunOptions {
    fn apply(&self, spec: &mut CommandSpec) {
        spec.cwd = self.cwd.as_ref().map(|t| t.0.clone().into());
        spec.stdin = self.stdin.as_ref().map(|t| t.0.clone());
        spec.env = self.env.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        spec.timeout = self.timeout.map(|t| t.0);
        spec.quiet = self.quiet;
    }
}

/// What `run`, `sh` and `ssh::run` return.
#[derive(Serialize, Default)]
pub(super) struct RunResult {
    code: i64,
    stdout: String,
    stderr: String,
    duration_ms: i64,
    dry_run: bool,
}

impl RunResult {
    /// A finished process's result; `None` (skipped by --dry-run) is a
    /// success with no output.
    pub(super) fn of(outcome: Option<Outcome>) -> Self {
        let Some(outcome) = outcome else { return Self { dry_run: true, ..Self::default() } };
        Self {
            code: outcome.code.map_or_else(|| i64::from(-outcome.signal.unwrap_or(1)), i64::from),
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            duration_ms: outcome.duration.as_millis() as i64,
            dry_run: false,
        }
    }
}

pub fn register(engine: &mut Engine, services: &Arc<Services>) {
    const RUN_DOC: &str = docs! {
        /// Run a program with arguments (no shell). Output streams to the step log as it
        /// comes. Returns `#{ code, stdout, stderr, duration_ms, dry_run }`; a non-zero exit
        /// fails the step unless `check: false`. Options: `cwd`, `env` (map), `stdin`,
        /// `timeout`, `check`, `read_only` (runs under --dry-run too), `quiet`.
        /// ```rhai
        /// let r = run(["git", "rev-parse", "HEAD"], #{ read_only: true });
        /// ```
    };
    const SH_DOC: &str = docs! {
        /// Run a script with `/bin/sh -c`. Same options and result as `run`.
        /// ```rhai
        /// sh("make build && make test", #{ cwd: "app", timeout: "10m" });
        /// ```
    };
    let mut api = Api::global(engine, services.clone());
    api.opts1("run", &["argv: Array", "Map"], RUN_DOC, run);
    api.opts1("sh", &["script: &str", "Map"], SH_DOC, sh);
}

fn run(services: &Arc<Services>, argv: Array, options: RunOptions) -> RhaiResultOf<Map> {
    let argv: Vec<String> =
        argv.into_iter().map(|a| a.into_immutable_string().map(|s| s.to_string())).collect::<Result<_, _>>().map_err(
            |t| {
                failure_with_hint(
                    FailureKind::Usage,
                    format!("run: argv must hold strings, found {t}"),
                    "write every argument as a string, e.g. `${n}`",
                )
            },
        )?;
    let Some((program, arguments)) = argv.split_first() else {
        return Err(failure(FailureKind::Usage, "run: argv is empty; give the program and its arguments"));
    };
    let mut spec = CommandSpec::new(program.clone(), arguments.to_vec());
    options.apply(&mut spec);
    execute(services, &spec, &options, &spec.display())
}

fn sh(services: &Arc<Services>, script: ImmutableString, options: RunOptions) -> RhaiResultOf<Map> {
    let mut spec = CommandSpec::new("/bin/sh", vec!["-c".into(), script.to_string()]);
    options.apply(&mut spec);
    let shown = format!("sh -c {}", process::quote(&script));
    execute(services, &spec, &options, &shown)
}

fn execute(services: &Services, spec: &CommandSpec, options: &RunOptions, display: &str) -> RhaiResultOf<Map> {
    let hints = tool::Hints { spawn: "check the program name, PATH and `cwd`", other: None };
    let Some(outcome) = tool::act(services, spec, display, options.read_only, &hints)? else {
        return to_map(&RunResult::of(None));
    };
    if options.check && !outcome.success() {
        let what = outcome.describe(spec.timeout);
        let last = outcome.stderr.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {}", l.trim()));
        let message = format!("`{}` failed with {what}{}", short(display), last.unwrap_or_default());
        let kind = if outcome.timed_out { FailureKind::Timeout } else { FailureKind::Command };
        return Err(failure_with_hint(
            kind,
            message,
            "see the step's output above, or pass `check: false` to handle the result yourself",
        ));
    }
    to_map(&RunResult::of(Some(outcome)))
}

fn short(display: &str) -> String {
    const MAX: usize = 120;
    if display.chars().count() <= MAX {
        display.to_string()
    } else {
        format!("{}…", display.chars().take(MAX).collect::<String>())
    }
}
