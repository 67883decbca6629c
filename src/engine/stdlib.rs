//! The bundled standard library: `stdlib/*.rhai`, compiled into the binary
//! and imported as `capstan/NAME`.

/// `(import path, source)` for every bundled module.
pub const MODULES: &[(&str, &str)] = &[
    ("capstan/blue_green", include_str!("../../stdlib/blue_green.rhai")),
    ("capstan/canary", include_str!("../../stdlib/canary.rhai")),
    ("capstan/fleet", include_str!("../../stdlib/fleet.rhai")),
    ("capstan/gates", include_str!("../../stdlib/gates.rhai")),
    ("capstan/rolling", include_str!("../../stdlib/rolling.rhai")),
    ("capstan/semver", include_str!("../../stdlib/semver.rhai")),
];

/// The source of a bundled module, by import path.
pub fn source(path: &str) -> Option<&'static str> {
    MODULES.iter().find(|(name, _)| *name == path).map(|(_, src)| *src)
}
