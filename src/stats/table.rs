//! The statistics as text for a terminal, within 80 columns: a block per
//! playbook and environment, its delivery figures on labelled lines, then
//! one line per step.

use std::fmt::Write as _;

use super::compute::{Group, StepStats};
use super::Stats;

/// Widest step name shown; longer ones keep their end (the innermost step).
const STEP_WIDTH: usize = 36;

/// `850ms`, `4.2s`, `3m07s`, `2h05m`, `3d04h`: durations from a step's to an incident's.
pub fn span(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => {
            #[allow(clippy::cast_precision_loss)] // under a minute
            let secs = ms as f64 / 1000.0;
            format!("{secs:.1}s")
        }
        60_000..3_600_000 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The whole report.
pub fn render(stats: &Stats) -> String {
    let mut out = format!(
        "Deliveries over the last {} ({} to {})\n",
        stats.since,
        &stats.from[..16.min(stats.from.len())].replace('T', " "),
        &stats.to[..16.min(stats.to.len())].replace('T', " ")
    );
    if stats.groups.is_empty() {
        out.push_str("no runs\n");
    }
    for g in &stats.groups {
        out.push('\n');
        group(&mut out, g);
    }
    out
}

fn group(out: &mut String, g: &Group) {
    let env = if g.environment.is_empty() { String::new() } else { format!(" [{}]", g.environment) };
    let _ = writeln!(out, "{}{env}", g.playbook);
    let _ = writeln!(
        out,
        "  deployments  {} ({:.2}/day; previous period {})",
        g.deployments, g.per_day, g.previous.deployments
    );
    let _ = writeln!(out, "  failed       {} ({} change failure rate)", g.failed, percent(g.change_failure_rate));
    let restore = &g.time_to_restore;
    let restored = restore.incidents.len() as u64 - restore.open;
    let mut line = match restore.median_ms {
        Some(ms) => format!("median {} over {}", span(ms), plural(restored, "incident", "incidents")),
        None if restore.incidents.is_empty() => "no incident".into(),
        None => "none restored".into(),
    };
    if restore.open > 0 {
        let _ = write!(line, ", {} still open", restore.open);
    }
    let _ = writeln!(out, "  restore      {line}");
    let lead = match g.lead_time.median_ms {
        Some(ms) => format!("median {} over {}", span(ms), plural(g.lead_time.runs, "run", "runs")),
        None => "no run recorded its commit (git::sha)".into(),
    };
    let _ = writeln!(out, "  lead time    {lead}");
    if g.steps.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {:<STEP_WIDTH$} {:>5} {:>7} {:>7} {:>7} {:>5}",
        "STEP", "RUNS", "P50", "P95", "TREND", "FLAKY"
    );
    for s in &g.steps {
        step(out, s);
    }
}

fn step(out: &mut String, s: &StepStats) {
    let count = s.step.chars().count();
    let name = if count > STEP_WIDTH {
        format!("…{}", s.step.chars().skip(count - STEP_WIDTH + 1).collect::<String>())
    } else {
        s.step.clone()
    };
    let trend = s.trend_pct.map_or_else(|| "-".into(), |t| format!("{t:+.0}%"));
    let _ = writeln!(
        out,
        "  {name:<STEP_WIDTH$} {:>5} {:>7} {:>7} {trend:>7} {:>5}",
        s.runs,
        span(i64::try_from(s.p50_ms).unwrap_or(i64::MAX)),
        span(i64::try_from(s.p95_ms).unwrap_or(i64::MAX)),
        s.flaky
    );
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_short() {
        assert_eq!(span(850), "850ms");
        assert_eq!(span(4_200), "4.2s");
        assert_eq!(span(187_000), "3m07s");
        assert_eq!(span(7_500_000), "2h05m");
        assert_eq!(span(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
    }
}
