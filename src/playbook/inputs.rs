//! Params given on the command line or in a params file, and the params a
//! playbook declares.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rhai::Dynamic;
use serde::Serialize;

/// A `param(...)` call the playbook made.
#[derive(Debug, Clone, Serialize)]
pub struct ParamDecl {
    pub name: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

/// Whether a param names where a run deploys to (`env`, `region`,
/// `prod_env`...): runs of one playbook with different values of these are
/// different environments, for CI concurrency groups and delivery statistics.
pub fn is_environment_param(name: &str) -> bool {
    const NAMES: &[&str] =
        &["env", "environment", "stage", "target", "region", "cluster", "namespace", "workspace", "tenant"];
    let name = name.to_ascii_lowercase();
    NAMES.contains(&name.as_str()) || name.ends_with("_env") || name.ends_with("_environment")
}

/// Params that cannot be read, or a value that does not fit its param.
#[derive(Debug)]
pub enum ParamsError {
    /// The params file cannot be read (or is not text).
    Read { file: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    /// The params file is not JSON or YAML; the parser's words.
    Syntax { file: PathBuf, message: String },
    /// The params file holds something other than a map.
    NotAMap { file: PathBuf },
    /// A `--param` without `=`.
    NotAPair { pair: String },
    /// A `--param` with nothing before `=`.
    EmptyName { pair: String },
    /// A value that is not of its default's type: `expected` is `an
    /// integer`..., `given` the value as said in the message, `source` the
    /// params file (or resumed run) it came from.
    Mismatch { name: String, source: Option<String>, expected: &'static str, default: String, given: String },
    /// A params file's value that has no script form.
    Value { name: String, source: String, message: String },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamsError::Read { file, source } => write!(f, "cannot read params file {}: {source}", file.display()),
            ParamsError::Syntax { file, message } => write!(f, "{}: {message}", file.display()),
            ParamsError::NotAMap { file } => write!(f, "params file {} must hold a map of name: value", file.display()),
            ParamsError::NotAPair { pair } => write!(f, "--param {pair}: expected NAME=VALUE"),
            ParamsError::EmptyName { pair } => write!(f, "--param {pair}: the name is empty"),
            ParamsError::Mismatch { name, source, expected, default, given } => {
                let from = source.as_ref().map(|s| format!(" in {s}")).unwrap_or_default();
                write!(f, "param `{name}`{from} expects {expected} (its default is {default}), got {given}")
            }
            ParamsError::Value { name, source, message } => write!(f, "param `{name}` in {source}: {message}"),
        }
    }
}

impl std::error::Error for ParamsError {}

/// Values for params: `--params-file` first, `--param K=V` on top.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    values: BTreeMap<String, Given>,
}

#[derive(Debug, Clone)]
enum Given {
    /// From `--param`: text, converted to the default's type.
    Text(String),
    /// From a params file (named here) or a resumed run's record: typed,
    /// and checked against the default's type.
    Typed(serde_json::Value, std::sync::Arc<str>),
}

impl Inputs {
    pub fn load(file: Option<&Path>, pairs: &[String]) -> Result<Self, ParamsError> {
        let mut values = BTreeMap::new();
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| ParamsError::Read { file: file.to_path_buf(), source: Box::new(e) })?;
            values = Self::parse_params_file(file, &text)?.values;
        }
        for pair in pairs {
            let (k, v) = pair.split_once('=').ok_or_else(|| ParamsError::NotAPair { pair: pair.clone() })?;
            if k.is_empty() {
                return Err(ParamsError::EmptyName { pair: pair.clone() });
            }
            values.insert(k.to_string(), Given::Text(v.to_string()));
        }
        Ok(Self { values })
    }

    /// The params a params file holds: JSON when `file` ends in `.json`,
    /// YAML (a superset of JSON) otherwise. `file` names it in errors.
    pub fn parse_params_file(file: &Path, text: &str) -> Result<Self, ParamsError> {
        let syntax = |message: String| ParamsError::Syntax { file: file.to_path_buf(), message };
        let doc: serde_json::Value = if file.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| syntax(e.to_string()))?
        };
        let serde_json::Value::Object(map) = doc else {
            return Err(ParamsError::NotAMap { file: file.to_path_buf() });
        };
        let source: std::sync::Arc<str> = file.display().to_string().into();
        Ok(Self { values: map.into_iter().map(|(k, v)| (k, Given::Typed(v, source.clone()))).collect() })
    }

    /// The params as given, for the journal: text stays text.
    pub fn to_json(&self) -> serde_json::Value {
        self.values
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Given::Text(t) => serde_json::Value::String(t.clone()),
                    Given::Typed(v, _) => v.clone(),
                };
                (k.clone(), v)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// Params recorded by an earlier attempt of the run, under the ones given now.
    #[must_use]
    pub fn with_recorded(mut self, recorded: &serde_json::Value) -> Self {
        if let serde_json::Value::Object(map) = recorded {
            let source: std::sync::Arc<str> = "the resumed run's params".into();
            for (k, v) in map {
                let given = match v {
                    serde_json::Value::String(s) => Given::Text(s.clone()),
                    other => Given::Typed(other.clone(), source.clone()),
                };
                self.values.entry(k.clone()).or_insert(given);
            }
        }
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The value for `name`, shaped like `default` when one is given.
    pub fn get(&self, name: &str, default: Option<&Dynamic>) -> Result<Option<Dynamic>, ParamsError> {
        let Some(given) = self.values.get(name) else { return Ok(None) };
        match given {
            Given::Typed(v, source) => typed(name, v, source, default).map(Some),
            Given::Text(text) => convert(name, text, default).map(Some),
        }
    }
}

/// A params file's value, checked against the default's type like `--param`
/// text is: an integer where a number is expected is fine; a string where an
/// integer is expected is not (`"3" + 1` would be `"31"`). A string default
/// takes any scalar, as its text (`version: 1.2` in YAML).
fn typed(
    name: &str,
    value: &serde_json::Value,
    source: &str,
    default: Option<&Dynamic>,
) -> Result<Dynamic, ParamsError> {
    use serde_json::Value as J;
    let to_dynamic = |v: &J| {
        rhai::serde::to_dynamic(v).map_err(|e| ParamsError::Value {
            name: name.into(),
            source: source.into(),
            message: e.to_string(),
        })
    };
    let Some(default) = default.filter(|d| !d.is_unit()) else { return to_dynamic(value) };
    let given = match value {
        J::Null => "null".to_string(),
        J::Bool(b) => format!("the bool {b}"),
        J::Number(n) if n.is_i64() || n.is_u64() => format!("the integer {n}"),
        J::Number(n) => format!("the number {n}"),
        J::String(s) => format!("the string {s:?}"),
        J::Array(_) => "a list".to_string(),
        J::Object(_) => "a map".to_string(),
    };
    let bad = |expected: &'static str| ParamsError::Mismatch {
        name: name.into(),
        source: Some(source.into()),
        expected,
        default: default.to_string(),
        given: given.clone(),
    };
    if default.is_int() {
        value.as_i64().map(Dynamic::from).ok_or_else(|| bad("an integer"))
    } else if default.is_float() {
        value.as_f64().map(Dynamic::from).ok_or_else(|| bad("a number"))
    } else if default.is_bool() {
        value.as_bool().map(Dynamic::from).ok_or_else(|| bad("true or false"))
    } else if default.is_string() {
        match value {
            J::String(s) => Ok(s.clone().into()),
            J::Bool(_) | J::Number(_) => Ok(value.to_string().into()),
            _ => Err(bad("a string")),
        }
    } else if default.is_array() {
        if value.is_array() {
            to_dynamic(value)
        } else {
            Err(bad("a list"))
        }
    } else if default.is_map() {
        if value.is_object() {
            to_dynamic(value)
        } else {
            Err(bad("a map"))
        }
    } else {
        to_dynamic(value)
    }
}

fn convert(name: &str, text: &str, default: Option<&Dynamic>) -> Result<Dynamic, ParamsError> {
    let Some(default) = default else { return Ok(text.into()) };
    let bad = |expected: &'static str| ParamsError::Mismatch {
        name: name.into(),
        source: None,
        expected,
        default: default.to_string(),
        given: format!("\"{text}\""),
    };
    if default.is_int() {
        text.trim().parse::<i64>().map(Dynamic::from).map_err(|_| bad("an integer"))
    } else if default.is_float() {
        text.trim().parse::<f64>().map(Dynamic::from).map_err(|_| bad("a number"))
    } else if default.is_bool() {
        match text.trim() {
            "true" | "yes" | "1" => Ok(true.into()),
            "false" | "no" | "0" => Ok(false.into()),
            _ => Err(bad("true or false")),
        }
    } else {
        Ok(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_params_follow_the_default_type() {
        let inputs = Inputs::load(None, &["n=3".into(), "b=yes".into(), "s=x=y".into()]).unwrap();
        assert_eq!(inputs.get("n", Some(&Dynamic::from(1_i64))).unwrap().unwrap().as_int(), Ok(3));
        assert_eq!(inputs.get("b", Some(&Dynamic::FALSE)).unwrap().unwrap().as_bool(), Ok(true));
        assert_eq!(inputs.get("s", None).unwrap().unwrap().into_string().unwrap(), "x=y");
        assert!(inputs.get("n", Some(&Dynamic::FALSE)).is_err());
        assert!(inputs.get("missing", None).unwrap().is_none());
    }

    #[test]
    fn params_file_values_follow_the_default_type() {
        let file = Path::new("params.yaml");
        let inputs = Inputs::parse_params_file(
            file,
            "replicas: \"3\"\nratio: 2\nhalf: 3.5\nflag: \"yes\"\nversion: 1.2\nlist: [1]\n",
        )
        .unwrap();
        let err = inputs.get("replicas", Some(&Dynamic::from(2_i64))).unwrap_err().to_string();
        assert_eq!(err, "param `replicas` in params.yaml expects an integer (its default is 2), got the string \"3\"");
        assert!(inputs
            .get("half", Some(&Dynamic::from(2_i64)))
            .unwrap_err()
            .to_string()
            .contains("got the number 3.5"));
        assert!(inputs.get("flag", Some(&Dynamic::FALSE)).unwrap_err().to_string().contains("expects true or false"));
        assert_eq!(inputs.get("ratio", Some(&Dynamic::from(0.5_f64))).unwrap().unwrap().as_float(), Ok(2.0));
        assert_eq!(inputs.get("version", Some(&Dynamic::from("1.0"))).unwrap().unwrap().into_string().unwrap(), "1.2");
        assert!(inputs.get("list", Some(&Dynamic::from("x"))).unwrap_err().to_string().contains("expects a string"));
        assert!(inputs.get("list", None).unwrap().unwrap().is_array());
    }
}
