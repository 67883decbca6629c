//! What an error means for the run: an interruption, a usage error, or a
//! failure described in one line for the events.

use rhai::EvalAltResult;

use crate::cancel::Interrupt;
use crate::failure::{error_message, FailureKind};

/// One line for an error in events: the message and where it happened.
pub fn describe(err: &EvalAltResult) -> String {
    let message = error_message(err);
    match crate::diagnostics::error_location(err) {
        Some(loc) => format!("{message} ({loc})"),
        None => message,
    }
}

/// Was this error the run being interrupted (signal or run timeout)?
pub fn is_interrupt(err: &EvalAltResult) -> bool {
    matches!(interruption(err), Some(Interrupt::Signal | Interrupt::RunTimeout))
}

/// Failures that mean the playbook was used wrongly rather than that it failed.
pub fn is_usage(err: &EvalAltResult) -> bool {
    matches!(FailureKind::of(err), Some(FailureKind::MissingParam | FailureKind::MissingSecret | FailureKind::Usage))
}

/// The capstan interruption behind an error, if it is one.
pub fn interruption(err: &EvalAltResult) -> Option<Interrupt> {
    crate::failure::stop(err).map(|stop| stop.reason)
}
