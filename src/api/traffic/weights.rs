//! What the backends share: required options and server weights.

use std::collections::BTreeMap;

use rhai::Dynamic;

use crate::api::options::Text;
use crate::failure::{failure, FailureKind, RhaiResultOf};

/// A required text option.
pub(super) fn required(value: Option<Text>, key: &str, what: &str) -> RhaiResultOf<String> {
    value.map(|t| t.0).ok_or_else(|| failure(FailureKind::Usage, format!("{what} needs `{key}`")))
}

/// A required map of server to weight, each 0 to 256.
pub(super) fn weights(
    value: Option<BTreeMap<String, Dynamic>>,
    key: &str,
    what: &str,
) -> RhaiResultOf<BTreeMap<String, i64>> {
    let w =
        value.ok_or_else(|| failure(FailureKind::Usage, format!("{what} needs `{key}`: a map of server to weight")))?;
    w.into_iter()
        .map(|(k, v)| {
            let n = v
                .as_int()
                .map_err(|_| failure(FailureKind::Usage, format!("{what}: the weight of `{k}` must be an integer")))?;
            if !(0..=256).contains(&n) {
                return Err(failure(
                    FailureKind::Usage,
                    format!("{what}: the weight of `{k}` must be 0 to 256, not {n}"),
                ));
            }
            Ok((k, n))
        })
        .collect()
}
