//! A run's trace, built from its events as they happen: a span for the run,
//! each phase, step, attempt, undo and approval, with attributes and the
//! step's log lines as span events. Events reach the sinks with secrets
//! already masked, so nothing here sees a secret's value.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::events::{Event, EventKind, Level, Location, Status};

/// Log lines and output lines kept on one span: a trace is for finding the
/// slow or broken step, the journal has every line.
const EVENTS_PER_SPAN: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

#[derive(Debug, Clone)]
pub struct SpanEvent {
    pub time: u64,
    pub name: String,
    pub attributes: Vec<(String, Value)>,
}

#[derive(Debug, Clone)]
pub struct Span {
    pub id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<(String, Value)>,
    pub events: Vec<SpanEvent>,
    /// Lines left off past [`EVENTS_PER_SPAN`].
    pub dropped: usize,
    /// Status ERROR with this message.
    pub error: Option<String>,
    /// Status OK (else UNSET).
    pub ok: bool,
}

impl Span {
    fn attr(&mut self, key: &str, value: impl Into<Value>) {
        self.attributes.push((key.to_string(), value.into()));
    }

    fn event(&mut self, time: u64, name: &str, attributes: Vec<(String, Value)>) {
        if self.events.len() < EVENTS_PER_SPAN {
            self.events.push(SpanEvent { time, name: name.to_string(), attributes });
        } else {
            self.dropped += 1;
        }
    }

    fn close(mut self, time: u64, status: Option<Status>, error: Option<&String>) -> Self {
        self.end = time;
        if let Some(status) = status {
            self.attr("capstan.status", status_name(status));
            self.ok = matches!(status, Status::Ok | Status::DryRun | Status::Skipped);
        }
        self.error = error.cloned().or_else(|| (status == Some(Status::Failed)).then(|| "failed".to_string()));
        if self.dropped > 0 {
            self.attr("capstan.events_dropped", Value::Int(i64::try_from(self.dropped).unwrap_or(i64::MAX)));
        }
        self
    }
}

fn status_name(status: Status) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Nanoseconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Span ids: random, from a seed the kernel gives.
pub struct Ids(u64);

impl Ids {
    pub fn new() -> Self {
        Ids(u64::from_le_bytes(random_bytes()))
    }

    pub fn next(&mut self) -> [u8; 8] {
        // splitmix64: distinct ids from one random seed.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).max(1).to_be_bytes()
    }
}

/// Eight random bytes from `/dev/urandom`, or from the clock and pid.
pub fn random_bytes() -> [u8; 8] {
    use std::io::Read as _;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        b = (now() ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    b
}

/// An open step: its span and its current attempt's.
struct OpenStep {
    span: Span,
    attempt: Span,
    attempts: i64,
}

/// Turns events into spans; finished spans wait in `done` to be exported.
pub struct Builder {
    ids: Ids,
    run: Span,
    phases: HashMap<String, Span>,
    steps: HashMap<String, OpenStep>,
    undos: HashMap<String, Span>,
    /// Approvals asked for on the terminal: when the asking began.
    waiting: HashMap<String, u64>,
    pub done: Vec<Span>,
}

impl Builder {
    /// `parent`: the span the run belongs to (`TRACEPARENT`).
    pub fn new(parent: Option<[u8; 8]>) -> Self {
        let mut ids = Ids::new();
        let run = blank(ids.next(), parent, "capstan run", now());
        Self {
            ids,
            run,
            phases: HashMap::new(),
            steps: HashMap::new(),
            undos: HashMap::new(),
            waiting: HashMap::new(),
            done: Vec::new(),
        }
    }

    /// The span of the step at `at`, else of its phase, else the run's.
    fn owner(&mut self, at: &Location) -> &mut Span {
        if let Some(step) = at.step.as_deref().filter(|s| self.steps.contains_key(*s)) {
            return &mut self.steps.get_mut(step).expect("checked above").attempt;
        }
        match at.phase.as_deref() {
            Some(phase) if self.phases.contains_key(phase) => self.phases.get_mut(phase).expect("checked above"),
            _ => &mut self.run,
        }
    }

    /// The id new spans at `at` hang under: the enclosing step's attempt,
    /// its phase, or the run.
    fn parent_of(&mut self, at: &Location, enclosing_step: Option<&str>) -> [u8; 8] {
        if let Some(step) = enclosing_step.and_then(|s| self.steps.get(s)) {
            return step.attempt.id;
        }
        match at.phase.as_deref().and_then(|p| self.phases.get(p)) {
            Some(phase) => phase.id,
            None => self.run.id,
        }
    }

    #[allow(clippy::too_many_lines)] // one arm per event kind
    pub fn apply(&mut self, event: &Event) {
        let t = now();
        match &event.kind {
            EventKind::RunStarted { playbook, dry_run, version, params, resumed, .. } => {
                self.run.name = format!("capstan run {playbook}");
                self.run.start = t;
                self.run.attr("capstan.playbook", playbook.as_str());
                self.run.attr("capstan.run_id", event.run_id.to_string());
                self.run.attr("capstan.version", *version);
                self.run.attr("capstan.dry_run", Value::Bool(*dry_run));
                self.run.attr("capstan.resumed", Value::Bool(*resumed));
                if let Some(map) = params.as_object() {
                    for (k, v) in map {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        self.run.attr(&format!("capstan.param.{k}"), text);
                    }
                }
            }
            EventKind::PhaseStarted { phase } => {
                let mut span = blank(self.ids.next(), Some(self.run.id), &format!("phase {phase}"), t);
                span.attr("capstan.phase", &**phase);
                self.phases.insert(phase.to_string(), span);
            }
            EventKind::StepStarted { at, occurrence, .. } => {
                let Some(path) = at.step.as_deref() else { return };
                let enclosing = path.rsplit_once('/').map(|(p, _)| p.to_string());
                let parent = self.parent_of(at, enclosing.as_deref());
                let mut span = blank(self.ids.next(), Some(parent), &format!("step {path}"), t);
                span.attr("capstan.step", path);
                if let Some(phase) = &at.phase {
                    span.attr("capstan.phase", &**phase);
                }
                if let Some(seq) = at.seq {
                    span.attr("capstan.seq", Value::Int(i64::from(seq)));
                }
                if *occurrence > 1 {
                    span.attr("capstan.occurrence", Value::Int(i64::from(*occurrence)));
                }
                let attempt = self.attempt_span(&span, 1, t);
                self.steps.insert(path.to_string(), OpenStep { span, attempt, attempts: 1 });
            }
            EventKind::Log { at, level, message } => {
                // A retry closes the attempt and opens the next (step.rs says
                // "attempt N/M failed: ...; retrying in ...").
                if *level == Level::Warn && message.starts_with("attempt ") && message.contains("; retrying in ") {
                    if let Some(path) = at.step.as_deref() {
                        self.retry(path, message, t);
                        return;
                    }
                }
                if *level == Level::Debug {
                    if let Some(name) = message.strip_prefix("waiting for approval `").and_then(|r| r.split('`').next())
                    {
                        self.waiting.insert(name.to_string(), t);
                    }
                    return;
                }
                let attributes = vec![
                    ("level".to_string(), Value::from(format!("{level:?}").to_ascii_lowercase())),
                    ("message".to_string(), Value::from(message.as_str())),
                ];
                self.owner(at).event(t, "log", attributes);
            }
            EventKind::Output { at, stream, line, .. } => {
                let attributes = vec![
                    ("stream".to_string(), Value::from(format!("{stream:?}").to_ascii_lowercase())),
                    ("line".to_string(), Value::from(line.as_str())),
                ];
                self.owner(at).event(t, "output", attributes);
            }
            EventKind::Gate { at, name, passed, hint, by, via } => {
                if let Some(approval) = name.strip_prefix("approval: ") {
                    let start = self.waiting.remove(approval).unwrap_or(t);
                    let parent = self.parent_of(at, at.step.as_deref());
                    let mut span = blank(self.ids.next(), Some(parent), &format!("approval {approval}"), start);
                    span.attr("capstan.approval", approval);
                    span.attr("capstan.approved", Value::Bool(*passed));
                    if let Some(by) = by {
                        span.attr("capstan.approved_by", by.as_str());
                    }
                    if let Some(via) = via {
                        span.attr("capstan.approved_via", via.as_str());
                    }
                    let refused = (!passed).then(|| format!("approval `{approval}` not given"));
                    let status = if *passed { Status::Ok } else { Status::Failed };
                    self.done.push(span.close(t, Some(status), refused.as_ref()));
                } else {
                    let mut attributes = vec![
                        ("name".to_string(), Value::from(name.as_str())),
                        ("passed".to_string(), Value::Bool(*passed)),
                    ];
                    if let Some(hint) = hint {
                        attributes.push(("hint".to_string(), Value::from(hint.as_str())));
                    }
                    self.owner(at).event(t, "gate", attributes);
                }
            }
            EventKind::StepFinished { at, status, attempts, resumed, error, error_at, .. } => {
                let Some(path) = at.step.as_deref() else { return };
                // A resumed step replays without starting.
                let (mut span, attempt) = if let Some(open) = self.steps.remove(path) {
                    (open.span, Some(open.attempt))
                } else {
                    let enclosing = path.rsplit_once('/').map(|(p, _)| p.to_string());
                    let parent = self.parent_of(at, enclosing.as_deref());
                    let mut span = blank(self.ids.next(), Some(parent), &format!("step {path}"), t);
                    span.attr("capstan.step", path);
                    (span, None)
                };
                span.attr("capstan.attempts", Value::Int(i64::from(*attempts)));
                if *resumed {
                    span.attr("capstan.resumed", Value::Bool(true));
                }
                if let Some(at) = error_at {
                    span.attr("capstan.error_at", at.as_str());
                }
                if let Some(attempt) = attempt {
                    self.done.push(attempt.close(t, Some(*status), error.as_ref()));
                }
                self.done.push(span.close(t, Some(*status), error.as_ref()));
            }
            EventKind::UndoStarted { at } => {
                let Some(path) = at.step.as_deref() else { return };
                let mut span = blank(self.ids.next(), Some(self.run.id), &format!("undo {path}"), t);
                span.attr("capstan.undo_of", path);
                self.undos.insert(path.to_string(), span);
            }
            EventKind::UndoFinished { at, status, error, .. } => {
                let Some(span) = at.step.as_deref().and_then(|p| self.undos.remove(p)) else { return };
                self.done.push(span.close(t, Some(*status), error.as_ref()));
            }
            EventKind::PhaseFinished { phase, status, error, .. } => {
                if let Some(span) = self.phases.remove(&**phase) {
                    self.done.push(span.close(t, Some(*status), error.as_ref()));
                }
            }
            EventKind::RunFinished { status, exit_code, error, .. } => {
                self.run.attr("capstan.exit_code", Value::Int(i64::from(*exit_code)));
                let run = std::mem::replace(&mut self.run, blank([0; 8], None, "", t));
                let run_id = run.id;
                self.done.push(run.close(t, Some(*status), error.as_ref()));
                self.run.id = run_id;
            }
            EventKind::User { at, kind, .. } => {
                self.owner(at).event(t, "event", vec![("type".to_string(), Value::from(kind.as_str()))]);
            }
            EventKind::Progress { .. } => {}
        }
    }

    fn attempt_span(&mut self, step: &Span, n: i64, t: u64) -> Span {
        let mut attempt = blank(self.ids.next(), Some(step.id), &format!("attempt {n}"), t);
        attempt.attr("capstan.attempt", Value::Int(n));
        attempt
    }

    /// A failed attempt that will be retried: close it, open the next.
    fn retry(&mut self, path: &str, message: &str, t: u64) {
        let Some(mut open) = self.steps.remove(path) else { return };
        let error = message.split_once(" failed: ").map_or(message, |(_, e)| e);
        let error = error.rsplit_once("; retrying in ").map_or(error, |(e, _)| e).to_string();
        open.attempts += 1;
        let next = self.attempt_span(&open.span, open.attempts, t);
        let failed = std::mem::replace(&mut open.attempt, next);
        self.done.push(failed.close(t, Some(Status::Failed), Some(&error)));
        self.steps.insert(path.to_string(), open);
    }

    /// The run span's id: the trace's root (or `TRACEPARENT`'s child).
    pub fn run_id(&self) -> [u8; 8] {
        self.run.id
    }
}

fn blank(id: [u8; 8], parent: Option<[u8; 8]>, name: &str, start: u64) -> Span {
    Span {
        id,
        parent,
        name: name.to_string(),
        start,
        end: start,
        attributes: Vec::new(),
        events: Vec::new(),
        dropped: 0,
        error: None,
        ok: false,
    }
}
