//! Step and phase options from the script's `#{ ... }` map, checked
//! strictly: an unknown key is an error naming the keys that exist.

use std::fmt;
use std::time::Duration;

use rhai::{Dynamic, FnPtr, Map};

// One field per key of the script's map, several of them yes/no switches.
#[allow(clippy::struct_excessive_bools)]
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
    /// The step prepares the workspace (a tool's working folder, a cache):
    /// a resumed run in another CI job runs it again instead of replaying
    /// its recorded value, since what it left on disk is not there.
    pub every_job: bool,
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
            every_job: false,
        }
    }
}

pub const STEP_OPTION_KEYS: &[&str] =
    &["retries", "retry_delay", "timeout", "allow_failure", "when", "undo", "detach", "every_job"];

pub const PHASE_OPTION_KEYS: &[&str] = &["artifacts", "check"];

/// What `phase(name, #{ ... }, || ...)` declares about a phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseOptions {
    /// Files and folders the phase leaves in the workspace for later phases
    /// (a saved plan, a build output), relative to the playbook's folder;
    /// `capstan ci` carries them from job to job. Globs are allowed.
    pub artifacts: Vec<String>,
    /// An independent check (lint, unit tests, a scan): `capstan ci` runs
    /// each check phase as a job of its own, all at once, before the others.
    pub check: bool,
}

impl PhaseOptions {
    pub fn from_map(map: &Map) -> Result<Self, PhaseOptionError> {
        let mut o = Self::default();
        for (key, value) in map {
            match key.as_str() {
                "artifacts" => {
                    let paths = value
                        .read_lock::<rhai::Array>()
                        .map(|a| a.clone())
                        .ok_or_else(|| PhaseOptionError::NotPaths { got: value.type_name().to_string() })?;
                    for path in paths {
                        let text = path
                            .into_immutable_string()
                            .map_err(|t| PhaseOptionError::NotPaths { got: format!("a list holding a {t}") })?;
                        check_artifact(&text)?;
                        o.artifacts.push(text.to_string());
                    }
                }
                "check" => {
                    o.check = value
                        .as_bool()
                        .map_err(|t| PhaseOptionError::NotBool { option: "check", got: t.to_string() })?;
                }
                other => return Err(PhaseOptionError::Unknown { option: other.to_string() }),
            }
        }
        Ok(o)
    }
}

/// A phase option a phase cannot take.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseOptionError {
    /// `artifacts` is not a list of paths: it `got` this.
    NotPaths { got: String },
    /// An artifact path outside the checkout (absolute, `~`, empty).
    NotRelative { path: String },
    /// An artifact path CI platforms cannot take (a line break or a comma).
    Unusable { path: String },
    /// A yes-or-no option that is not `true` or `false`.
    NotBool { option: &'static str, got: String },
    /// No phase option has this name.
    Unknown { option: String },
}

impl fmt::Display for PhaseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhaseOptionError::NotPaths { got } => write!(f, "phase option `artifacts` must be a list of paths, not {got}"),
            PhaseOptionError::NotRelative { path } => write!(
                f,
                "artifact `{path}` must be a path relative to the playbook's folder (CI platforms keep only files inside the checkout)"
            ),
            PhaseOptionError::Unusable { path } => {
                write!(f, "artifact `{path}` holds a line break or a comma, which CI platforms cannot take in a path")
            }
            PhaseOptionError::NotBool { option, got } => {
                write!(f, "phase option `{option}` must be true or false, not {got}")
            }
            PhaseOptionError::Unknown { option } => {
                write!(f, "unknown phase option `{option}`; the options are: {}", PHASE_OPTION_KEYS.join(", "))
            }
        }
    }
}

impl std::error::Error for PhaseOptionError {}

/// An artifact path is relative and stays inside the playbook's folder's
/// repository: a CI platform stores only paths inside the checkout.
fn check_artifact(path: &str) -> Result<(), PhaseOptionError> {
    let p = std::path::Path::new(path);
    if path.trim().is_empty() || p.is_absolute() || path.starts_with('~') {
        return Err(PhaseOptionError::NotRelative { path: path.to_string() });
    }
    if path.contains(['\n', '\r', ',']) {
        return Err(PhaseOptionError::Unusable { path: path.to_string() });
    }
    Ok(())
}

/// A step option a step cannot take.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOptionError {
    /// `option` is not `expected`: it `got` a value of another type or range.
    Expected { option: &'static str, expected: &'static str, got: String },
    /// `option` is not a duration.
    Duration { option: &'static str, source: DurationError },
    /// No step option has this name.
    Unknown { option: String },
}

impl fmt::Display for StepOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOptionError::Expected { option, expected, got } => {
                write!(f, "step option `{option}` must be {expected}, not {got}")
            }
            StepOptionError::Duration { option, source } => write!(f, "step option `{option}`: {source}"),
            StepOptionError::Unknown { option } => {
                write!(f, "unknown step option `{option}`; the options are: {}", STEP_OPTION_KEYS.join(", "))
            }
        }
    }
}

impl std::error::Error for StepOptionError {}

/// A script value that is not a duration.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationError {
    Negative(i64),
    NotSeconds(f64),
    /// Text humantime cannot read, and why.
    Unreadable {
        text: String,
        reason: String,
    },
    /// A value of another type (its type name).
    NotADuration(&'static str),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Negative(secs) => write!(f, "{secs} is negative"),
            DurationError::NotSeconds(secs) => write!(f, "{secs} is not a valid number of seconds"),
            DurationError::Unreadable { text, reason } => {
                write!(f, "\"{text}\" is not a duration ({reason}); write it like \"30s\", \"5m\" or \"500ms\"")
            }
            DurationError::NotADuration(type_name) => write!(f, "expected a duration like \"30s\", not {type_name}"),
        }
    }
}

impl std::error::Error for DurationError {}

impl StepOptions {
    pub fn from_map(map: &Map) -> Result<Self, StepOptionError> {
        let mut o = Self::default();
        for (key, value) in map {
            match key.as_str() {
                "retries" => {
                    let expected =
                        |expected, got: String| StepOptionError::Expected { option: "retries", expected, got };
                    let n = value.as_int().map_err(|t| expected("an integer", t.to_string()))?;
                    o.retries = u32::try_from(n).map_err(|_| expected("0 or more", n.to_string()))?;
                }
                "retry_delay" => o.retry_delay = duration_option("retry_delay", value)?,
                "timeout" => o.timeout = Some(duration_option("timeout", value)?),
                "allow_failure" => o.allow_failure = bool_option("allow_failure", value)?,
                "when" => o.when = bool_option("when", value)?,
                "detach" => o.detach = bool_option("detach", value)?,
                "every_job" => o.every_job = bool_option("every_job", value)?,
                "undo" => {
                    o.undo = Some(value.clone().try_cast::<FnPtr>().ok_or_else(|| StepOptionError::Expected {
                        option: "undo",
                        expected: "a closure like `|| ...`",
                        got: value.type_name().to_string(),
                    })?);
                }
                other => return Err(StepOptionError::Unknown { option: other.to_string() }),
            }
        }
        Ok(o)
    }
}

fn bool_option(option: &'static str, value: &Dynamic) -> Result<bool, StepOptionError> {
    value.as_bool().map_err(|t| StepOptionError::Expected { option, expected: "true or false", got: t.to_string() })
}

fn duration_option(option: &'static str, value: &Dynamic) -> Result<Duration, StepOptionError> {
    parse_duration(value).map_err(|source| StepOptionError::Duration { option, source })
}

/// A duration from a script value: `"1m30s"`, `"500ms"`, or a number of seconds.
pub fn parse_duration(value: &Dynamic) -> Result<Duration, DurationError> {
    if let Ok(secs) = value.as_int() {
        return u64::try_from(secs).map(Duration::from_secs).map_err(|_| DurationError::Negative(secs));
    }
    if let Ok(secs) = value.as_float() {
        return Duration::try_from_secs_f64(secs).map_err(|_| DurationError::NotSeconds(secs));
    }
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return humantime::parse_duration(text.trim())
            .map_err(|e| DurationError::Unreadable { text: text.to_string(), reason: e.to_string() });
    }
    Err(DurationError::NotADuration(value.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration(&Dynamic::from("1m30s")), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(&Dynamic::from(2_i64)), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration(&Dynamic::from(0.5_f64)), Ok(Duration::from_millis(500)));
        assert!(parse_duration(&Dynamic::from("soon")).unwrap_err().to_string().contains("not a duration"));
    }

    #[test]
    fn rejects_unknown_option() {
        let mut m = Map::new();
        m.insert("retry".into(), Dynamic::from(1_i64));
        let err = StepOptions::from_map(&m).err().unwrap().to_string();
        assert!(err.contains("unknown step option `retry`"), "{err}");
    }

    #[test]
    fn phase_artifacts_are_relative_paths() {
        let map = |v: Dynamic| Map::from([("artifacts".into(), v)]);
        let ok = PhaseOptions::from_map(&map(Dynamic::from_array(vec!["infra/capstan.tfplan".into()]))).unwrap();
        assert_eq!(ok.artifacts, ["infra/capstan.tfplan"]);
        for bad in ["/tmp/x", "~/x", ""] {
            let err = PhaseOptions::from_map(&map(Dynamic::from_array(vec![bad.into()]))).unwrap_err().to_string();
            assert!(err.contains("relative"), "{err}");
        }
        let err = PhaseOptions::from_map(&map(Dynamic::from("x"))).unwrap_err().to_string();
        assert!(err.contains("must be a list of paths"), "{err}");
        let err = PhaseOptions::from_map(&Map::from([("artifact".into(), Dynamic::UNIT)])).unwrap_err().to_string();
        assert!(err.contains("unknown phase option `artifact`; the options are: artifacts, check"), "{err}");
    }

    #[test]
    fn phase_check_is_true_or_false() {
        let map = |v: Dynamic| Map::from([("check".into(), v)]);
        assert!(PhaseOptions::from_map(&map(Dynamic::TRUE)).unwrap().check);
        assert!(!PhaseOptions::from_map(&Map::new()).unwrap().check);
        let err = PhaseOptions::from_map(&map(Dynamic::from("yes"))).unwrap_err().to_string();
        assert!(err.contains("phase option `check` must be true or false, not string"), "{err}");
    }
}
