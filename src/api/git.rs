//! `git::`: what a release playbook asks of the repository. Read-only: they
//! run under `--dry-run` too, quietly.

use std::sync::Arc;

use rhai::{Array, Dynamic};
use serde::Deserialize;

use super::registration::{docs, Api};
use crate::events::EventKind;
use crate::failure::{failure_with_hint, terminated, FailureKind, RhaiResultOf};
use crate::process::{self, CommandSpec, ProcessError};
use crate::services::{frame, Services};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct GitOptions {
    /// The repository to ask (the current folder by default).
    dir: Option<String>,
}

fn git(services: &Services, args: &[&str], options: &GitOptions) -> RhaiResultOf<String> {
    let mut spec = CommandSpec::new("git", args.iter().map(|s| (*s).to_string()).collect());
    spec.quiet = true;
    spec.cwd = options.dir.clone().map(Into::into);
    let outcome = match process::execute(services, &spec) {
        Ok(o) => o,
        Err(ProcessError::Interrupted(reason)) => return Err(terminated(reason)),
        Err(e) => {
            return Err(failure_with_hint(
                FailureKind::Command,
                e.to_string(),
                "install git, or run capstan inside a repository",
            ))
        }
    };
    if !outcome.success() {
        return Err(failure_with_hint(
            FailureKind::Command,
            format!("`{}` failed: {}", spec.display(), outcome.stderr.trim()),
            "run it inside a git repository (or pass `#{ dir: ... }`)",
        ));
    }
    Ok(outcome.stdout.trim_end().to_string())
}

/// The commit checked out, recorded for `capstan stats`: a quiet
/// `git_commit` event with the sha and the committer time, from which the
/// lead time of a deployment (commit to the run's end) is measured. One
/// `git log` gives both, so recording costs no second process.
fn sha(services: &Services, options: &GitOptions) -> RhaiResultOf<String> {
    let out = git(services, &["log", "-1", "--no-show-signature", "--format=%H %ct", "HEAD"], options)?;
    let mut words = out.split_whitespace();
    let sha = words.next().unwrap_or_default().to_string();
    let committed = words.next().and_then(|t| t.parse::<u64>().ok());
    if let Some(secs) = committed {
        let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        let data = serde_json::json!({ "sha": sha, "committed_at": at.to_string() });
        services.emit_for_journal(EventKind::User {
            at: frame::location(),
            kind: "git_commit".into(),
            data,
            quiet: true,
        });
    }
    Ok(sha)
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts0(
        "sha",
        &["String"],
        docs! {
            /// The commit checked out (the sha of HEAD). Option: `dir`. The run
            /// records the commit and its committer time (a `git_commit` event),
            /// which `capstan stats` reads as the start of the lead time.
            /// ```rhai
            /// let sha = git::sha();
            /// ```
        },
        |svc, o: GitOptions| sha(svc, &o),
    );
    api.opts0(
        "branch",
        &["String"],
        docs! {
            /// The branch checked out (`HEAD` when detached). Option: `dir`.
            /// ```rhai
            /// if git::branch() != "main" { fail("deploy from main"); }
            /// ```
        },
        |svc, o: GitOptions| git(svc, &["rev-parse", "--abbrev-ref", "HEAD"], &o),
    );
    api.func0(
        "dirty",
        &["bool"],
        docs! {
            /// True when the work tree has uncommitted changes.
            /// ```rhai
            /// gate("clean work tree", !git::dirty());
            /// ```
        },
        |svc| git(svc, &["status", "--porcelain"], &GitOptions::default()).map(|o| !o.is_empty()),
    );
    api.func1(
        "changed_files",
        &["base: &str", "Array"],
        docs! {
            /// Files changed between `base` and HEAD (`git diff --name-only base...HEAD`).
            /// ```rhai
            /// let infra = git::changed_files("origin/main").filter(|f| f.starts_with("infra/"));
            /// ```
        },
        |svc, base: rhai::ImmutableString| -> RhaiResultOf<Array> {
            let range = format!("{base}...HEAD");
            let out = git(svc, &["diff", "--name-only", &range], &GitOptions::default())?;
            Ok(out.lines().filter(|l| !l.is_empty()).map(|l| Dynamic::from(l.to_string())).collect())
        },
    );
}
