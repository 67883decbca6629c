//! The bundled standard library: `stdlib/*.rhai`, compiled into the binary
//! and imported as `capstan/NAME`.

/// `(import path, source)` for every bundled module.
pub const MODULES: &[(&str, &str)] = &[("capstan/semver", include_str!("../../stdlib/semver.rhai"))];

/// The source of a bundled module, by import path.
pub fn source(path: &str) -> Option<&'static str> {
    MODULES.iter().find(|(name, _)| *name == path).map(|(_, src)| *src)
}
