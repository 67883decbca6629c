//! Errors raised by primitives. A host failure is an object map
//! `#{ kind, message, hint }`: a script can catch it (`catch (e) { e.message }`)
//! and tell it from its own `throw`; the renderer shows message and hint.

use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::cancel::{Interrupt, Stop};

pub type RhaiResultOf<T> = Result<T, Box<rhai::EvalAltResult>>;

/// What went wrong, as a script sees it in a host failure's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    MissingParam,
    MissingSecret,
    Usage,
    Gate,
    Fail,
    Command,
    Timeout,
    Blocked,
}

impl FailureKind {
    /// The `kind` string scripts match on; part of the script API.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::MissingParam => "missing_param",
            FailureKind::MissingSecret => "missing_secret",
            FailureKind::Usage => "usage",
            FailureKind::Gate => "gate",
            FailureKind::Fail => "fail",
            FailureKind::Command => "command_failed",
            FailureKind::Timeout => "timeout",
            FailureKind::Blocked => "blocked",
        }
    }

    /// The kind of a host failure (or of a script's `throw` of a map with
    /// one of these kinds).
    pub fn of(err: &EvalAltResult) -> Option<Self> {
        let kind = error_kind(err)?;
        [
            FailureKind::MissingParam,
            FailureKind::MissingSecret,
            FailureKind::Usage,
            FailureKind::Gate,
            FailureKind::Fail,
            FailureKind::Command,
            FailureKind::Timeout,
            FailureKind::Blocked,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

pub fn failure(kind: FailureKind, message: impl Into<String>) -> Box<EvalAltResult> {
    failure_map(kind, message.into(), None)
}

pub fn failure_with_hint(kind: FailureKind, message: impl Into<String>, hint: impl Into<String>) -> Box<EvalAltResult> {
    failure_map(kind, message.into(), Some(hint.into()))
}

fn failure_map(kind: FailureKind, message: String, hint: Option<String>) -> Box<EvalAltResult> {
    let mut map = Map::new();
    map.insert("kind".into(), kind.as_str().into());
    map.insert("message".into(), message.into());
    if let Some(h) = hint {
        map.insert("hint".into(), h.into());
    }
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE))
}

/// Stop the script: not catchable, unwinds to the step or run that owns it.
pub fn terminated(reason: Interrupt) -> Box<EvalAltResult> {
    stopped(Stop::new(reason))
}

/// Stop the run because the journal could not be written; `detail` says
/// what, where and why.
pub fn journal_lost(detail: &str) -> Box<EvalAltResult> {
    stopped(Stop::journal_lost(detail))
}

fn stopped(stop: Stop) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(stop.into(), Position::NONE))
}

/// The capstan stop behind an error, if the innermost error is one.
pub fn stop(err: &EvalAltResult) -> Option<Stop> {
    match innermost(err) {
        EvalAltResult::ErrorTerminated(payload, _) => Stop::of(payload),
        _ => None,
    }
}

/// The innermost error of a chain of function-call and module wrappers.
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => {
            innermost(inner)
        }
        other => other,
    }
}

/// The `kind` of a host failure, if the innermost error is one.
pub fn error_kind(err: &EvalAltResult) -> Option<String> {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => v.read_lock::<Map>().and_then(|m| m.get("kind").map(ToString::to_string)),
        _ => None,
    }
}

/// A one-line message for an error, without positions or call frames.
pub fn error_message(err: &EvalAltResult) -> String {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => {
            if let Some(map) = v.read_lock::<Map>() {
                if let Some(m) = map.get("message") {
                    return m.to_string();
                }
            }
            v.to_string()
        }
        EvalAltResult::ErrorTerminated(payload, _) => match Stop::of(payload) {
            Some(Stop { detail: Some(detail), .. }) => {
                format!("the journal could not be written: {detail}, as a run without its journal could not be resumed")
            }
            Some(stop) => stop.reason.message(),
            None => format!("terminated: {payload}"),
        },
        EvalAltResult::ErrorInModule(path, inner, _) => format!("in module \"{path}\": {}", error_message(inner)),
        other => {
            let mut text = other.to_string();
            // Rhai appends " (line L, position C)"; positions are shown separately.
            if let Some(i) = text.rfind(" (line ") {
                text.truncate(i);
            }
            text
        }
    }
}

/// The hint a host failure carries.
pub fn error_hint(err: &EvalAltResult) -> Option<String> {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => v.read_lock::<Map>().and_then(|m| m.get("hint").map(ToString::to_string)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_script_visible_strings() {
        let err = failure(FailureKind::Command, "exit 1");
        assert_eq!(error_kind(&err).as_deref(), Some("command_failed"));
        assert_eq!(FailureKind::of(&err), Some(FailureKind::Command));
        let err = failure_with_hint(FailureKind::MissingParam, "no x", "pass x");
        assert_eq!(error_kind(&err).as_deref(), Some("missing_param"));
        assert_eq!(error_hint(&err).as_deref(), Some("pass x"));
        assert_eq!(FailureKind::of(&terminated(Interrupt::Signal)), None);
    }
}
