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
    /// ssh could not connect to or log in on a host.
    Unreachable,
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
            FailureKind::Unreachable => "unreachable",
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
            FailureKind::Unreachable,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// A failure on the host side (a missing param, a refused gate, a tool
/// that exited non-zero), as data. Converting it into a script error is the
/// one way a host failure becomes the map a script catches:
/// `#{ kind, message, hint, data }`, `hint` and `data` only when present.
#[derive(Debug, Clone)]
pub struct HostFailure {
    pub kind: FailureKind,
    /// What went wrong, in words; kept as scripts and tests know it.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
    /// What the failure is about, for a script that looks closer (a tool's
    /// `program`, `args`, `exit_code`, `stderr`).
    pub data: Map,
}

impl HostFailure {
    /// `message` may be text or a typed error; the script sees its words.
    pub fn new(kind: FailureKind, message: impl std::fmt::Display) -> Self {
        Self { kind, message: message.to_string(), hint: None, data: Map::new() }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub fn with_data(mut self, key: &str, value: impl Into<Dynamic>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    /// The host failure behind an error (the innermost one), if it is one:
    /// a map whose `kind` is one of capstan's.
    pub fn of(err: &EvalAltResult) -> Option<Self> {
        let EvalAltResult::ErrorRuntime(value, _) = innermost(err) else { return None };
        let map = value.read_lock::<Map>()?;
        let text = |key: &str| map.get(key).map(ToString::to_string);
        let kind = FailureKind::of(err)?;
        Some(Self {
            kind,
            message: text("message").unwrap_or_default(),
            hint: text("hint"),
            data: map.get("data").and_then(|d| d.read_lock::<Map>().map(|m| m.clone())).unwrap_or_default(),
        })
    }
}

impl From<HostFailure> for Box<EvalAltResult> {
    fn from(failure: HostFailure) -> Self {
        let mut map = Map::new();
        map.insert("kind".into(), failure.kind.as_str().into());
        map.insert("message".into(), failure.message.into());
        if let Some(h) = failure.hint {
            map.insert("hint".into(), h.into());
        }
        if !failure.data.is_empty() {
            map.insert("data".into(), failure.data.into());
        }
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE))
    }
}

pub fn failure(kind: FailureKind, message: impl std::fmt::Display) -> Box<EvalAltResult> {
    HostFailure::new(kind, message).into()
}

pub fn failure_with_hint(
    kind: FailureKind,
    message: impl std::fmt::Display,
    hint: impl Into<String>,
) -> Box<EvalAltResult> {
    HostFailure::new(kind, message).with_hint(hint).into()
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

    #[test]
    fn a_host_failure_round_trips_through_its_map() {
        let err: Box<EvalAltResult> =
            HostFailure::new(FailureKind::Command, "exit 3").with_hint("look").with_data("exit_code", 3_i64).into();
        let back = HostFailure::of(&err).unwrap();
        assert_eq!(
            (back.kind, back.message.as_str(), back.hint.as_deref()),
            (FailureKind::Command, "exit 3", Some("look"))
        );
        assert_eq!(back.data.get("exit_code").and_then(|v| v.as_int().ok()), Some(3));
        let EvalAltResult::ErrorRuntime(map, _) = *failure(FailureKind::Gate, "no") else { panic!() };
        let keys: Vec<String> = map.cast::<Map>().keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["kind", "message"]);
    }
}
