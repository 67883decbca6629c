//! Which primitives change the world. The one list: `--dry-run` must keep
//! their result shape (`capstan doc --json` reports it and a test holds
//! every entry to it), and a call to one at the top level of a playbook is
//! refused (the top level declares; phases deploy). A primitive that is
//! not listed only reads.

/// What calling a primitive does to the world outside capstan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only; runs under `--dry-run` and at the top level.
    ReadOnly,
    /// Changes something; skipped under `--dry-run`.
    Mutating,
    /// Changes something unless its options map sets this flag to `true`
    /// (`run(argv, #{ read_only: true })`).
    MutatingUnless(&'static str),
    /// Reads only unless its options map sets this flag to `true`
    /// (`terraform::fmt(dir, #{ write: true })`).
    MutatingWith(&'static str),
}

impl Effect {
    /// As `capstan doc --json` shows it.
    pub fn describe(self) -> String {
        match self {
            Self::ReadOnly => "read-only".into(),
            Self::Mutating => "mutating".into(),
            Self::MutatingUnless(flag) => format!("mutating unless {flag}: true"),
            Self::MutatingWith(flag) => format!("mutating with {flag}: true"),
        }
    }

    /// The option that decides, for the effects that depend on one.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Self::MutatingUnless(flag) | Self::MutatingWith(flag) => Some(flag),
            Self::ReadOnly | Self::Mutating => None,
        }
    }

    /// Whether a call mutates, given the value of its deciding flag when
    /// known (`None`: not given, or computed at run time). A flag that
    /// cannot be read counts against the call: it may mutate.
    pub fn mutates(self, flag: Option<bool>) -> bool {
        match self {
            Self::ReadOnly => false,
            Self::Mutating => true,
            Self::MutatingUnless(_) => flag != Some(true),
            Self::MutatingWith(_) => flag == Some(true),
        }
    }
}

use Effect::{Mutating, MutatingUnless, MutatingWith};

/// Every primitive that can change the world, by its script name.
pub const MUTATING: &[(&str, Effect)] = &[
    ("run", MutatingUnless("read_only")),
    ("sh", MutatingUnless("read_only")),
    ("fs::write", Mutating),
    ("report::write", Mutating),
    ("compliance::sarif", Mutating),
    ("notify::webhook", Mutating),
    ("notify::slack", Mutating),
    ("terraform::apply", Mutating),
    ("terraform::scaffold", Mutating),
    ("terraform::fmt", MutatingWith("write")),
    ("traffic::haproxy", Mutating),
    ("traffic::nginx", Mutating),
    ("traffic::ingress_nginx", Mutating),
    ("kubectl::apply", Mutating),
    ("kubectl::set_image", Mutating),
    ("kubectl::patch", Mutating),
    ("kubectl::annotate", Mutating),
    ("kubectl::rollout_undo", Mutating),
    ("helm::upgrade", Mutating),
    ("helm::rollback", Mutating),
    ("helm::package_chart", Mutating),
    ("helm::push", Mutating),
    ("docker::build", Mutating),
    ("docker::tag", Mutating),
    ("docker::push", Mutating),
    ("docker::run", Mutating),
    ("docker::stop", Mutating),
    ("docker::rm", Mutating),
    ("ssh::run", MutatingUnless("read_only")),
    ("ssh::copy", Mutating),
];

/// The effect of the primitive called `name` (`helm::upgrade`, `run`).
pub fn effect(name: &str) -> Effect {
    MUTATING.iter().find(|(n, _)| *n == name).map_or(Effect::ReadOnly, |(_, e)| *e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deciding_flag_is_read_in_the_right_direction() {
        assert!(effect("run").mutates(None));
        assert!(!effect("run").mutates(Some(true)));
        assert!(!effect("terraform::fmt").mutates(None));
        assert!(effect("terraform::fmt").mutates(Some(true)));
        assert!(!effect("fs::read").mutates(None));
    }
}
