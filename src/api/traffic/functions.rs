//! The `traffic::` functions as scripts see them.

use std::sync::Arc;

use rhai::ImmutableString as Str;

use super::haproxy::{sample, server_stats, set_weights, SampleOptions, StatsOptions, WeightOptions};
use super::ingress_nginx::{set_weight, IngressOptions};
use super::nginx::{nginx, NginxOptions};
use crate::api::registration::{docs, Api};
use crate::services::Services;

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts_only0(
        "haproxy",
        &["Map"],
        docs! {
            /// Set server weights through HAProxy's runtime API (no reload) and read them back:
            /// `#{ socket, backend, weights: #{ server: weight } }` gives `#{ weights, dry_run }`.
            /// ```rhai
            /// traffic::haproxy(#{ socket: "/run/haproxy.sock", backend: "app", weights: #{ v1: 95, v2: 5 } });
            /// ```
        },
        |svc, o: WeightOptions| set_weights(svc, o),
    );
    api.opts_only0(
        "haproxy_stats",
        &["Map"],
        docs! {
            /// Per-server counters of a backend: `#{ server: #{ requests, 2xx, 4xx, 5xx, weight, status } }`.
            /// ```rhai
            /// let st = traffic::haproxy_stats(#{ socket: sock, backend: "app" });
            /// let v2_5xx = st.v2["5xx"];
            /// ```
        },
        |_, o: StatsOptions| server_stats(o),
    );
    api.opts_only0(
        "haproxy_sample",
        &["Map"],
        docs! {
            /// One server's traffic since the previous sample, from HAProxy's counters:
            /// `#{ socket, backend, server, since }` gives `#{ requests, errors, error_rate, 2xx, 4xx,
            /// 5xx, counters }`; pass `counters` back as `since` next time. A canary analysis
            /// from real users' traffic.
            /// ```rhai
            /// let last = #{};
            /// let analyze = || { let s = traffic::haproxy_sample(#{ socket: sock, backend: "app", server: "v2", since: last }); last = s.counters; s };
            /// ```
        },
        |_, o: SampleOptions| sample(o),
    );
    api.opts_only0(
        "nginx",
        &["Map"],
        docs! {
            /// Write nginx upstream servers with weights into `file` (the whole `upstream NAME {}`
            /// block when `upstream` is given), check with `nginx -t`, reload (`reload: true`).
            /// Weight 0 marks a server `down`. `nginx_args` are passed to both (e.g. `-c`, `-p`).
            /// A config that fails `nginx -t` is rolled back and nothing is reloaded.
            /// ```rhai
            /// traffic::nginx(#{ file: "/etc/nginx/upstreams/app.conf", upstream: "app", servers: #{ "10.0.0.1:8080": 9, "10.0.0.2:8080": 1 } });
            /// ```
        },
        |svc, o: NginxOptions| nginx(svc, o),
    );
    api.opts_only2(
        "ingress_nginx",
        &["ingress: &str", "weight: i64", "Map"],
        docs! {
            /// Set the ingress-nginx canary weight (0-100) on a canary Ingress with kubectl annotate.
            /// Options: `namespace`, `context`, `kubeconfig`.
            /// ```rhai
            /// traffic::ingress_nginx("checkout-canary", 25, #{ namespace: "shop" });
            /// ```
        },
        |svc, ingress: Str, weight: i64, o: IngressOptions| set_weight(svc, &ingress, weight, &o),
    );
    api.func2(
        "ingress_nginx",
        &["ingress: &str", "weight: i64", "Map"],
        docs! {
            /// Set the ingress-nginx canary weight with the current kubectl context.
            /// ```rhai
            /// traffic::ingress_nginx("checkout-canary", 100);
            /// ```
        },
        |svc, ingress: Str, weight: i64| set_weight(svc, &ingress, weight, &IngressOptions::default()),
    );
}
