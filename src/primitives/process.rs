//! `run(argv, opts)` and `sh(script, opts)`: children through the one
//! process runner, dry-run through the one decision.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::registration::func;

use super::tool;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::process::{self, CommandSpec};
use crate::state::RunState;

const RUN_OPTIONS: &[&str] = &["cwd", "env", "stdin", "timeout", "check", "read_only", "quiet"];

struct RunOptions {
    check: bool,
    read_only: bool,
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    const RUN_DOC: &str = "Run a program with arguments (no shell). Output streams to the step log as it\n\
        comes. Returns `#{ code, stdout, stderr, duration_ms, dry_run }`; a non-zero exit\n\
        fails the step unless `check: false`. Options: `cwd`, `env` (map), `stdin`,\n\
        `timeout`, `check`, `read_only` (runs under --dry-run too), `quiet`.\n\
        ```rhai\nlet r = run([\"git\", \"rev-parse\", \"HEAD\"], #{ read_only: true });\n```";
    const SH_DOC: &str = "Run a script with `/bin/sh -c`. Same options and result as `run`.\n\
        ```rhai\nsh(\"make build && make test\", #{ cwd: \"app\", timeout: \"10m\" });\n```";
    let s = state.clone();
    func(engine, "run", &["argv: Array", "Map"], RUN_DOC, move |argv: Array| run(&s, argv, &Map::new()));
    let s = state.clone();
    func(engine, "run", &["argv: Array", "options: Map", "Map"], RUN_DOC, move |argv: Array, opts: Map| {
        run(&s, argv, &opts)
    });
    let s = state.clone();
    func(engine, "sh", &["script: &str", "Map"], SH_DOC, move |script: &str| sh(&s, script, &Map::new()));
    let s = state.clone();
    func(engine, "sh", &["script: &str", "options: Map", "Map"], SH_DOC, move |script: &str, opts: Map| {
        sh(&s, script, &opts)
    });
}

fn run(state: &RunState, argv: Array, opts: &Map) -> RhaiResultOf<Map> {
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
    let options = apply_options(&mut spec, opts, "run")?;
    execute(state, &spec, &options, &spec.display())
}

fn sh(state: &RunState, script: &str, opts: &Map) -> RhaiResultOf<Map> {
    let mut spec = CommandSpec::new("/bin/sh", vec!["-c".into(), script.to_string()]);
    let options = apply_options(&mut spec, opts, "sh")?;
    let shown = format!("sh -c {}", process::quote(script));
    execute(state, &spec, &options, &shown)
}

fn apply_options(spec: &mut CommandSpec, opts: &Map, what: &str) -> RhaiResultOf<RunOptions> {
    let mut o = RunOptions { check: true, read_only: false };
    let bad = |key: &str, expected: &str, v: &Dynamic| {
        failure(FailureKind::Usage, format!("{what} option `{key}` must be {expected}, not {}", v.type_name()))
    };
    for (key, value) in opts {
        match key.as_str() {
            "cwd" => spec.cwd = Some(value.to_string().into()),
            "stdin" => spec.stdin = Some(value.to_string()),
            "env" => {
                let map = value.read_lock::<Map>().ok_or_else(|| bad(key, "a map", value))?;
                spec.env = map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            }
            "timeout" => {
                spec.timeout = Some(
                    parse_duration(value)
                        .map_err(|m| failure(FailureKind::Usage, format!("{what} option `timeout`: {m}")))?,
                );
            }
            "check" => o.check = value.as_bool().map_err(|_| bad(key, "true or false", value))?,
            "read_only" => o.read_only = value.as_bool().map_err(|_| bad(key, "true or false", value))?,
            "quiet" => spec.quiet = value.as_bool().map_err(|_| bad(key, "true or false", value))?,
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown {what} option `{other}`; the options are: {}", RUN_OPTIONS.join(", ")),
                ))
            }
        }
    }
    Ok(o)
}

fn execute(state: &RunState, spec: &CommandSpec, options: &RunOptions, display: &str) -> RhaiResultOf<Map> {
    let hints = tool::Hints { spawn: "check the program name, PATH and `cwd`", other: None };
    let Some(outcome) = tool::act(state, spec, display, options.read_only, &hints)? else {
        return Ok(result(0, String::new(), String::new(), Duration::ZERO, true));
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
    let code = outcome.code.map_or_else(|| i64::from(-outcome.signal.unwrap_or(1)), i64::from);
    Ok(result(code, outcome.stdout, outcome.stderr, outcome.duration, false))
}

fn short(display: &str) -> String {
    const MAX: usize = 120;
    if display.chars().count() <= MAX {
        display.to_string()
    } else {
        format!("{}…", display.chars().take(MAX).collect::<String>())
    }
}

fn result(code: i64, stdout: String, stderr: String, duration: Duration, dry_run: bool) -> Map {
    let mut m = Map::new();
    m.insert("code".into(), code.into());
    m.insert("stdout".into(), stdout.into());
    m.insert("stderr".into(), stderr.into());
    m.insert("duration_ms".into(), (duration.as_millis() as i64).into());
    m.insert("dry_run".into(), dry_run.into());
    m
}
