//! `notify::webhook` and `notify::slack`: JSON posts with a timeout and
//! retries. A failed notification warns and the run goes on, unless the
//! call says `required: true`. Payloads are masked before they leave.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, Map, Module};

use super::registration::module_func;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::services::retry::RetryPolicy;
use crate::services::{wait, Action, Services};
use crate::state::RunState;

const OPTIONS: &[&str] = &["timeout", "retries", "retry_delay", "required", "headers"];

#[derive(Debug, Clone)]
pub struct PostOptions {
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub required: bool,
    pub headers: Vec<(String, String)>,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retries: 2,
            retry_delay: Duration::from_millis(500),
            required: false,
            headers: Vec::new(),
        }
    }
}

impl PostOptions {
    fn from_map(map: &Map) -> Result<Self, String> {
        let mut o = Self::default();
        for (k, v) in map {
            match k.as_str() {
                "timeout" => o.timeout = parse_duration(v).map_err(|e| format!("notify option `timeout`: {e}"))?,
                "retry_delay" => {
                    o.retry_delay = parse_duration(v).map_err(|e| format!("notify option `retry_delay`: {e}"))?;
                }
                "retries" => {
                    o.retries = v
                        .as_int()
                        .ok()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or("notify option `retries` must be 0 or more")?;
                }
                "required" => o.required = v.as_bool().map_err(|_| "notify option `required` must be true or false")?,
                "headers" => {
                    let h = v.read_lock::<Map>().ok_or("notify option `headers` must be a map")?;
                    o.headers = h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                }
                other => {
                    return Err(format!("unknown notify option `{other}`; the options are: {}", OPTIONS.join(", ")))
                }
            }
        }
        Ok(o)
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
    let client = reqwest::Client::builder().timeout(options.timeout).build().map_err(|e| e.to_string())?;
    let policy = RetryPolicy::doubling(options.retries, options.retry_delay).capped_at(Duration::from_secs(30));
    let mut backoff = policy.backoff();
    let mut last_error = String::new();
    for attempt in 1..=policy.attempts() {
        let mut request = client.post(parsed.clone()).json(&body);
        for (k, v) in &options.headers {
            request = request.header(k, v);
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

fn deliver(state: &RunState, url: &str, body: &serde_json::Value, options: &Map) -> RhaiResultOf<Map> {
    let options = PostOptions::from_map(options).map_err(|m| failure(FailureKind::Usage, m))?;
    let mut result = Map::new();
    match post_json(&state.services, url, body, &options) {
        Ok(d) => {
            result.insert("ok".into(), true.into());
            result.insert("status".into(), d.status.map_or(Dynamic::UNIT, |s| i64::from(s).into()));
            result.insert("attempts".into(), i64::from(d.attempts).into());
            result.insert("dry_run".into(), d.dry_run.into());
            Ok(result)
        }
        Err(message) if options.required => Err(failure_with_hint(
            FailureKind::Fail,
            format!("notification failed: {message}"),
            "check the URL and that the receiver is up",
        )),
        Err(message) => {
            state.services.log(Level::Warn, format!("notification not delivered: {message}"));
            result.insert("ok".into(), false.into());
            result.insert("error".into(), message.into());
            result.insert("dry_run".into(), false.into());
            Ok(result)
        }
    }
}

const WEBHOOK_DOC: &str = "POST a map as JSON to `url`, with a timeout and retries (transport errors, 429,\n\
    5xx). A failure warns and the run goes on unless `required: true`. Options:\n\
    `timeout` (10s), `retries` (2), `retry_delay` (500ms, doubled), `required`, `headers`.\n\
    Returns `#{ ok, status, attempts, dry_run }`.\n\
    ```rhai\nnotify::webhook(\"https://hooks.example.com/deploy\", #{ service: \"api\", version: v });\n```";
const SLACK_DOC: &str = "Post `text` to a Slack incoming webhook (`{\"text\": ...}`); like `webhook`.\n\
    ```rhai\nnotify::slack(secret(\"SLACK_WEBHOOK\"), `:rocket: ${version} is live`);\n```";
pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut module = Module::new();
    let s = state.clone();
    module_func(
        &mut module,
        "webhook",
        &["url: &str", "payload: Map", "Map"],
        WEBHOOK_DOC,
        move |url: &str, payload: Map| deliver(&s, url, &to_json(payload)?, &Map::new()),
    );
    let s = state.clone();
    module_func(
        &mut module,
        "webhook",
        &["url: &str", "payload: Map", "options: Map", "Map"],
        WEBHOOK_DOC,
        move |url: &str, payload: Map, options: Map| deliver(&s, url, &to_json(payload)?, &options),
    );
    let s = state.clone();
    module_func(&mut module, "slack", &["url: &str", "text: &str", "Map"], SLACK_DOC, move |url: &str, text: &str| {
        deliver(&s, url, &serde_json::json!({ "text": text }), &Map::new())
    });
    let s = state.clone();
    module_func(
        &mut module,
        "slack",
        &["url: &str", "text: &str", "options: Map", "Map"],
        SLACK_DOC,
        move |url: &str, text: &str, options: Map| deliver(&s, url, &serde_json::json!({ "text": text }), &options),
    );
    engine.register_static_module("notify", module.into());
}

fn to_json(map: Map) -> RhaiResultOf<serde_json::Value> {
    serde_json::to_value(Dynamic::from_map(map))
        .map_err(|e| failure(FailureKind::Usage, format!("payload cannot be sent as JSON: {e}")))
}
