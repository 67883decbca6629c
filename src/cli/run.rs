//! `capstan run`: declare, lock, select, execute, report.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::args::{LogFormat, RunArgs};
use crate::api::post_json;
use crate::diagnostics;
use crate::error::Error;
use crate::events::{EventKind, Level, Sink, Status};
use crate::executor::{self, Selection};
use crate::exit;
use crate::playbook::Inputs;
use crate::replay::resume::Resume;
use crate::report::{self, record, Github, Journal, JsonLines, RunRecord, Terminal, TerminalStyle};
use crate::services::Services;
use crate::session::{self, Session};
use crate::state::{RunState, Settings};
use crate::store::journal::StoreJournal;
use crate::store::State;

pub async fn run(args: RunArgs) -> Result<(), Error> {
    let root = crate::launch::playbook_root(&args.playbook);
    // The store is opened (and a bad one refused) before anything else; it
    // answers on a thread of its own, so asking from here blocks nothing else.
    let store = State::open(args.state.as_deref())?;
    let journal_root = store.journal_root(args.journal_dir.as_ref(), root.clone())?;
    let resume = match &args.resume {
        Some(id) => Some(load_resume(&store, &journal_root, id)?),
        None => None,
    };
    // A replayed value gets the secrets it holds as they are now: each must be set.
    if let Some((secret, step)) = resume.as_ref().and_then(|r| r.missing_secret(&|n| std::env::var(n).is_ok())) {
        let run_id = resume.as_ref().map(|r| r.run_id.as_str()).unwrap_or_default();
        return Err(Error::usage_with_hint(
            format!(
                "cannot resume run {run_id}: step `{step}` returned a value that holds secret `{secret}`, \
                 which is not set now; nothing was run"
            ),
            format!("export {secret} (its current value is put back into the step's value)"),
        ));
    }
    // An undo that failed left its step's work half there: a person decides.
    if let Some((step, error)) = resume.as_ref().and_then(Resume::failed_undo) {
        let run_id = resume.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
        return Err(Error::HalfUndone { run_id, step: step.clone(), error: error.clone() });
    }
    let inputs = session::inputs(&args.inputs)?;
    let inventory = session::inventory(&args.inventory)?;
    let inputs = match &resume {
        Some(r) => inputs.with_recorded(&r.params),
        None => inputs,
    };
    let run_id: Arc<str> = match (&resume, &args.run_name) {
        (Some(r), _) => r.run_id.clone(),
        (None, Some(name)) => report::format::named_run_id(&report::format::run_name(name).map_err(Error::usage)?),
        (None, None) => report::format::new_run_id(),
    }
    .into();
    let services = session::services(run_id, args.dry_run);
    crate::services::ssh_masters::set_max_starts(usize::from(args.ssh_starts));
    let on_signal = services.clone();
    let watcher = session::watch_signals(move |_| on_signal.interrupt());

    let blocking = services.clone();
    let result = tokio::task::spawn_blocking(move || {
        run_blocking(&args, (inputs, inventory), resume, &journal_root, &store, blocking)
    })
    .await
    .unwrap_or(Err(Error::Failed { code: exit::FAILED, diagnostic: None }));
    if let Some(w) = watcher {
        w.abort();
    }
    result
}

fn log_format(args: &RunArgs) -> LogFormat {
    match args.log_format {
        LogFormat::Auto if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") => LogFormat::Github,
        LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Human,
        LogFormat::Auto => LogFormat::Plain,
        f => f,
    }
}

fn output_sink(args: &RunArgs, services: &Services, record: &Arc<Mutex<RunRecord>>) -> Box<dyn Sink> {
    match log_format(args) {
        LogFormat::Json => match crate::launch::output_file() {
            Some(file) => Box::new(JsonLines::to(Box::new(file))),
            None => Box::new(JsonLines::stdout()),
        },
        LogFormat::Human => Box::new(Terminal::new(TerminalStyle::Human, args.verbose, args.quiet)),
        LogFormat::Github => Box::new(Github::new(args.verbose, services.redactor.clone(), record.clone())),
        LogFormat::Plain | LogFormat::Auto => Box::new(Terminal::new(TerminalStyle::Plain, args.verbose, args.quiet)),
    }
}

fn run_blocking(
    args: &RunArgs,
    (inputs, inventory): (Inputs, Vec<crate::inventory::Host>),
    resume: Option<Resume>,
    journal_root: &Path,
    store: &State,
    services: Arc<Services>,
) -> Result<(), Error> {
    let mut settings = Settings::from_cli(args.guards.yes, &args.guards.approvals, journal_root);
    settings.undo_timeout = args.undo_timeout;
    settings.store = store.shared().cloned();
    settings.lock_wait = args.guards.lock_wait;
    settings.lock_ttl = args.guards.lock_ttl;
    let root = crate::launch::playbook_root(&args.playbook);
    let Session { state, engine, record, .. } = Session::build(
        services.clone(),
        inputs,
        settings,
        &root,
        |record| output_sink(args, &services, record),
        |state| {
            state.set_inventory(inventory);
            resume_from(state, resume);
        },
    );
    let loaded = session::load(&engine, &services, &args.playbook)?;
    // A literal a step would reject, or a call at the top level that would
    // change the world before any phase, stops the run before anything runs.
    if let Some(refusal) = super::check::refusal(&engine, &loaded.ast, &loaded.path) {
        return Err(Error::Script { diagnostic: services.mask(&refusal).into_owned() });
    }
    let display = loaded.path.to_string_lossy().into_owned();
    let sha256 = session::sha256(&loaded.path);

    // Exit 2 and 3 mean nothing ran: the selection is checked against the
    // phases the source names and the --lock taken before the top level runs.
    let selection = Selection { only: args.phases.clone(), from: args.from.clone(), to: args.to.clone() };
    if let Some(names) = crate::playbook::scan::phase_names(&loaded.ast) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        executor::select_names(&names, &selection).map_err(Error::invalid)?;
    }
    session::take_locks(&state, &args.guards.locks, &display)?;

    // --timeout covers the whole run, the top level included: a playbook
    // whose top level never ends must not hang the runner.
    let run_start = std::time::Instant::now();
    services.cancel.set_run_deadline(args.timeout.and_then(|t| run_start.checked_add(t)));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        if services.cancel.was_signalled() {
            return Err(Error::Interrupted);
        }
        let diagnostic = services.render_error(&e, &display);
        if executor::classify::is_interrupt(&e) {
            // The run's --timeout expired in the top level: it ran, and failed.
            return Err(Error::Failed { code: exit::FAILED, diagnostic: Some(diagnostic) });
        }
        if let Some(path) = &args.junit {
            let message = services.mask(&crate::failure::error_message(&e)).into_owned();
            let at = diagnostics::innermost_location(&e);
            if let Err(err) = report::junit::write_top_level_error(path, &display, &message, at.as_deref()) {
                crate::errln!("warning: cannot write the JUnit report {}: {err}", path.display());
            }
        }
        return Err(Error::Script { diagnostic });
    }
    let model = state.model().clone();
    for name in state.inputs.names() {
        if !model.params.iter().any(|p| p.name == name) {
            let declared: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
            services.log(
                Level::Warn,
                format!(
                    "param `{name}` is given but the playbook's top level does not read it (it reads: {})",
                    declared.join(", ")
                ),
            );
        }
    }
    let phases = executor::select(&model.phases, &selection).map_err(Error::invalid)?;

    let journal = match &state.resume {
        Some(r) => {
            if r.playbook_sha256.as_deref().is_some_and(|old| old != sha256) {
                services.log(
                    Level::Warn,
                    format!("{display} changed since run {} started; resuming with the new version", r.run_id),
                );
            }
            services.log(
                Level::Info,
                match r.undone_steps() {
                    0 => format!("resuming run {}: {} completed steps will not run again", r.run_id, r.completed_steps()),
                    n => format!(
                        "resuming run {}: {} completed steps will not run again; {n} step{} whose undo ran will run again",
                        r.run_id,
                        r.completed_steps(),
                        if n == 1 { "" } else { "s" }
                    ),
                },
            );
            Journal::reopen(&r.dir, record.clone(), services.journal_health.clone())
        }
        None => Journal::create(journal_root, services.run_id(), record.clone(), services.journal_health.clone()),
    };
    if let Some(shared) = store.shared() {
        let health = services.journal_health.clone();
        let sink =
            StoreJournal::new(shared.backend.clone(), shared.shown.clone(), services.run_id(), journal_root, health);
        services.bus.add_sink(Box::new(sink));
    }
    match journal {
        Ok(journal) => services.bus.add_sink(Box::new(journal)),
        Err(e) => services.log(
            Level::Warn,
            format!("no journal for this run: cannot write it under {}: {e}", journal_root.display()),
        ),
    }

    // The trace is started before `run_started`, which names it.
    let trace = report::otlp::Config::from_env().map(report::otlp::Otlp::start);
    let trace_id = trace.as_ref().map(report::otlp::Otlp::trace_id);
    if let Some(trace) = trace {
        services.bus.add_sink(Box::new(trace));
    }
    services.emit(EventKind::RunStarted {
        playbook: display.clone(),
        dry_run: services.dry_run(),
        version: env!("CARGO_PKG_VERSION"),
        phases: phases.iter().map(|p| p.name.clone()).collect(),
        playbook_sha256: sha256,
        params: state.inputs.to_json(),
        resumed: state.resume.is_some(),
        step_key_salt: state.step_key_salt.clone(),
        trace_id,
    });
    services.release_held();
    // The journal begins after the locks were taken: it records them here.
    for guard in state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        if let (Some(token), Some(store)) = (guard.token, store.shared()) {
            services.log(
                Level::Info,
                format!("holding lock `{}` in {} (fencing token {token})", guard.name(), store.shown),
            );
        }
    }
    let notify = |event: &str, fields: serde_json::Value| notify_all(&services, &args.notify, event, &display, fields);
    notify("run_started", serde_json::json!({ "dry_run": services.dry_run() }));
    let outcome = executor::run(&state, &engine, &phases, None);
    {
        let r = record::lock(&record).clone();
        notify(
            "run_finished",
            serde_json::json!({
                "status": r.status,
                "exit_code": outcome.exit_code,
                "duration_ms": r.duration_ms,
                "error": r.error,
            }),
        );
    }
    services.bus.finish();
    if let Some(path) = &args.junit {
        let ran: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
        if let Err(e) = report::junit::write(&record::lock(&record), path, &ran) {
            crate::errln!("warning: cannot write the JUnit report {}: {e}", path.display());
        }
    }
    state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    let journal_stopped_run = outcome
        .error
        .as_deref()
        .is_some_and(|e| executor::classify::interruption(e) == Some(crate::cancel::Interrupt::JournalLost));
    let diagnostic = outcome
        .error
        .as_ref()
        .filter(|_| outcome.status != Status::Interrupted)
        .map(|error| services.render_error(error, &display));
    let failed = (outcome.exit_code != exit::OK || diagnostic.is_some())
        .then(|| Error::Failed { code: outcome.exit_code, diagnostic });
    match services.journal_health.failure().filter(|_| !journal_stopped_run) {
        // Lost after the last step boundary (or behind a failing step): the
        // run's outcome stands, but its journal is incomplete.
        Some(failure) => Err(Error::JournalIncomplete {
            run_id: services.run_id().to_string(),
            why: services.mask(&failure).into_owned(),
            outcome: failed.map(Box::new),
        }),
        None => failed.map_or(Ok(()), Err),
    }
}

/// The run `--resume` names: from the journal folder, or, with a shared
/// `--state`, from the store (written into the journal folder first, so the
/// run goes on here whichever machine it began on).
fn load_resume(store: &State, journal_root: &Path, id: &str) -> Result<Resume, Error> {
    let mut id = id.to_string();
    if let Some(shared) = store.shared() {
        let found = crate::store::runs::materialize(&shared.backend, &id, journal_root)
            .map_err(|e| Error::usage(format!("cannot read run {id} from the state store {}: {e}", shared.shown)))?;
        match found {
            Some(found) => id = found,
            None => {
                return Err(Error::usage_with_hint(
                    format!("no run {id} in the state store {}", shared.shown),
                    "`capstan runs --state URL` lists the runs it holds",
                ))
            }
        }
    }
    Resume::load(journal_root, &id).map_err(|e| Error::input(e, "`capstan runs` lists the runs under the journal dir"))
}

/// `--resume`: the step numbers, the record and the step keys go on from
/// the earlier attempt; say what of its journal is ignored or runs again.
fn resume_from(state: &mut RunState, resume: Option<Resume>) {
    let services = state.services.clone();
    if let Some(r) = &resume {
        services.start_step_seq_after(r.max_seq);
        *record::lock(&state.record) = r.record.clone();
        // Before anything runs: what of the journal could not be read, and
        // which completed steps will run again.
        if let Some(m) = r.ignored_message() {
            services.log(Level::Warn, m);
        }
        let again = r.every_job_steps();
        if !again.is_empty() {
            services.log(
                Level::Info,
                format!("steps that prepare the workspace run again (every_job): {}", again.join(", ")),
            );
        }
        for (step, why) in r.reruns() {
            services.log(
                Level::Warn,
                format!(
                    "step `{step}` completed in run {}, but its value ({why}) cannot be replayed: it runs again",
                    r.run_id
                ),
            );
        }
    }
    state.step_key_salt = resume.as_ref().and_then(|r| r.salt.clone()).unwrap_or_else(crate::replay::record::new_salt);
    state.resume = resume;
}

/// `--notify URL`: post an event; a failure warns and the run goes on.
/// Posts `event` to every `--notify` URL: its name, the run and the
/// playbook, then the event's own `fields`.
fn notify_all(services: &Services, urls: &[String], event: &str, playbook: &str, fields: serde_json::Value) {
    let mut payload = serde_json::json!({ "event": event, "run_id": services.run_id().as_ref(), "playbook": playbook });
    if let (Some(payload), serde_json::Value::Object(fields)) = (payload.as_object_mut(), fields) {
        payload.extend(fields);
    }
    for url in urls {
        if let Err(message) = post_json(services, url, &payload, &crate::api::PostOptions::default()) {
            services.log(Level::Warn, format!("--notify: not delivered: {message}"));
        }
    }
}
