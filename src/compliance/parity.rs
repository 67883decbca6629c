//! Environment parity: staging must mirror production apart from size.
//! Two configurations (tfvars, helm values in YAML or JSON, manifests) are
//! flattened to dotted paths and compared; differences in declared size
//! keys (replicas, instance types, resources...) are reported as ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Keys that may differ between environments by design.
pub const SIZE_KEYS: &[&str] = &[
    "replicas",
    "replica_count",
    "replicaCount",
    "instance_type",
    "instance_count",
    "node_count",
    "min_size",
    "max_size",
    "desired_size",
    "desired_capacity",
    "*.resources.*",
    "*.autoscaling.*",
    "storage_gb",
    "disk_size",
    "allocated_storage",
];

/// A configuration file that cannot be read or parsed.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Not JSON or YAML; the parser's words.
    Syntax {
        path: std::path::PathBuf,
        message: String,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            LoadError::Syntax { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// One configuration as a flat map of `a.b.c` to value.
pub fn load(path: &Path) -> Result<BTreeMap<String, Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let syntax = |e: &dyn std::fmt::Display| LoadError::Syntax { path: path.to_path_buf(), message: e.to_string() };
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let value = match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| syntax(&e))?,
        "tfvars" | "tf" | "hcl" => tfvars(&text),
        _ => {
            // YAML, possibly several documents (manifests): keyed by kind/name.
            let mut docs = Vec::new();
            for d in serde_yaml_ng::Deserializer::from_str(&text) {
                let v: Value = serde::Deserialize::deserialize(d).map_err(|e| syntax(&e))?;
                if !v.is_null() {
                    docs.push(v);
                }
            }
            if docs.len() == 1 {
                docs.remove(0)
            } else {
                let mut m = serde_json::Map::new();
                for d in docs {
                    let key = format!(
                        "{}/{}",
                        d["kind"].as_str().unwrap_or("doc"),
                        d["metadata"]["name"].as_str().unwrap_or("?")
                    );
                    m.insert(key, d);
                }
                Value::Object(m)
            }
        }
    };
    let mut flat = BTreeMap::new();
    flatten("", &value, &mut flat);
    Ok(flat)
}

/// `key = value` lines of a tfvars file; values that are not plain are kept as text.
fn tfvars(text: &str) -> Value {
    let mut m = serde_json::Map::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((k, v)) = line.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.contains(' ') {
            continue;
        }
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.trim_matches('"').to_string()));
        m.insert(k.to_string(), value);
    }
    Value::Object(m)
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Does a dotted path match a size key? `replicas` matches any path ending in
/// `.replicas`; `*.resources.*` matches anything under a `resources` key.
pub fn matches(path: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let pat: Vec<&str> = pattern.split('.').collect();
    if !pattern.contains('*') {
        return parts.last() == Some(&pattern) || path == pattern;
    }
    let core: Vec<&str> = pat.iter().filter(|p| **p != "*").copied().collect();
    parts.windows(core.len()).any(|w| w == core.as_slice())
}

pub struct Difference {
    pub path: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
    pub ignored: bool,
}

pub fn compare(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>, ignore: &[String]) -> Vec<Difference> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Difference {
            path: k.clone(),
            a: a.get(k).cloned(),
            b: b.get(k).cloned(),
            ignored: ignore.iter().any(|p| matches(k, p)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_patterns() {
        assert!(matches("app.replicas", "replicas"));
        assert!(matches("web.resources.limits.cpu", "*.resources.*"));
        assert!(!matches("app.image.tag", "replicas"));
    }
}
