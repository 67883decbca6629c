//! Step options from the script's `#{ ... }` map, checked strictly: an
//! unknown key is an error naming the keys that exist.

use std::time::Duration;

use rhai::{Dynamic, FnPtr, Map};

#[derive(Clone)]
pub struct StepOptions {
    pub retries: u32,
    pub retry_delay: Duration,
    pub timeout: Option<Duration>,
    pub allow_failure: bool,
    pub when: bool,
    pub undo: Option<FnPtr>,
    /// What the step's commands leave running in the background outlives
    /// the run (a server it starts); otherwise it is killed when the run ends.
    pub detach: bool,
}

impl Default for StepOptions {
    fn default() -> Self {
        Self {
            retries: 0,
            retry_delay: Duration::from_secs(1),
            timeout: None,
            allow_failure: false,
            when: true,
            undo: None,
            detach: false,
        }
    }
}

pub const STEP_OPTION_KEYS: &[&str] = &["retries", "retry_delay", "timeout", "allow_failure", "when", "undo", "detach"];

impl StepOptions {
    pub fn from_map(map: &Map) -> Result<Self, String> {
        let mut o = Self::default();
        for (key, value) in map {
            match key.as_str() {
                "retries" => {
                    let n = value.as_int().map_err(|t| format!("step option `retries` must be an integer, not {t}"))?;
                    o.retries =
                        u32::try_from(n).map_err(|_| format!("step option `retries` must be 0 or more, not {n}"))?;
                }
                "retry_delay" => o.retry_delay = duration_option("retry_delay", value)?,
                "timeout" => o.timeout = Some(duration_option("timeout", value)?),
                "allow_failure" => o.allow_failure = bool_option("allow_failure", value)?,
                "when" => o.when = bool_option("when", value)?,
                "detach" => o.detach = bool_option("detach", value)?,
                "undo" => {
                    o.undo = Some(value.clone().try_cast::<FnPtr>().ok_or_else(|| {
                        format!("step option `undo` must be a closure like `|| ...`, not {}", value.type_name())
                    })?);
                }
                other => {
                    return Err(format!(
                        "unknown step option `{other}`; the options are: {}",
                        STEP_OPTION_KEYS.join(", ")
                    ))
                }
            }
        }
        Ok(o)
    }
}

fn bool_option(name: &str, value: &Dynamic) -> Result<bool, String> {
    value.as_bool().map_err(|t| format!("step option `{name}` must be true or false, not {t}"))
}

fn duration_option(name: &str, value: &Dynamic) -> Result<Duration, String> {
    parse_duration(value).map_err(|e| format!("step option `{name}`: {e}"))
}

/// A duration from a script value: `"1m30s"`, `"500ms"`, or a number of seconds.
pub fn parse_duration(value: &Dynamic) -> Result<Duration, String> {
    if let Ok(secs) = value.as_int() {
        return u64::try_from(secs).map(Duration::from_secs).map_err(|_| format!("{secs} is negative"));
    }
    if let Ok(secs) = value.as_float() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{secs} is not a valid number of seconds"));
    }
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return humantime::parse_duration(text.trim()).map_err(|e| {
            format!("\"{}\" is not a duration ({e}); write it like \"30s\", \"5m\" or \"500ms\"", text.as_str())
        });
    }
    Err(format!("expected a duration like \"30s\", not {}", value.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration(&Dynamic::from("1m30s")), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(&Dynamic::from(2_i64)), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration(&Dynamic::from(0.5_f64)), Ok(Duration::from_millis(500)));
        assert!(parse_duration(&Dynamic::from("soon")).unwrap_err().contains("not a duration"));
    }

    #[test]
    fn rejects_unknown_option() {
        let mut m = Map::new();
        m.insert("retry".into(), Dynamic::from(1_i64));
        let err = StepOptions::from_map(&m).err().unwrap();
        assert!(err.contains("unknown step option `retry`"), "{err}");
    }
}
