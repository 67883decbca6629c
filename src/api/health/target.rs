//! What a health target is (an `http(s)://` URL, `tcp://host:port`, or an
//! argv array), which statuses count as healthy, and one look at a target.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic};
use serde::Deserialize;

use crate::api::options::{Seconds, Text};
use crate::failure::{terminated, RhaiResultOf};
use crate::process::{self, CommandSpec, ProcessError};
use crate::services::http::{self, HttpError, Url};
use crate::services::{wait, Services};

/// Which statuses count as healthy: `200-399` unless told otherwise.
#[derive(Debug, Clone)]
pub(super) struct StatusSet(Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        Self(vec![(200, 399)])
    }
}

impl StatusSet {
    pub(super) fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }

    fn parse(value: &Dynamic) -> Result<Self, StatusError> {
        let one = |v: &Dynamic| -> Result<(u16, u16), StatusError> {
            if let Ok(n) = v.as_int() {
                let n = u16::try_from(n).map_err(|_| StatusError::NotAStatus(n))?;
                return Ok((n, n));
            }
            let text = v.to_string();
            if let Some((a, b)) = text.split_once('-') {
                match (a.trim().parse(), b.trim().parse()) {
                    (Ok(a), Ok(b)) => Ok((a, b)),
                    _ => Err(StatusError::BadRange(text)),
                }
            } else {
                let n = text.trim().parse().map_err(|_| StatusError::BadStatus(text))?;
                Ok((n, n))
            }
        };
        match value.read_lock::<Array>() {
            Some(items) => items.iter().map(one).collect::<Result<_, _>>().map(Self),
            None => one(value).map(|r| Self(vec![r])),
        }
    }
}

/// An `expect_status` that is not a status, a range or a list of them.
#[derive(Debug)]
enum StatusError {
    NotAStatus(i64),
    BadRange(String),
    BadStatus(String),
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::NotAStatus(n) => write!(f, "{n} is not an HTTP status"),
            StatusError::BadRange(text) => write!(f, "bad status range \"{text}\""),
            StatusError::BadStatus(text) => write!(f, "bad status \"{text}\""),
        }
    }
}

impl<'de> Deserialize<'de> for StatusSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StatusSet::parse(&Dynamic::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CheckOptions {
    pub expect_status: StatusSet,
    pub expect_body: Option<Text>,
    pub timeout: Seconds,
    pub interval: Seconds,
    pub within: Seconds,
    pub headers: BTreeMap<String, Text>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            expect_status: StatusSet::default(),
            expect_body: None,
            timeout: Seconds(Duration::from_secs(5)),
            interval: Seconds(Duration::from_secs(1)),
            within: Seconds(Duration::from_secs(60)),
            headers: BTreeMap::new(),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Default)]
pub(super) struct Checked {
    pub ok: bool,
    pub status: Option<i64>,
    pub latency: Duration,
    pub error: Option<String>,
    /// Nothing accepted the connection.
    pub refused: bool,
}

impl Checked {
    /// What one look saw, as a dry run reports it.
    pub(super) fn now(&self) -> String {
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

pub(super) enum Target {
    Http(Url),
    Tcp(String),
    Command(Vec<String>),
}

/// A health target that is none of the three kinds.
#[derive(Debug)]
pub(super) enum TargetError {
    EmptyArgv,
    BadUrl { text: String, reason: String },
    Unsupported(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::EmptyArgv => f.write_str("the argv target is empty"),
            TargetError::BadUrl { text, reason } => write!(f, "bad URL \"{text}\": {reason}"),
            TargetError::Unsupported(text) => {
                write!(f, "health target \"{text}\" must be an http(s):// URL, tcp://host:port, or an argv array")
            }
        }
    }
}

pub(super) fn target(value: &Dynamic) -> Result<Target, TargetError> {
    if let Some(items) = value.read_lock::<Array>() {
        let argv: Vec<String> = items.iter().map(ToString::to_string).collect();
        if argv.is_empty() {
            return Err(TargetError::EmptyArgv);
        }
        return Ok(Target::Command(argv));
    }
    let text = value.to_string();
    if let Some(addr) = text.strip_prefix("tcp://") {
        return Ok(Target::Tcp(addr.trim_end_matches('/').to_string()));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return match Url::parse(&text) {
            Ok(url) => Ok(Target::Http(url)),
            Err(e) => Err(TargetError::BadUrl { reason: e.to_string(), text }),
        };
    }
    Err(TargetError::Unsupported(text))
}

pub(super) fn check_once(services: &Services, target: &Target, o: &CheckOptions) -> RhaiResultOf<Checked> {
    let start = Instant::now();
    match target {
        Target::Http(url) => {
            let mut request = http::client(services)?.get(url.clone()).timeout(o.timeout.0);
            for (k, v) in &o.headers {
                request = request.header(k, &v.0);
            }
            let result = match http::send(services, request) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = match http::text(services, response) {
                        Ok(body) => body,
                        Err(HttpError::Transport(_)) => String::new(),
                        Err(e) => return Err(e.into()),
                    };
                    Ok((status, body))
                }
                Err(HttpError::Transport(e)) => Err(e),
                Err(e) => return Err(e.into()),
            };
            let latency = start.elapsed();
            Ok(match result {
                Ok((status, body)) => {
                    let status_ok = o.expect_status.contains(status);
                    let body_ok = o.expect_body.as_ref().is_none_or(|b| body.contains(b.0.as_str()));
                    let error = if !status_ok {
                        Some(format!("status {status}"))
                    } else if !body_ok {
                        Some(format!(
                            "body does not contain \"{}\"",
                            o.expect_body.as_ref().map_or("", |b| b.0.as_str())
                        ))
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
            let timeout = o.timeout.0;
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
            spec.timeout = Some(o.timeout.0);
            spec.quiet = true;
            match process::execute(services, &spec) {
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
