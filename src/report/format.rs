//! Short text for run ids and durations.

use std::time::{Duration, SystemTime};

/// A run id that sorts by start time: `20261122T001530123Z-3f2a`.
pub fn new_run_id() -> String {
    let now = SystemTime::now();
    let stamp: String = humantime::format_rfc3339_millis(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':' && *c != '.')
        .collect();
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{salt:04x}")
}

/// Length of an id [`new_run_id`] makes.
const ID_LEN: usize = "20261122T001530123Z-3f2a".len();

/// A named run's id (`--run-name`): a time-sorted id, then the name, so
/// `last` still finds the newest run and the name finds its runs.
pub fn named_run_id(name: &str) -> String {
    format!("{}-{name}", new_run_id())
}

/// `--run-name` text as it goes into a run id: letters, digits, `.`, `_`
/// and `-`, anything else made a `-` (a CI's `folder/job 12` stays one
/// path segment); at most 100 characters.
pub fn run_name(raw: &str) -> Result<String, String> {
    let name: String =
        raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    let name = name.trim_matches(['-', '.']).to_string();
    if name.is_empty() || name == "last" {
        return Err(format!("`{raw}` cannot name a run: give letters or digits other than `last`"));
    }
    if name.len() > 100 {
        return Err(format!("the run name `{raw}` is longer than 100 characters"));
    }
    Ok(name)
}

/// Whether `id` is a run [`named_run_id`] made for `name`.
fn is_named(id: &str, name: &str) -> bool {
    let generated = |p: &str| {
        let b = p.as_bytes();
        b.len() == ID_LEN
            && b[8] == b'T'
            && b[18] == b'Z'
            && b[19] == b'-'
            && b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit)
            && b[20..].iter().all(u8::is_ascii_hexdigit)
    };
    id.len() > ID_LEN + 1 && id.as_bytes()[ID_LEN] == b'-' && generated(&id[..ID_LEN]) && &id[ID_LEN + 1..] == name
}

/// The run `wanted` picks among `ids`: `last` is the newest; a run id is
/// itself; a `--run-name` is the newest run of that name (a pipeline run
/// again starts a new run under the same name, and its later jobs continue
/// that one).
pub fn pick_run<S: AsRef<str>>(ids: impl IntoIterator<Item = S>, wanted: &str) -> Option<String> {
    let name = run_name(wanted).ok();
    let mut newest: Option<String> = None;
    for id in ids {
        let id = id.as_ref();
        if id == wanted && wanted != "last" {
            return Some(id.to_string());
        }
        let fits = wanted == "last" || name.as_deref().is_some_and(|n| is_named(id, n));
        if fits && newest.as_deref().is_none_or(|n| id > n) {
            newest = Some(id.to_string());
        }
    }
    newest
}

/// `12ms`, `1.2s`, `2m03s`: short and aligned for step lines.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(123)), "2m03s");
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_run_id();
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), ID_LEN);
    }

    #[test]
    fn runs_are_picked_by_id_name_or_last() {
        let ids = [
            "20261122T001530123Z-3f2a",
            "20261122T001531000Z-0001-gh-17",
            "20261122T001532000Z-0002-gh-17",
            "20261122T001533000Z-0003-gh-170",
        ];
        assert_eq!(pick_run(ids, "last").as_deref(), Some(ids[3]));
        assert_eq!(pick_run(ids, ids[1]).as_deref(), Some(ids[1]));
        assert_eq!(pick_run(ids, "gh-17").as_deref(), Some(ids[2]), "the newest run of the name");
        assert_eq!(pick_run(ids, "3f2a"), None, "a generated id's tail is no name");
        assert_eq!(pick_run(ids, "gh"), None);
        assert_eq!(run_name("jenkins-infra/deploy 12").as_deref(), Ok("jenkins-infra-deploy-12"));
        assert!(run_name("last").is_err() && run_name(" / ").is_err());
        assert!(is_named(&named_run_id("x"), "x"));
    }
}
