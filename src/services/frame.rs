//! Where the script is, per thread: the phase, the step path, the deadlines
//! of the enclosing steps and the process groups they started. `parallel`
//! copies the stack into each branch's thread.
//!
//! A step sets its deadline on its frame ([`Frame::set_timeout`]); [`check`]
//! is the one function that decides whether work must stop (Ctrl-C, the
//! run's `--timeout`, the top level's budget, a failed sibling branch, a
//! step's timeout). It is polled from one place per kind of wait: script
//! operations (`engine::build`'s `on_progress`), sleeps and futures
//! ([`super::wait`]), and children (`process::spawn` through the observer).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, Interrupt};

use crate::events::Location;
use crate::process::Tree;

/// A step's deadline for its current attempt.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub limit: Duration,
}

#[derive(Clone)]
pub struct Frame {
    pub id: u64,
    pub at: Location,
    pub deadline: Option<Deadline>,
    /// Set when a sibling `parallel` branch failed.
    pub abort: Option<Arc<AtomicBool>>,
    /// Process trees started under this frame, killed if it fails.
    pub groups: Arc<Mutex<Vec<Tree>>>,
    /// The step said `detach: true`: what its commands leave running in the
    /// background outlives the run.
    pub detach: bool,
    /// Something under this frame prepared the workspace (`terraform init`):
    /// the step runs again in a resumed run instead of being replayed.
    pub prepares: Arc<AtomicBool>,
}

impl Deadline {
    /// `limit` from now; none when the clock cannot reach it.
    pub fn after(limit: Duration) -> Option<Self> {
        Instant::now().checked_add(limit).map(|at| Self { at, limit })
    }
}

impl Frame {
    /// A step's `timeout` for the attempt about to run. [`check`] is what
    /// reports it, to whichever wait polls it.
    pub fn set_timeout(&mut self, limit: Option<Duration>) {
        self.deadline = limit.and_then(Deadline::after);
    }

    pub fn new(at: Location) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            at,
            deadline: None,
            abort: None,
            groups: Arc::default(),
            detach: false,
            prepares: Arc::default(),
        }
    }

    /// Kill every process tree this frame started (a failed step's leftovers).
    pub fn kill_groups(&self) {
        let groups = std::mem::take(&mut *self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        crate::process::tree::kill_all(&groups);
    }
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Pops the frame when dropped.
pub struct FrameGuard(());

impl Drop for FrameGuard {
    fn drop(&mut self) {
        STACK.with(|s| s.borrow_mut().pop());
    }
}

#[must_use]
pub fn push(frame: Frame) -> FrameGuard {
    STACK.with(|s| s.borrow_mut().push(frame));
    FrameGuard(())
}

/// The current frame stack, for a `parallel` branch to start from.
pub fn snapshot() -> Vec<Frame> {
    STACK.with(|s| s.borrow().clone())
}

/// Install a stack on a fresh thread (a `parallel` branch).
pub fn install(frames: Vec<Frame>) {
    STACK.with(|s| *s.borrow_mut() = frames);
}

pub fn location() -> Location {
    STACK.with(|s| s.borrow().last().map(|f| f.at.clone()).unwrap_or_default())
}

/// Mark the enclosing steps as preparing the workspace: each of them runs
/// again in a resumed run (a later CI job, on a fresh checkout), since an
/// outer step replayed would not call the inner one at all.
pub fn mark_prepares() {
    STACK.with(|s| {
        for f in s.borrow().iter() {
            f.prepares.store(true, Ordering::Relaxed);
        }
    });
}

pub fn current() -> Option<Frame> {
    STACK.with(|s| s.borrow().last().cloned())
}

/// Remember a process group on the innermost frame.
pub fn record_group(tree: &Tree) {
    STACK.with(|s| {
        if let Some(f) = s.borrow().last() {
            f.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tree.clone());
        }
    });
}

/// Whether a command started now belongs to a step that said `detach: true`.
pub fn detached() -> bool {
    STACK.with(|s| s.borrow().iter().any(|f| f.detach))
}

/// Should the work on this thread stop now, and why?
pub fn check(cancel: &Cancel) -> Option<Interrupt> {
    if cancel.is_cancelled() {
        return Some(Interrupt::Signal);
    }
    let now = Instant::now();
    if cancel.run_deadline().is_some_and(|d| now >= d) {
        return Some(Interrupt::RunTimeout);
    }
    if cancel.top_level_deadline().is_some_and(|d| now >= d) {
        return Some(Interrupt::TopLevelBudget);
    }
    STACK.with(|s| {
        let stack = s.borrow();
        if stack.iter().any(|f| f.abort.as_ref().is_some_and(|a| a.load(Ordering::Relaxed))) {
            return Some(Interrupt::Aborted);
        }
        // The outermost expired deadline wins: its step is the one that timed out.
        stack.iter().find_map(|f| {
            f.deadline
                .filter(|d| now >= d.at)
                .map(|d| Interrupt::StepTimeout { frame: f.id, limit_ms: d.limit.as_millis() as u64 })
        })
    })
}

/// The earliest instant at which [`check`] could start reporting a deadline.
pub fn next_deadline(cancel: &Cancel) -> Option<Instant> {
    let run = match (cancel.run_deadline(), cancel.top_level_deadline()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let step = STACK.with(|s| s.borrow().iter().filter_map(|f| f.deadline.map(|d| d.at)).min());
    match (run, step) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
