//! `analysis::`: the verdict on one analysis sample, as a decision record
//! that says what was measured, against what, under which no-data policy,
//! and why it passed or failed. The delivery strategies in the stdlib
//! (`capstan/canary`, `capstan/blue_green`) record every decision through
//! here, so the journal, `runs show` and the report can explain each one.

use std::fmt::Write as _;
use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str, Map};
use serde::Serialize;

use super::registration::{docs, Api};
use super::values::to_map;
use crate::events::{EventKind, Level};
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::{frame, Services};

/// A number from a sample value; `None` for missing, unit or NaN.
fn number(v: Option<&Dynamic>) -> Option<f64> {
    let v = v?;
    let n = v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64))?;
    (!n.is_nan()).then_some(n)
}

/// `p99_ms` reads better as `181ms`; rates keep their decimals.
fn show(metric: &str, value: f64) -> String {
    if metric.ends_with("_ms") {
        format!("{}ms", (value * 10.0).round() / 10.0)
    } else if metric.ends_with("_seconds") || metric.ends_with("_s") {
        format!("{}s", (value * 1000.0).round() / 1000.0)
    } else {
        let rounded = (value * 1e6).round() / 1e6;
        format!("{rounded}")
    }
}

fn label(metric: &str) -> &str {
    metric.strip_suffix("_ms").or_else(|| metric.strip_suffix("_seconds")).unwrap_or(metric)
}

/// The decision record `decide` returns, without the sample and baseline
/// it was given (those are added as they came).
#[derive(Serialize)]
struct Decision {
    verdict: &'static str,
    reason: String,
    checks: Vec<Check>,
    no_data: String,
    summary: String,
}

/// One check of a decision. A missing value, or an outcome that could not
/// be judged, is `()` to the script and `null` in the journal.
#[derive(Serialize)]
#[serde(untagged)]
enum Check {
    /// A metric against its threshold: `value <= threshold`.
    Threshold { metric: String, threshold: f64, op: &'static str, value: Option<f64>, ok: Option<bool> },
    /// A metric against the baseline's times `max_ratio`; `limit` and
    /// `ratio` only when both sides have data (`ratio` is `()` for a
    /// baseline of 0).
    Ratio {
        metric: String,
        max_ratio: f64,
        baseline: Option<f64>,
        value: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<f64>,
        // Absent without data; `Some(None)`, `()`, against a baseline of 0.
        #[allow(clippy::option_option)]
        #[serde(skip_serializing_if = "Option::is_none")]
        ratio: Option<Option<f64>>,
        ok: Option<bool>,
    },
}

/// What the checks found, as they are made: a part of the summary line for
/// each, the reasons of those that failed, the metrics without data.
#[derive(Default)]
struct Findings {
    parts: Vec<String>,
    failed: Vec<String>,
    missing: Vec<String>,
}

impl Findings {
    /// `value <= limit`; `against` says where the limit came from
    /// (` (x2 baseline 0.01)`), or is empty. Whether it held.
    fn compare(&mut self, metric: &str, value: f64, limit: f64, against: &str) -> bool {
        let ok = value <= limit;
        let (label, value, limit) = (label(metric), show(metric, value), show(metric, limit));
        // The line states what holds: `<=` and ok, or `>` and BREACH.
        let (op, outcome) = if ok { ("<=", "ok") } else { (">", "BREACH") };
        self.parts.push(format!("{label} {value} {op} {limit}{against} {outcome}"));
        if !ok {
            self.failed.push(format!("{label} {value} > {limit}{against}"));
        }
        ok
    }

    /// A check without data: `part` for the summary, `what` for the reason.
    fn no_data(&mut self, part: String, what: String) {
        self.parts.push(part);
        self.missing.push(what);
    }
}

/// Decide on one sample. `options`: `thresholds` (metric: max), `baseline`
/// (a sample or `()`), `max_ratio_to_baseline` (metric: ratio), `no_data`
/// ("fail", "inconclusive", "pass"), `min_requests` (1).
#[allow(clippy::single_match_else)] // two outcomes per check read best side by side
pub fn decide(sample: &Map, options: &Map) -> RhaiResultOf<Map> {
    let get_map = |k: &str| options.get(k).and_then(|v| v.read_lock::<Map>().map(|m| m.clone())).unwrap_or_default();
    let thresholds = get_map("thresholds");
    let ratios = get_map("max_ratio_to_baseline");
    let baseline = options.get("baseline").and_then(|v| v.read_lock::<Map>().map(|m| m.clone()));
    let policy = options.get("no_data").map_or_else(|| "fail".to_string(), ToString::to_string);
    if !["fail", "inconclusive", "pass"].contains(&policy.as_str()) {
        return Err(failure(
            FailureKind::Usage,
            format!("no_data must be \"fail\", \"inconclusive\" or \"pass\", not \"{policy}\""),
        ));
    }
    let min_requests = options.get("min_requests").and_then(|v| v.as_int().ok()).unwrap_or(1);

    let mut checks = Vec::new();
    let mut found = Findings::default();
    let requests = number(sample.get("requests"));
    let no_traffic = requests.is_some_and(|r| r < min_requests as f64);
    for (metric, limit) in &thresholds {
        let limit = number(Some(limit))
            .ok_or_else(|| failure(FailureKind::Usage, format!("threshold `{metric}` must be a number")))?;
        let value = if no_traffic { None } else { number(sample.get(metric.as_str())) };
        let ok = match value {
            Some(v) => Some(found.compare(metric, v, limit, "")),
            None => {
                found.no_data(format!("{} no data", label(metric)), metric.to_string());
                None
            }
        };
        checks.push(Check::Threshold { metric: metric.to_string(), threshold: limit, op: "<=", value, ok });
    }
    for (metric, max_ratio) in &ratios {
        let max_ratio = number(Some(max_ratio))
            .ok_or_else(|| failure(FailureKind::Usage, format!("max_ratio_to_baseline `{metric}` must be a number")))?;
        let Some(base) = &baseline else {
            return Err(failure(FailureKind::Usage, "max_ratio_to_baseline needs a `baseline` closure"));
        };
        let value = if no_traffic { None } else { number(sample.get(metric.as_str())) };
        // A baseline that saw too few requests (a probe with none reads 0)
        // or lacks the metric says nothing about the canary.
        let base_quiet = number(base.get("requests")).is_some_and(|r| r < min_requests as f64);
        let base_value = if base_quiet { None } else { number(base.get(metric.as_str())) };
        let (limit, ratio, ok) = match (value, base_value) {
            (Some(v), Some(b)) => {
                // Allowed: the baseline times the ratio; a perfect baseline (0)
                // allows nothing above 0.
                let allowed = b * max_ratio;
                let against = format!(" (x{max_ratio} baseline {})", show(metric, b));
                let ok = found.compare(metric, v, allowed, &against);
                (Some(allowed), Some((b > 0.0).then(|| v / b)), Some(ok))
            }
            (_, None) => {
                let part = format!("{} vs baseline: no baseline traffic", label(metric));
                found.no_data(part, format!("{metric} (no baseline traffic)"));
                (None, None, None)
            }
            (None, Some(_)) => {
                found.no_data(format!("{} vs baseline: no data", label(metric)), metric.to_string());
                (None, None, None)
            }
        };
        checks.push(Check::Ratio {
            metric: metric.to_string(),
            max_ratio,
            baseline: base_value,
            value,
            limit,
            ratio,
            ok,
        });
    }
    let Findings { parts, failed, missing } = found;

    let (verdict, reason) = if !failed.is_empty() {
        ("fail", failed.join("; "))
    } else if !missing.is_empty() || no_traffic {
        let what = if no_traffic {
            format!("no traffic ({} requests)", requests.unwrap_or(0.0))
        } else {
            format!("no data for {}", missing.join(", "))
        };
        match policy.as_str() {
            "pass" => ("pass", format!("{what}; no_data: \"pass\" lets it through")),
            "inconclusive" => ("inconclusive", format!("{what}; no_data: \"inconclusive\"")),
            _ => ("fail", format!("{what}; no_data: \"fail\"")),
        }
    } else {
        ("pass", "every check passed".to_string())
    };
    let mut record = to_map(&Decision { verdict, reason, checks, no_data: policy, summary: parts.join("; ") })?;
    // The caller's samples go back as they came, not through serde (which
    // would turn a closure or a timestamp in them into a string).
    record.insert("sample".into(), Dynamic::from_map(sample.clone()));
    record.insert("baseline".into(), baseline.map_or(Dynamic::UNIT, Dynamic::from_map));
    Ok(record)
}

/// Record a decision: one journal event, one human line.
fn record(services: &Services, kind: &str, context: &Map, decision: &Map) -> RhaiResultOf<Map> {
    let mut full = context.clone();
    for (k, v) in decision {
        full.insert(k.clone(), v.clone());
    }
    full.insert("ts".into(), crate::events::timestamp(std::time::SystemTime::now()).into());
    let title = context.get("title").map_or_else(|| kind.to_string(), ToString::to_string);
    let verdict = decision.get("verdict").map(ToString::to_string).unwrap_or_default();
    let summary = decision.get("summary").map(ToString::to_string).unwrap_or_default();
    let reason = decision.get("reason").map(ToString::to_string).unwrap_or_default();
    // One line per decision: the verdict, then every check with its value,
    // limit and outcome; the reason when the checks alone do not explain it.
    let mut line = format!("{title}: {verdict}");
    if !summary.is_empty() {
        let _ = write!(line, " — {summary}");
    }
    if verdict != "pass" && !reason.is_empty() && !summary.contains("BREACH") {
        let _ = write!(line, " — {reason}");
    }
    let level = match verdict.as_str() {
        "pass" => Level::Info,
        "inconclusive" => Level::Warn,
        _ => Level::Error,
    };
    services.log(level, line);
    let data = serde_json::to_value(Dynamic::from_map(full.clone()))
        .map_err(|e| failure(FailureKind::Usage, format!("the decision cannot be recorded: {e}")))?;
    services.emit(EventKind::User { at: frame::location(), kind: kind.to_string(), data, quiet: true });
    Ok(full)
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.func2(
        "decide",
        &["sample: Map", "options: Map", "Map"],
        docs! {
            /// Judge one analysis sample: `thresholds` (metric: maximum), `baseline` (a sample),
            /// `max_ratio_to_baseline` (metric: ratio), `no_data` ("fail", "inconclusive", "pass"),
            /// `min_requests`. Returns the decision record `#{ verdict, reason, checks, sample,
            /// baseline, no_data, summary }`; a sample with `requests` below `min_requests` has no data.
            /// ```rhai
            /// let d = analysis::decide(health::probe(url, #{ duration: "10s" }), #{ thresholds: #{ error_rate: 0.001 } });
            /// ```
        },
        |_, sample: Map, options: Map| decide(&sample, &options),
    );
    api.func3(
        "record",
        &["kind: &str", "context: Map", "decision: Map", "Map"],
        docs! {
            /// Record a decision as one event of type `kind` (with `context`, e.g. `#{ title, rung }`)
            /// and one log line. Returns the full record.
            /// ```rhai
            /// analysis::record("canary_decision", #{ title: "canary 25%", rung: 25 }, d);
            /// ```
        },
        |svc, kind: Str, context: Map, decision: Map| record(svc, &kind, &context, &decision),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn thresholds_pass_and_fail() {
        let opts = map(&[("thresholds", map(&[("error_rate", 0.001.into()), ("p99_ms", 200.0.into())]).into())]);
        let with_p99 = |p99: f64| {
            let sample = map(&[("requests", 100_i64.into()), ("error_rate", 0.0004.into()), ("p99_ms", p99.into())]);
            decide(&sample, &opts).unwrap()
        };
        let ok = with_p99(181.0);
        assert_eq!(ok["verdict"].to_string(), "pass");
        assert_eq!(ok["summary"].to_string(), "error_rate 0.0004 <= 0.001 ok; p99 181ms <= 200ms ok");
        let bad = with_p99(300.0);
        assert_eq!(bad["verdict"].to_string(), "fail");
        assert_eq!(bad["reason"].to_string(), "p99 300ms > 200ms");
    }

    #[test]
    fn baseline_ratio_and_no_data() {
        let base = |rate: f64| map(&[("requests", 100_i64.into()), ("error_rate", rate.into())]);
        let opts = |b: Map| {
            map(&[("max_ratio_to_baseline", map(&[("error_rate", 2.0.into())]).into()), ("baseline", b.into())])
        };
        let canary = base(0.01);
        assert_eq!(decide(&canary, &opts(base(0.01))).unwrap()["verdict"].to_string(), "pass");
        assert_eq!(decide(&canary, &opts(base(0.002))).unwrap()["verdict"].to_string(), "fail");
        // A baseline without requests is no data, never an infinite ratio.
        let quiet = map(&[("requests", 0_i64.into()), ("error_rate", 0.0.into())]);
        let d = decide(&canary, &opts(quiet)).unwrap();
        assert_eq!(d["verdict"].to_string(), "fail");
        assert_eq!(d["summary"].to_string(), "error_rate vs baseline: no baseline traffic");
        assert_eq!(d["reason"].to_string(), "no data for error_rate (no baseline traffic); no_data: \"fail\"");
        let perfect = decide(&canary, &opts(base(0.0))).unwrap();
        assert_eq!(perfect["summary"].to_string(), "error_rate 0.01 > 0 (x2 baseline 0) BREACH");
        let empty = map(&[("requests", 0_i64.into())]);
        let policy =
            |p: &str| map(&[("thresholds", map(&[("error_rate", 0.01.into())]).into()), ("no_data", p.into())]);
        assert_eq!(decide(&empty, &policy("fail")).unwrap()["verdict"].to_string(), "fail");
        let inc = decide(&empty, &policy("inconclusive")).unwrap();
        assert_eq!(inc["verdict"].to_string(), "inconclusive");
        assert!(inc["reason"].to_string().contains("no traffic"));
    }
}
