//! OpenTelemetry: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the run is exported as a
//! trace over OTLP/HTTP (protobuf): a span for the run, each phase, step,
//! attempt, undo and approval. `TRACEPARENT` makes the run a child of the
//! caller's span (a CI job's trace contains the run).
//!
//! Exporting never slows or fails a run: spans go out in batches from a
//! thread of their own as phases finish; a collector that cannot be reached
//! is one warning at the end, and the end waits for the last batch at most
//! the export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s; a refused
//! connection answers at once).

mod config;
mod export;
mod proto;
mod spans;

use crate::events::{Event, EventKind, Sink};
pub use config::Config;
use export::Exporter;
use spans::{Builder, Value};

/// The trace a run belongs to: `TRACEPARENT`'s (`00-TRACE-SPAN-FLAGS`), or a new one.
fn trace_context(traceparent: Option<&str>) -> ([u8; 16], Option<[u8; 8]>) {
    let parsed = traceparent.and_then(|tp| {
        let parts: Vec<&str> = tp.trim().split('-').collect();
        let (trace, span) = match parts.as_slice() {
            [version, trace, span, _flags] if version.len() == 2 && *version != "ff" => (*trace, *span),
            _ => return None,
        };
        let trace: [u8; 16] = hex(trace)?.try_into().ok()?;
        let span: [u8; 8] = hex(span)?.try_into().ok()?;
        // All-zero ids are invalid.
        (trace != [0; 16] && span != [0; 8]).then_some((trace, Some(span)))
    });
    parsed.unwrap_or_else(|| {
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&spans::random_bytes());
        trace[8..].copy_from_slice(&spans::random_bytes());
        (trace, None)
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The sink that exports the run's trace.
pub struct Otlp {
    trace_id: [u8; 16],
    builder: Builder,
    resource: Vec<(String, Value)>,
    exporter: Exporter,
}

impl Otlp {
    /// Start exporting per `config`; the run joins `TRACEPARENT`'s trace
    /// when that variable holds a valid one.
    pub fn start(config: Config) -> Self {
        let (trace_id, parent) = trace_context(std::env::var("TRACEPARENT").ok().as_deref());
        let resource = config.resource.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        Self { trace_id, builder: Builder::new(parent), resource, exporter: Exporter::start(config) }
    }

    /// The trace's id, as the W3C `traceparent` writes it (32 hex digits).
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The run span's `traceparent`, for the processes the run starts.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id(), to_hex(&self.builder.run_id()))
    }

    fn send(&mut self) {
        if !self.builder.done.is_empty() {
            let spans = std::mem::take(&mut self.builder.done);
            self.exporter.send(proto::export_request(&self.resource, &self.trace_id, &spans));
        }
    }
}

impl Sink for Otlp {
    fn emit(&mut self, event: &Event) {
        self.builder.apply(event);
        // A batch per phase (and the run's end): few requests, and a crash
        // mid-run has still exported the phases before.
        if matches!(event.kind, EventKind::PhaseFinished { .. } | EventKind::RunFinished { .. }) {
            self.send();
        }
    }

    fn finish(&mut self) {
        self.send();
        if let Some(error) = self.exporter.finish() {
            crate::errln!("warning: OpenTelemetry: the trace was not exported: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_endpoint_follows_the_specifications_rules() {
        let vars = |list: &'static [(&'static str, &'static str)]| {
            move |k: &str| list.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_string())
        };
        let c = Config::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.resource[0], ("service.name".into(), "capstan".into()));
        let c = Config::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20x, x-team=ops"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=deploys,env=prod"),
        ]))
        .unwrap();
        assert_eq!(c.endpoint, "http://b:2/custom");
        assert_eq!(c.headers, [("authorization".into(), "Bearer x".into()), ("x-team".into(), "ops".into())]);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.resource, [("service.name".into(), "deploys".into()), ("env".into(), "prod".into())]);
        assert!(Config::from_vars(vars(&[])).is_none());
        assert!(Config::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"), ("OTEL_SDK_DISABLED", "true")]))
            .is_none());
    }

    #[test]
    fn traceparent_is_joined_when_valid() {
        let (trace, parent) = trace_context(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(to_hex(&trace), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.map(|p| to_hex(&p)).as_deref(), Some("00f067aa0ba902b7"));
        for bad in ["", "00-xyz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let (trace, parent) = trace_context(Some(bad));
            assert!(parent.is_none() && trace != [0; 16], "{bad}");
        }
    }
}
