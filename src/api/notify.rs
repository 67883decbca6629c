//! `notify::webhook` and `notify::slack`: JSON posts with a timeout and
//! retries. A failed notification warns and the run goes on, unless the
//! call says `required: true`. Payloads are masked before they leave.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};

use super::options::{Seconds, Text};
use super::registration::{docs, Api};
use super::values::to_map;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
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

/// POST `body` as JSON, retrying transport errors, 429 and 5xx with a
/// doubling delay. The body is masked first. Honours dry-run and Ctrl-C.
pub fn post_json(
    services: &Services,
    url: &str,
    body: &serde_json::Value,
    options: &PostOptions,
) -> Result<Delivery, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad webhook URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("webhook URL must be http or https, not {}", parsed.scheme()));
    }
    let description = format!("POST {url}");
    if !services.should_act(&Action { description: &description, read_only: false }) {
        return Ok(Delivery { status: None, attempts: 0, dry_run: true });
    }
    let mut body = body.clone();
    services.mask_json(&mut body);
    wait::runtime(services).map_err(|_| "no async runtime for HTTP")?;
    let client = reqwest::Client::builder().timeout(options.timeout.0).build().map_err(|e| e.to_string())?;
    let policy = RetryPolicy::doubling(options.retries, options.retry_delay.0).capped_at(Duration::from_secs(30));
    let mut backoff = policy.backoff();
    let mut last_error = String::new();
    for attempt in 1..=policy.attempts() {
        let mut request = client.post(parsed.clone()).json(&body);
        for (k, v) in &options.headers {
            request = request.header(k, &v.0);
        }
        match wait::block_on(services, request.send()).map_err(|_| "interrupted")? {
            Ok(response) if response.status().is_success() => {
                return Ok(Delivery { status: Some(response.status().as_u16()), attempts: attempt, dry_run: false });
            }
            Ok(response) => {
                let status = response.status();
                last_error = format!("{url} answered {status}");
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
            Err(e) => last_error = format!("{url}: {}", without_url(&e)),
        }
        if let Some(delay) = backoff.next() {
            wait::sleep(services, delay).map_err(|_| "interrupted")?;
        }
    }
    Err(last_error)
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
            to_map(&NotSent { ok: false, error: message, dry_run: false })
        }
    }
}

pub fn register(engine: &mut Engine, services: &Arc<Services>) {
    let mut api = Api::namespace(engine, "notify", services.clone());
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
    api.finish();
}

fn to_json(map: Map) -> RhaiResultOf<serde_json::Value> {
    serde_json::to_value(Dynamic::from_map(map))
        .map_err(|e| failure(FailureKind::Usage, format!("payload cannot be sent as JSON: {e}")))
}
