//! What `run` and the REPL build once before the first command: the inputs,
//! the services handle, the sinks (the recorder, then the command's output),
//! the run's state and engine, the playbook loaded, the `--lock`s taken, and
//! the signal handling. `cli/run.rs` and `repl/console.rs` differ only in
//! what they do with it afterwards. `list`, `check`, `ci` and `doc` build an
//! [`inspection`] instead: the same state and engine, nothing run.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::args::{InputArgs, InventoryArgs};
use crate::error::Error;
use crate::events::Sink;
use crate::launch::Loaded;
use crate::playbook::Inputs;
use crate::report::{Recorder, RunRecord};
use crate::secrets::Redactor;
use crate::services::Services;
use crate::state::{Mode, RunState, Settings};

/// A run's state and engine, with the sinks attached to its bus.
pub struct Session {
    pub services: Arc<Services>,
    pub state: Arc<RunState>,
    pub engine: rhai::Engine,
    /// What the recorder has seen so far: the run as `runs show` tells it.
    pub record: Arc<Mutex<RunRecord>>,
}

impl Session {
    /// The recorder and the command's `output` sink go on the bus first, so
    /// they see every event; `prepare` finishes the state before the engine
    /// is built on it (`--resume`).
    pub fn build(
        services: Arc<Services>,
        inputs: Inputs,
        settings: Settings,
        root: &Path,
        output: impl FnOnce(&Arc<Mutex<RunRecord>>) -> Box<dyn Sink>,
        prepare: impl FnOnce(&mut RunState),
    ) -> Self {
        let (recorder, record) = Recorder::new();
        services.bus.add_sink(Box::new(recorder));
        services.bus.add_sink(output(&record));
        let mut state = RunState::new(services.clone(), inputs, Mode::Run);
        state.settings = settings;
        state.record = record.clone();
        prepare(&mut state);
        let state = Arc::new(state);
        let engine = crate::engine::build(&state, root);
        Self { services, state, engine, record }
    }
}

/// Read and compile the playbook, and learn the secrets its literals name
/// before anything can print them.
pub fn load(engine: &rhai::Engine, services: &Services, path: &Path) -> Result<Loaded, Error> {
    let loaded = crate::launch::load(engine, path, services)?;
    crate::playbook::scan::mask_secrets_early(&loaded.ast, &services.redactor);
    Ok(loaded)
}

/// Take the `--lock`s for as long as the state lives. A failure is rendered
/// as coming from `shown_as`: [`Error::Blocked`] when another run holds the
/// lock, [`Error::Script`] otherwise.
pub fn take_locks(state: &RunState, names: &[String], shown_as: &str) -> Result<(), Error> {
    for name in names {
        crate::api::guard::take(state, name).map_err(|e| Error::script(&e, shown_as, &state.services))?;
    }
    Ok(())
}

/// `--param` and `--params-file`.
pub fn inputs(args: &InputArgs) -> Result<Inputs, Error> {
    Inputs::load(args.params_file.as_deref(), &args.params)
        .map_err(|e| Error::input(e, "params are NAME=VALUE; params files hold a JSON or YAML map"))
}

/// The hosts of `-i FILE` picked by `--limit` (none without `-i`): read
/// before the playbook, so a bad inventory stops the command before
/// anything runs.
pub fn inventory(args: &InventoryArgs) -> Result<Vec<crate::inventory::Host>, Error> {
    let Some(file) = &args.inventory else {
        return Ok(Vec::new());
    };
    let hosts = crate::inventory::load(file).map_err(|e| {
        let hint = e.hint();
        Error::input(e, hint)
    })?;
    match &args.limit {
        Some(pattern) => crate::inventory::limit(&hosts, pattern).map_err(|e| {
            let hint = e.hint.clone();
            Error::usage_with_hint(format!("--limit {}: {} (inventory {})", e.pattern, e.message, file.display()), hint)
        }),
        None => Ok(hosts),
    }
}

/// The services handle of a run: its id, a redactor that knows no secret
/// yet, and whether it is a dry run.
pub fn services(run_id: Arc<str>, dry_run: bool) -> Arc<Services> {
    Arc::new(Services::new(run_id, Arc::new(Redactor::new()), dry_run))
}

/// The SHA-256 of the playbook's bytes, as the journal records it.
pub fn sha256(path: &Path) -> String {
    std::fs::read(path).map(|b| format!("{:x}", Sha256::digest(b))).unwrap_or_default()
}

/// A signal that reached capstan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Hand every SIGINT and SIGTERM to `on_signal`, on the runtime, until the
/// returned task is aborted. The handlers are installed now: a later one
/// (the line editor's) would win.
pub fn watch_signals(on_signal: impl Fn(Signal) + Send + 'static) -> Option<tokio::task::JoinHandle<()>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let _entered = runtime.enter();
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    Some(runtime.spawn(async move {
        loop {
            let received = tokio::select! {
                Some(()) = async { sigint.as_mut()?.recv().await } => Signal::Interrupt,
                Some(()) = async { sigterm.as_mut()?.recv().await } => Signal::Terminate,
                else => break,
            };
            on_signal(received);
        }
    }))
}

/// State and engine for evaluating a playbook without running it
/// (`list`, `check`, `ci`, `doc`): dry-run, no outputs, missing inputs tolerated.
pub fn inspection(root: &Path, budget: crate::state::TopLevelBudget) -> (Arc<RunState>, rhai::Engine) {
    inspection_of(root, budget, Vec::new())
}

/// [`inspection`] with the hosts `inventory()` returns (`list -i`).
pub fn inspection_of(
    root: &Path,
    budget: crate::state::TopLevelBudget,
    inventory: Vec<crate::inventory::Host>,
) -> (Arc<RunState>, rhai::Engine) {
    let services = services("inspect".into(), true);
    let mut state = RunState::new(services, Inputs::default(), Mode::Inspect);
    state.top_level = budget;
    state.set_inventory(inventory);
    let state = Arc::new(state);
    let engine = crate::engine::build(&state, root);
    (state, engine)
}
