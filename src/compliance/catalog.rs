//! Every rule the scanners know, for `capstan check --compliance` and SARIF.

use super::finding::Rule;
use super::{dockerfile, k8s, secrets, terraform};

/// Every rule of every scanner.
pub fn rules() -> Vec<Rule> {
    let mut all = Vec::new();
    all.extend_from_slice(secrets::RULES);
    all.extend_from_slice(dockerfile::RULES);
    all.extend_from_slice(k8s::RULES);
    all.extend_from_slice(terraform::RULES);
    all
}
