//! ingress-nginx: the canary weight annotation on a canary Ingress.

use std::sync::Arc;

use rhai::Map;
use serde::Serialize;

use crate::api::cluster::{cluster_options, KUBECTL};
use crate::api::values::to_map;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::Services;

cluster_options! {
    struct IngressOptions {}
}

#[derive(Serialize)]
struct Canary<'a> {
    ingress: &'a str,
    weight: i64,
    dry_run: bool,
}

pub(super) fn set_weight(
    services: &Arc<Services>,
    ingress: &str,
    weight: i64,
    o: &IngressOptions,
) -> RhaiResultOf<Map> {
    if !(0..=100).contains(&weight) {
        return Err(failure(
            FailureKind::Usage,
            format!("traffic::ingress_nginx: the canary weight must be 0 to 100, not {weight}"),
        ));
    }
    let args = vec![
        "annotate".to_string(),
        "ingress".into(),
        ingress.to_string(),
        "nginx.ingress.kubernetes.io/canary=true".into(),
        format!("nginx.ingress.kubernetes.io/canary-weight={weight}"),
        "--overwrite".into(),
    ];
    let out = KUBECTL.exec(services, args, &o.cluster(), false, false)?;
    to_map(&Canary { ingress, weight, dry_run: out.is_none() })
}
