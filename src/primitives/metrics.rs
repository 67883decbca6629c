//! `metrics::`: Prometheus's HTTP query API. `query` returns every series;
//! `value` insists on exactly one number and says why when there is not.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map, Module};
use serde_json::Value;

use super::registration::module_func;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::services::wait;
use crate::state::RunState;

struct QueryOptions {
    time: Option<String>,
    timeout: Duration,
}

fn options(map: &Map) -> RhaiResultOf<QueryOptions> {
    let mut o = QueryOptions { time: None, timeout: Duration::from_secs(10) };
    for (k, v) in map {
        match k.as_str() {
            "time" => {
                o.time = Some(if let Ok(n) = v.as_int() {
                    n.to_string()
                } else if let Ok(f) = v.as_float() {
                    f.to_string()
                } else {
                    v.to_string()
                });
            }
            "timeout" => {
                o.timeout = parse_duration(v)
                    .map_err(|e| failure(FailureKind::Usage, format!("metrics option `timeout`: {e}")))?;
            }
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown metrics option `{other}`; the options are: time, timeout"),
                ))
            }
        }
    }
    Ok(o)
}

/// One series: its labels and its value (the last one for a range).
fn series(labels: &Value, sample: &Value) -> Result<Map, String> {
    let mut m = Map::new();
    let labels: Map = labels
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.as_str().unwrap_or_default().to_string())))
                .collect()
        })
        .unwrap_or_default();
    m.insert("labels".into(), labels.into());
    m.insert("value".into(), number(sample)?.into());
    m.insert("time".into(), sample[0].as_f64().unwrap_or_default().into());
    Ok(m)
}

/// Prometheus sends `[time, "value"]`; the value may be NaN or ±Inf.
fn number(sample: &Value) -> Result<f64, String> {
    let text = sample[1].as_str().ok_or("malformed sample in the response")?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t => t.parse().map_err(|_| format!("not a number in the response: {t}")),
    }
}

fn query_raw(state: &RunState, url: &str, promql: &str, o: &QueryOptions) -> RhaiResultOf<Array> {
    let base = url.trim_end_matches('/');
    let endpoint = reqwest::Url::parse(&format!("{base}/api/v1/query"))
        .map_err(|e| failure(FailureKind::Usage, format!("bad Prometheus URL \"{url}\": {e}")))?;
    let mut form = vec![("query", promql.to_string())];
    if let Some(t) = &o.time {
        form.push(("time", t.clone()));
    }
    let services = &state.services;
    let client =
        reqwest::Client::builder().timeout(o.timeout).build().map_err(|e| failure(FailureKind::Fail, e.to_string()))?;
    let request = client.post(endpoint).form(&form);
    let result = wait::block_on(services, async {
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    })?;
    let (status, body) = result.map_err(|e| {
        failure_with_hint(
            FailureKind::Command,
            format!("cannot reach Prometheus at {url}: {e}"),
            "check the URL and that Prometheus is up",
        )
    })?;
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
    let bad = |e: String| failure(FailureKind::Command, e);
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| series(&s["metric"], &s["value"]).map(Dynamic::from).map_err(bad))
            .collect(),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["values"].as_array().and_then(|v| v.last()).map(|last| series(&s["metric"], last)))
            .map(|r| r.map(Dynamic::from).map_err(bad))
            .collect(),
        Some("scalar") => Ok(vec![series(&Value::Null, &data["result"]).map(Dynamic::from).map_err(bad)?]),
        other => Err(failure(
            FailureKind::Command,
            format!("`{promql}` returned a {} result; expected a number", other.unwrap_or("missing")),
        )),
    }
}

fn value(state: &RunState, url: &str, promql: &str, map: &Map) -> RhaiResultOf<f64> {
    let o = options(map)?;
    let series = query_raw(state, url, promql, &o)?;
    match series.len() {
        0 => Err(failure_with_hint(
            FailureKind::Fail,
            format!("`{promql}` returned no data"),
            "the series may not exist yet, or the time or label filters match nothing",
        )),
        1 => Ok(series[0]
            .read_lock::<Map>()
            .and_then(|m| m.get("value").and_then(|v| v.as_float().ok()))
            .unwrap_or(f64::NAN)),
        n => {
            let first: Vec<String> =
                series.iter().take(3).filter_map(|s| s.read_lock::<Map>().map(|m| m["labels"].to_string())).collect();
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

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    const QUERY_DOC: &str = "Run an instant PromQL query: an array of `#{ labels, value, time }`.\n\
        Options: `time` (RFC 3339 or Unix seconds; default now), `timeout` (10s).\n\
        ```rhai\nfor s in metrics::query(prom, \"up{job=\\\"api\\\"}\") { info(`${s.labels.instance}: ${s.value}`); }\n```";
    const VALUE_DOC: &str = "One number from PromQL; fails clearly on no data or on several series.\n\
        ```rhai\nlet rate = metrics::value(prom, \"sum(rate(http_requests_total{code=~\\\"5..\\\"}[5m]))\");\n```";
    let s = state.clone();
    module_func(&mut m, "query", &["prometheus: &str", "promql: &str", "Array"], QUERY_DOC, move |u: &str, q: &str| {
        query_raw(&s, u, q, &options(&Map::new())?)
    });
    let s = state.clone();
    module_func(
        &mut m,
        "query",
        &["prometheus: &str", "promql: &str", "options: Map", "Array"],
        QUERY_DOC,
        move |u: &str, q: &str, o: Map| query_raw(&s, u, q, &options(&o)?),
    );
    let s = state.clone();
    module_func(&mut m, "value", &["prometheus: &str", "promql: &str", "f64"], VALUE_DOC, move |u: &str, q: &str| {
        value(&s, u, q, &Map::new())
    });
    let s = state.clone();
    module_func(
        &mut m,
        "value",
        &["prometheus: &str", "promql: &str", "options: Map", "f64"],
        VALUE_DOC,
        move |u: &str, q: &str, o: Map| value(&s, u, q, &o),
    );
    engine.register_static_module("metrics", m.into());
}

/// `slo::budget`: how much of the error budget is left over a window.
fn budget(state: &RunState, map: &Map) -> RhaiResultOf<Map> {
    let text = |k: &str| {
        map.get(k)
            .map(ToString::to_string)
            .ok_or_else(|| failure(FailureKind::Usage, format!("slo::budget needs `{k}`")))
    };
    for k in map.keys() {
        if !["prometheus", "objective", "window", "query_good", "query_total", "time", "timeout"].contains(&k.as_str())
        {
            return Err(failure(FailureKind::Usage, format!("unknown slo::budget option `{k}`; the options are: prometheus, objective, window, query_good, query_total, time, timeout")));
        }
    }
    let prometheus = text("prometheus")?;
    let objective = map
        .get("objective")
        .and_then(|v| v.as_float().ok())
        .ok_or_else(|| failure(FailureKind::Usage, "slo::budget needs `objective`, e.g. 0.999"))?;
    if !(0.0..1.0).contains(&objective) {
        return Err(failure(
            FailureKind::Usage,
            format!("slo::budget: objective must be between 0 and 1, like 0.999, not {objective}"),
        ));
    }
    let window = map.get("window").map_or_else(|| "30d".to_string(), ToString::to_string);
    let mut o = Map::new();
    for k in ["time", "timeout"] {
        if let Some(v) = map.get(k) {
            o.insert(k.into(), v.clone());
        }
    }
    // A selector is counted over the window; a query with its own range is used as written.
    let over = |q: String| if q.contains('[') { q } else { format!("sum(increase({q}[{window}]))") };
    let good = value(state, &prometheus, &over(text("query_good")?), &o)?;
    let total = value(state, &prometheus, &over(text("query_total")?), &o)?;
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
    state.services.log(
        crate::events::Level::Info,
        format!(
            "error budget over {window}: {:.1}% left (error ratio {:.5}, objective {objective})",
            remaining * 100.0,
            error_ratio
        ),
    );
    let mut m = Map::new();
    m.insert("objective".into(), objective.into());
    m.insert("window".into(), window.into());
    m.insert("good".into(), good.into());
    m.insert("total".into(), total.into());
    m.insert("error_ratio".into(), error_ratio.into());
    m.insert("budget".into(), allowed.into());
    m.insert("consumed".into(), consumed.into());
    m.insert("remaining".into(), remaining.into());
    m.insert("exhausted".into(), (remaining <= 0.0).into());
    Ok(m)
}

pub fn register_slo(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    let s = state.clone();
    module_func(
        &mut m,
        "budget",
        &["options: Map", "Map"],
        "The error budget left over a window, from Prometheus: `#{ prometheus, objective: 0.999,\n\
         window: \"30d\", query_good, query_total }` (selectors of counters; they are counted with\n\
         `increase(...[window])`). Returns `#{ objective, good, total, error_ratio, budget,\n\
         consumed, remaining, exhausted }`; `remaining` is the share of the budget left.\n\
         ```rhai\nlet b = slo::budget(#{ prometheus: prom, objective: 0.999, window: \"30d\",\n    query_good: \"http_requests_total{code!~\\\"5..\\\"}\", query_total: \"http_requests_total\" });\ngate(\"error budget left\", !b.exhausted, \"freeze deploys until the budget recovers\");\n```",
        move |o: Map| budget(&s, &o),
    );
    engine.register_static_module("slo", m.into());
}
