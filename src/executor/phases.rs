//! Running the declared phases: selection, the run's deadline, the undo
//! stack on failure, the phase events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, AST};

use super::classify::describe;
use super::undo;
use crate::events::{EventKind, Location, Status};
use crate::exit;
use crate::playbook::PhaseDecl;
use crate::services::frame::{self, Frame};
use crate::state::RunState;

/// Which phases to run.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    pub only: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// How a run ended.
pub struct Outcome {
    pub exit_code: i32,
    pub status: Status,
    /// The error that aborted the run, for the diagnostic renderer.
    pub error: Option<Box<EvalAltResult>>,
}

/// Pass 1: evaluate the top level, which declares phases and reads params.
pub fn declare(state: &RunState, engine: &Engine, ast: &AST) -> Result<(), Box<EvalAltResult>> {
    // The time budget holds in waits too, where no operations are counted.
    let cancel = &state.services.cancel;
    cancel.set_top_level_deadline(Instant::now().checked_add(state.top_level.time));
    let result = engine.run_ast(ast);
    cancel.set_top_level_deadline(None);
    state.finish_declaring();
    result
}

/// A `--phase/--from/--to` selection the playbook's phases cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionError {
    /// `flag` (`--phase`, `--from`, `--to`) names a phase that is not there.
    NoSuchPhase { flag: &'static str, name: String, phases: Vec<String> },
    /// `--from` names a phase after the one `--to` names.
    Backwards { from: String, to: String },
}

impl std::fmt::Display for SelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectionError::NoSuchPhase { flag, name, phases } => {
                write!(f, "{flag} {name}: the playbook has no such phase; its phases are: {}", phases.join(", "))
            }
            SelectionError::Backwards { from, to } => write!(f, "--from {from} comes after --to {to}"),
        }
    }
}

impl std::error::Error for SelectionError {}

/// The phases a selection picks, in declaration order.
pub fn select(phases: &[PhaseDecl], selection: &Selection) -> Result<Vec<PhaseDecl>, SelectionError> {
    let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    let picked = select_names(&names, selection)?;
    Ok(phases.iter().enumerate().filter(|(i, _)| picked.contains(i)).map(|(_, p)| p.clone()).collect())
}

/// The indexes of the phases a selection picks among `names`.
pub fn select_names(names: &[&str], selection: &Selection) -> Result<Vec<usize>, SelectionError> {
    let index = |name: &str, flag: &'static str| {
        names.iter().position(|n| *n == name).ok_or_else(|| SelectionError::NoSuchPhase {
            flag,
            name: name.to_string(),
            phases: names.iter().map(|n| (*n).to_string()).collect(),
        })
    };
    let first = selection.from.as_deref().map(|n| index(n, "--from")).transpose()?.unwrap_or(0);
    let last = selection.to.as_deref().map(|n| index(n, "--to")).transpose()?.unwrap_or(names.len().saturating_sub(1));
    if first > last && !names.is_empty() {
        return Err(SelectionError::Backwards { from: names[first].to_string(), to: names[last].to_string() });
    }
    for name in &selection.only {
        index(name, "--phase")?;
    }
    Ok((0..names.len())
        .filter(|i| {
            (first..=last).contains(i) && (selection.only.is_empty() || selection.only.iter().any(|o| o == names[*i]))
        })
        .collect())
}

/// Pass 2: run the phases, and on failure the undo stack and handlers; the
/// run is over afterwards (`run_finished`).
pub fn run(state: &Arc<RunState>, engine: &Engine, phases: &[PhaseDecl], timeout: Option<Duration>) -> Outcome {
    let services = &state.services;
    let start = Instant::now();
    if let Some(at) = timeout.and_then(|t| start.checked_add(t)) {
        services.cancel.set_run_deadline(Some(at));
    }
    let outcome = run_phases(state, engine, phases);
    services.cancel.set_run_deadline(None);
    stop_leftovers(services);
    services.emit(EventKind::RunFinished {
        status: outcome.status,
        exit_code: outcome.exit_code,
        duration_ms: start.elapsed().as_millis() as u64,
        error: outcome.error.as_deref().map(describe),
        error_at: outcome.error.as_deref().and_then(crate::diagnostics::error_location),
    });
    services.bus.flush();
    outcome
}

/// Kill what steps left running in the background (unless they said
/// `detach: true`) and say so: the run is over, its processes go with it.
pub fn stop_leftovers(services: &crate::services::Services) {
    // The run's ssh masters end with it; they are not a step's leftovers.
    crate::services::ssh_masters::close_all();
    let killed = crate::process::tree::kill_leftovers();
    if killed > 0 {
        services.log(
            crate::events::Level::Warn,
            format!(
                "stopped {killed} background process{} that steps left running; \
                 a step that starts something meant to outlive the run says `#{{ detach: true }}`",
                if killed == 1 { "" } else { "es" }
            ),
        );
    }
}

/// Run phases, and on failure the undo stack and `on_failure` handlers,
/// without ending the run: the REPL's `:run PHASE` runs phases one command
/// at a time within its session.
pub fn run_phases(state: &Arc<RunState>, engine: &Engine, phases: &[PhaseDecl]) -> Outcome {
    let services = &state.services;

    let mut abort = None;
    for phase in phases {
        if let Err(e) = run_phase(state, engine, phase) {
            abort = Some(e);
            break;
        }
    }

    let outcome = match abort {
        None => Outcome {
            exit_code: exit::OK,
            status: if services.dry_run() { Status::DryRun } else { Status::Ok },
            error: None,
        },
        Some(error) => {
            let interrupted = services.cancel.was_signalled();
            let run_deadline = services.cancel.run_deadline();
            services.cancel.enter_cleanup(cleanup_deadline(run_deadline, state.settings.undo_timeout));
            let undo_ok = undo::unwind(state, engine);
            let handlers_ok = undo::failure_handlers(state, engine, &error);
            services.cancel.set_run_deadline(run_deadline);
            let blocked = crate::failure::FailureKind::of(&error) == Some(crate::failure::FailureKind::Blocked);
            let exit_code = if interrupted || services.cancel.was_signalled() {
                exit::INTERRUPTED
            } else if !(undo_ok && handlers_ok) {
                exit::UNDO_FAILED
            } else if blocked {
                exit::BLOCKED
            } else {
                exit::FAILED
            };
            let status = if exit_code == exit::INTERRUPTED { Status::Interrupted } else { Status::Failed };
            Outcome { exit_code, status, error: Some(error) }
        }
    };
    services.bus.flush();
    outcome
}

/// How long undo and `on_failure` handlers may run: what is left of the
/// run's `--timeout`, but at least the `--undo-timeout` grace (5 minutes by
/// default), so a run that timed out can still roll back; unbounded when
/// neither flag is given.
pub fn cleanup_deadline(run_deadline: Option<Instant>, undo_timeout: Option<Duration>) -> Option<Instant> {
    const DEFAULT_GRACE: Duration = Duration::from_secs(300);
    let now = Instant::now();
    match (run_deadline, undo_timeout) {
        (Some(run), grace) => now.checked_add(grace.unwrap_or(DEFAULT_GRACE)).map(|g| g.max(run)),
        (None, Some(grace)) => now.checked_add(grace),
        (None, None) => None,
    }
}

fn run_phase(state: &RunState, engine: &Engine, phase: &PhaseDecl) -> Result<(), Box<EvalAltResult>> {
    let services = &state.services;
    let name: Arc<str> = phase.name.as_str().into();
    services.emit(EventKind::PhaseStarted { phase: name.clone() });
    services.bus.flush();
    let start = Instant::now();
    let phase_frame =
        Frame::new(Location { phase: Some(name.clone()), step: None, seq: Some(services.next_step_seq()), host: None });
    let result = {
        let _guard = frame::push(phase_frame.clone());
        let ctx = phase.context.create_context(engine);
        phase.body.call_within_context::<Dynamic>(&ctx, ())
    };
    let (status, error, error_at) = match &result {
        Ok(_) if services.dry_run() => (Status::DryRun, None, None),
        Ok(_) => (Status::Ok, None, None),
        Err(e) => {
            phase_frame.kill_groups();
            state.note_failure(&phase_frame.at);
            (Status::Failed, Some(describe(e)), crate::diagnostics::error_location(e))
        }
    };
    services.emit(EventKind::PhaseFinished {
        phase: name,
        status,
        duration_ms: start.elapsed().as_millis() as u64,
        attempts: 1,
        error,
        error_at,
    });
    services.bus.flush();
    result.map(|_| ())
}
