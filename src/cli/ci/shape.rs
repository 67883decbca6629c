//! What the fail-fast shape asks of a playbook (checks first, no gate in
//! a check) and the dependency caches a repository's stack gets.

use std::path::Path;

use crate::cli::init::detect::{stack, Stack};
use crate::error::Error;
use crate::playbook::scan::Approvals;

/// A dependency cache: where a stack's package manager keeps what it
/// downloaded, and the lock files that say when that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// The stack's word, in cache keys: `cargo`, `npm`, `pnpm`, `pip`, `go`.
    pub name: &'static str,
    /// Lock files, from the checkout's root.
    pub lock_files: Vec<String>,
    /// Where the cache lives on a runner (GitHub, `CircleCI`): `~` paths
    /// and build output inside the checkout.
    pub paths: &'static [&'static str],
    /// On GitLab, which caches only paths inside the project: the variable
    /// that moves the cache there, with its value, and the cached folders.
    pub gitlab_env: Option<(&'static str, &'static str)>,
    pub gitlab_paths: &'static [&'static str],
}

/// The caches for the stack of the repository `capstan ci` runs in (its
/// root, where the jobs run); none for a stack without a lock file.
pub fn caches(root: &Path) -> Vec<Cache> {
    let cache = |name, lock_files: Vec<String>, paths, gitlab_env, gitlab_paths| Cache {
        name,
        lock_files,
        paths,
        gitlab_env,
        gitlab_paths,
    };
    match stack(root) {
        Some(Stack::Rust { locked: true, .. }) => vec![cache(
            "cargo",
            vec!["Cargo.lock".into()],
            &["~/.cargo/registry", "~/.cargo/git", "target"],
            Some(("CARGO_HOME", "$CI_PROJECT_DIR/.cargo")),
            &[".cargo/registry/", ".cargo/git/", "target/"],
        )],
        Some(Stack::Node { lock: Some(lock), manager, .. }) if manager == "npm" => {
            vec![cache("npm", vec![lock], &["~/.npm"], Some(("npm_config_cache", "$CI_PROJECT_DIR/.npm")), &[".npm/"])]
        }
        Some(Stack::Node { lock: Some(lock), manager, .. }) if manager == "pnpm" => vec![cache(
            "pnpm",
            vec![lock],
            &["~/.local/share/pnpm/store"],
            Some(("npm_config_store_dir", "$CI_PROJECT_DIR/.pnpm-store")),
            &[".pnpm-store/"],
        )],
        Some(Stack::Python { requirements, .. }) => {
            let locks = if root.join("poetry.lock").exists() { vec!["poetry.lock".into()] } else { requirements };
            if locks.is_empty() {
                return Vec::new();
            }
            vec![cache(
                "pip",
                locks,
                &["~/.cache/pip"],
                Some(("PIP_CACHE_DIR", "$CI_PROJECT_DIR/.cache/pip")),
                &[".cache/pip/"],
            )]
        }
        Some(Stack::Go { sum: true, .. }) => vec![cache(
            "go",
            vec!["go.sum".into()],
            &["~/go/pkg/mod"],
            Some(("GOMODCACHE", "$CI_PROJECT_DIR/.go/pkg/mod")),
            &[".go/pkg/mod/"],
        )],
        _ => Vec::new(),
    }
}

/// Checks come before every other phase: the chain resumes `--from` its
/// first phase, and a check after the build would run without it.
pub fn check_order(all: &[(String, bool)]) -> Result<(), Error> {
    if let Some(first_other) = all.iter().position(|(_, check)| !check) {
        if let Some((late, _)) = all[first_other..].iter().find(|(_, check)| *check) {
            return Err(Error::usage_with_hint(
                format!(
                    "check phase `{late}` comes after phase `{}`: checks run before the other phases, at once",
                    all[first_other].0
                ),
                "declare the phases with #{ check: true } first",
            ));
        }
    }
    Ok(())
}

/// A check cannot wait at a gate: it runs at once with the other checks.
pub fn refuse_gated(phase: &str, approvals: &Approvals) -> Result<(), Error> {
    if approvals.gated() {
        return Err(Error::usage_with_hint(
            format!("check phase `{phase}` waits for an approval: checks run at once, with no gate"),
            "move the approve(...) to a phase without `check: true`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_first() {
        let phases = |list: &[(&str, bool)]| list.iter().map(|(n, c)| ((*n).to_string(), *c)).collect::<Vec<_>>();
        assert!(check_order(&phases(&[("lint", true), ("unit", true), ("build", false), ("deploy", false)])).is_ok());
        assert!(check_order(&phases(&[("build", false)])).is_ok());
        let err = check_order(&phases(&[("lint", true), ("build", false), ("scan", true)])).unwrap_err();
        assert!(err.to_string().contains("check phase `scan` comes after phase `build`"), "{err}");
    }
}
