//! The exporter's settings from the standard `OTEL_*` environment variables.

use std::time::Duration;

/// What the standard `OTEL_*` variables ask for.
#[derive(Debug, Clone)]
pub struct Config {
    /// The full URL traces are posted to (`…/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub resource: Vec<(String, String)>,
}

impl Config {
    /// From the environment; `None` when no endpoint is set or the SDK or
    /// the traces exporter is switched off.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    pub(super) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
        {
            return None;
        }
        // The signal's own variable is the URL as given; the general one is
        // a base that the signal's path is appended to (the specification's rule).
        let endpoint = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => url.trim().to_string(),
            None => format!("{}/v1/traces", var("OTEL_EXPORTER_OTLP_ENDPOINT")?.trim().trim_end_matches('/')),
        };
        let headers = var("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"));
        let timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        let mut resource = pairs(var("OTEL_RESOURCE_ATTRIBUTES").as_deref().unwrap_or(""));
        let service = var("OTEL_SERVICE_NAME")
            .or_else(|| resource.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.clone()));
        resource.retain(|(k, _)| k != "service.name");
        resource.insert(0, ("service.name".into(), service.unwrap_or_else(|| "capstan".into())));
        Some(Self { endpoint, headers: pairs(headers.as_deref().unwrap_or("")), timeout, resource })
    }
}

/// `k=v,k2=v2` with percent-encoded values (W3C Baggage style, as the
/// `OTEL_*` list variables are written).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy().into_owned();
            (k.trim().to_string(), v)
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}
