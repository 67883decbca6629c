//! The statistics in the Prometheus text format, for `node_exporter`'s
//! textfile collector. The `_total` counters count every run the journal
//! holds (they only grow while runs are kept, so `rate()` and `increase()`
//! work on them); the gauges are the figures of the `--since` window. The
//! file is written whole to a temporary name and renamed, so the collector
//! never reads half of it.

use std::fmt::Write as _;
use std::path::Path;

use super::compute::Group;
use super::Stats;

/// A label value, escaped as the text format asks.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(g: &Group) -> String {
    format!(r#"playbook="{}",environment="{}""#, escape(&g.playbook), escape(&g.environment))
}

#[allow(clippy::cast_precision_loss)] // milliseconds to seconds
fn seconds(ms: impl TryInto<i64>) -> f64 {
    ms.try_into().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// One metric family: HELP, TYPE and a sample per group that has a value.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Samples of `value` for every group where it has one.
fn per_group(stats: &Stats, value: impl Fn(&Group) -> Option<f64>) -> Vec<(String, f64)> {
    stats.groups.iter().filter_map(|g| value(g).map(|v| (labels(g), v))).collect()
}

#[allow(clippy::cast_precision_loss)] // counts of runs and executions
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: &dyn Fn(&Group) -> Option<f64>| {
        family(&mut out, name, "counter", help, &per_group(stats, value));
    };
    counter(
        "capstan_deployments_total",
        "Deployments (runs that were not dry runs, blocked or usage errors) the journal holds.",
        &|g| Some(g.all_time.deployments as f64),
    );
    counter(
        "capstan_change_failures_total",
        "Deployments that failed, rolled back or undid steps, of those the journal holds.",
        &|g| Some(g.all_time.failed as f64),
    );
    let mut gauge = |name: &str, help: &str, value: &dyn Fn(&Group) -> Option<f64>| {
        family(&mut out, name, "gauge", help, &per_group(stats, value));
    };
    gauge("capstan_deployments_per_day", "Deployments per day over the window.", &|g| Some(g.per_day));
    gauge("capstan_change_failure_ratio", "Failed deployments over deployments in the window (0 to 1).", &|g| {
        g.change_failure_rate
    });
    gauge(
        "capstan_time_to_restore_seconds",
        "Median time from a failed run to the next successful one, over the incidents of the window.",
        &|g| g.time_to_restore.median_ms.map(seconds),
    );
    gauge("capstan_open_incidents", "Incidents of the window not restored yet.", &|g| {
        Some(g.time_to_restore.open as f64)
    });
    gauge(
        "capstan_lead_time_seconds",
        "Median time from the commit (git::sha) to the end of the successful run, over the window.",
        &|g| g.lead_time.median_ms.map(seconds),
    );
    let mut durations = Vec::new();
    let mut flaky = Vec::new();
    for g in &stats.groups {
        for s in &g.steps {
            let l = format!(r#"{},step="{}""#, labels(g), escape(&s.step));
            durations
                .push((format!(r#"{{{l},quantile="0.5"}}"#), seconds(i64::try_from(s.p50_ms).unwrap_or(i64::MAX))));
            durations
                .push((format!(r#"{{{l},quantile="0.95"}}"#), seconds(i64::try_from(s.p95_ms).unwrap_or(i64::MAX))));
            durations.push((format!("_sum{{{l}}}"), seconds(i64::try_from(s.all_time_ms).unwrap_or(i64::MAX))));
            durations.push((format!("_count{{{l}}}"), s.all_time_runs as f64));
            flaky.push((l, s.flaky as f64));
        }
    }
    // A summary: quantiles over the window (as a client's sliding window),
    // `_sum` and `_count` over every execution the journal holds.
    let name = "capstan_step_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Step duration: quantiles 0.5 and 0.95 over the window by nearest rank; sum and count over the journal."
    );
    let _ = writeln!(out, "# TYPE {name} summary");
    for (suffix, value) in &durations {
        let _ = writeln!(out, "{name}{suffix} {value}");
    }
    family(
        &mut out,
        "capstan_step_flaky_executions",
        "gauge",
        "Step executions in the window that passed only after a retry or after failing earlier in the run.",
        &flaky,
    );
    let _ = writeln!(out, "# HELP capstan_stats_window_seconds Length of the window the gauges cover.");
    let _ = writeln!(out, "# TYPE capstan_stats_window_seconds gauge");
    let _ = writeln!(out, "capstan_stats_window_seconds {}", seconds(stats.window.to_ms - stats.window.from_ms));
    out
}

/// Write the file whole: to a temporary name beside it, then renamed.
pub fn write(stats: &Stats, path: &Path) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, render(stats)).and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
