//! Core primitives: params, secrets, environment, phases and steps, gates,
//! logging, events, tools, time.

use std::sync::Arc;
use std::time::SystemTime;

use rhai::{Array, Dynamic, Engine, FnPtr, ImmutableString as Str, Map, NativeCallContext};

use super::registration::{docs, Api};
use crate::events::{EventKind, Level};
use crate::executor;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::{parse_duration, DeferredCall, ParamDecl, PhaseDecl, PhaseOptions, StepOptions};
use crate::services::{frame, wait, Services};
use crate::state::{Mode, RunState};

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut api = Api::global(engine, state.clone());
    inputs(&mut api);
    structure(&mut api);
    let mut api = Api::global(engine, state.services.clone());
    logging(&mut api);
    misc(&mut api);
}

fn inputs(api: &mut Api<'_, Arc<RunState>>) {
    api.func1(
        "param",
        &["name: &str", "?"],
        docs! {
            /// A required parameter, from `--param NAME=VALUE` or `--params-file`.
            /// The run stops with exit 2 before anything runs when it is missing.
            /// ```rhai
            /// let version = param("version");
            /// ```
        },
        |s, name: Str| param(s, &name, None),
    );
    api.func2(
        "param",
        &["name: &str", "default: ?", "?"],
        docs! {
            /// A parameter with a default. `--param` text is converted to the default's type
            /// (integer, float, bool); `--params-file` values keep their own type.
            /// ```rhai
            /// let replicas = param("replicas", 2);
            /// ```
        },
        |s, name: Str, default: Dynamic| param(s, &name, Some(default)),
    );
    api.func1(
        "secret",
        &["name: &str", "String"],
        docs! {
            /// A secret from the environment variable `name`. Its value (trimmed, line by line,
            /// and its base64, hex, URL and JSON-escaped forms) is replaced by `***` in every
            /// output; forms under 4 characters are not, with a warning. Exit 2 when unset.
            /// ```rhai
            /// let token = secret("REGISTRY_TOKEN");
            /// ```
        },
        |s, name: Str| secret(s, &name),
    );
    api.func1(
        "env",
        &["name: &str", "?"],
        docs! {
            /// An environment variable, or `()` when it is not set.
            /// ```rhai
            /// let home = env("HOME");
            /// ```
        },
        |_, name: Str| Ok(std::env::var(name.as_str()).map_or(Dynamic::UNIT, Dynamic::from)),
    );
    api.func2(
        "env",
        &["name: &str", "default: ?", "?"],
        docs! {
            /// An environment variable, or `default` when it is not set.
            /// ```rhai
            /// let region = env("AWS_REGION", "eu-west-1");
            /// ```
        },
        |_, name: Str, default: Dynamic| Ok(std::env::var(name.as_str()).map_or(default, Dynamic::from)),
    );
}

fn param(state: &RunState, name: &str, default: Option<Dynamic>) -> RhaiResultOf<Dynamic> {
    {
        let mut model = state.model();
        if !model.params.iter().any(|p| p.name == name) {
            model.params.push(ParamDecl {
                name: name.to_string(),
                required: default.is_none(),
                default: default.as_ref().and_then(|d| serde_json::to_value(d).ok()),
            });
        }
    }
    match state.inputs.get(name, default.as_ref()) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => match default {
            Some(d) => Ok(d),
            None if state.mode == Mode::Inspect => Ok(Dynamic::from("")),
            None => Err(failure_with_hint(
                FailureKind::MissingParam,
                format!("missing required param `{name}`"),
                format!("pass --param {name}=VALUE or put `{name}` in a --params-file"),
            )),
        },
        Err(message) => {
            Err(failure_with_hint(FailureKind::Usage, message, format!("fix the value given for `{name}`")))
        }
    }
}

fn secret(state: &RunState, name: &str) -> RhaiResultOf<String> {
    {
        let mut model = state.model();
        if !model.secrets.iter().any(|s| s == name) {
            model.secrets.push(name.to_string());
        }
    }
    match std::env::var(name) {
        Ok(value) => {
            if let Some(warning) = state.services.redactor.add_named(name, &value) {
                state.services.log(Level::Warn, warning);
            }
            Ok(value)
        }
        Err(_) if state.mode == Mode::Inspect => Ok(String::new()),
        Err(_) => Err(failure_with_hint(
            FailureKind::MissingSecret,
            format!("secret `{name}` is not set"),
            format!("export {name} in the environment capstan runs in (CI: add it to the job's secrets)"),
        )),
    }
}

fn structure(api: &mut Api<'_, Arc<RunState>>) {
    api.ctx2(
        "phase",
        &["name: &str", "body: FnPtr", "()"],
        docs! {
            /// Declare a phase. Phases run after the top level, in declaration order;
            /// `--phase`, `--from` and `--to` select them.
            /// ```rhai
            /// phase("build", || {
            ///     step("compile", || run(["make"]));
            /// });
            /// ```
        },
        |s, ctx, name: Str, body: FnPtr| declare_phase(s, ctx, &name, PhaseOptions::default(), body),
    );
    api.ctx3(
        "phase",
        &["name: &str", "options: Map", "body: FnPtr", "()"],
        docs! {
            /// A phase with options: `artifacts`, the files and folders (relative to the
            /// playbook's folder; globs allowed) the phase leaves for later phases. `capstan ci`
            /// carries them from job to job with the journal. `check: true` marks an independent
            /// check (lint, unit tests, a scan), declared before the other phases: `capstan ci`
            /// runs each check as a job of its own, all at once, and the first other phase's job
            /// needs them all, so a failed check stops the pipeline before the build.
            /// ```rhai
            /// phase("lint", #{ check: true }, || step("clippy", || run(["cargo", "clippy"])));
            /// phase("plan", #{ artifacts: ["infra/capstan.tfplan"] }, || {
            ///     step("plan", || terraform::plan("infra"));
            /// });
            /// ```
        },
        |s, ctx, name: Str, options: Map, body: FnPtr| {
            let options = PhaseOptions::from_map(&options)
                .map_err(|e| failure_with_hint(FailureKind::Usage, e.to_string(), "see `capstan doc phase`"))?;
            declare_phase(s, ctx, &name, options, body)
        },
    );
    api.ctx2(
        "step",
        &["name: &str", "body: FnPtr", "?"],
        docs! {
            /// Run a logged step and return the closure's value. Steps nest (`outer/inner`).
            /// ```rhai
            /// let out = step("build", || run(["make"]));
            /// ```
        },
        |s, ctx, name: Str, body: FnPtr| executor::step::run(s, ctx, &name, StepOptions::default(), body),
    );
    api.ctx3(
        "step",
        &["name: &str", "options: Map", "body: FnPtr", "?"],
        docs! {
            /// A step with options: `retries`, `retry_delay` (doubled each attempt), `timeout`
            /// (kills the step's processes), `allow_failure`, `when`, `undo` (a closure run,
            /// newest first, when a later failure aborts the run), `detach` (what its commands
            /// leave running in the background outlives the run; otherwise it is killed when the
            /// run ends), `every_job` (the step prepares the workspace: a resumed run, such as a
            /// later CI job, runs it again instead of replaying its recorded value).
            /// ```rhai
            /// step("deploy", #{ retries: 2, timeout: "5m", undo: || run(["./rollback"]) },
            ///     || run(["./deploy"]));
            /// ```
        },
        |s, ctx, name: Str, options: Map, body: FnPtr| {
            let options = StepOptions::from_map(&options)
                .map_err(|m| failure_with_hint(FailureKind::Usage, m, "see `capstan doc step`"))?;
            executor::step::run(s, ctx, &name, options, body)
        },
    );
    api.ctx1(
        "parallel",
        &["branches: Array", "Array"],
        docs! {
            /// Run closures at the same time and return their results in order. When one
            /// fails the others are stopped and the failure is raised.
            /// ```rhai
            /// let r = parallel([|| run(["make", "a"]), || run(["make", "b"])]);
            /// ```
        },
        |s, ctx, branches: Array| executor::parallel::run(s, ctx, branches, 0),
    );
    api.ctx2(
        "parallel",
        &["branches: Array", "options: Map", "Array"],
        docs! {
            /// `parallel` with `#{ max: N }`: at most N branches at once.
            /// ```rhai
            /// parallel(hosts.map(|h| || ssh_deploy(h)), #{ max: 4 });
            /// ```
        },
        |s, ctx, branches: Array, options: Map| executor::parallel::run(s, ctx, branches, parallel_max(&options)?),
    );
    api.ctx1(
        "on_failure",
        &["handler: FnPtr", "()"],
        docs! {
            /// Register a handler run when the run fails, after the undo closures.
            /// It receives `#{ message, phase, step, kind }`.
            /// ```rhai
            /// on_failure(|err| warn(`deploy failed: ${err.message}`));
            /// ```
        },
        |s, ctx, handler: FnPtr| {
            let mut context = ctx.store_data();
            context.global.level = 0;
            s.model().failure_handlers.push(DeferredCall { body: handler, context });
            Ok(())
        },
    );
    api.func1(
        "fail",
        &["message: ?", "()"],
        docs! {
            /// Fail the current step with a message.
            /// ```rhai
            /// if !ok { fail("smoke test did not pass"); }
            /// ```
        },
        |_, message: Dynamic| -> RhaiResultOf<()> { Err(failure(FailureKind::Fail, text(&message))) },
    );
    api.func2(
        "gate",
        &["name: &str", "passed: bool", "()"],
        docs! {
            /// Record a gate; fail the current step when `passed` is false.
            /// ```rhai
            /// gate("tests passed", r.code == 0);
            /// ```
        },
        |s, name: Str, passed: bool| gate(s, &name, passed, None),
    );
    api.func3(
        "gate",
        &["name: &str", "passed: bool", "hint: &str", "()"],
        docs! {
            /// A gate with a hint saying what to do when it fails.
            /// ```rhai
            /// gate("no infra change", !plan.changed, "run the infra playbook first");
            /// ```
        },
        |s, name: Str, passed: bool, hint: Str| gate(s, &name, passed, Some(hint.to_string())),
    );
}

/// `parallel`'s `#{ max: N }`; 0 (no limit) without it.
fn parallel_max(options: &Map) -> RhaiResultOf<usize> {
    let mut max = 0;
    for (k, v) in options {
        match k.as_str() {
            "max" => {
                max =
                    v.as_int().ok().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
                        failure(FailureKind::Usage, "parallel option `max` must be a positive integer")
                    })?;
            }
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown parallel option `{other}`; the option is: max"),
                ))
            }
        }
    }
    Ok(max)
}

fn declare_phase(
    state: &RunState,
    ctx: &NativeCallContext,
    name: &str,
    options: PhaseOptions,
    body: FnPtr,
) -> RhaiResultOf<()> {
    if !state.is_declaring() {
        return Err(failure_with_hint(
            FailureKind::Usage,
            format!("phase(\"{name}\") called while the playbook runs"),
            "declare phases at the top level of the playbook",
        ));
    }
    let mut model = state.model();
    if let Some(first) = model.phases.iter().find(|p| p.name == name) {
        let line = first.position.line().map(|l| format!(" (first at line {l})")).unwrap_or_default();
        return Err(failure_with_hint(
            FailureKind::Usage,
            format!("phase `{name}` is declared twice{line}"),
            "give each phase its own name",
        ));
    }
    let mut context = ctx.store_data();
    // A deferred call must not inherit the declaring call's depth.
    context.global.level = 0;
    model.phases.push(PhaseDecl {
        name: name.to_string(),
        body,
        context,
        source: ctx.source().map(str::to_string),
        position: ctx.call_position(),
        options,
    });
    Ok(())
}

fn gate(state: &RunState, name: &str, passed: bool, hint: Option<String>) -> RhaiResultOf<()> {
    state.services.emit(EventKind::Gate {
        at: frame::location(),
        name: name.to_string(),
        passed,
        hint: hint.clone(),
        by: None,
        via: None,
    });
    if passed {
        return Ok(());
    }
    let message = format!("gate failed: {name}");
    Err(match hint {
        Some(h) => failure_with_hint(FailureKind::Gate, message, h),
        None => failure(FailureKind::Gate, message),
    })
}

fn logging(api: &mut Api<'_, Arc<Services>>) {
    let log = |level: Level| {
        move |s: &Arc<Services>, message: Dynamic| {
            s.log(level, text(&message));
            Ok(())
        }
    };
    api.func1(
        "info",
        &["message: ?", "()"],
        docs! {
            /// Log a message.
            /// ```rhai
            /// info(`deploying ${version}`);
            /// ```
        },
        log(Level::Info),
    );
    api.func1(
        "warn",
        &["message: ?", "()"],
        docs! {
            /// Log a warning.
            /// ```rhai
            /// warn("cache is cold");
            /// ```
        },
        log(Level::Warn),
    );
    api.func1(
        "error",
        &["message: ?", "()"],
        docs! {
            /// Log an error (the step goes on; use `fail` to stop it).
            /// ```rhai
            /// error("replica 3 is lagging");
            /// ```
        },
        log(Level::Error),
    );
    api.func2(
        "event",
        &["type: &str", "data: Map", "()"],
        docs! {
            /// Emit a user event into every output (JSON lines, journal, reports).
            /// ```rhai
            /// event("deployed", #{ version: version, replicas: 3 });
            /// ```
        },
        |s, kind: Str, data: Map| {
            let data = serde_json::to_value(Dynamic::from_map(data))
                .map_err(|e| failure(FailureKind::Usage, format!("event data cannot be recorded: {e}")))?;
            s.emit(EventKind::User { at: frame::location(), kind: kind.to_string(), data, quiet: false });
            Ok(())
        },
    );
}

/// `sleep` for any duration a script writes; Ctrl-C and timeouts interrupt it.
fn sleep(services: &Services, duration: &Dynamic) -> RhaiResultOf<()> {
    let d = parse_duration(duration).map_err(|m| failure(FailureKind::Usage, format!("sleep: {m}")))?;
    wait::sleep(services, d)
}

fn misc(api: &mut Api<'_, Arc<Services>>) {
    api.func1(
        "require_tools",
        &["tools: Array", "()"],
        docs! {
            /// Fail unless every program is on PATH.
            /// ```rhai
            /// require_tools(["terraform", "helm"]);
            /// ```
        },
        |_, tools: Array| {
            let missing: Vec<String> =
                tools.iter().map(ToString::to_string).filter(|t| find_on_path(t).is_none()).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(failure_with_hint(
                    FailureKind::Fail,
                    format!("missing tools: {}", missing.join(", ")),
                    "install them or add their folder to PATH",
                ))
            }
        },
    );
    api.func1(
        "sleep",
        &["duration: ?", "()"],
        docs! {
            /// Wait, e.g. `sleep("2s")` or `sleep(2)`. Ctrl-C and timeouts interrupt it.
            /// ```rhai
            /// sleep("10s");
            /// ```
        },
        |s, duration: Dynamic| sleep(s, &duration),
    );
    // The standard package has its own sleep(INT|FLOAT) that nothing can
    // interrupt; these exact signatures replace it.
    api.func1(
        "sleep",
        &["seconds: i64", "()"],
        docs! {
            /// Wait this many seconds; Ctrl-C and timeouts interrupt it.
            /// ```rhai
            /// sleep(2);
            /// ```
        },
        |s, secs: i64| sleep(s, &Dynamic::from(secs)),
    );
    api.func1(
        "sleep",
        &["seconds: f64", "()"],
        docs! {
            /// Wait this many seconds; Ctrl-C and timeouts interrupt it.
            /// ```rhai
            /// sleep(0.5);
            /// ```
        },
        |s, secs: f64| sleep(s, &Dynamic::from(secs)),
    );
    api.func0(
        "now",
        &["String"],
        docs! {
            /// The current time, RFC 3339 in UTC.
            /// ```rhai
            /// info(`started at ${now()}`);
            /// ```
        },
        |_| Ok(crate::events::timestamp(SystemTime::now())),
    );
    api.func0(
        "now_ms",
        &["i64"],
        docs! {
            /// Milliseconds since the Unix epoch, for measuring.
            /// ```rhai
            /// let t0 = now_ms();
            /// ```
        },
        |_| Ok(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)),
    );
    api.func3(
        "progress",
        &["label: String", "done: i64", "total: i64"],
        docs! {
            /// Show how far a long piece of work has come: on a terminal the running step's
            /// spinner becomes a progress bar with `label`. Other outputs do not record it.
            /// ```rhai
            /// for (host, i) in hosts { progress(`upgrading ${host}`, i, hosts.len()); upgrade(host); }
            /// ```
        },
        |s, label: Str, done: i64, total: i64| {
            s.progress(label.as_str(), done.max(0) as u64, total.max(0) as u64);
            Ok(())
        },
    );
    api.func1(
        "duration_ms",
        &["duration: ?", "i64"],
        docs! {
            /// A duration (`"1m30s"`, `"500ms"` or seconds) in milliseconds.
            /// ```rhai
            /// let hold = duration_ms("10m");
            /// ```
        },
        |_, duration: Dynamic| {
            parse_duration(&duration)
                .map(|d| d.as_millis() as i64)
                .map_err(|m| failure(FailureKind::Usage, format!("duration_ms: {m}")))
        },
    );
    api.register(
        "callback",
        &["closure: FnPtr", "args: Array", "?"],
        docs! {
            /// Call a closure the playbook passed in, in the playbook's own function namespace.
            /// Library modules (the bundled strategies) use it for the closures you give them, so
            /// a library's own functions (such as `canary::run`) never shadow the ones the
            /// closure calls (such as `run`).
            /// ```rhai
            /// fn apply(opts) { callback(opts.set_weight, [25]) }
            /// ```
        },
        |ctx: NativeCallContext, closure: FnPtr, args: Array| -> RhaiResultOf<Dynamic> {
            let mut store = ctx.store_data();
            // Layer 0 is the playbook's library; the layers above it belong to
            // the modules whose functions are running now.
            store.global.lib.truncate(1);
            let outer = store.create_context(ctx.engine());
            closure.call_within_context(&outer, args)
        },
    );
    api.func0(
        "dry_run",
        &["bool"],
        docs! {
            /// True under `--dry-run`.
            /// ```rhai
            /// if !dry_run() { info("for real"); }
            /// ```
        },
        |s| Ok(s.dry_run()),
    );
}

fn find_on_path(tool: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &std::path::Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if tool.contains('/') {
        let p = std::path::PathBuf::from(tool);
        return is_exec(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(tool)).find(|p| is_exec(p))
}

/// A script value as log text: strings as they are, the rest displayed.
pub fn text(value: &Dynamic) -> String {
    value.read_lock::<rhai::ImmutableString>().map_or_else(|| value.to_string(), |s| s.to_string())
}
