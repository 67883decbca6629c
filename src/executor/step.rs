//! One step: options, attempts with doubling delay, the per-attempt
//! timeout, the undo it leaves on the stack, and its events.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};

use crate::events::{EventKind, Location, Status};
use crate::playbook::{DeferredCall, StepOptions};
use crate::primitives::{error_message, failure, failure_with_hint, Failure, RhaiResultOf};
use crate::services::frame::{self, Deadline, Frame};
use crate::services::Interrupt;
use crate::state::{RunState, UndoEntry};

/// Values bigger than this are not recorded in the journal.
const MAX_RECORDED_VALUE: usize = 1 << 20;

pub fn run(
    state: &Arc<RunState>,
    ctx: &NativeCallContext,
    name: &str,
    options: StepOptions,
    body: FnPtr,
) -> RhaiResultOf<Dynamic> {
    let services = &state.services;
    let Some(parent) = frame::current().filter(|_| !state.is_declaring()) else {
        return Err(failure_with_hint(
            Failure::USAGE,
            format!("step(\"{name}\") called outside a phase"),
            "call step() inside a phase: phase(\"do\", || { step(...) })",
        ));
    };
    if name.is_empty() || name.contains('/') {
        return Err(failure(Failure::USAGE, format!("step name \"{name}\" must be non-empty and contain no '/'")));
    }
    let path = match &parent.at.step {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    };
    let at = Location { phase: parent.at.phase.clone(), step: Some(path.into()), seq: Some(services.next_step_seq()) };

    if !options.when {
        services.emit(EventKind::StepFinished {
            at,
            status: Status::Skipped,
            duration_ms: 0,
            attempts: 0,
            allow_failure: false,
            error: None,
            value: None,
        });
        return Ok(Dynamic::UNIT);
    }

    services.emit(EventKind::StepStarted { at: at.clone() });
    services.bus.flush();
    let start = Instant::now();
    let attempts_allowed = options.retries + 1;
    let mut delay = options.retry_delay;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut step_frame = Frame::new(at.clone());
        step_frame.abort.clone_from(&parent.abort);
        step_frame.deadline = options.timeout.map(|limit| Deadline { at: Instant::now() + limit, limit });
        let frame_id = step_frame.id;
        let result = {
            let _guard = frame::push(step_frame.clone());
            body.call_within_context::<Dynamic>(ctx, ())
        };
        let err = match result {
            Ok(value) => {
                if let Some(undo) = &options.undo {
                    let mut context = ctx.store_data();
                    context.global.level = 0;
                    state.push_undo(UndoEntry { at: at.clone(), call: DeferredCall { body: undo.clone(), context } });
                }
                let status = if services.dry_run { Status::DryRun } else { Status::Ok };
                services.emit(EventKind::StepFinished {
                    at,
                    status,
                    duration_ms: millis(start),
                    attempts: attempt,
                    allow_failure: false,
                    error: None,
                    value: record(&value),
                });
                services.bus.flush();
                return Ok(value);
            }
            Err(err) => err,
        };
        // A failed attempt takes its processes with it.
        step_frame.kill_groups();
        let interrupt = interruption(&err);
        let own_timeout = matches!(interrupt, Some(Interrupt::StepTimeout { frame, .. }) if frame == frame_id);
        let message = error_message(&err);
        let retryable = interrupt.is_none() || own_timeout;
        if retryable && attempt < attempts_allowed && frame::check(services).is_none() {
            services.log(
                crate::events::Level::Warn,
                format!(
                    "attempt {attempt}/{attempts_allowed} failed: {message}; retrying in {}",
                    humantime::format_duration(delay)
                ),
            );
            let slept = {
                let _guard = frame::push(Frame::new(at.clone()));
                crate::primitives::sleep_for(state, delay)
            };
            if slept.is_ok() {
                delay = delay.saturating_mul(2);
                continue;
            }
        }
        let allowed = options.allow_failure && retryable;
        services.emit(EventKind::StepFinished {
            at: at.clone(),
            status: Status::Failed,
            duration_ms: millis(start),
            attempts: attempt,
            allow_failure: allowed,
            error: Some(message.clone()),
            value: None,
        });
        services.bus.flush();
        if allowed {
            return Ok(Dynamic::UNIT);
        }
        state.note_failure(&at);
        if own_timeout {
            // This step's deadline, not the run's: an ordinary failure from
            // here on, so an outer step may retry and `catch` sees it.
            return Err(failure_with_hint(
                Failure::TIMEOUT,
                format!("step `{}` {message}", at.step.as_deref().unwrap_or(name)),
                "raise the step's `timeout` or find out why it hangs",
            ));
        }
        return Err(err);
    }
}

/// The capstan interruption behind an error, if it is one.
pub fn interruption(err: &EvalAltResult) -> Option<Interrupt> {
    match crate::primitives::innermost(err) {
        EvalAltResult::ErrorTerminated(token, _) => Interrupt::from_token(&token.to_string()),
        _ => None,
    }
}

fn record(value: &Dynamic) -> Option<serde_json::Value> {
    if value.is_unit() || value.is_fnptr() {
        return None;
    }
    let json = serde_json::to_value(value).ok()?;
    // Cheap size bound: strings dominate large values.
    let size = match &json {
        serde_json::Value::String(s) => s.len(),
        other => serde_json::to_string(other).map_or(usize::MAX, |s| s.len()),
    };
    (size <= MAX_RECORDED_VALUE).then_some(json)
}

fn millis(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}
