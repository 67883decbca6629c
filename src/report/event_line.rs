//! A user event as the terminal shows it: one short line with the event's
//! type and its plainest fields, cut to fit a line. JSON lines, the journal
//! and the reports keep the whole payload; `-v` adds it, pretty-printed.

use serde_json::Value;

/// The longest event line, indentation and mark included.
pub const MAX_LINE_CHARS: usize = 160;
/// A longer text field is cut: the line is a headline, not the record.
const MAX_VALUE_CHARS: usize = 40;
/// Fields that say the most about an event, first when present.
const FIRST: &[&str] = &["verdict", "decision", "status", "title", "reason"];

/// Clock readings (`decided_at_ms`, `started_at`) say nothing on a line a
/// person reads as it happens; `-v` and the records keep them.
fn is_timestamp(key: &str) -> bool {
    key.ends_with("_at_ms") || key.ends_with("_at")
}

/// `kind  key=value key=value …` in at most `budget` characters.
pub fn short(kind: &str, data: &Value, budget: usize) -> String {
    let mut line = kind.to_string();
    let fields = fields(data);
    for (i, field) in fields.iter().enumerate() {
        let sep = if i == 0 { "  " } else { " " };
        // Room for this field, and for the " …" that says more were left out.
        let more = if i + 1 < fields.len() { 2 } else { 0 };
        if line.chars().count() + sep.len() + field.chars().count() + more > budget {
            line.push_str(" …");
            break;
        }
        line.push_str(sep);
        line.push_str(field);
    }
    if line.chars().count() > budget {
        line = line.chars().take(budget.saturating_sub(1)).collect();
        line.push('…');
    }
    line
}

/// The payload, pretty-printed, for `-v`.
pub fn full(data: &Value) -> String {
    serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string())
}

/// `key=value` for each field: the telling ones first, then the other plain
/// values, then lists and maps by their size.
fn fields(data: &Value) -> Vec<String> {
    let Value::Object(map) = data else { return vec![value(data)] };
    let first = FIRST.iter().filter_map(|k| map.get(*k).filter(|v| is_plain(v)).map(|v| (*k, v)));
    let plain = map.iter().filter(|(k, v)| is_plain(v) && !FIRST.contains(&k.as_str()) && !is_timestamp(k));
    let nested = map.iter().filter(|(_, v)| !is_plain(v));
    first
        .chain(plain.map(|(k, v)| (k.as_str(), v)))
        .chain(nested.map(|(k, v)| (k.as_str(), v)))
        .map(|(k, v)| format!("{k}={}", value(v)))
        .collect()
}

fn is_plain(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => text(s),
        Value::Array(items) => format!("[{}]", items.len()),
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(_) => "{…}".into(),
        other => other.to_string(),
    }
}

/// A word stays bare; anything else is quoted so the fields stay apart.
fn text(s: &str) -> String {
    let cut: String = if s.chars().count() > MAX_VALUE_CHARS {
        s.chars().take(MAX_VALUE_CHARS - 1).chain(['…']).collect()
    } else {
        s.to_string()
    };
    let bare = !cut.is_empty() && cut.chars().all(|c| c.is_alphanumeric() || "._-:/@%+*…".contains(c));
    if bare {
        cut
    } else {
        Value::String(cut).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn telling_fields_first_then_plain_then_nested() {
        let data = json!({ "checks": [1, 2], "rung": 5, "verdict": "pass", "reason": "every check passed" });
        assert_eq!(
            short("canary_decision", &data, 160),
            r#"canary_decision  verdict=pass reason="every check passed" rung=5 checks=[2]"#
        );
    }

    #[test]
    fn clock_readings_are_left_to_the_records() {
        let data = json!({ "rung": 50, "reason": "error_rate 0.06 > 0.01", "decided_at_ms": 1_765_000_000_000_u64,
            "breach_to_restored_ms": 3 });
        assert_eq!(
            short("canary_rollback", &data, 160),
            r#"canary_rollback  reason="error_rate 0.06 > 0.01" breach_to_restored_ms=3 rung=50"#
        );
    }

    #[test]
    fn long_payloads_are_cut_at_a_field() {
        let hosts: Vec<String> = (0..100).map(|i| format!("host-{i}")).collect();
        let data = json!({ "a": "x".repeat(500), "hosts": hosts, "version": "1.2.3" });
        let line = short("deployed", &data, 60);
        assert!(line.chars().count() <= 60, "{line}");
        assert!(line.starts_with(&format!("deployed  a={}…", "x".repeat(39))), "{line}");
        assert!(short(&"k".repeat(100), &json!({}), 20).chars().count() <= 20);
        assert_eq!(short("n", &json!(7), 20), "n  7");
    }
}
