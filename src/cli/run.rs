//! `capstan run`: declare, select, execute, report.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use super::args::{LogFormat, RunArgs};
use super::{load, usage_error};
use crate::events::{EventKind, Level, Status};
use crate::executor::{self, exit, Selection};
use crate::playbook::Inputs;
use crate::report::{self, Journal, JsonLines, Terminal, TerminalStyle};
use crate::secrets::Redactor;
use crate::services::Services;
use crate::state::{Mode, RunState};
use crate::{diagnostics, engine};

pub async fn run(args: RunArgs) -> i32 {
    let inputs = match Inputs::load(args.params_file.as_deref(), &args.params) {
        Ok(i) => i,
        Err(m) => return usage_error(&m, Some("params are NAME=VALUE; params files hold a JSON or YAML map")),
    };
    let redactor = Arc::new(Redactor::new());
    let run_id: Arc<str> = report::new_run_id().into();
    let services = Arc::new(Services::new(run_id, redactor, args.dry_run));

    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let on_signal = services.clone();
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = async { sigint.as_mut()?.recv().await } => {}
                Some(()) = async { sigterm.as_mut()?.recv().await } => {}
                else => break,
            }
            on_signal.interrupt();
        }
    });

    let blocking = services.clone();
    let code = tokio::task::spawn_blocking(move || run_blocking(&args, inputs, blocking)).await.unwrap_or(exit::FAILED);
    watcher.abort();
    code
}

fn run_blocking(args: &RunArgs, inputs: Inputs, services: Arc<Services>) -> i32 {
    let format = match args.log_format {
        LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Human,
        LogFormat::Auto => LogFormat::Plain,
        f => f,
    };
    let sink: Box<dyn crate::events::Sink> = match format {
        LogFormat::Json => Box::new(JsonLines::stdout()),
        LogFormat::Human => Box::new(Terminal::new(TerminalStyle::Human, args.verbose, args.quiet)),
        _ => Box::new(Terminal::new(TerminalStyle::Plain, args.verbose, args.quiet)),
    };
    services.bus.add_sink(sink);

    let state = Arc::new(RunState::new(services.clone(), inputs, Mode::Run));
    let root = super::playbook_root(&args.playbook);
    let engine = engine::build(&state, &root);
    let loaded = match load(&engine, &args.playbook, &services.redactor) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let display = loaded.path.to_string_lossy().into_owned();

    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        if services.cancel.was_signalled() {
            return exit::INTERRUPTED;
        }
        eprint!("{}", diagnostics::render_eval(&e, &display, &services.redactor));
        return exit::USAGE;
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
    let selection = Selection { only: args.phases.clone(), from: args.from.clone(), to: args.to.clone() };
    let phases = match executor::select(&model.phases, &selection) {
        Ok(p) => p,
        Err(m) => return usage_error(&m, None),
    };

    let journal_root = args.journal_dir.clone().unwrap_or_else(|| root.clone());
    match Journal::create(&journal_root, services.run_id(), &loaded.path) {
        Ok(journal) => services.bus.add_sink(Box::new(journal)),
        Err(e) => services.log(
            Level::Warn,
            format!("no journal for this run: cannot create it under {}: {e}", journal_root.display()),
        ),
    }

    services.emit(EventKind::RunStarted {
        playbook: display.clone(),
        dry_run: services.dry_run,
        version: env!("CARGO_PKG_VERSION"),
        phases: phases.iter().map(|p| p.name.clone()).collect(),
    });
    let outcome = executor::run(&state, &engine, &phases, args.timeout);
    services.bus.finish();
    if let Some(error) = &outcome.error {
        if outcome.status != Status::Interrupted {
            eprint!("{}", diagnostics::render_eval(error, &display, &services.redactor));
        }
    }
    outcome.exit_code
}
