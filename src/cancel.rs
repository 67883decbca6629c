//! Cancellation: Ctrl-C / SIGTERM, the run's `--timeout`, and the reasons a
//! script or a child is stopped, carried through Rhai as a [`Stop`] value.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why work was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT or SIGTERM.
    Signal,
    /// The run's `--timeout` expired.
    RunTimeout,
    /// A step's `timeout` expired; `frame` names the step's frame.
    StepTimeout { frame: u64, limit_ms: u64 },
    /// A sibling branch of `parallel` failed.
    Aborted,
    /// The top level ran past its budget (it only declares; it must end).
    TopLevelBudget,
    /// The journal could not be written (the [`Stop`] carries why).
    JournalLost,
}

impl Interrupt {
    pub fn message(self) -> String {
        match self {
            Interrupt::Signal => "interrupted".into(),
            Interrupt::RunTimeout => "the run's --timeout expired".into(),
            Interrupt::StepTimeout { limit_ms, .. } => {
                format!("timed out after {}", humantime::format_duration(Duration::from_millis(limit_ms)))
            }
            Interrupt::Aborted => "cancelled because a parallel branch failed".into(),
            Interrupt::TopLevelBudget => format!(
                "the top level did not finish within {} operations or {}s",
                crate::engine::limits::TOP_LEVEL_OPERATIONS,
                crate::engine::limits::TOP_LEVEL_TIME.as_secs()
            ),
            Interrupt::JournalLost => "the journal could not be written".into(),
        }
    }
}

/// What a stopped script carries in Rhai's `ErrorTerminated`: the reason as
/// data, matched on where the error lands, never parsed back from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub reason: Interrupt,
    /// What failed and where, for [`Interrupt::JournalLost`].
    pub detail: Option<String>,
}

impl Stop {
    pub fn new(reason: Interrupt) -> Self {
        Self { reason, detail: None }
    }

    /// The journal could not be written; `detail` says what, where and why.
    pub fn journal_lost(detail: impl Into<String>) -> Self {
        Self { reason: Interrupt::JournalLost, detail: Some(detail.into()) }
    }

    /// The stop a termination payload holds; `None` for any other value.
    pub fn of(payload: &rhai::Dynamic) -> Option<Self> {
        payload.read_lock::<Stop>().map(|stop| stop.clone())
    }
}

impl From<Stop> for rhai::Dynamic {
    fn from(stop: Stop) -> Self {
        rhai::Dynamic::from(stop)
    }
}

/// Run-wide cancellation state, shared by every thread of the run.
#[derive(Default)]
pub struct Cancel {
    cancelled: AtomicBool,
    signals: AtomicU32,
    run_deadline: Mutex<Option<Instant>>,
    /// While the top level runs: the end of its time budget.
    top_level_deadline: Mutex<Option<Instant>>,
    wake: (Mutex<()>, Condvar),
}

impl Cancel {
    pub fn interrupt(&self) {
        self.signals.fetch_add(1, Ordering::SeqCst);
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Was the run interrupted by a signal at any point?
    pub fn was_signalled(&self) -> bool {
        self.signals.load(Ordering::SeqCst) > 0
    }

    pub fn set_run_deadline(&self, at: Option<Instant>) {
        *self.run_deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn run_deadline(&self) -> Option<Instant> {
        *self.run_deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The top level's time budget as a deadline, so that a top level
    /// blocked in a primitive (`sleep`, a child) is stopped like one that
    /// spins; `None` once it is over.
    pub fn set_top_level_deadline(&self, at: Option<Instant>) {
        *self.top_level_deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn top_level_deadline(&self) -> Option<Instant> {
        *self.top_level_deadline.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Undo and `on_failure` handlers run after an interrupt: clear the flag
    /// so they can work (a further signal stops them), and bound them by
    /// `deadline` — the run's own, or the grace they get once it has passed.
    pub fn enter_cleanup(&self, deadline: Option<Instant>) {
        self.cancelled.store(false, Ordering::SeqCst);
        self.set_run_deadline(deadline);
    }

    /// Forget an interrupt that has been dealt with: the REPL cancels one
    /// command on Ctrl-C and keeps the session.
    pub fn reset(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
        self.signals.store(0, Ordering::SeqCst);
    }

    /// Sleep up to `dur`, waking early when cancelled.
    pub fn sleep(&self, dur: Duration) {
        let (lock, cv) = &self.wake;
        let guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.is_cancelled() {
            return;
        }
        let _unused = cv.wait_timeout(guard, dur);
    }

    fn notify(&self) {
        let (lock, cv) = &self.wake;
        let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_survive_a_trip_through_a_dynamic() {
        for i in [
            Interrupt::Signal,
            Interrupt::RunTimeout,
            Interrupt::Aborted,
            Interrupt::TopLevelBudget,
            Interrupt::StepTimeout { frame: 7, limit_ms: 1500 },
        ] {
            assert_eq!(Stop::of(&Stop::new(i).into()), Some(Stop::new(i)));
        }
        let lost = Stop::journal_lost("disk full");
        assert_eq!(Stop::of(&lost.clone().into()), Some(lost));
        assert_eq!(Stop::of(&rhai::Dynamic::from("capstan:interrupt:signal")), None);
    }
}
