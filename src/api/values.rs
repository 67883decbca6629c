//! Values between scripts and Rust: the option shapes several namespaces
//! share, and result structs turned into maps.

use rhai::{Array, Dynamic, Map};

/// An array of strings; with `single_ok`, a lone string counts as a list of one.
pub fn list(v: &Dynamic, single_ok: bool) -> Option<Vec<String>> {
    if single_ok && v.is_string() {
        return Some(vec![v.to_string()]);
    }
    v.read_lock::<Array>().map(|a| a.iter().map(ToString::to_string).collect())
}

/// A result struct as the object map a script reads (`r.code`, `r.stdout`).
pub fn to_map(value: &impl serde::Serialize) -> crate::failure::RhaiResultOf<Map> {
    let value = rhai::serde::to_dynamic(value)?;
    let found = value.type_name();
    value.try_cast::<Map>().ok_or_else(|| format!("a result must be a map, not {found}").into())
}
