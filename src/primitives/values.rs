//! Reading option values from script maps: the shapes several namespaces
//! share. Each caller words its own error.

use rhai::{Array, Dynamic, Map};

/// An array of strings; with `single_ok`, a lone string counts as a list of one.
pub fn list(v: &Dynamic, single_ok: bool) -> Option<Vec<String>> {
    if single_ok && v.is_string() {
        return Some(vec![v.to_string()]);
    }
    v.read_lock::<Array>().map(|a| a.iter().map(ToString::to_string).collect())
}

/// A map as `(key, value)` pairs, each value rendered by `render`.
pub fn pairs(v: &Dynamic, render: impl Fn(&Dynamic) -> String) -> Option<Vec<(String, String)>> {
    v.read_lock::<Map>().map(|m| m.iter().map(|(k, v)| (k.to_string(), render(v))).collect())
}
