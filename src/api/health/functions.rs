//! The `health::` functions as scripts see them.

use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str};

use super::check::{check, until_healthy};
use super::probe::{probe, ProbeOptions};
use super::target::CheckOptions;
use crate::api::registration::{docs, Api};
use crate::services::Services;

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts1(
        "check",
        &["target: ?", "Map"],
        docs! {
            /// Check a target once: an `http(s)://` URL, `tcp://host:port`, or an argv array.
            /// Returns `#{ ok, status, latency_ms, attempts, error }` (plus `dry_run: true` under --dry-run).
            /// Options: `expect_status`
            /// (default 200-399; a number, "200-299" or an array), `expect_body`, `timeout`, `headers`.
            /// ```rhai
            /// let h = health::check("http://127.0.0.1:8080/healthz");
            /// ```
        },
        |svc, target: Dynamic, o: CheckOptions| check(svc, &target, &o),
    );
    api.opts1(
        "wait",
        &["target: ?", "Map"],
        docs! {
            /// Check every `interval` (1s) until healthy; fail when not healthy `within` (60s).
            /// Same targets and options as `check`. Under --dry-run it checks once, logs what it would
            /// wait for and what it sees now, and returns that check with `dry_run: true`.
            /// ```rhai
            /// health::wait("tcp://127.0.0.1:5432", #{ within: "2m" });
            /// ```
        },
        |svc, target: Dynamic, o: CheckOptions| until_healthy(svc, &target, &o),
    );
    api.opts1(
        "probe",
        &["url: &str", "Map"],
        docs! {
            /// Load a URL for `duration` (10s) with `concurrency` (16) workers, optionally paced at
            /// `rate` requests/s, and return the golden signals `#{ requests, errors, error_rate,
            /// p50_ms, p90_ms, p99_ms, max_ms, mean_ms, rps, by_status }`. An error is a transport
            /// failure or a status outside `expect_status` (200-399); `by_status` counts each status.
            /// Under --dry-run it sends one request and returns it in this shape with `dry_run: true`.
            /// ```rhai
            /// let p = health::probe("http://127.0.0.1:8080/", #{ duration: "30s", rate: 200 });
            /// gate("error rate", p.error_rate < 0.001);
            /// ```
        },
        |svc, url: Str, o: ProbeOptions| probe(svc, &url, &o),
    );
}
