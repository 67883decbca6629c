//! `traffic::`: shift traffic between versions. `HAProxy` through its runtime
//! API (no reload: weights change in place and are read back), nginx
//! through an upstream include file checked with `nginx -t` and reloaded,
//! ingress-nginx through the canary-weight annotation.

mod functions;
mod haproxy;
mod ingress_nginx;
mod nginx;
mod weights;

pub use functions::register;
