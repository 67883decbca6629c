//! `health::probe`: load a URL for a while and measure the golden signals,
//! latency percentiles from a histogram.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rhai::Map;
use serde::{Deserialize, Serialize};

use super::target::{check_once, CheckOptions, StatusSet, Target};
use crate::api::options::{Seconds, Text};
use crate::api::values::to_map;
use crate::events::Level;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::http::{self, Client, Url};
use crate::services::{frame, wait, Services};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ProbeOptions {
    duration: Seconds,
    /// Requests per second; none (or 0) sends as fast as the workers can.
    #[serde(deserialize_with = "rate")]
    rate: Option<f64>,
    concurrency: usize,
    timeout: Seconds,
    expect_status: StatusSet,
    headers: BTreeMap<String, Text>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            duration: Seconds(Duration::from_secs(10)),
            rate: None,
            concurrency: 16,
            timeout: Seconds(Duration::from_secs(5)),
            expect_status: StatusSet::default(),
            headers: BTreeMap::new(),
        }
    }
}

/// A rate: any number; zero or less means unpaced.
fn rate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = rhai::Dynamic::deserialize(deserializer)?;
    let rate = value
        .as_float()
        .or_else(|_| value.as_int().map(|i| i as f64))
        .map_err(|_| serde::de::Error::custom("must be a number of requests per second"))?;
    Ok((rate > 0.0).then_some(rate))
}

/// What `health::probe` returns: the golden signals, and what produced
/// them for the decision records that quote them.
#[derive(Serialize)]
struct Signals {
    requests: i64,
    errors: i64,
    error_rate: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    rps: f64,
    by_status: BTreeMap<String, i64>,
    url: String,
    duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
}

/// What the probe's workers share.
struct Tally {
    latency_us: Histogram<u64>,
    requests: u64,
    errors: u64,
    by_status: BTreeMap<String, u64>,
}

pub(super) fn probe(services: &Arc<Services>, url: &str, o: &ProbeOptions) -> RhaiResultOf<Map> {
    if !(1..=1024).contains(&o.concurrency) {
        return Err(failure(FailureKind::Usage, "health::probe option `concurrency` must be 1 to 1024"));
    }
    let target = Url::parse(url).map_err(|e| failure(FailureKind::Usage, format!("bad URL \"{url}\": {e}")))?;
    if services.dry_run() {
        return probe_once(services, url, target, o);
    }
    // Its own pool, as big as its workers: each keeps one connection alive.
    let client = http::build(http::builder().pool_max_idle_per_host(o.concurrency))?;
    let tally = Arc::new(Mutex::new(Tally {
        latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|e| failure(FailureKind::Fail, e.to_string()))?,
        requests: 0,
        errors: 0,
        by_status: BTreeMap::new(),
    }));
    let started = Instant::now();
    let end = started.checked_add(o.duration.0).unwrap_or(started + Duration::from_secs(365 * 86_400));
    let ticket = Arc::new(AtomicU64::new(0));
    let work = {
        let tally = tally.clone();
        let o = o.clone();
        let (services, at, label) = (services.clone(), frame::location(), format!("probe {url}"));
        async move {
            let mut workers = tokio::task::JoinSet::new();
            // The step's progress bar: time gone of the probe's duration.
            let total_ms = (o.duration.0.as_millis() as u64).max(1);
            workers.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if Instant::now() >= end {
                        break;
                    }
                    services.progress_at(at.clone(), label.as_str(), started.elapsed().as_millis() as u64, total_ms);
                }
            });
            for _ in 0..o.concurrency {
                let (client, url, tally, ticket, o) =
                    (client.clone(), target.clone(), tally.clone(), ticket.clone(), o.clone());
                workers.spawn(async move {
                    loop {
                        if let Some(rate) = o.rate {
                            // Open-loop pacing: request n goes out at n / rate.
                            let n = ticket.fetch_add(1, Ordering::Relaxed);
                            let at = started + Duration::from_secs_f64(n as f64 / rate);
                            if at >= end {
                                break;
                            }
                            tokio::time::sleep_until(at.into()).await;
                        } else if Instant::now() >= end {
                            break;
                        }
                        let sent = Instant::now();
                        let outcome = send(&client, &url, o.timeout.0, &o.headers).await;
                        let took = sent.elapsed();
                        let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        t.requests += 1;
                        let _ = t.latency_us.record((took.as_micros() as u64).max(1));
                        let key = if let Ok(status) = outcome {
                            if !o.expect_status.contains(status) {
                                t.errors += 1;
                            }
                            status.to_string()
                        } else {
                            t.errors += 1;
                            "error".to_string()
                        };
                        *t.by_status.entry(key).or_default() += 1;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    };
    wait::block_on(services, work)?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ms = |q: f64| if t.requests == 0 { 0.0 } else { t.latency_us.value_at_quantile(q) as f64 / 1000.0 };
    let error_rate = if t.requests == 0 { 0.0 } else { t.errors as f64 / t.requests as f64 };
    let result = Signals {
        requests: t.requests as i64,
        errors: t.errors as i64,
        error_rate,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
        mean_ms: if t.requests == 0 { 0.0 } else { t.latency_us.mean() / 1000.0 },
        rps: t.requests as f64 / elapsed,
        by_status: t.by_status.iter().map(|(k, v)| (k.clone(), *v as i64)).collect(),
        url: url.to_string(),
        duration_ms: o.duration.0.as_millis() as i64,
        dry_run: None,
    };
    services.log(
        Level::Info,
        format!(
            "probe {url}: {} requests, error rate {:.4}, p50 {:.1}ms p90 {:.1}ms p99 {:.1}ms, {:.0} req/s",
            result.requests, result.error_rate, result.p50_ms, result.p90_ms, result.p99_ms, result.rps
        ),
    );
    to_map(&result)
}

/// A dry run's probe: one request, in the shape of a probe's result.
fn probe_once(services: &Services, url: &str, target: Url, o: &ProbeOptions) -> RhaiResultOf<Map> {
    let check = CheckOptions {
        expect_status: o.expect_status.clone(),
        timeout: o.timeout,
        headers: o.headers.clone(),
        ..CheckOptions::default()
    };
    let c = check_once(services, &Target::Http(target), &check)?;
    services
        .log(Level::Info, format!("would probe {url} for {}: {}", humantime::format_duration(o.duration.0), c.now()));
    let latency = c.latency.as_secs_f64() * 1000.0;
    let errors = i64::from(!c.ok);
    let status = c.status.map_or_else(|| "error".to_string(), |s| s.to_string());
    to_map(&Signals {
        requests: 1,
        errors,
        error_rate: errors as f64,
        p50_ms: latency,
        p90_ms: latency,
        p99_ms: latency,
        max_ms: latency,
        mean_ms: latency,
        // One look is not a rate.
        rps: 0.0,
        by_status: BTreeMap::from([(status, 1)]),
        url: url.to_string(),
        duration_ms: o.duration.0.as_millis() as i64,
        dry_run: Some(true),
    })
}

/// One request; a failure on a pooled connection the server closed (nginx
/// does on reload) is retried once on a fresh one.
async fn send(client: &Client, url: &Url, timeout: Duration, headers: &BTreeMap<String, Text>) -> Result<u16, ()> {
    for attempt in 0..2 {
        let mut request = client.get(url.clone()).timeout(timeout);
        for (k, v) in headers {
            request = request.header(k, &v.0);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                return Ok(status);
            }
            Err(e) if attempt == 0 && !e.is_timeout() && (e.is_request() || e.is_connect()) => {}
            Err(_) => return Err(()),
        }
    }
    Err(())
}
