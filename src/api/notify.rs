//! `notify::webhook` and `notify::slack`: JSON posts with a timeout and
//! retries. A failed notification warns and the run goes on, unless the
//! call says `required: true`. Payloads are masked before they leave.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};

use super::options::{Seconds, Text};
use super::registration::{docs, Api};
use super::values::to_map;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::http::{self, HttpError, StatusCode, Url};
use crate::services::retry::RetryPolicy;
use crate::services::{wait, Action, Services};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostOptions {
    pub timeout: Seconds,
    pub retries: u32,
    pub retry_delay: Seconds,
    pub required: bool,
    pub headers: BTreeMap<String, Text>,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            timeout: Seconds(Duration::from_secs(10)),
            retries: 2,
            retry_delay: Seconds(Duration::from_millis(500)),
            required: false,
            headers: BTreeMap::new(),
        }
    }
}

/// What a delivery did.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub status: Option<u16>,
    pub attempts: u32,
    pub dry_run: bool,
}

/// Why a notification was not delivered.
#[derive(Debug)]
pub enum NotifyError {
    BadUrl(String),
    Scheme(String),
    NoRuntime,
    Client(HttpError),
    Interrupted,
    /// The receiver answered, with a status that is not success.
    Answered {
        url: String,
        status: StatusCode,
    },
    /// No answer: the transport's error and its causes, without the URL.
    Unreachable {
        url: String,
        error: String,
    },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::BadUrl(reason) => write!(f, "bad webhook URL: {reason}"),
            NotifyError::Scheme(scheme) => write!(f, "webhook URL must be http or https, not {scheme}"),
            NotifyError::NoRuntime => f.write_str("no async runtime for HTTP"),
            NotifyError::Client(HttpError::Client(e)) => write!(f, "{e}"),
            NotifyError::Client(e) => write!(f, "{e}"),
            NotifyError::Interrupted => f.write_str("interrupted"),
            NotifyError::Answered { url, status } => write!(f, "{url} answered {status}"),
            NotifyError::Unreachable { url, error } => write!(f, "{url}: {error}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// POST `body` as JSON, retrying transport errors, 429 and 5xx with a
/// doubling delay. The body is masked first. Honours dry-run and Ctrl-C.
pub fn post_json(
    services: &Services,
    url: &str,
    body: &serde_json::Value,
    options: &PostOptions,
) -> Result<Delivery, NotifyError> {
    let parsed = Url::parse(url).map_err(|e| NotifyError::BadUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(NotifyError::Scheme(parsed.scheme().to_string()));
    }
    let description = format!("POST {url}");
    if !services.should_act(&Action { description: &description, read_only: false }) {
        return Ok(Delivery { status: None, attempts: 0, dry_run: true });
    }
    let mut body = body.clone();
    services.mask_json(&mut body);
    if services.runtime.is_none() {
        return Err(NotifyError::NoRuntime);
    }
    let client = http::client(services).map_err(NotifyError::Client)?;
    let policy = RetryPolicy::doubling(options.retries, options.retry_delay.0).capped_at(Duration::from_secs(30));
    let mut backoff = policy.backoff();
    let mut last_error = None;
    for attempt in 1..=policy.attempts() {
        let mut request = client.post(parsed.clone()).json(&body).timeout(options.timeout.0);
        for (k, v) in &options.headers {
            request = request.header(k, &v.0);
        }
        match http::send(services, request) {
            Ok(response) if response.status().is_success() => {
                return Ok(Delivery { status: Some(response.status().as_u16()), attempts: attempt, dry_run: false });
            }
            Ok(response) => {
                let status = response.status();
                last_error = Some(NotifyError::Answered { url: url.to_string(), status });
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
            Err(HttpError::Transport(e)) => {
                last_error = Some(NotifyError::Unreachable { url: url.to_string(), error: without_url(&e) });
            }
            Err(_) => return Err(NotifyError::Interrupted),
        }
        if let Some(delay) = backoff.next() {
            wait::sleep(services, delay).map_err(|_| NotifyError::Interrupted)?;
        }
    }
    // At least one attempt is always made.
    Err(last_error.unwrap_or(NotifyError::Interrupted))
}

/// The error and its causes, without repeating the URL.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// What a notification call returns when it was delivered (or skipped).
#[derive(Serialize)]
struct Sent {
    ok: bool,
    status: Option<u16>,
    attempts: u32,
    dry_run: bool,
}

/// What it returns when delivery failed and the run goes on.
#[derive(Serialize)]
struct NotSent {
    ok: bool,
    error: String,
    dry_run: bool,
}

fn deliver(services: &Services, url: &str, body: &serde_json::Value, options: &PostOptions) -> RhaiResultOf<Map> {
    match post_json(services, url, body, options) {
        Ok(d) => to_map(&Sent { ok: true, status: d.status, attempts: d.attempts, dry_run: d.dry_run }),
        Err(message) if options.required => Err(failure_with_hint(
            FailureKind::Fail,
            format!("notification failed: {message}"),
            "check the URL and that the receiver is up",
        )),
        Err(message) => {
            services.log(Level::Warn, format!("notification not delivered: {message}"));
            to_map(&NotSent { ok: false, error: message.to_string(), dry_run: false })
        }
    }
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts2(
        "webhook",
        &["url: &str", "payload: Map", "Map"],
        docs! {
            /// POST a map as JSON to `url`, with a timeout and retries (transport errors, 429,
            /// 5xx). A failure warns and the run goes on unless `required: true`. Options:
            /// `timeout` (10s), `retries` (2), `retry_delay` (500ms, doubled), `required`, `headers`.
            /// Returns `#{ ok, status, attempts, dry_run }`.
            /// ```rhai
            /// notify::webhook("https://hooks.example.com/deploy", #{ service: "api", version: v });
            /// ```
        },
        |svc, url: Str, payload: Map, options: PostOptions| deliver(svc, &url, &to_json(payload)?, &options),
    );
    api.opts2(
        "slack",
        &["url: &str", "text: &str", "Map"],
        docs! {
            /// Post `text` to a Slack incoming webhook (`{"text": ...}`); like `webhook`.
            /// ```rhai
            /// notify::slack(secret("SLACK_WEBHOOK"), `:rocket: ${version} is live`);
            /// ```
        },
        |svc, url: Str, text: Str, options: PostOptions| {
            deliver(svc, &url, &serde_json::json!({ "text": text.as_str() }), &options)
        },
    );
}

fn to_json(map: Map) -> RhaiResultOf<serde_json::Value> {
    serde_json::to_value(Dynamic::from_map(map))
        .map_err(|e| failure(FailureKind::Usage, format!("payload cannot be sent as JSON: {e}")))
}
