//! `metrics::`: Prometheus's HTTP query API. `query` returns every series;
//! `value` insists on exactly one number and says why when there is not.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::options::{self, Seconds, Text};
use super::registration::{docs, Api};
use super::values::to_map;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::http::{self, HttpError, Url};
use crate::services::Services;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QueryOptions {
    #[serde(deserialize_with = "timestamp")]
    time: Option<String>,
    timeout: Seconds,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self { time: None, timeout: Seconds(Duration::from_secs(10)) }
    }
}

/// An evaluation time as Prometheus takes it: RFC 3339 or Unix seconds.
fn timestamp<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let v = Dynamic::deserialize(deserializer)?;
    Ok(Some(if let Ok(n) = v.as_int() {
        n.to_string()
    } else if let Ok(f) = v.as_float() {
        f.to_string()
    } else {
        v.to_string()
    }))
}

/// One series: its labels and its value (the last one for a range).
#[derive(Serialize)]
struct Series {
    labels: BTreeMap<String, String>,
    value: f64,
    time: f64,
}

fn series(labels: &Value, sample: &Value) -> Result<Series, SampleError> {
    let labels = labels
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    Ok(Series { labels, value: number(sample)?, time: sample[0].as_f64().unwrap_or_default() })
}

/// A sample in Prometheus's answer that is not `[time, "value"]`.
#[derive(Debug)]
enum SampleError {
    Malformed,
    NotANumber(String),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleError::Malformed => f.write_str("malformed sample in the response"),
            SampleError::NotANumber(t) => write!(f, "not a number in the response: {t}"),
        }
    }
}

/// Prometheus sends `[time, "value"]`; the value may be NaN or ±Inf.
fn number(sample: &Value) -> Result<f64, SampleError> {
    let text = sample[1].as_str().ok_or(SampleError::Malformed)?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t => t.parse().map_err(|_| SampleError::NotANumber(t.to_string())),
    }
}

fn query_raw(services: &Services, url: &str, promql: &str, o: &QueryOptions) -> RhaiResultOf<Vec<Series>> {
    let base = url.trim_end_matches('/');
    let endpoint = Url::parse(&format!("{base}/api/v1/query"))
        .map_err(|e| failure(FailureKind::Usage, format!("bad Prometheus URL \"{url}\": {e}")))?;
    let mut form = vec![("query", promql.to_string())];
    if let Some(t) = &o.time {
        form.push(("time", t.clone()));
    }
    let request = http::client(services)?.post(endpoint).form(&form).timeout(o.timeout.0);
    let answer = http::send(services, request).and_then(|response| {
        let status = response.status();
        http::text(services, response).map(|body| (status, body))
    });
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(HttpError::Transport(e)) => {
            return Err(failure_with_hint(
                FailureKind::Command,
                format!("cannot reach Prometheus at {url}: {e}"),
                "check the URL and that Prometheus is up",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let doc: Value = serde_json::from_str(&body).map_err(|_| {
        failure(
            FailureKind::Command,
            format!(
                "Prometheus at {url} answered {status} with something that is not its API: {}",
                body.chars().take(200).collect::<String>()
            ),
        )
    })?;
    if doc["status"] != "success" {
        return Err(failure_with_hint(
            FailureKind::Command,
            format!("Prometheus rejected `{promql}`: {}", doc["error"].as_str().unwrap_or("unknown error")),
            "check the PromQL (try it in Prometheus's expression browser)",
        ));
    }
    let data = &doc["data"];
    let bad = |e: SampleError| failure(FailureKind::Command, e);
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| series(&s["metric"], &s["value"]).map_err(bad))
            .collect(),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["values"].as_array().and_then(|v| v.last()).map(|last| series(&s["metric"], last)))
            .map(|r| r.map_err(bad))
            .collect(),
        Some("scalar") => Ok(vec![series(&Value::Null, &data["result"]).map_err(bad)?]),
        other => Err(failure(
            FailureKind::Command,
            format!("`{promql}` returned a {} result; expected a number", other.unwrap_or("missing")),
        )),
    }
}

fn value(services: &Services, url: &str, promql: &str, o: &QueryOptions) -> RhaiResultOf<f64> {
    let series = query_raw(services, url, promql, o)?;
    match series.len() {
        0 => Err(failure_with_hint(
            FailureKind::Fail,
            format!("`{promql}` returned no data"),
            "the series may not exist yet, or the time or label filters match nothing",
        )),
        1 => Ok(series[0].value),
        n => {
            let first: Vec<String> = series
                .iter()
                .take(3)
                .map(|s| rhai::serde::to_dynamic(&s.labels).map(|l| l.to_string()))
                .collect::<Result<_, _>>()?;
            Err(failure_with_hint(
                FailureKind::Fail,
                format!(
                    "`{promql}` returned {n} series where one number was expected: {}{}",
                    first.join(", "),
                    if n > 3 { ", ..." } else { "" }
                ),
                "aggregate with sum(...) or avg(...), or narrow the label matchers",
            ))
        }
    }
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts2(
        "query",
        &["prometheus: &str", "promql: &str", "Array"],
        docs! {
            /// Run an instant PromQL query: an array of `#{ labels, value, time }`.
            /// Options: `time` (RFC 3339 or Unix seconds; default now), `timeout` (10s).
            /// ```rhai
            /// for s in metrics::query(prom, "up{job=\"api\"}") { info(`${s.labels.instance}: ${s.value}`); }
            /// ```
        },
        |svc, url: Str, promql: Str, o: QueryOptions| -> RhaiResultOf<Array> {
            query_raw(svc, &url, &promql, &o)?.iter().map(|s| to_map(s).map(Dynamic::from)).collect()
        },
    );
    api.opts2(
        "value",
        &["prometheus: &str", "promql: &str", "f64"],
        docs! {
            /// One number from PromQL; fails clearly on no data or on several series.
            /// ```rhai
            /// let rate = metrics::value(prom, "sum(rate(http_requests_total{code=~\"5..\"}[5m]))");
            /// ```
        },
        |svc, url: Str, promql: Str, o: QueryOptions| value(svc, &url, &promql, &o),
    );
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct BudgetOptions {
    prometheus: Option<Text>,
    objective: Option<f64>,
    window: Option<Text>,
    query_good: Option<Text>,
    query_total: Option<Text>,
    #[serde(deserialize_with = "timestamp")]
    time: Option<String>,
    timeout: Option<Seconds>,
}

/// What `slo::budget` returns.
#[derive(Serialize)]
struct ErrorBudget {
    objective: f64,
    window: String,
    good: f64,
    total: f64,
    error_ratio: f64,
    budget: f64,
    consumed: f64,
    remaining: f64,
    exhausted: bool,
}

/// `slo::budget`: how much of the error budget is left over a window.
fn budget(services: &Services, map: &Map) -> RhaiResultOf<Map> {
    let options: BudgetOptions = options::read(map, "slo::budget")?;
    let needed = |v: &Option<Text>, k: &str| {
        v.as_ref().map(|t| t.0.clone()).ok_or_else(|| failure(FailureKind::Usage, format!("slo::budget needs `{k}`")))
    };
    let prometheus = needed(&options.prometheus, "prometheus")?;
    let objective =
        options.objective.ok_or_else(|| failure(FailureKind::Usage, "slo::budget needs `objective`, e.g. 0.999"))?;
    if !(0.0..1.0).contains(&objective) {
        return Err(failure(
            FailureKind::Usage,
            format!("slo::budget: objective must be between 0 and 1, like 0.999, not {objective}"),
        ));
    }
    let window = options.window.map_or_else(|| "30d".to_string(), |w| w.0);
    let o = QueryOptions { time: options.time, timeout: options.timeout.unwrap_or(QueryOptions::default().timeout) };
    // A selector is counted over the window; a query with its own range is used as written.
    let over = |q: String| if q.contains('[') { q } else { format!("sum(increase({q}[{window}]))") };
    let good = value(services, &prometheus, &over(needed(&options.query_good, "query_good")?), &o)?;
    let total = value(services, &prometheus, &over(needed(&options.query_total, "query_total")?), &o)?;
    if total <= 0.0 {
        return Err(failure_with_hint(
            FailureKind::Fail,
            format!("slo::budget: no requests in the last {window}"),
            "check query_total and the window",
        ));
    }
    let error_ratio = (1.0 - good / total).max(0.0);
    let allowed = 1.0 - objective;
    let consumed = error_ratio / allowed;
    let remaining = 1.0 - consumed;
    services.log(
        crate::events::Level::Info,
        format!(
            "error budget over {window}: {:.1}% left (error ratio {:.5}, objective {objective})",
            remaining * 100.0,
            error_ratio
        ),
    );
    to_map(&ErrorBudget {
        objective,
        window,
        good,
        total,
        error_ratio,
        budget: allowed,
        consumed,
        remaining,
        exhausted: remaining <= 0.0,
    })
}

pub fn register_slo(api: &mut Api<'_, Arc<Services>>) {
    api.func1(
        "budget",
        &["options: Map", "Map"],
        docs! {
            /// The error budget left over a window, from Prometheus: `#{ prometheus, objective: 0.999,
            /// window: "30d", query_good, query_total }` (selectors of counters; they are counted with
            /// `increase(...[window])`). Returns `#{ objective, good, total, error_ratio, budget,
            /// consumed, remaining, exhausted }`; `remaining` is the share of the budget left.
            /// ```rhai
            /// let b = slo::budget(#{ prometheus: prom, objective: 0.999, window: "30d",
            ///     query_good: "http_requests_total{code!~\"5..\"}", query_total: "http_requests_total" });
            /// gate("error budget left", !b.exhausted, "freeze deploys until the budget recovers");
            /// ```
        },
        |svc, o: Map| budget(svc, &o),
    );
}
