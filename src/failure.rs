//! Errors raised by primitives. A host failure is an object map
//! `#{ kind, message, hint }`: a script can catch it (`catch (e) { e.message }`)
//! and tell it from its own `throw`; the renderer shows message and hint.

use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::cancel::Interrupt;

pub type RhaiResultOf<T> = Result<T, Box<rhai::EvalAltResult>>;

/// Failure kinds the executor treats specially.
pub struct Failure;

impl Failure {
    pub const MISSING_PARAM: &'static str = "missing_param";
    pub const MISSING_SECRET: &'static str = "missing_secret";
    pub const USAGE: &'static str = "usage";
    pub const GATE: &'static str = "gate";
    pub const FAIL: &'static str = "fail";
    pub const COMMAND: &'static str = "command_failed";
    pub const TIMEOUT: &'static str = "timeout";
    /// An approval not given or a lock held elsewhere: exit 3.
    pub const BLOCKED: &'static str = "blocked";
}

pub fn failure(kind: &str, message: impl Into<String>) -> Box<EvalAltResult> {
    failure_map(kind, message.into(), None)
}

pub fn failure_with_hint(kind: &str, message: impl Into<String>, hint: impl Into<String>) -> Box<EvalAltResult> {
    failure_map(kind, message.into(), Some(hint.into()))
}

fn failure_map(kind: &str, message: String, hint: Option<String>) -> Box<EvalAltResult> {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert("message".into(), message.into());
    if let Some(h) = hint {
        map.insert("hint".into(), h.into());
    }
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE))
}

/// Stop the script: not catchable, unwinds to the step or run that owns it.
pub fn terminated(reason: Interrupt) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(reason.token().into(), Position::NONE))
}

/// Stop the run because the journal could not be written; `detail` says
/// what, where and why.
pub fn journal_lost(detail: &str) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(Interrupt::journal_lost_token(detail).into(), Position::NONE))
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
        EvalAltResult::ErrorTerminated(token, _) => {
            let token = token.to_string();
            if let Some(detail) = Interrupt::detail(&token) {
                return format!(
                    "the journal could not be written: {detail}, as a run without its journal could not be resumed"
                );
            }
            Interrupt::from_token(&token).map_or_else(|| format!("terminated: {token}"), Interrupt::message)
        }
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
