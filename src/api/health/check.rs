//! `health::check` (one look) and `health::wait` (look until healthy, or
//! fail after `within`).

use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use serde::Serialize;

use super::target::{check_once, target, CheckOptions, Checked};
use crate::api::options;
use crate::api::values::to_map;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::{wait, Services};

/// What `check` and `wait` return.
#[derive(Serialize)]
struct Look {
    ok: bool,
    status: Option<i64>,
    latency_ms: f64,
    attempts: i64,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
}

fn look(c: &Checked, attempts: u32, dry_run: bool) -> RhaiResultOf<Map> {
    to_map(&Look {
        ok: c.ok,
        status: c.status,
        latency_ms: c.latency.as_secs_f64() * 1000.0,
        attempts: i64::from(attempts),
        error: c.error.clone(),
        dry_run: dry_run.then_some(true),
    })
}

pub(super) fn check(services: &Services, target_value: &Dynamic, o: &CheckOptions) -> RhaiResultOf<Map> {
    let t = target(target_value).map_err(|m| failure(FailureKind::Usage, m))?;
    look(&check_once(services, &t, o)?, 1, services.dry_run())
}

/// `health::wait` with its options as a script map (`docker::run`'s `health`).
pub(crate) fn wait_with(services: &Services, target_value: &Dynamic, o: &Map) -> RhaiResultOf<Map> {
    until_healthy(services, target_value, &options::read(o, "health::wait")?)
}

pub(super) fn until_healthy(services: &Services, target_value: &Dynamic, o: &CheckOptions) -> RhaiResultOf<Map> {
    let t = target(target_value).map_err(|m| failure(FailureKind::Usage, m))?;
    let within = o.within.0;
    if services.dry_run() {
        let c = check_once(services, &t, o)?;
        services.log(
            Level::Info,
            format!("would wait up to {} for {target_value}: {}", humantime::format_duration(within), c.now()),
        );
        return look(&c, 1, true);
    }
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let c = check_once(services, &t, o)?;
        if c.ok {
            services.log(
                Level::Info,
                format!(
                    "{} is healthy after {attempts} check(s), {}",
                    target_value,
                    humantime::format_duration(round(start.elapsed()))
                ),
            );
            return look(&c, attempts, false);
        }
        if start.elapsed() + o.interval.0 > within {
            return Err(failure_with_hint(
                FailureKind::Fail,
                format!(
                    "{target_value} is not healthy within {} ({attempts} checks; last: {})",
                    humantime::format_duration(within),
                    c.error.unwrap_or_default()
                ),
                "look at the service's logs, or give it longer with `within`",
            ));
        }
        services.progress(
            format!("waiting for {target_value}: {}", c.error.as_deref().unwrap_or("not healthy yet")),
            start.elapsed().as_millis() as u64,
            within.as_millis() as u64,
        );
        wait::sleep(services, o.interval.0)?;
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
