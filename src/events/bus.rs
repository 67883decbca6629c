//! The bus: fans every event out to the sinks (terminal, JSON lines,
//! journal, step logs, reports). Secrets are masked here, once, before any
//! sink sees an event; text bound for an output that is not an event goes
//! through [`Bus::mask`].

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::event::{timestamp, Event, EventKind, Location};
use crate::secrets::Redactor;

impl EventKind {
    /// Replace every secret in every text this event carries.
    fn redact(&mut self, redactor: &Redactor) {
        let mask = |s: &mut String| {
            if let Some(masked) = redactor.redact_owned(s) {
                *s = masked;
            }
        };
        let mask_opt = |s: &mut Option<String>| {
            if let Some(s) = s {
                mask(s);
            }
        };
        // Phase and step names are text the playbook builds: they may hold a secret too.
        let mask_name = |s: &mut Arc<str>| {
            if let Some(masked) = redactor.redact_owned(s) {
                *s = masked.into();
            }
        };
        // Why a step, phase or run failed, and where.
        let mask_failure = |error: &mut Option<String>, error_at: &mut Option<String>| {
            mask_opt(error);
            mask_opt(error_at);
        };
        let mask_at = |at: &mut Location| {
            if let Some(p) = &mut at.phase {
                mask_name(p);
            }
            if let Some(s) = &mut at.step {
                mask_name(s);
            }
        };
        match self {
            EventKind::Output { at, line: text, .. }
            | EventKind::Log { at, message: text, .. }
            | EventKind::Progress { at, label: text, .. } => {
                mask_at(at);
                mask(text);
            }
            EventKind::Gate { at, name, hint, by, .. } => {
                mask_at(at);
                mask(name);
                mask_opt(hint);
                mask_opt(by);
            }
            EventKind::StepFinished { at, error, error_at, recorded, .. } => {
                mask_at(at);
                mask_failure(error, error_at);
                if let Some(v) = &mut recorded.value {
                    redact_json(v, redactor);
                }
                if let Some(v) = &mut recorded.large {
                    redact_json(v, redactor);
                }
                for r in &mut recorded.value_secrets {
                    r.redact(redactor);
                }
                mask_opt(&mut recorded.value_unrecorded_why);
            }
            EventKind::UndoFinished { at, error, .. } => {
                mask_at(at);
                mask_opt(error);
            }
            EventKind::PhaseFinished { phase, error, error_at, .. } => {
                mask_name(phase);
                mask_failure(error, error_at);
            }
            EventKind::RunFinished { error, error_at, .. } => mask_failure(error, error_at),
            EventKind::User { at, kind, data, .. } => {
                mask_at(at);
                mask(kind);
                redact_json(data, redactor);
            }
            EventKind::RunStarted { params, phases, playbook, .. } => {
                redact_json(params, redactor);
                for p in phases.iter_mut() {
                    mask(p);
                }
                mask(playbook);
            }
            EventKind::PhaseStarted { phase } => mask_name(phase),
            EventKind::StepStarted { at, .. } | EventKind::UndoStarted { at } => mask_at(at),
        }
    }
}

/// Mask secrets inside every value of a JSON document, keys included. A
/// number or a bool is checked as it is rendered (`parse_int(pin)` prints the
/// pin): one that shows a secret becomes the masked text.
fn redact_json(value: &mut serde_json::Value, redactor: &Redactor) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(m) = redactor.redact_owned(s) {
                *s = m;
            }
        }
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
            if let Some(m) = redactor.redact_owned(&value.to_string()) {
                *value = serde_json::Value::String(m);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, redactor)),
        serde_json::Value::Object(map) => {
            let needs_key_mask = map.keys().any(|k| redactor.redact_owned(k).is_some());
            if needs_key_mask {
                let old = std::mem::take(map);
                for (k, v) in old {
                    let k = redactor.redact_owned(&k).unwrap_or(k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(|v| redact_json(v, redactor));
        }
        serde_json::Value::Null => {}
    }
}

/// A consumer of the event stream.
pub trait Sink: Send {
    fn emit(&mut self, event: &Event);
    /// Push buffered output to its destination (called after each batch of
    /// child output and at step boundaries).
    fn flush(&mut self) {}
    /// The run is over: write summaries, close files.
    fn finish(&mut self) {}
    /// Whether this sink draws on the terminal (spinners).
    fn draws(&self) -> bool {
        false
    }
    /// Run `f` (which uses the terminal directly) with this sink's drawing paused.
    fn suspend(&mut self, f: &mut dyn FnMut()) {
        f();
    }
}

/// Fans every event out to the sinks, masking secrets first. The bus is
/// the one place a secret is masked: events here in [`Bus::emit`], and the
/// text that reaches an output without being an event (a rendered error,
/// a REPL result, `list` data, a webhook body) through [`Bus::mask`] and
/// [`Bus::mask_json`], which the services handle passes on.
pub struct Bus {
    run_id: Arc<str>,
    redactor: Arc<Redactor>,
    sinks: Mutex<Vec<Box<dyn Sink>>>,
}

impl Bus {
    pub fn new(run_id: Arc<str>, redactor: Arc<Redactor>) -> Self {
        Self { run_id, redactor, sinks: Mutex::new(Vec::new()) }
    }

    pub fn run_id(&self) -> &Arc<str> {
        &self.run_id
    }

    pub fn add_sink(&self, sink: Box<dyn Sink>) {
        self.lock().push(sink);
    }

    /// `text` with every secret the run knows masked.
    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.redactor.redact(text)
    }

    /// A JSON document with every secret masked, keys included.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        redact_json(value, &self.redactor);
    }

    pub fn emit(&self, mut kind: EventKind) {
        kind.redact(&self.redactor);
        let event = Event { ts: timestamp(SystemTime::now()), run_id: self.run_id.clone(), kind };
        for sink in self.lock().iter_mut() {
            sink.emit(&event);
        }
    }

    pub fn flush(&self) {
        for sink in self.lock().iter_mut() {
            sink.flush();
        }
    }

    /// Pause terminal drawing while `f` talks to the user (a prompt).
    pub fn suspend(&self, f: &mut dyn FnMut()) {
        let mut sinks = self.lock();
        let mut f = Some(f);
        let mut run = || {
            if let Some(f) = f.take() {
                f();
            }
        };
        match sinks.iter_mut().find(|s| s.draws()) {
            Some(sink) => sink.suspend(&mut run),
            None => run(),
        }
    }

    pub fn finish(&self) {
        for sink in self.lock().iter_mut() {
            sink.finish();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Sink>>> {
        // A sink that panicked must not take every later event down with it.
        self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
