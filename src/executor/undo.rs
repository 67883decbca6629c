//! The abort path: undo closures of completed steps, newest first (a saga),
//! then the `on_failure` handlers.

use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::cancel::Interrupt;
use crate::events::{EventKind, Level, Location, Status};
use crate::failure::{error_kind, error_message};
use crate::services::frame::{self, Frame};
use crate::state::RunState;

/// Run the undo stack; `false` if any undo failed or was cut short.
pub fn unwind(state: &RunState, engine: &Engine) -> bool {
    unwind_to(state, engine, 0)
}

/// Run the undo entries above `depth` (those pushed since the stack held
/// `depth`), newest first; `false` if any failed or was cut short.
pub fn unwind_to(state: &RunState, engine: &Engine, depth: usize) -> bool {
    let services = &state.services;
    let mut all_ok = true;
    while let Some(entry) = state.pop_undo_above(depth) {
        let name = entry.at.step.as_deref().unwrap_or("?");
        match frame::check(&services.cancel) {
            Some(Interrupt::Signal) => {
                services.log(Level::Error, format!("interrupted again: undo of `{name}` and older steps skipped"));
                return false;
            }
            Some(Interrupt::RunTimeout) => {
                services.log(
                    Level::Error,
                    format!("{}: undo of `{name}` and older steps skipped; undo them by hand", cut_short()),
                );
                return false;
            }
            _ => {}
        }
        let at = Location { seq: Some(services.next_step_seq()), ..entry.at.clone() };
        services.emit(EventKind::UndoStarted { at: at.clone() });
        services.bus.flush();
        let start = Instant::now();
        let undo_frame = Frame::new(at.clone());
        let result = {
            let _guard = frame::push(undo_frame.clone());
            let ctx = entry.call.context.create_context(engine);
            entry.call.body.call_within_context::<Dynamic>(&ctx, ())
        };
        let error = result.err().map(|e| {
            undo_frame.kill_groups();
            match crate::executor::classify::interruption(&e) {
                Some(Interrupt::RunTimeout) => {
                    services.log(Level::Error, format!("{}: undo of `{name}` was cut short", cut_short()));
                    format!("cut short: {}", cut_short())
                }
                _ => crate::executor::classify::describe(&e),
            }
        });
        all_ok &= error.is_none();
        services.emit(EventKind::UndoFinished {
            at,
            status: if error.is_some() { Status::Failed } else { Status::Ok },
            duration_ms: start.elapsed().as_millis() as u64,
            error,
            // A failed fleet host's undo has no key: its step did not complete.
            step_key: Some(entry.step_key.clone()).filter(|k| !k.is_empty()),
        });
        services.bus.flush();
    }
    all_ok
}

/// Call every `on_failure` handler with `#{ message, phase, step, kind }`.
pub fn failure_handlers(state: &RunState, engine: &Engine, error: &EvalAltResult) -> bool {
    let handlers = state.model().failure_handlers.clone();
    let failed_at = state.failed_step();
    let mut info = Map::new();
    info.insert("message".into(), state.services.mask(&error_message(error)).into_owned().into());
    info.insert("kind".into(), failure_kind(error).map_or(Dynamic::UNIT, Into::into));
    let phase = failed_at.as_ref().and_then(|l| l.phase.as_deref().map(str::to_string));
    let step = failed_at.as_ref().and_then(|l| l.step.as_deref().map(str::to_string));
    info.insert("phase".into(), phase.clone().map_or(Dynamic::UNIT, Into::into));
    info.insert("step".into(), step.map_or(Dynamic::UNIT, Into::into));

    let mut all_ok = true;
    for handler in handlers {
        let at = Location {
            phase: phase.as_deref().map(Into::into),
            step: Some("on_failure".into()),
            seq: Some(state.services.next_step_seq()),
            host: None,
        };
        let handler_frame = Frame::new(at);
        let _guard = frame::push(handler_frame.clone());
        if frame::check(&state.services.cancel).is_some() {
            all_ok = false;
            state.services.log(Level::Error, format!("on_failure handler skipped: {}", cut_short()));
            continue;
        }
        let ctx = handler.context.create_context(engine);
        if let Err(e) = handler.body.call_within_context::<Dynamic>(&ctx, (Dynamic::from_map(info.clone()),)) {
            all_ok = false;
            handler_frame.kill_groups();
            let why = match crate::executor::classify::interruption(&e) {
                Some(Interrupt::RunTimeout) => format!("cut short: {}", cut_short()),
                _ => crate::executor::classify::describe(&e),
            };
            state.services.log(Level::Error, format!("on_failure handler failed: {why}"));
        }
    }
    all_ok
}

/// Why cleanup stopped when the deadline passed during it.
fn cut_short() -> &'static str {
    "the run's --timeout (and the --undo-timeout grace after it) expired"
}

/// The failure's kind for `on_failure`: a host failure's own kind, or what
/// stopped the run (`interrupted`, `timeout`, `aborted`).
fn failure_kind(error: &EvalAltResult) -> Option<String> {
    error_kind(error).or_else(|| {
        crate::executor::classify::interruption(error).map(|i| {
            match i {
                Interrupt::Signal => "interrupted",
                Interrupt::RunTimeout | Interrupt::StepTimeout { .. } => crate::failure::FailureKind::Timeout.as_str(),
                Interrupt::Aborted => "aborted",
                Interrupt::TopLevelBudget => crate::failure::FailureKind::Usage.as_str(),
                Interrupt::JournalLost => "journal",
            }
            .to_string()
        })
    })
}
