//! One step: options, attempts with the delays of its [`RetryPolicy`], the
//! per-attempt timeout set on its frame, the undo it leaves on the stack,
//! resume, and its events.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, FnPtr, NativeCallContext};

use super::classify::interruption;
use crate::cancel::Interrupt;
use crate::events::{EventKind, Location, Status};
use crate::failure::{error_message, failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::{DeferredCall, StepOptions};
use crate::services::frame::{self, Frame};
use crate::services::retry::RetryPolicy;
use crate::state::{RunState, UndoEntry};

/// What the journal says about a finished step.
struct Finished {
    status: Status,
    duration_ms: u64,
    attempts: u32,
    allow_failure: bool,
    resumed: bool,
    every_job: bool,
    error: Option<(String, Option<String>)>,
    value: Option<Dynamic>,
}

impl Finished {
    fn new(status: Status) -> Self {
        Self {
            status,
            duration_ms: 0,
            attempts: 0,
            allow_failure: false,
            resumed: false,
            every_job: false,
            error: None,
            value: None,
        }
    }

    fn emit(self, state: &RunState, at: &Location, occurrence: u32, key: &str) {
        let recorded = self
            .value
            .as_ref()
            .map(|v| crate::replay::record::record(v, &state.services.redactor, at.seq))
            .unwrap_or_default();
        let (error, error_at) = self.error.map_or((None, None), |(m, a)| (Some(m), a));
        state.services.emit(EventKind::StepFinished {
            at: at.clone(),
            occurrence,
            status: self.status,
            duration_ms: self.duration_ms,
            attempts: self.attempts,
            allow_failure: self.allow_failure,
            resumed: self.resumed,
            every_job: self.every_job,
            error,
            error_at,
            step_key: Some(key.to_string()),
            recorded,
        });
        state.services.bus.flush();
    }
}

pub fn run(
    state: &Arc<RunState>,
    ctx: &NativeCallContext,
    name: &str,
    options: StepOptions,
    body: FnPtr,
) -> RhaiResultOf<Dynamic> {
    run_as(state, ctx, name, None, options, body)
}

/// A step; `host` names the fleet host it works on (`fleet::run`): its
/// events, and those of the steps within it, carry the name.
pub fn run_as(
    state: &Arc<RunState>,
    ctx: &NativeCallContext,
    name: &str,
    host: Option<&str>,
    options: StepOptions,
    body: FnPtr,
) -> RhaiResultOf<Dynamic> {
    let services = &state.services;
    // A journal that cannot be written stops the run here, before the next step.
    journal_check(state, || format!("before step `{name}`"))?;
    let Some(parent) = frame::current().filter(|_| !state.is_declaring()) else {
        return Err(failure_with_hint(
            FailureKind::Usage,
            format!("step(\"{name}\") called outside a phase"),
            "call step() inside a phase: phase(\"do\", || { step(...) })",
        ));
    };
    if name.is_empty() || name.contains('/') {
        return Err(failure(FailureKind::Usage, format!("step name \"{name}\" must be non-empty and contain no '/'")));
    }
    let path = match &parent.at.step {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    };
    let phase = parent.at.phase.clone().unwrap_or_default();
    let occurrence = state.next_occurrence(&phase, &path);
    let key = state.step_key(&phase, &path, occurrence);
    let at = Location {
        phase: Some(phase.clone()),
        step: Some(path.clone().into()),
        seq: Some(services.next_step_seq()),
        host: host.map(Into::into).or_else(|| parent.at.host.clone()),
    };

    if !options.when {
        Finished::new(Status::Skipped).emit(state, &at, occurrence, &key);
        return Ok(Dynamic::UNIT);
    }
    let recorded = if options.every_job { None } else { state.resumed_value(&key, &phase, &path, occurrence) };
    if let Some(recorded) = recorded {
        let value = rhai::serde::to_dynamic(&recorded)?;
        push_undo(state, ctx, &options, &at, &key);
        Finished { resumed: true, value: Some(value.clone()), ..Finished::new(Status::Ok) }
            .emit(state, &at, occurrence, &key);
        journal_check(state, || format!("after step `{path}`"))?;
        return Ok(value);
    }

    services.emit(EventKind::StepStarted { at: at.clone(), occurrence, step_key: Some(key.clone()) });
    services.bus.flush();
    let start = Instant::now();
    let policy = RetryPolicy::doubling(options.retries, options.retry_delay);
    let attempts_allowed = policy.attempts();
    let mut backoff = policy.backoff();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut step_frame = Frame::new(at.clone());
        step_frame.abort.clone_from(&parent.abort);
        step_frame.detach = options.detach;
        step_frame.set_timeout(options.timeout);
        let frame_id = step_frame.id;
        let result = {
            let _guard = frame::push(step_frame.clone());
            body.call_within_context::<Dynamic>(ctx, ())
        };
        let err = match result {
            Ok(value) => {
                push_undo(state, ctx, &options, &at, &key);
                let status = if services.dry_run() { Status::DryRun } else { Status::Ok };
                Finished {
                    duration_ms: millis(start),
                    attempts: attempt,
                    every_job: options.every_job || step_frame.prepares.load(std::sync::atomic::Ordering::Relaxed),
                    value: Some(value.clone()),
                    ..Finished::new(status)
                }
                .emit(state, &at, occurrence, &key);
                journal_check(state, || format!("after step `{path}`"))?;
                return Ok(value);
            }
            Err(err) => err,
        };
        // A failed attempt takes its processes with it.
        step_frame.kill_groups();
        let interrupt = interruption(&err);
        let own_timeout = matches!(interrupt, Some(Interrupt::StepTimeout { frame, .. }) if frame == frame_id);
        let message = error_message(&err);
        // A refused approval or a held lock will not change by trying again.
        let blocked = FailureKind::of(&err) == Some(FailureKind::Blocked);
        let retryable = (interrupt.is_none() || own_timeout) && !blocked;
        let delay = if retryable && frame::check(&services.cancel).is_none() { backoff.next() } else { None };
        if let Some(delay) = delay {
            // The warning and the wait belong to the step, not its phase.
            let _guard = frame::push(Frame::new(at.clone()));
            services.log(
                crate::events::Level::Warn,
                format!(
                    "attempt {attempt}/{attempts_allowed} failed: {message}; retrying in {}",
                    humantime::format_duration(delay)
                ),
            );
            if crate::services::wait::sleep(&state.services, delay).is_ok() {
                continue;
            }
        }
        let allowed = options.allow_failure && retryable;
        let error_at = crate::diagnostics::error_location(&err);
        Finished {
            duration_ms: millis(start),
            attempts: attempt,
            allow_failure: allowed,
            error: Some((message.clone(), error_at)),
            ..Finished::new(Status::Failed)
        }
        .emit(state, &at, occurrence, &key);
        if allowed {
            return Ok(Dynamic::UNIT);
        }
        state.note_failure(&at);
        if own_timeout {
            // This step's deadline, not the run's: an ordinary failure from
            // here on, so an outer step may retry and `catch` sees it.
            return Err(failure_with_hint(
                FailureKind::Timeout,
                format!("step `{path}` {message}"),
                "raise the step's `timeout` or find out why it hangs",
            ));
        }
        return Err(err);
    }
}

pub(super) fn push_undo(state: &RunState, ctx: &NativeCallContext, options: &StepOptions, at: &Location, key: &str) {
    if let Some(undo) = &options.undo {
        let mut context = ctx.store_data();
        context.global.level = 0;
        state.push_undo(UndoEntry {
            at: at.clone(),
            step_key: key.to_string(),
            call: DeferredCall { body: undo.clone(), context },
        });
    }
}

/// Stop the run when the journal could not be written: a run that goes on
/// without its journal could not be resumed nor audited.
fn journal_check(state: &RunState, when: impl FnOnce() -> String) -> RhaiResultOf<()> {
    match state.services.journal_health.failure() {
        Some(failure) => Err(crate::failure::journal_lost(&format!("{failure}; the run stops {}", when()))),
        None => Ok(()),
    }
}

fn millis(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}
