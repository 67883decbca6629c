//! The statistics of a window: per playbook and environment, deployments,
//! their frequency, the change failure rate, the incidents and their time
//! to restore, the lead time; per step, p50/p95 durations with their trend
//! against the previous period, and flaky executions. README "Delivery
//! statistics" defines each figure; this file is those definitions.

use std::collections::BTreeMap;

use serde::Serialize;

use super::facts::{Outcome, RunFacts, StepRun};

const DAY_MS: f64 = 86_400_000.0;

/// `[from_ms, to_ms)`, in ms since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Window {
    /// The window of length `len_ms` ending at `now_ms`.
    pub fn ending(now_ms: i64, len_ms: i64) -> Self {
        Self { from_ms: now_ms - len_ms, to_ms: now_ms }
    }

    /// The period of equal length just before.
    #[must_use]
    pub fn previous(self) -> Self {
        Self { from_ms: 2 * self.from_ms - self.to_ms, to_ms: self.from_ms }
    }

    pub fn holds(self, ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&ms)
    }

    fn days(self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // a window is far shorter than 2^52 ms
        let ms = (self.to_ms - self.from_ms) as f64;
        ms / DAY_MS
    }
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub playbook: String,
    pub environment: String,
    pub deployments: u64,
    pub per_day: f64,
    pub failed: u64,
    /// `failed / deployments`; `None` without deployments.
    pub change_failure_rate: Option<f64>,
    pub time_to_restore: Restore,
    pub lead_time: LeadTime,
    pub previous: Period,
    /// Over every run the journal holds, whatever the window: what the
    /// Prometheus counters count.
    pub all_time: Period,
    pub steps: Vec<StepStats>,
}

/// Deployments and change failures of a period.
#[derive(Debug, Serialize)]
pub struct Period {
    pub deployments: u64,
    pub failed: u64,
    pub change_failure_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Restore {
    /// Median (p50 by nearest rank) of the restored incidents.
    pub median_ms: Option<i64>,
    /// Incidents not restored yet.
    pub open: u64,
    pub incidents: Vec<Incident>,
}

/// From the end of a failed run to the end of the next successful run of
/// the same playbook and environment; later failures in between belong to it.
#[derive(Debug, Serialize)]
pub struct Incident {
    pub failed_run: String,
    pub failed_at: String,
    pub restored_run: Option<String>,
    pub restored_at: Option<String>,
    pub restore_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct LeadTime {
    /// Median (p50 by nearest rank).
    pub median_ms: Option<i64>,
    /// Successful deployments that recorded their commit.
    pub runs: u64,
}

#[derive(Debug, Serialize)]
pub struct StepStats {
    /// `phase/step`.
    pub step: String,
    /// Executions in the window.
    pub runs: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub previous_p50_ms: Option<u64>,
    /// p50 against the previous period's, in percent; `None` without one.
    pub trend_pct: Option<f64>,
    /// Executions that passed only after a retry or after failing earlier in the run.
    pub flaky: u64,
    pub passed_after_retry: u64,
    pub passed_on_resume: u64,
    /// Executions and their summed duration over every run the journal
    /// holds: the Prometheus summary's `_count` and `_sum`.
    pub all_time_runs: u64,
    pub all_time_ms: u64,
}

/// The value at percentile `p` by nearest rank: the smallest value with at
/// least `p`% of the values at or below it (always one of the values).
pub fn nearest_rank<T: Copy + Ord>(values: &mut [T], p: usize) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p * values.len()).div_ceil(100).max(1);
    Some(values[rank - 1])
}

pub fn timestamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[allow(clippy::cast_precision_loss)] // counts of runs
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn period(runs: &[&RunFacts], keep: impl Fn(i64) -> bool) -> Period {
    let done: Vec<_> = runs.iter().filter(|r| r.is_deployment() && r.ended_ms().is_some_and(&keep)).collect();
    let failed = count(done.iter().filter(|r| r.failed()).count());
    let deployments = count(done.len());
    Period { deployments, failed, change_failure_rate: ratio(failed, deployments) }
}

/// Every group's statistics over `window` (and the period before it).
pub fn compute(runs: &[RunFacts], window: Window) -> Vec<Group> {
    let mut groups: BTreeMap<(&str, &str), Vec<&RunFacts>> = BTreeMap::new();
    for r in runs.iter().filter(|r| !r.dry_run) {
        groups.entry((r.playbook.as_str(), r.environment.as_str())).or_default().push(r);
    }
    groups.into_iter().map(|((playbook, environment), runs)| group(playbook, environment, &runs, window)).collect()
}

fn group(playbook: &str, environment: &str, runs: &[&RunFacts], window: Window) -> Group {
    let now = period(runs, |ms| window.holds(ms));
    let mut lead: Vec<i64> = runs
        .iter()
        .filter(|r| r.ended_ms().is_some_and(|ms| window.holds(ms)))
        .filter_map(|r| r.lead_time_ms())
        .collect();
    let lead_runs = count(lead.len());
    let incidents: Vec<Incident> =
        incidents(runs).into_iter().filter(|(opened, _)| window.holds(*opened)).map(|(_, i)| i).collect();
    let mut restored: Vec<i64> = incidents.iter().filter_map(|i| i.restore_ms).collect();
    Group {
        playbook: playbook.to_string(),
        environment: environment.to_string(),
        #[allow(clippy::cast_precision_loss)] // counts of runs
        per_day: now.deployments as f64 / window.days(),
        deployments: now.deployments,
        failed: now.failed,
        change_failure_rate: now.change_failure_rate,
        time_to_restore: Restore {
            median_ms: nearest_rank(&mut restored, 50),
            open: count(incidents.iter().filter(|i| i.restore_ms.is_none()).count()),
            incidents,
        },
        lead_time: LeadTime { median_ms: nearest_rank(&mut lead, 50), runs: lead_runs },
        previous: period(runs, |ms| window.previous().holds(ms)),
        all_time: period(runs, |_| true),
        steps: steps(runs, window),
    }
}

/// The incidents of a group, each with the time its first failure ended.
fn incidents(runs: &[&RunFacts]) -> Vec<(i64, Incident)> {
    let mut attempts: Vec<(i64, &str, Outcome)> =
        runs.iter().flat_map(|r| r.attempts.iter().map(|a| (a.ended_ms, r.run_id.as_str(), a.outcome))).collect();
    attempts.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut found: Vec<(i64, Incident)> = Vec::new();
    let mut open: Option<usize> = None;
    for (ended, run, outcome) in attempts {
        match (outcome, open) {
            (Outcome::Failed, None) => {
                open = Some(found.len());
                let incident = Incident {
                    failed_run: run.to_string(),
                    failed_at: timestamp(ended),
                    restored_run: None,
                    restored_at: None,
                    restore_ms: None,
                };
                found.push((ended, incident));
            }
            (Outcome::Succeeded, Some(i)) => {
                let (opened, incident) = &mut found[i];
                incident.restored_run = Some(run.to_string());
                incident.restored_at = Some(timestamp(ended));
                incident.restore_ms = Some(ended - *opened);
                open = None;
            }
            _ => {}
        }
    }
    found
}

fn steps(runs: &[&RunFacts], window: Window) -> Vec<StepStats> {
    let mut now: BTreeMap<&str, Vec<&StepRun>> = BTreeMap::new();
    let mut before: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut all_time: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in runs.iter().flat_map(|r| r.steps.iter()) {
        let total = all_time.entry(s.step.as_str()).or_default();
        *total = (total.0 + 1, total.1 + s.duration_ms);
        if window.holds(s.ended_ms) {
            now.entry(s.step.as_str()).or_default().push(s);
        } else if window.previous().holds(s.ended_ms) {
            before.entry(s.step.as_str()).or_default().push(s.duration_ms);
        }
    }
    now.into_iter()
        .map(|(step, runs)| {
            let mut durations: Vec<u64> = runs.iter().map(|s| s.duration_ms).collect();
            let p50 = nearest_rank(&mut durations, 50).unwrap_or(0);
            let previous = before.get_mut(step).and_then(|d| nearest_rank(d, 50));
            #[allow(clippy::cast_precision_loss)] // durations in ms
            let trend = previous.filter(|p| *p > 0).map(|p| (p50 as f64 - p as f64) * 100.0 / p as f64);
            StepStats {
                step: step.to_string(),
                runs: count(runs.len()),
                p50_ms: p50,
                p95_ms: nearest_rank(&mut durations, 95).unwrap_or(0),
                previous_p50_ms: previous,
                trend_pct: trend,
                flaky: count(runs.iter().filter(|s| s.flaky()).count()),
                passed_after_retry: count(runs.iter().filter(|s| s.passed_after_retry).count()),
                passed_on_resume: count(runs.iter().filter(|s| s.passed_on_resume).count()),
                all_time_runs: all_time[step].0,
                all_time_ms: all_time[step].1,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_one_of_the_values() {
        let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(nearest_rank(&mut v, 50), Some(5));
        assert_eq!(nearest_rank(&mut v, 95), Some(10));
        assert_eq!(nearest_rank(&mut [7], 95), Some(7));
        assert_eq!(nearest_rank(&mut [1, 2, 3, 4], 50), Some(2));
        assert_eq!(nearest_rank::<u64>(&mut [], 50), None);
    }

    #[test]
    fn the_previous_period_has_the_same_length() {
        let w = Window::ending(1000, 300);
        let p = w.previous();
        assert_eq!((p.from_ms, p.to_ms), (400, 700));
        assert!(w.holds(700) && !w.holds(1000) && !p.holds(700));
    }
}
