//! `capstan stats`: delivery statistics over the runs a journal (or a
//! shared state store) holds. [`facts`] reads what one run's journal tells,
//! [`compute`] turns the runs into the figures of a window, [`table`] and
//! [`prometheus`] write them for a terminal and for `node_exporter`'s textfile
//! collector; `--json` is [`Stats`] serialized.

pub mod compute;
pub mod facts;
pub mod prometheus;
pub mod table;

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use compute::{Group, Window};
pub use facts::RunFacts;

/// Everything `capstan stats` reports.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// The `--since` window as given (`30d`).
    pub since: String,
    pub from: String,
    pub to: String,
    /// Start of the previous period of equal length (which ends at `from`).
    pub previous_from: String,
    pub groups: Vec<Group>,
    #[serde(skip)]
    pub window: Window,
}

/// Whether `playbook` (as a run recorded it) is the one `--playbook` names:
/// the same path, or the same file name, or that name without `.rhai`.
pub fn names(playbook: &str, wanted: &str) -> bool {
    let wanted = wanted.trim_start_matches("./");
    let file = Path::new(playbook).file_name().and_then(|f| f.to_str()).unwrap_or(playbook);
    playbook == wanted || file == wanted || file.strip_suffix(".rhai") == Some(wanted)
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The statistics of `runs` over the `since` window ending at `now`.
pub fn stats(runs: &[RunFacts], playbook: Option<&str>, since: Duration, shown: &str, now: SystemTime) -> Stats {
    let window = Window::ending(epoch_ms(now), i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 4));
    let picked: Vec<RunFacts> =
        runs.iter().filter(|r| playbook.is_none_or(|p| names(&r.playbook, p))).cloned().collect();
    Stats {
        since: shown.to_string(),
        from: compute::timestamp(window.from_ms),
        to: compute::timestamp(window.to_ms),
        previous_from: compute::timestamp(window.previous().from_ms),
        groups: compute::compute(&picked, window),
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn playbooks_are_named_by_path_file_or_stem() {
        assert!(names("svc/deploy.rhai", "svc/deploy.rhai"));
        assert!(names("svc/deploy.rhai", "deploy.rhai"));
        assert!(names("svc/deploy.rhai", "deploy"));
        assert!(names("deploy.rhai", "./deploy.rhai"));
        assert!(!names("svc/deploy.rhai", "other"));
    }
}
