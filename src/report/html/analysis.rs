//! The analyses of a run, read back from its decision records: every
//! `*_decision` event (canary rungs, blue-green checks) grouped by strategy
//! and phase, each metric's samples as a chart, and the quality gates of
//! `capstan/gates` (the `readiness` event) as one more.

use serde::Serialize;
use serde_json::Value;

use super::chart::{self, Point};
use super::svg::num;
use crate::report::record::{RunRecord, UserEvent};

#[derive(Serialize)]
pub struct Analysis {
    pub title: String,
    pub phase: String,
    pub verdict: String,
    /// The no-data policies the decisions applied (one, unless changed).
    pub no_data: Vec<String>,
    pub decisions: Vec<Decision>,
    pub metrics: Vec<Metric>,
}

#[derive(Serialize)]
pub struct Decision {
    pub anchor: String,
    pub title: String,
    pub ts: String,
    pub verdict: String,
    pub reason: String,
    pub summary: String,
}

#[derive(Serialize)]
pub struct Metric {
    pub name: String,
    /// The rule in words: `at most 0.01`, `at most 2 × the baseline`.
    pub rule: String,
    pub chart: String,
    pub samples: Vec<Sample>,
    pub breaches: usize,
}

#[derive(Serialize)]
pub struct Sample {
    pub group: String,
    pub value: String,
    pub limit: String,
    pub baseline: String,
    pub outcome: String,
}

/// The anchor of the `n`th decision of the run, for links to it.
pub fn anchor(n: usize) -> String {
    format!("decision-{n}")
}

fn group_of(data: &Value) -> String {
    if let Some(rung) = data.get("rung").filter(|r| !r.is_null()) {
        return format!("{}%", shown(rung));
    }
    if let Some(n) = data.get("sample_number").filter(|r| !r.is_null()) {
        return format!("#{}", shown(n));
    }
    data["title"].as_str().unwrap_or("").to_string()
}

fn shown(v: &Value) -> String {
    v.as_f64().map_or_else(|| v.to_string(), num)
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "no data".into(), num)
}

/// Every decision record, with its number among them all.
pub fn decisions(record: &RunRecord) -> impl Iterator<Item = (usize, &UserEvent)> {
    crate::report::files::decisions(record).enumerate()
}

/// The decisions of one strategy in one phase: (kind, phase), and each
/// decision with its number.
type Group<'a> = ((String, String), Vec<(usize, &'a UserEvent)>);

pub fn analyses(record: &RunRecord) -> Vec<Analysis> {
    // (kind, phase) in the order first seen, with their decisions.
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (n, e) in decisions(record) {
        let key = (e.kind.clone(), e.phase.clone().unwrap_or_default());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push((n, e)),
            None => groups.push((key, vec![(n, e)])),
        }
    }
    groups.into_iter().map(|((kind, phase), list)| analysis(&kind, phase, &list)).collect()
}

fn analysis(kind: &str, phase: String, list: &[(usize, &UserEvent)]) -> Analysis {
    let mut metrics: Vec<(String, String, Vec<Point>)> = Vec::new();
    let mut no_data: Vec<String> = Vec::new();
    for (_, e) in list {
        let d = &e.data;
        if let Some(p) = d["no_data"].as_str().filter(|p| !no_data.iter().any(|x| x == p)) {
            no_data.push(p.to_string());
        }
        for c in d["checks"].as_array().into_iter().flatten() {
            let metric = c["metric"].as_str().unwrap_or("?");
            let ratio = c.get("max_ratio").and_then(Value::as_f64);
            let (name, rule, limit, baseline) = if let Some(r) = ratio {
                (
                    format!("{metric} against the baseline"),
                    format!("at most {} × the baseline", num(r)),
                    c["limit"].as_f64(),
                    c["baseline"].as_f64(),
                )
            } else {
                let t = c["threshold"].as_f64();
                let base = d["baseline"].get(metric).and_then(Value::as_f64);
                (metric.to_string(), format!("at most {}", t.map_or_else(String::new, num)), t, base)
            };
            let point =
                Point { group: group_of(d), value: c["value"].as_f64(), limit, baseline, ok: c["ok"].as_bool() };
            match metrics.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, _, points)) => points.push(point),
                None => metrics.push((name, rule, vec![point])),
            }
        }
    }
    let verdict = if list.iter().any(|(_, e)| e.data["verdict"] == "fail") {
        "failed".to_string()
    } else {
        list.last().and_then(|(_, e)| e.data["verdict"].as_str()).unwrap_or("").replace("pass", "passed")
    };
    Analysis {
        title: kind.strip_suffix("_decision").unwrap_or(kind).replace('_', " "),
        phase,
        verdict,
        no_data,
        decisions: list
            .iter()
            .map(|(n, e)| Decision {
                anchor: anchor(*n),
                title: e.data["title"].as_str().unwrap_or(&e.kind).to_string(),
                ts: e.ts.clone(),
                verdict: e.data["verdict"].as_str().unwrap_or("").to_string(),
                reason: e.data["reason"].as_str().unwrap_or("").to_string(),
                summary: e.data["summary"].as_str().unwrap_or("").to_string(),
            })
            .collect(),
        metrics: metrics.into_iter().map(|(name, rule, points)| metric(name, rule, &points)).collect(),
    }
}

fn metric(name: String, rule: String, points: &[Point]) -> Metric {
    let samples = points
        .iter()
        .map(|p| Sample {
            group: p.group.clone(),
            value: opt(p.value),
            limit: p.limit.map(num).unwrap_or_default(),
            baseline: p.baseline.map(num).unwrap_or_default(),
            outcome: match p.ok {
                Some(true) => "ok".into(),
                Some(false) => "breach".into(),
                None => "no data".into(),
            },
        })
        .collect();
    Metric {
        chart: chart::metric(&name, points),
        breaches: points.iter().filter(|p| p.ok == Some(false)).count(),
        name,
        rule,
        samples,
    }
}

/// A `gates::evaluate`: its decision, score and every gate.
#[derive(Serialize)]
pub struct Readiness {
    pub phase: String,
    pub decision: String,
    pub score: String,
    pub chart: String,
    pub gates: Vec<Value>,
}

pub fn readiness(record: &RunRecord) -> Vec<Readiness> {
    record
        .events
        .iter()
        .filter(|e| e.kind == "readiness")
        .map(|e| {
            let gates: Vec<Value> = e.data["gates"].as_array().cloned().unwrap_or_default();
            let drawn: Vec<chart::Gate> = gates
                .iter()
                .map(|g| chart::Gate {
                    label: format!("{} ({})", g["name"].as_str().unwrap_or(""), g["metric"].as_str().unwrap_or("")),
                    value: g["value"].as_f64(),
                    comparison: g["comparison"].as_str().unwrap_or("").to_string(),
                    threshold: g["threshold"].as_f64().unwrap_or(0.0),
                    ok: g["ok"].as_bool().unwrap_or(false),
                })
                .collect();
            Readiness {
                phase: e.phase.clone().unwrap_or_default(),
                decision: e.data["decision"].as_str().unwrap_or("").to_string(),
                score: shown(&e.data["score"]),
                chart: if drawn.is_empty() { String::new() } else { chart::gates(&drawn) },
                gates,
            }
        })
        .collect()
}
