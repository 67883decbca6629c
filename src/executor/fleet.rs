//! `fleet::run(hosts, opts, |host| ...)`: the closure once per host, each
//! host a step of its own (`<step>/<host name>`, with its log, retries,
//! timeout and undo), `forks` hosts at a time on threads that start from
//! the caller's frames (as `parallel` branches do), in batches. Unlike
//! `parallel`, one host failing does not stop the others: `max_fail` says
//! how many may fail before no new host is started; then the hosts in
//! flight finish, the touched hosts are undone newest first, and the fleet
//! fails. A recap (per host: status, duration, first error line) is emitted
//! as the `fleet_recap` event and returned.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::classify::interruption;
use crate::events::{EventKind, Location};
use crate::failure::{error_message, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::StepOptions;
use crate::services::frame;
use crate::state::{RunState, UndoEntry};

/// Hosts at once unless `forks` says otherwise (Ansible's default is 5).
const DEFAULT_FORKS: usize = 10;
/// Threads at once, whatever `forks` asks: a bound the OS will always grant.
const MAX_THREADS: usize = 64;
/// The options `fleet::run` takes besides the per-host step's.
const OWN_OPTIONS: &[&str] = &["forks", "max_fail", "batch"];
/// The step options each host's step takes.
const STEP_OPTIONS: &[&str] = &["retries", "retry_delay", "timeout", "undo"];

/// A count of hosts, or a percentage of them.
#[derive(Debug, Clone, Copy)]
enum Share {
    Count(usize),
    Percent(u32),
}

impl Share {
    fn parse(option: &str, value: &Dynamic) -> RhaiResultOf<Self> {
        let bad = || {
            failure_with_hint(
                FailureKind::Usage,
                format!("fleet::run option `{option}` is {value}, not a count or a percentage"),
                format!("write `{option}: 2` or `{option}: \"10%\"`"),
            )
        };
        if let Ok(n) = value.as_int() {
            return usize::try_from(n).map(Share::Count).map_err(|_| bad());
        }
        let text = value.clone().into_immutable_string().map_err(|_| bad())?;
        let pct = text.trim().strip_suffix('%').and_then(|p| p.trim().parse::<u32>().ok()).ok_or_else(bad)?;
        if pct > 100 {
            return Err(bad());
        }
        Ok(Share::Percent(pct))
    }

    /// Whether `failed` of `total` hosts is more than this share allows.
    fn exceeded_by(self, failed: usize, total: usize) -> bool {
        match self {
            Share::Count(n) => failed > n,
            Share::Percent(p) => failed * 100 > p as usize * total,
        }
    }

    /// Hosts per batch: at least one.
    fn batch_size(self, total: usize) -> usize {
        match self {
            Share::Count(n) => n,
            Share::Percent(p) => (total * p as usize).div_ceil(100),
        }
        .max(1)
    }

    fn describe(self) -> String {
        match self {
            Share::Count(n) => n.to_string(),
            Share::Percent(p) => format!("{p}%"),
        }
    }
}

struct Options {
    forks: usize,
    max_fail: Share,
    batch: Option<Share>,
    step: StepOptions,
}

fn options(map: &Map) -> RhaiResultOf<Options> {
    let mut o = Options { forks: DEFAULT_FORKS, max_fail: Share::Count(0), batch: None, step: StepOptions::default() };
    let mut step = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "forks" => {
                o.forks =
                    value.as_int().ok().and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(|| {
                        failure(
                            format!("fleet::run option `forks` is {value}, not a positive integer"),
                            "write `forks: 10`",
                        )
                    })?;
            }
            "max_fail" => o.max_fail = Share::parse("max_fail", value)?,
            "batch" => o.batch = Some(Share::parse("batch", value)?),
            k if STEP_OPTIONS.contains(&k) => {
                step.insert(key.clone(), value.clone());
            }
            other => {
                return Err(failure(
                    format!("unknown fleet::run option `{other}`"),
                    format!("the options are: {}, {}", OWN_OPTIONS.join(", "), STEP_OPTIONS.join(", ")),
                ))
            }
        }
    }
    o.step = StepOptions::from_map(&step).map_err(|m| failure(m, "see `capstan doc fleet::run`"))?;
    Ok(o)
}

fn failure(message: impl std::fmt::Display, hint: impl Into<String>) -> Box<EvalAltResult> {
    failure_with_hint(FailureKind::Usage, message.to_string(), hint)
}

/// A host's name: the string itself, or the map's `name`.
fn host_name(host: &Dynamic, i: usize) -> RhaiResultOf<String> {
    let name = if let Some(map) = host.read_lock::<Map>() {
        map.get("name").and_then(|n| n.clone().into_immutable_string().ok()).map(|n| n.to_string())
    } else {
        host.clone().into_immutable_string().ok().map(|n| n.to_string())
    };
    name.filter(|n| !n.is_empty() && !n.contains('/')).ok_or_else(|| {
        failure(
            format!("fleet::run: host {i} ({}) has no usable name", host.type_name()),
            "give hosts as names (\"web1\") or maps with a `name` without '/' (#{ name: \"web1\", address: \"10.0.0.5\" })",
        )
    })
}

/// How one host ended.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Failed,
    Unreachable,
    Skipped,
    Ok,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Unreachable => "unreachable",
            Outcome::Skipped => "skipped",
            Outcome::Ok => "ok",
        }
    }
}

struct HostResult {
    outcome: Outcome,
    duration_ms: u64,
    value: Dynamic,
    error: Option<Box<EvalAltResult>>,
}

impl HostResult {
    fn skipped() -> Self {
        Self { outcome: Outcome::Skipped, duration_ms: 0, value: Dynamic::UNIT, error: None }
    }
}

pub fn run(state: &Arc<RunState>, ctx: &NativeCallContext, hosts: Array, map: &Map, body: FnPtr) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let Some(parent) = frame::current().filter(|_| !state.is_declaring()) else {
        return Err(failure("fleet::run() called outside a phase", "call it in a phase or a step"));
    };
    let names: Vec<String> = hosts.iter().enumerate().map(|(i, h)| host_name(h, i)).collect::<Result<_, _>>()?;
    let mut seen = HashSet::new();
    if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(failure(format!("fleet::run: host `{twice}` is listed twice"), "list each host once"));
    }
    let total = hosts.len();
    let depth = state.undo_depth();
    let results: Mutex<Vec<Option<HostResult>>> = Mutex::new((0..total).map(|_| None).collect());
    let failed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let base = frame::snapshot();
    let batch = o.batch.map_or(total.max(1), |b| b.batch_size(total));
    for first in (0..total).step_by(batch) {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let indices: Vec<usize> = (first..(first + batch).min(total)).collect();
        let next = AtomicUsize::new(0);
        let workers = o.forks.min(indices.len()).min(MAX_THREADS);
        let work = Work { state, ctx, hosts: &hosts, names: &names, body: &body, options: &o, parent: &parent.at };
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let base = base.clone();
                let (work, indices, next, results, failed, stop) = (&work, &indices, &next, &results, &failed, &stop);
                let spawned = std::thread::Builder::new().stack_size(crate::engine::limits::SCRIPT_STACK).spawn_scoped(
                    scope,
                    move || {
                        frame::install(base);
                        while let Some(&i) = indices.get(next.fetch_add(1, Ordering::SeqCst)) {
                            if stop.load(Ordering::SeqCst) || frame::check(&state.services.cancel).is_some() {
                                continue;
                            }
                            let result = work.host(i);
                            if matches!(result.outcome, Outcome::Failed | Outcome::Unreachable) {
                                let n = failed.fetch_add(1, Ordering::SeqCst) + 1;
                                let interrupted = result.error.as_deref().and_then(interruption).is_some();
                                if interrupted || work.options.max_fail.exceeded_by(n, total) {
                                    stop.store(true, Ordering::SeqCst);
                                }
                            }
                            results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(result);
                        }
                        frame::install(Vec::new());
                    },
                );
                if let Err(e) = spawned {
                    tracing::warn!("fleet::run: cannot start a host thread: {e}");
                }
            }
        });
    }
    let results: Vec<HostResult> = results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .map(|r| r.unwrap_or_else(HostResult::skipped))
        .collect();
    let recap = recap(state, &names, &results, &o);
    let failed = failed.into_inner();
    // Ctrl-C, the run's timeout or the enclosing step's: the abort path undoes.
    if let Some(reason) = frame::check(&state.services.cancel) {
        return Err(crate::failure::terminated(reason));
    }
    if o.max_fail.exceeded_by(failed, total) {
        let undone = super::undo::unwind_to(state, ctx.engine(), depth);
        let failing: Vec<&str> = names
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r.outcome, Outcome::Failed | Outcome::Unreachable))
            .map(|(n, _)| n.as_str())
            .collect();
        let first = results.iter().find_map(|r| r.error.as_deref()).map(first_line).unwrap_or_default();
        let message = format!(
            "fleet stopped: {failed} of {total} hosts failed ({}), more than max_fail {}; first error: {first}",
            failing.join(", "),
            o.max_fail.describe()
        );
        let hint = match (o.step.undo.is_some(), undone) {
            (false, _) => {
                "see the recap; fix the failed hosts and run with --resume (the hosts that finished are not run again)"
            }
            (true, true) => "the touched hosts were undone; see the recap, fix the hosts and run again",
            (true, false) => "an undo failed: see the undo lines; the hosts it names need a look by hand",
        };
        let failing: Array = failing.iter().map(|&n| n.into()).collect();
        // `data` lets a caller (`capstan/rolling`) say it in its own words.
        return Err(crate::failure::HostFailure::new(FailureKind::Fail, message)
            .with_hint(hint)
            .with_data("failed", failing)
            .with_data("recap", recap)
            .into());
    }
    Ok(recap)
}

/// What every host's thread shares.
struct Work<'a, 'c> {
    state: &'a Arc<RunState>,
    ctx: &'a NativeCallContext<'c>,
    hosts: &'a Array,
    names: &'a [String],
    body: &'a FnPtr,
    options: &'a Options,
    parent: &'a Location,
}

impl Work<'_, '_> {
    /// One host's step, with the host given to the closure (and its undo).
    fn host(&self, i: usize) -> HostResult {
        let (host, name) = (&self.hosts[i], self.names[i].as_str());
        let mut body = self.body.clone();
        body.add_curry(host.clone());
        let mut options = self.options.step.clone();
        if let Some(undo) = options.undo.as_mut() {
            undo.add_curry(host.clone());
        }
        let start = Instant::now();
        let result = super::step::run_as(self.state, self.ctx, name, Some(name), options.clone(), body);
        let duration_ms = start.elapsed().as_millis() as u64;
        match result {
            Ok(value) => HostResult { outcome: Outcome::Ok, duration_ms, value, error: None },
            Err(err) => {
                let outcome = if FailureKind::of(&err) == Some(FailureKind::Unreachable) {
                    Outcome::Unreachable
                } else {
                    // The host was touched: its undo runs too when the fleet is undone.
                    self.leave_undo(&options, name);
                    Outcome::Failed
                };
                HostResult { outcome, duration_ms, value: Dynamic::UNIT, error: Some(err) }
            }
        }
    }

    fn leave_undo(&self, options: &StepOptions, name: &str) {
        let Some(undo) = &options.undo else { return };
        let mut context = self.ctx.store_data();
        context.global.level = 0;
        let step = match &self.parent.step {
            Some(p) => format!("{p}/{name}"),
            None => name.to_string(),
        };
        let at = Location { step: Some(step.into()), seq: None, host: Some(name.into()), ..self.parent.clone() };
        self.state.push_undo(UndoEntry {
            at,
            step_key: String::new(),
            call: crate::playbook::DeferredCall { body: undo.clone(), context },
        });
    }
}

fn first_line(err: &EvalAltResult) -> String {
    error_message(err).lines().next().unwrap_or("").to_string()
}

/// Emit the `fleet_recap` event and build the returned map: per host its
/// status, duration and first error line, failures first.
fn recap(state: &RunState, names: &[String], results: &[HostResult], o: &Options) -> Map {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| results[a].outcome.cmp(&results[b].outcome).then_with(|| names[a].cmp(&names[b])));
    let mut rows = Vec::new();
    let mut by_status: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    let mut values = Map::new();
    for &i in &order {
        let r = &results[i];
        let error = r.error.as_deref().map(|e| state.services.mask(&first_line(e)).into_owned());
        rows.push(serde_json::json!({
            "host": names[i], "status": r.outcome.as_str(), "duration_ms": r.duration_ms, "error": error,
        }));
        by_status.entry(r.outcome.as_str()).or_default().push(names[i].clone());
        values.insert(names[i].as_str().into(), r.value.clone());
    }
    let count = |s: &str| by_status.get(s).map_or(0, Vec::len);
    let data = serde_json::json!({
        "hosts": rows,
        "ok": count("ok"), "failed": count("failed"), "unreachable": count("unreachable"), "skipped": count("skipped"),
        "max_fail": o.max_fail.describe(),
    });
    state.services.emit(EventKind::User {
        at: frame::location(),
        kind: "fleet_recap".into(),
        data: data.clone(),
        quiet: false,
    });
    state.services.bus.flush();
    let mut out = Map::new();
    for status in ["ok", "failed", "unreachable", "skipped"] {
        let list: Array =
            by_status.get(status).map(|l| l.iter().map(|n| n.as_str().into()).collect()).unwrap_or_default();
        out.insert(status.into(), list.into());
    }
    out.insert("values".into(), values.into());
    out.insert("recap".into(), rhai::serde::to_dynamic(&data["hosts"]).unwrap_or(Dynamic::UNIT));
    out
}

#[cfg(test)]
mod tests {
    use super::Share;

    #[test]
    fn max_fail_is_exceeded_by_more_failures_than_it_allows() {
        let pct = Share::parse("max_fail", &"10%".into()).unwrap();
        assert!(!pct.exceeded_by(3, 30), "10% of 30 lets 3 fail");
        assert!(pct.exceeded_by(4, 30));
        let zero = Share::parse("max_fail", &rhai::Dynamic::from_int(0)).unwrap();
        assert!(zero.exceeded_by(1, 30) && !zero.exceeded_by(0, 30));
        assert!(Share::parse("max_fail", &"110%".into()).is_err());
        assert!(Share::parse("max_fail", &rhai::Dynamic::from_int(-1)).is_err());
        assert!(Share::parse("max_fail", &"ten".into()).is_err());
    }

    #[test]
    fn batches_round_up_and_hold_at_least_one_host() {
        assert_eq!(Share::Percent(25).batch_size(30), 8);
        assert_eq!(Share::Percent(1).batch_size(5), 1);
        assert_eq!(Share::Count(0).batch_size(5), 1);
    }
}
