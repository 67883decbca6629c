//! `parallel([...])`: branches on scoped threads, each starting from the
//! caller's frames; the first failure stops the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, NativeCallContext};

use crate::cancel::Interrupt;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::frame::{self, Frame};
use crate::state::RunState;

pub fn run(state: &Arc<RunState>, ctx: &NativeCallContext, branches: Array, max: usize) -> RhaiResultOf<Array> {
    let closures: Vec<FnPtr> = branches
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let type_name = b.type_name();
            b.try_cast::<FnPtr>().ok_or_else(|| {
                failure(FailureKind::Usage, format!("parallel: item {i} is {type_name}, not a closure like `|| ...`"))
            })
        })
        .collect::<Result<_, _>>()?;
    if closures.is_empty() {
        return Ok(Array::new());
    }
    if frame::current().is_none() || state.is_declaring() {
        return Err(failure(FailureKind::Usage, "parallel() must be called inside a phase"));
    }
    let abort = Arc::new(AtomicBool::new(false));
    let base = frame::snapshot();
    let results: Mutex<Vec<Option<RhaiResultOf<Dynamic>>>> = Mutex::new((0..closures.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    // One thread per branch, up to a bound the OS will always grant.
    const MAX_THREADS: usize = 64;
    let workers = if max == 0 { closures.len().min(MAX_THREADS) } else { max.min(closures.len()).min(MAX_THREADS) };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let base = base.clone();
            let (closures, results, next, abort) = (&closures, &results, &next, &abort);
            let spawned = std::thread::Builder::new().stack_size(crate::engine::limits::SCRIPT_STACK).spawn_scoped(
                scope,
                move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= closures.len() {
                        break;
                    }
                    // Each branch gets its own frame: its processes and abort flag.
                    let mut frames = base.clone();
                    let mut branch = frames
                        .last()
                        .cloned()
                        .map_or_else(|| Frame::new(crate::events::Location::default()), |f| Frame::new(f.at));
                    branch.abort = Some(abort.clone());
                    branch.deadline = None;
                    frames.push(branch.clone());
                    frame::install(frames);
                    let r = match frame::check(&state.services.cancel) {
                        Some(reason) => Err(crate::failure::terminated(reason)),
                        None => closures[i].call_within_context::<Dynamic>(ctx, ()),
                    };
                    if r.is_err() {
                        abort.store(true, Ordering::SeqCst);
                        branch.kill_groups();
                    }
                    frame::install(Vec::new());
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                },
            );
            if let Err(e) = spawned {
                tracing::warn!("parallel: cannot start a branch thread: {e}");
            }
        }
    });
    let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut values = Array::with_capacity(results.len());
    let mut first_error: Option<Box<EvalAltResult>> = None;
    for r in results {
        // A branch no thread was left to run is a failure, not a missing value.
        let r = r
            .unwrap_or_else(|| Err(failure(FailureKind::Usage, "parallel(): no thread could be started for a branch")));
        match r {
            Ok(v) => values.push(v),
            Err(e) => {
                // Report the branch that failed, not the siblings it stopped.
                let is_abort = matches!(crate::executor::classify::interruption(&e), Some(Interrupt::Aborted));
                if first_error.as_ref().is_none_or(|f| {
                    !is_abort && matches!(crate::executor::classify::interruption(f), Some(Interrupt::Aborted))
                }) {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(values),
    }
}
