//! The fleet recap, as the terminal and `capstan runs show` print it: one
//! line per host (status, duration, first error line), failures first, as
//! the `fleet_recap` event lists them, under a line of counts.

use std::time::Duration;

use super::format::format_duration;

/// The lines of a `fleet_recap` event's data, unstyled; `indent` before each.
pub fn lines(data: &serde_json::Value, indent: &str) -> Vec<String> {
    let count = |k: &str| data[k].as_u64().unwrap_or(0);
    let mut out = vec![format!(
        "{indent}fleet recap: {} ok, {} failed, {} unreachable, {} skipped (max_fail {})",
        count("ok"),
        count("failed"),
        count("unreachable"),
        count("skipped"),
        data["max_fail"].as_str().unwrap_or("0"),
    )];
    let hosts = data["hosts"].as_array().map(Vec::as_slice).unwrap_or_default();
    let width = hosts.iter().filter_map(|h| h["host"].as_str()).map(|h| h.chars().count()).max().unwrap_or(0);
    for h in hosts {
        let status = h["status"].as_str().unwrap_or("?");
        let mark = match status {
            "ok" => "✓",
            "skipped" => "↷",
            _ => "✗",
        };
        let took = format_duration(Duration::from_millis(h["duration_ms"].as_u64().unwrap_or(0)));
        let mut line = format!("{indent}  {mark} {:width$}  {status:<11} {took:>7}", h["host"].as_str().unwrap_or("?"));
        if let Some(e) = h["error"].as_str() {
            line.push_str("  ");
            line.push_str(e);
        }
        out.push(line.trim_end().to_string());
    }
    out
}

/// Whether the recap says some host did not finish well.
pub fn has_failures(data: &serde_json::Value) -> bool {
    ["failed", "unreachable"].iter().any(|k| data[*k].as_u64().unwrap_or(0) > 0)
}
