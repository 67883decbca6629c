//! `health::`: is it up (`check`), wait until it is (`wait`), and how does
//! it behave under load (`probe`: the golden signals with percentiles from
//! a histogram). Targets are `http(s)://` URLs, `tcp://host:port`, or an
//! argv array whose exit status says healthy or not. All read-only.
//!
//! Under `--dry-run` the service may not be there yet (the deploy before the
//! check was skipped), so `wait` and `probe` try once, log what they would
//! wait for and what they see now, and return that one look marked
//! `dry_run: true` instead of failing or waiting it out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, terminated, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::process::{self, CommandSpec, ProcessError};
use crate::services::{frame, wait};
use crate::state::RunState;

/// Which statuses count as healthy: `200-399` unless told otherwise.
#[derive(Debug, Clone)]
struct StatusSet(Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        Self(vec![(200, 399)])
    }
}

impl StatusSet {
    fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }

    fn parse(value: &Dynamic) -> Result<Self, String> {
        let one = |v: &Dynamic| -> Result<(u16, u16), String> {
            if let Ok(n) = v.as_int() {
                let n = u16::try_from(n).map_err(|_| format!("{n} is not an HTTP status"))?;
                return Ok((n, n));
            }
            let text = v.to_string();
            if let Some((a, b)) = text.split_once('-') {
                Ok((
                    a.trim().parse().map_err(|_| format!("bad status range \"{text}\""))?,
                    b.trim().parse().map_err(|_| format!("bad status range \"{text}\""))?,
                ))
            } else {
                let n = text.trim().parse().map_err(|_| format!("bad status \"{text}\""))?;
                Ok((n, n))
            }
        };
        match value.read_lock::<Array>() {
            Some(items) => items.iter().map(one).collect::<Result<_, _>>().map(Self),
            None => one(value).map(|r| Self(vec![r])),
        }
    }
}

#[derive(Debug, Clone)]
struct CheckOptions {
    expect_status: StatusSet,
    expect_body: Option<String>,
    timeout: Duration,
    interval: Duration,
    within: Duration,
    headers: Vec<(String, String)>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            expect_status: StatusSet::default(),
            expect_body: None,
            timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            within: Duration::from_secs(60),
            headers: Vec::new(),
        }
    }
}

const CHECK_OPTIONS: &[&str] = &["expect_status", "expect_body", "timeout", "interval", "within", "headers"];

fn headers(value: &Dynamic) -> Result<Vec<(String, String)>, String> {
    super::values::pairs(value, ToString::to_string).ok_or_else(|| "`headers` must be a map".to_string())
}

impl CheckOptions {
    fn from_map(map: &Map) -> Result<Self, String> {
        let mut o = Self::default();
        for (k, v) in map {
            let dur = |v: &Dynamic| parse_duration(v).map_err(|e| format!("health option `{k}`: {e}"));
            match k.as_str() {
                "expect_status" => o.expect_status = StatusSet::parse(v)?,
                "expect_body" => o.expect_body = Some(v.to_string()),
                "timeout" => o.timeout = dur(v)?,
                "interval" => o.interval = dur(v)?,
                "within" => o.within = dur(v)?,
                "headers" => o.headers = headers(v)?,
                other => {
                    return Err(format!(
                        "unknown health option `{other}`; the options are: {}",
                        CHECK_OPTIONS.join(", ")
                    ))
                }
            }
        }
        Ok(o)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Default)]
struct Checked {
    ok: bool,
    status: Option<i64>,
    latency: Duration,
    error: Option<String>,
    /// Nothing accepted the connection.
    refused: bool,
}

impl Checked {
    /// What one look saw, as a dry run reports it.
    fn now(&self) -> String {
        if self.ok {
            "healthy now".into()
        } else if self.refused {
            "not listening now".into()
        } else {
            format!("{} now", self.error.as_deref().unwrap_or("not healthy"))
        }
    }
}

fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = s.source();
    }
    false
}

enum Target {
    Http(reqwest::Url),
    Tcp(String),
    Command(Vec<String>),
}

fn target(value: &Dynamic) -> Result<Target, String> {
    if let Some(items) = value.read_lock::<Array>() {
        let argv: Vec<String> = items.iter().map(ToString::to_string).collect();
        if argv.is_empty() {
            return Err("the argv target is empty".into());
        }
        return Ok(Target::Command(argv));
    }
    let text = value.to_string();
    if let Some(addr) = text.strip_prefix("tcp://") {
        return Ok(Target::Tcp(addr.trim_end_matches('/').to_string()));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return reqwest::Url::parse(&text).map(Target::Http).map_err(|e| format!("bad URL \"{text}\": {e}"));
    }
    Err(format!("health target \"{text}\" must be an http(s):// URL, tcp://host:port, or an argv array"))
}

fn client(timeout: Duration, pool: usize) -> RhaiResultOf<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(pool)
        .build()
        .map_err(|e| failure(FailureKind::Fail, format!("cannot build the HTTP client: {e}")))
}

fn check_once(state: &RunState, target: &Target, o: &CheckOptions) -> RhaiResultOf<Checked> {
    let services = &state.services;
    let start = Instant::now();
    match target {
        Target::Http(url) => {
            let client = client(o.timeout, 1)?;
            let mut request = client.get(url.clone());
            for (k, v) in &o.headers {
                request = request.header(k, v);
            }
            let result = wait::block_on(services, async move {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Ok::<_, reqwest::Error>((status, body))
            })?;
            let latency = start.elapsed();
            Ok(match result {
                Ok((status, body)) => {
                    let status_ok = o.expect_status.contains(status);
                    let body_ok = o.expect_body.as_ref().is_none_or(|b| body.contains(b.as_str()));
                    let error = if !status_ok {
                        Some(format!("status {status}"))
                    } else if !body_ok {
                        Some(format!("body does not contain \"{}\"", o.expect_body.as_deref().unwrap_or("")))
                    } else {
                        None
                    };
                    Checked { ok: error.is_none(), status: Some(i64::from(status)), latency, error, refused: false }
                }
                Err(e) => {
                    Checked { ok: false, status: None, latency, error: Some(describe(&e)), refused: is_refused(&e) }
                }
            })
        }
        Target::Tcp(addr) => {
            let addr = addr.clone();
            let timeout = o.timeout;
            let result = wait::block_on(services, async move {
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
            })?;
            let latency = start.elapsed();
            Ok(match result {
                Ok(Ok(_)) => Checked { ok: true, latency, ..Checked::default() },
                Ok(Err(e)) => Checked {
                    ok: false,
                    latency,
                    refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
                    error: Some(e.to_string()),
                    ..Checked::default()
                },
                Err(_) => Checked {
                    ok: false,
                    latency,
                    error: Some(format!("no connection within {}", humantime::format_duration(timeout))),
                    ..Checked::default()
                },
            })
        }
        Target::Command(argv) => {
            let mut spec = CommandSpec::new(argv[0].clone(), argv[1..].to_vec());
            spec.timeout = Some(o.timeout);
            spec.quiet = true;
            match process::execute(services.as_ref(), &spec) {
                Ok(out) => Ok(Checked {
                    ok: out.success(),
                    status: out.code.map(i64::from),
                    latency: start.elapsed(),
                    error: (!out.success()).then(|| out.describe(spec.timeout)),
                    refused: false,
                }),
                Err(ProcessError::Interrupted(reason)) => Err(terminated(reason)),
                Err(e) => Ok(Checked {
                    ok: false,
                    latency: start.elapsed(),
                    error: Some(e.to_string()),
                    ..Checked::default()
                }),
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn checked_map(c: &Checked, attempts: u32) -> Map {
    let mut m = Map::new();
    m.insert("ok".into(), c.ok.into());
    m.insert("status".into(), c.status.map_or(Dynamic::UNIT, Dynamic::from));
    m.insert("latency_ms".into(), (c.latency.as_secs_f64() * 1000.0).into());
    m.insert("attempts".into(), i64::from(attempts).into());
    m.insert("error".into(), c.error.clone().map_or(Dynamic::UNIT, Dynamic::from));
    m
}

fn check(state: &RunState, target_value: &Dynamic, options: &Map) -> RhaiResultOf<Map> {
    let o = CheckOptions::from_map(options).map_err(|m| failure(FailureKind::Usage, m))?;
    let t = target(target_value).map_err(|m| failure(FailureKind::Usage, m))?;
    let mut m = checked_map(&check_once(state, &t, &o)?, 1);
    if state.services.dry_run() {
        m.insert("dry_run".into(), true.into());
    }
    Ok(m)
}

pub(super) fn wait(state: &RunState, target_value: &Dynamic, options: &Map) -> RhaiResultOf<Map> {
    let o = CheckOptions::from_map(options).map_err(|m| failure(FailureKind::Usage, m))?;
    let t = target(target_value).map_err(|m| failure(FailureKind::Usage, m))?;
    if state.services.dry_run() {
        let c = check_once(state, &t, &o)?;
        state.services.log(
            Level::Info,
            format!("would wait up to {} for {target_value}: {}", humantime::format_duration(o.within), c.now()),
        );
        let mut m = checked_map(&c, 1);
        m.insert("dry_run".into(), true.into());
        return Ok(m);
    }
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let c = check_once(state, &t, &o)?;
        if c.ok {
            state.services.log(
                Level::Info,
                format!(
                    "{} is healthy after {attempts} check(s), {}",
                    target_value,
                    humantime::format_duration(round(start.elapsed()))
                ),
            );
            return Ok(checked_map(&c, attempts));
        }
        if start.elapsed() + o.interval > o.within {
            return Err(failure_with_hint(
                FailureKind::Fail,
                format!(
                    "{target_value} is not healthy within {} ({attempts} checks; last: {})",
                    humantime::format_duration(o.within),
                    c.error.unwrap_or_default()
                ),
                "look at the service's logs, or give it longer with `within`",
            ));
        }
        state.services.progress(
            format!("waiting for {target_value}: {}", c.error.as_deref().unwrap_or("not healthy yet")),
            start.elapsed().as_millis() as u64,
            o.within.as_millis() as u64,
        );
        wait::sleep(&state.services, o.interval)?;
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[derive(Debug, Clone)]
struct ProbeOptions {
    duration: Duration,
    rate: Option<f64>,
    concurrency: usize,
    timeout: Duration,
    expect_status: StatusSet,
    headers: Vec<(String, String)>,
}

const PROBE_OPTIONS: &[&str] = &["duration", "rate", "concurrency", "timeout", "expect_status", "headers"];

impl ProbeOptions {
    fn from_map(map: &Map) -> Result<Self, String> {
        let mut o = Self {
            duration: Duration::from_secs(10),
            rate: None,
            concurrency: 16,
            timeout: Duration::from_secs(5),
            expect_status: StatusSet::default(),
            headers: Vec::new(),
        };
        for (k, v) in map {
            let dur = |v: &Dynamic| parse_duration(v).map_err(|e| format!("probe option `{k}`: {e}"));
            match k.as_str() {
                "duration" => o.duration = dur(v)?,
                "timeout" => o.timeout = dur(v)?,
                "rate" => {
                    let r = v
                        .as_float()
                        .or_else(|_| v.as_int().map(|i| i as f64))
                        .map_err(|_| "probe option `rate` must be a number of requests per second")?;
                    o.rate = (r > 0.0).then_some(r);
                }
                "concurrency" => {
                    o.concurrency = v
                        .as_int()
                        .ok()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or("probe option `concurrency` must be 1 to 1024")?;
                }
                "expect_status" => o.expect_status = StatusSet::parse(v)?,
                "headers" => o.headers = headers(v)?,
                other => {
                    return Err(format!(
                        "unknown probe option `{other}`; the options are: {}",
                        PROBE_OPTIONS.join(", ")
                    ))
                }
            }
        }
        Ok(o)
    }
}

/// What the probe's workers share.
struct Tally {
    latency_us: Histogram<u64>,
    requests: u64,
    errors: u64,
    by_status: BTreeMap<String, u64>,
}

fn probe(state: &RunState, url: &str, options: &Map) -> RhaiResultOf<Map> {
    let o = ProbeOptions::from_map(options).map_err(|m| failure(FailureKind::Usage, m))?;
    let target =
        reqwest::Url::parse(url).map_err(|e| failure(FailureKind::Usage, format!("bad URL \"{url}\": {e}")))?;
    if state.services.dry_run() {
        return probe_once(state, url, target, &o);
    }
    let client = client(o.timeout, o.concurrency)?;
    let tally = Arc::new(Mutex::new(Tally {
        latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|e| failure(FailureKind::Fail, e.to_string()))?,
        requests: 0,
        errors: 0,
        by_status: BTreeMap::new(),
    }));
    let started = Instant::now();
    let end = started.checked_add(o.duration).unwrap_or(started + Duration::from_secs(365 * 86_400));
    let ticket = Arc::new(AtomicU64::new(0));
    let work = {
        let tally = tally.clone();
        let o = o.clone();
        let (services, at, label) = (state.services.clone(), frame::location(), format!("probe {url}"));
        async move {
            let mut workers = tokio::task::JoinSet::new();
            // The step's progress bar: time gone of the probe's duration.
            let total_ms = (o.duration.as_millis() as u64).max(1);
            workers.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if Instant::now() >= end {
                        break;
                    }
                    services.progress_at(at.clone(), label.as_str(), started.elapsed().as_millis() as u64, total_ms);
                }
            });
            for _ in 0..o.concurrency {
                let (client, url, tally, ticket, o) =
                    (client.clone(), target.clone(), tally.clone(), ticket.clone(), o.clone());
                workers.spawn(async move {
                    loop {
                        if let Some(rate) = o.rate {
                            // Open-loop pacing: request n goes out at n / rate.
                            let n = ticket.fetch_add(1, Ordering::Relaxed);
                            let at = started + Duration::from_secs_f64(n as f64 / rate);
                            if at >= end {
                                break;
                            }
                            tokio::time::sleep_until(at.into()).await;
                        } else if Instant::now() >= end {
                            break;
                        }
                        let sent = Instant::now();
                        let outcome = send(&client, &url, &o.headers).await;
                        let took = sent.elapsed();
                        let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        t.requests += 1;
                        let _ = t.latency_us.record((took.as_micros() as u64).max(1));
                        let key = if let Ok(status) = outcome {
                            if !o.expect_status.contains(status) {
                                t.errors += 1;
                            }
                            status.to_string()
                        } else {
                            t.errors += 1;
                            "error".to_string()
                        };
                        *t.by_status.entry(key).or_default() += 1;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    };
    wait::block_on(&state.services, work)?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ms = |q: f64| if t.requests == 0 { 0.0 } else { t.latency_us.value_at_quantile(q) as f64 / 1000.0 };
    let mut m = Map::new();
    m.insert("requests".into(), (t.requests as i64).into());
    m.insert("errors".into(), (t.errors as i64).into());
    m.insert("error_rate".into(), (if t.requests == 0 { 0.0 } else { t.errors as f64 / t.requests as f64 }).into());
    m.insert("p50_ms".into(), ms(0.50).into());
    m.insert("p90_ms".into(), ms(0.90).into());
    m.insert("p99_ms".into(), ms(0.99).into());
    m.insert("max_ms".into(), ms(1.0).into());
    m.insert("mean_ms".into(), (if t.requests == 0 { 0.0 } else { t.latency_us.mean() / 1000.0 }).into());
    m.insert("rps".into(), (t.requests as f64 / elapsed).into());
    let by_status: Map = t.by_status.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(*v as i64))).collect();
    m.insert("by_status".into(), by_status.into());
    // What produced these numbers, for the decision records that quote them.
    m.insert("url".into(), url.into());
    m.insert("duration_ms".into(), (o.duration.as_millis() as i64).into());
    state.services.log(
        Level::Info,
        format!(
            "probe {url}: {} requests, error rate {:.4}, p50 {:.1}ms p90 {:.1}ms p99 {:.1}ms, {:.0} req/s",
            t.requests,
            if t.requests == 0 { 0.0 } else { t.errors as f64 / t.requests as f64 },
            ms(0.5),
            ms(0.9),
            ms(0.99),
            t.requests as f64 / elapsed
        ),
    );
    Ok(m)
}

/// A dry run's probe: one request, in the shape of a probe's result.
fn probe_once(state: &RunState, url: &str, target: reqwest::Url, o: &ProbeOptions) -> RhaiResultOf<Map> {
    let check = CheckOptions {
        expect_status: o.expect_status.clone(),
        timeout: o.timeout,
        headers: o.headers.clone(),
        ..CheckOptions::default()
    };
    let c = check_once(state, &Target::Http(target), &check)?;
    state
        .services
        .log(Level::Info, format!("would probe {url} for {}: {}", humantime::format_duration(o.duration), c.now()));
    let latency = c.latency.as_secs_f64() * 1000.0;
    let errors = i64::from(!c.ok);
    let mut m = Map::new();
    m.insert("requests".into(), 1_i64.into());
    m.insert("errors".into(), errors.into());
    m.insert("error_rate".into(), (errors as f64).into());
    for key in ["p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"] {
        m.insert(key.into(), latency.into());
    }
    // One look is not a rate.
    m.insert("rps".into(), 0.0_f64.into());
    let status = c.status.map_or_else(|| "error".to_string(), |s| s.to_string());
    let by_status: Map = std::iter::once((status.as_str().into(), Dynamic::from(1_i64))).collect();
    m.insert("by_status".into(), by_status.into());
    m.insert("url".into(), url.into());
    m.insert("duration_ms".into(), (o.duration.as_millis() as i64).into());
    m.insert("dry_run".into(), true.into());
    Ok(m)
}

/// One request; a failure on a pooled connection the server closed (nginx
/// does on reload) is retried once on a fresh one.
async fn send(client: &reqwest::Client, url: &reqwest::Url, headers: &[(String, String)]) -> Result<u16, ()> {
    for attempt in 0..2 {
        let mut request = client.get(url.clone());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                return Ok(status);
            }
            Err(e) if attempt == 0 && !e.is_timeout() && (e.is_request() || e.is_connect()) => {}
            Err(_) => return Err(()),
        }
    }
    Err(())
}

const CHECK_DOC: &str = "Check a target once: an `http(s)://` URL, `tcp://host:port`, or an argv array.\n\
    Returns `#{ ok, status, latency_ms, attempts, error }` (plus `dry_run: true` under --dry-run).\n\
    Options: `expect_status`\n\
    (default 200-399; a number, \"200-299\" or an array), `expect_body`, `timeout`, `headers`.\n\
    ```rhai\nlet h = health::check(\"http://127.0.0.1:8080/healthz\");\n```";
const WAIT_DOC: &str = "Check every `interval` (1s) until healthy; fail when not healthy `within` (60s).\n\
    Same targets and options as `check`. Under --dry-run it checks once, logs what it would\n\
    wait for and what it sees now, and returns that check with `dry_run: true`.\n\
    ```rhai\nhealth::wait(\"tcp://127.0.0.1:5432\", #{ within: \"2m\" });\n```";
const PROBE_DOC: &str = "Load a URL for `duration` (10s) with `concurrency` (16) workers, optionally paced at\n\
    `rate` requests/s, and return the golden signals `#{ requests, errors, error_rate,\n\
    p50_ms, p90_ms, p99_ms, max_ms, mean_ms, rps, by_status }`. An error is a transport\n\
    failure or a status outside `expect_status` (200-399); `by_status` counts each status.\n\
    Under --dry-run it sends one request and returns it in this shape with `dry_run: true`.\n\
    ```rhai\nlet p = health::probe(\"http://127.0.0.1:8080/\", #{ duration: \"30s\", rate: 200 });\ngate(\"error rate\", p.error_rate < 0.001);\n```";
pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    for with_options in [false, true] {
        let (s1, s2) = (state.clone(), state.clone());
        if with_options {
            module_func(
                &mut m,
                "check",
                &["target: ?", "options: Map", "Map"],
                CHECK_DOC,
                move |t: Dynamic, o: Map| check(&s1, &t, &o),
            );
            module_func(&mut m, "wait", &["target: ?", "options: Map", "Map"], WAIT_DOC, move |t: Dynamic, o: Map| {
                wait(&s2, &t, &o)
            });
        } else {
            module_func(&mut m, "check", &["target: ?", "Map"], CHECK_DOC, move |t: Dynamic| {
                check(&s1, &t, &Map::new())
            });
            module_func(&mut m, "wait", &["target: ?", "Map"], WAIT_DOC, move |t: Dynamic| wait(&s2, &t, &Map::new()));
        }
    }
    let s = state.clone();
    module_func(&mut m, "probe", &["url: &str", "options: Map", "Map"], PROBE_DOC, move |url: &str, o: Map| {
        probe(&s, url, &o)
    });
    let s = state.clone();
    module_func(&mut m, "probe", &["url: &str", "Map"], PROBE_DOC, move |url: &str| probe(&s, url, &Map::new()));
    engine.register_static_module("health", m.into());
}
