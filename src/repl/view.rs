//! What the terminal shows of a REPL session's events.
//!
//! Each command typed at the prompt runs as a step of the session's `repl`
//! phase, so the journal records it like any step. On the terminal that
//! wrapper is noise (the prompt already shows the command, the result is
//! printed below it), so this view hides it and shows the command's own
//! steps, output and logs as a run would.

use std::sync::{Arc, Mutex, PoisonError};

use crate::events::{Event, EventKind, Location, Sink};

/// The phase that ad-hoc commands run in.
pub const PHASE: &str = "repl";

/// The step path of the command now running, shared with the session.
pub type Current = Arc<Mutex<Option<Arc<str>>>>;

pub struct View {
    inner: Box<dyn Sink>,
    current: Current,
}

impl View {
    pub fn new(inner: Box<dyn Sink>, current: Current) -> Self {
        Self { inner, current }
    }

    /// The location as the user sees it: without the command's wrapper step
    /// (the wrapper itself has no step).
    fn strip(&self, at: &Location) -> Location {
        let mut at = at.clone();
        if at.phase.as_deref() != Some(PHASE) {
            return at;
        }
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (Some(step), Some(wrapper)) = (&at.step, current) else { return at };
        if **step == *wrapper {
            at.step = None;
        } else if let Some(rest) = step.strip_prefix(&*wrapper).and_then(|r| r.strip_prefix('/')) {
            at.step = Some(rest.into());
        }
        at
    }
}

impl Sink for View {
    fn emit(&mut self, event: &Event) {
        let mut event = event.clone();
        match &mut event.kind {
            EventKind::RunStarted { .. } | EventKind::RunFinished { .. } => return,
            EventKind::PhaseStarted { phase } | EventKind::PhaseFinished { phase, .. } if &**phase == PHASE => return,
            EventKind::StepStarted { at, .. } | EventKind::StepFinished { at, .. } => match self.strip(at) {
                Location { step: None, .. } => return,
                stripped => *at = stripped,
            },
            EventKind::Output { at, .. }
            | EventKind::Log { at, .. }
            | EventKind::Gate { at, .. }
            | EventKind::UndoStarted { at }
            | EventKind::UndoFinished { at, .. }
            | EventKind::User { at, .. } => *at = self.strip(at),
            _ => {}
        }
        self.inner.emit(&event);
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    fn draws(&self) -> bool {
        self.inner.draws()
    }

    fn suspend(&mut self, f: &mut dyn FnMut()) {
        self.inner.suspend(f);
    }
}
