//! Compliance scanners: secrets in files, Dockerfiles, Kubernetes manifests.
//! Each returns findings in one shape, `#{ rule, severity, file, line,
//! message }`, which `compliance::sarif` writes as SARIF 2.1.0 and
//! `capstan check --compliance` prints.

mod catalog;
pub mod dockerfile;
mod finding;
pub mod k8s;
pub mod parity;
pub mod sarif;
pub mod secrets;
pub mod terraform;

pub use catalog::rules;
pub use finding::{Finding, Rule, Severity};
