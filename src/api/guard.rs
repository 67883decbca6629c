//! `lock(name)` and `approve(name, message)`: what keeps two deploys of
//! one environment apart, and a person in the loop where the playbook asks.

use std::io::{BufRead, Write};
use std::sync::Arc;

use rhai::{Engine, ImmutableString as Str};

use super::registration::{docs, Api};
use crate::events::{EventKind, Level};
use crate::failure::{failure_with_hint, FailureKind, RhaiResultOf};
use crate::lock::{acquire, check_name, LockError};
use crate::services::frame;
use crate::state::RunState;

/// Take a lock for the run, or say who holds it (exit 3). With
/// `--lock-wait` a held lock is waited for, in line where the store keeps one.
pub fn take(state: &RunState, name: &str) -> RhaiResultOf<()> {
    if state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|g| g.name() == name) {
        return Ok(());
    }
    if state.services.dry_run() {
        state.services.log(Level::Info, format!("would take lock `{name}`"));
        return Ok(());
    }
    check_name(name).map_err(|e| refusal(name, e))?;
    let services = &state.services;
    let deadline = state.settings.lock_wait.map(|w| std::time::Instant::now() + w);
    let mut told = String::new();
    loop {
        let attempt = match &state.settings.store {
            Some(store) => take_lease(state, store, name, deadline.is_some()),
            None => acquire(&state.settings.lock_dir, name, services.run_id())
                .map(|(guard, previous)| {
                    if let Some(old) = previous {
                        services.log(Level::Warn, format!("took over lock `{name}` from {old}: that process is gone"));
                    } else {
                        services.log(Level::Debug, format!("lock `{name}` taken"));
                    }
                    guard
                })
                .map_err(Waiting::from),
        };
        let (holder, position) = match attempt {
            Ok(guard) => {
                state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(guard);
                return Ok(());
            }
            Err(Waiting::Held(holder, position)) => (holder, position),
            Err(Waiting::Refused(e)) => return Err(refusal(name, e)),
        };
        let who = holder.map_or_else(|| "runs that asked earlier".to_string(), |h| h.to_string());
        let now = std::time::Instant::now();
        match deadline {
            Some(until) if now < until && !services.cancel.was_signalled() => {
                let line = match position {
                    Some(p) => format!("waiting for lock `{name}`, held by {who} (position {p} in line)"),
                    None => format!("waiting for lock `{name}`, held by {who}"),
                };
                if line != told {
                    services.log(Level::Info, line.clone());
                    told = line;
                }
                std::thread::sleep(LOCK_POLL.min(until - now));
            }
            _ => {
                if let (Some(store), Some(_)) = (&state.settings.store, deadline) {
                    crate::store::lease::leave(&store.backend, name, services.run_id());
                }
                return Err(refusal(name, LockError::Held(None).with_who(who)));
            }
        }
    }
}

/// How often a run waiting for a lock asks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A lock not taken this time: held (by whom, at which place in line), or refused.
enum Waiting {
    Held(Option<crate::lock::Holder>, Option<i64>),
    Refused(LockError),
}

impl From<LockError> for Waiting {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Held(holder) => Waiting::Held(holder, None),
            other => Waiting::Refused(other),
        }
    }
}

fn take_lease(
    state: &RunState,
    store: &crate::store::Shared,
    name: &str,
    waiting: bool,
) -> Result<crate::lock::LockGuard, Waiting> {
    use crate::store::lease::{try_take, Refused};
    let services = &state.services;
    match try_take(&store.backend, &store.shown, name, services.run_id(), state.settings.lock_ttl, waiting) {
        Ok(taken) => {
            if let Some((old, connected)) = &taken.took_over {
                let why = match connected {
                    Some(true) => "its lease expired (it still holds its connection but stopped renewing)",
                    Some(false) => "its lease expired and its connection is gone",
                    None => "its lease expired",
                };
                services.log(Level::Warn, format!("took over lock `{name}` from {old}: {why}"));
            }
            services
                .log(Level::Debug, format!("lock `{name}` taken in {} (fencing token {})", store.shown, taken.token));
            taken.lease.watch(services.journal_health.clone());
            let mut guard = crate::lock::LockGuard::new(name, taken.lease);
            guard.token = Some(taken.token);
            Ok(guard)
        }
        // A store that keeps no line (S3) says position 0: no place to tell.
        Err(Refused::Held { holder, position }) => {
            Err(Waiting::Held(holder, waiting.then_some(position).filter(|p| *p > 0)))
        }
        Err(Refused::Store(e)) => {
            Err(Waiting::Refused(LockError::Invalid(format!("cannot take lock `{name}` in {}: {e}", store.shown))))
        }
    }
}

/// The script error of a lock not taken: held (exit 3) or not takeable (exit 2).
fn refusal(name: &str, e: LockError) -> Box<rhai::EvalAltResult> {
    match e {
        LockError::Held(holder) => {
            let who = holder.map_or_else(|| "another run".to_string(), |h| h.to_string());
            failure_with_hint(
                FailureKind::Blocked,
                format!("lock `{name}` is held by {who}"),
                "wait for that run to finish (or pass --lock-wait DUR); a lock whose holder is gone is taken over automatically",
            )
        }
        LockError::HeldBy(who) => failure_with_hint(
            FailureKind::Blocked,
            format!("lock `{name}` is held by {who}"),
            "wait for that run to finish (or pass a longer --lock-wait); a lock whose holder is gone is taken over automatically",
        ),
        LockError::Invalid(m) => failure_with_hint(FailureKind::Usage, m, "pick another lock name"),
    }
}

/// Ask for an approval: on the command line, on the terminal, or block.
pub fn approve(state: &RunState, name: &str, message: &str) -> RhaiResultOf<bool> {
    let services = &state.services;
    let settings = &state.settings;
    let gate = |passed: bool, hint: Option<String>, given: Option<(String, String)>| {
        let (by, via) = given.map_or((None, None), |(b, v)| (Some(b), Some(v)));
        services.emit(EventKind::Gate {
            at: frame::location(),
            name: format!("approval: {name}"),
            passed,
            hint,
            by,
            via,
        });
    };
    if services.dry_run() {
        services.log(Level::Info, format!("would ask for approval `{name}`: {message}"));
        return Ok(true);
    }
    if settings.approve_all || settings.approvals.iter().any(|a| a == name) {
        let how = if settings.approve_all { "--yes".to_string() } else { format!("--approve {name}") };
        let who = ci_actor().unwrap_or_else(local_user);
        services.log(Level::Info, format!("approval `{name}` given by {who} via {how}: {message}"));
        gate(true, None, Some((who, how)));
        return Ok(true);
    }
    if settings.interactive {
        let mut answer = String::new();
        let shown = services.mask(message).into_owned();
        // Marks when the wait began (the trace's approval span starts here).
        services.log(Level::Debug, format!("waiting for approval `{name}`"));
        services.bus.suspend(&mut || {
            crate::err!("? {shown}\n  approve `{name}`? [y/N] ");
            let _ = std::io::stderr().flush();
            let _ = std::io::stdin().lock().read_line(&mut answer);
        });
        let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
        let who = local_user();
        services.log(
            Level::Info,
            format!("approval `{name}` {} by {who} on the terminal", if yes { "given" } else { "refused" }),
        );
        gate(yes, None, Some((who, "terminal".into())));
        if yes {
            return Ok(true);
        }
        return Err(failure_with_hint(
            FailureKind::Blocked,
            format!("approval `{name}` was refused"),
            format!("re-run when it should go ahead, or pass --approve {name}"),
        ));
    }
    let hint = format!("re-run with --approve {name} (or --yes to give every approval)");
    gate(false, Some(hint.clone()), None);
    Err(failure_with_hint(FailureKind::Blocked, format!("approval `{name}` is needed: {message}"), hint))
}

/// The CI platform's account that started the job, where it says so:
/// `alice (GITHUB_ACTOR)`.
fn ci_actor() -> Option<String> {
    ["GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "CIRCLE_USERNAME"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()).map(|v| format!("{v} ({var})")))
}

/// The account capstan runs as, on this host: `alice@build-7`.
fn local_user() -> String {
    format!("{}@{}", crate::lock::user(), crate::lock::host())
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut api = Api::global(engine, state.clone());
    api.func1(
        "lock",
        &["name: &str", "()"],
        docs! {
            /// Take an exclusive lock for the rest of the run (like `--lock NAME`). Another run
            /// holding it stops this one with exit 3, naming the holder; a lock whose process
            /// died is taken over with a warning.
            /// ```rhai
            /// lock(`deploy-${env}`);
            /// ```
        },
        |s, name: Str| take(s, &name),
    );
    api.func2(
        "approve",
        &["name: &str", "message: &str", "bool"],
        docs! {
            /// Ask a person to approve. On a terminal capstan asks y/N; otherwise the approval
            /// must be given with `--approve NAME` or `--yes`, or the run stops with exit 3.
            /// ```rhai
            /// approve("prod", `deploy ${version} to production?`);
            /// ```
        },
        |s, name: Str, message: Str| approve(s, &name, &message),
    );
}
