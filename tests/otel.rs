//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, a run is exported
//! as a trace to a real OTLP/HTTP receiver (`oteltap` from `PyPI`, which
//! decodes with the official opentelemetry-proto code and prints each span
//! as a JSON line): the span tree, its attributes, `TRACEPARENT`, the trace
//! id in `run_started` and `JUnit`, secrets masked; a dead collector costs one
//! warning and no time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemons::free_port;
use crate::support::{named, Playbook, Run};

const PLAYBOOK: &str = r#"
let token = secret("API_TOKEN");
phase("build", || {
    step("compile", || sh("echo compiling"));
    step("flaky", #{ retries: 1, retry_delay: "10ms" }, || sh("[ -e marker ] || { touch marker; exit 3; }"));
});
phase("do", || {
    step("deploy", #{ undo: || sh("echo undoing") }, || sh(`echo deploying with ${token}`));
    step("gate", || approve("prod", "ship it?"));
    step("broken", || sh("exit 1"));
});
"#;

const SECRET: &str = "hunter2-otlp-7c1e";

/// `python3 -m oteltap --port P`, stopped by its PID when dropped; its
/// spans arrive on a channel as they are printed.
struct Receiver {
    port: u16,
    child: Child,
    spans: mpsc::Receiver<Value>,
}

impl Receiver {
    fn start() -> Self {
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "oteltap", "--port", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m oteltap (scripts/install-test-deps installs it)");
        let (ready_tx, ready) = mpsc::channel();
        let (tx, spans) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("Listening") {
                    let _ = ready_tx.send(());
                } else if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v.get("spanId").is_some() && tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        ready.recv_timeout(Duration::from_secs(30)).expect("oteltap did not start listening");
        Self { port, child, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spans until the run's (the root) has come, or 20 s.
    fn trace(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while let Ok(span) = self.spans.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let root = span["name"].as_str().is_some_and(|n| n.starts_with("capstan run"));
            out.push(span);
            if root {
                break;
            }
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    let kv = span["attributes"].as_array()?.iter().find(|kv| kv["key"] == key)?;
    let v = &kv["value"];
    v.get("stringValue").or_else(|| v.get("intValue")).or_else(|| v.get("boolValue"))
}

#[test]
fn a_run_is_exported_as_a_trace_of_phases_steps_attempts_undo_and_approvals() {
    let rx = Receiver::start();
    let p = Playbook::new(PLAYBOOK)
        .env("API_TOKEN", SECRET)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &rx.endpoint())
        .env("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let junit = p.path("junit.xml");
    let run = Run::from(
        p.command("run")
            .args(["--log-format", "json", "--approve", "prod", "--param", "env=prod", "--junit"])
            .arg(&junit)
            .output()
            .unwrap(),
    );
    run.code(1);
    assert!(!run.stderr.contains("OpenTelemetry"), "{}", run.stderr);
    let spans = rx.trace();
    let text = serde_json::to_string(&spans).unwrap();
    assert!(!text.contains(SECRET), "a secret reached the trace: {text}");
    assert!(text.contains("deploying with ***"), "the step's output is there, masked");

    let by_name: HashMap<&str, &Value> = spans.iter().map(|s| (s["name"].as_str().unwrap(), s)).collect();
    let id = |name: &str| by_name.get(name).unwrap_or_else(|| panic!("no span {name}: {text}"))["spanId"].clone();
    let parent = |name: &str| by_name[name]["parentSpanId"].clone();
    let run_span = by_name["capstan run deploy.rhai"];
    // TRACEPARENT: the caller's trace, the run under the caller's span.
    assert!(spans.iter().all(|s| s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"), "{text}");
    assert_eq!(run_span["parentSpanId"], "00f067aa0ba902b7");
    for phase in ["phase build", "phase do"] {
        assert_eq!(parent(phase), id("capstan run deploy.rhai"), "{phase}");
    }
    for (step, phase) in [("step compile", "phase build"), ("step flaky", "phase build"), ("step broken", "phase do")] {
        assert_eq!(parent(step), id(phase), "{step}");
    }
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["parentSpanId"] == id("step flaky")).collect();
    assert_eq!(attempts.len(), 2, "two attempts of the flaky step: {text}");
    assert_eq!(attempts[0]["status"]["code"], 2, "the first attempt failed");
    assert_eq!(attempts[1]["status"]["code"], 1);
    assert_eq!(attr(by_name["step flaky"], "capstan.attempts").unwrap(), "2");
    let gate_attempt = spans.iter().find(|s| s["parentSpanId"] == id("step gate")).unwrap();
    assert_eq!(parent("approval prod"), gate_attempt["spanId"], "the approval waits inside its step");
    assert_eq!(attr(by_name["approval prod"], "capstan.approved_via").unwrap(), "--approve prod");
    assert_eq!(parent("undo deploy"), id("capstan run deploy.rhai"));
    assert_eq!(by_name["step broken"]["status"]["code"], 2);
    assert_eq!(attr(run_span, "capstan.exit_code").unwrap(), "1");
    assert_eq!(attr(run_span, "capstan.param.env").unwrap(), "prod");
    assert_eq!(attr(run_span, "capstan.playbook").unwrap(), "deploy.rhai");
    assert_eq!(attr(run_span, "capstan.status").unwrap(), "failed");

    // The trace's id is in run_started and in the JUnit report.
    let events = run.events();
    let started = named(&events, "run_started");
    assert_eq!(started[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<property name="trace_id" value="4bf92f3577b34da6a3ce929d0e0e4736"/>"#), "{xml}");
}

/// A collector that is not there: the run succeeds, says so once, and
/// takes no longer than without exporting (best of three each, so a busy
/// machine's noise does not count).
#[test]
fn a_dead_collector_is_one_warning_and_no_delay() {
    let p = Playbook::new(r#"phase("do", || { for i in 0..5 { step(`s${i}`, || sh("true")); } });"#);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let timed = |endpoint: Option<&str>| {
        let mut c = p.command("run");
        c.args(["--log-format", "plain"]);
        if let Some(e) = endpoint {
            c.env("OTEL_EXPORTER_OTLP_ENDPOINT", e);
        }
        let start = Instant::now();
        let run = Run::from(c.output().unwrap());
        (start.elapsed(), run)
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..3 {
        let (t, run) = timed(Some(&closed));
        run.code(0);
        let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("OpenTelemetry")).collect();
        assert_eq!(warnings.len(), 1, "one warning:\n{}", run.stderr);
        assert!(warnings[0].starts_with("warning:") && warnings[0].contains("Connection refused"), "{}", warnings[0]);
        with.push(t);
        let (t, run) = timed(None);
        run.code(0);
        without.push(t);
    }
    let (with, without) = (with.iter().min().unwrap(), without.iter().min().unwrap());
    assert!(
        with.saturating_sub(*without) < Duration::from_millis(100),
        "exporting to a dead collector added {:?} ({with:?} vs {without:?})",
        with.saturating_sub(*without)
    );
}
