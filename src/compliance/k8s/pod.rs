//! The pod spec inside every workload kind, and the containers in it.

use serde_json::Value;

/// Where a workload keeps its pod spec.
pub(super) fn pod_spec(object: &Value) -> Option<&Value> {
    let path: &[&str] = match object["kind"].as_str()? {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "DeploymentConfig" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    };
    path.iter().try_fold(object, |v, key| v.get(key))
}

/// The three lists a pod spec keeps containers in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ContainerKind {
    Regular,
    Init,
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field holding this kind.
    pub(super) fn field(self) -> &'static str {
        match self {
            ContainerKind::Regular => "containers",
            ContainerKind::Init => "initContainers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// Every container of a pod spec with its kind, init containers first (the
/// order they start in).
pub(super) fn containers(spec: &Value) -> Vec<(ContainerKind, &Value)> {
    [ContainerKind::Init, ContainerKind::Regular, ContainerKind::Ephemeral]
        .into_iter()
        .flat_map(|kind| spec[kind.field()].as_array().into_iter().flatten().map(move |c| (kind, c)))
        .filter(|(_, c)| c.is_object())
        .collect()
}

/// Whether a container runs for the pod's whole life and serves: regular
/// containers, and init containers with `restartPolicy: Always` (sidecars).
/// Only those can have probes; ephemeral containers cannot have probes or
/// resources at all.
pub(super) fn serves(kind: ContainerKind, container: &Value) -> bool {
    kind == ContainerKind::Regular || (kind == ContainerKind::Init && container["restartPolicy"] == "Always")
}

/// Whether the pod runs to completion (a Job's, directly, through a
/// `CronJob` or through an owner reference): such pods are not probed.
pub(super) fn runs_to_completion(object: &Value) -> bool {
    matches!(object["kind"].as_str(), Some("Job" | "CronJob"))
        || object["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|r| r["kind"] == "Job")
}

/// Whether a container may run as root: no `runAsNonRoot: true` and no
/// non-zero `runAsUser`, the container's settings overriding the pod's.
pub(super) fn may_run_as_root(spec: &Value, container: &Value) -> bool {
    let setting = |key: &str| {
        let own = &container["securityContext"][key];
        if own.is_null() {
            &spec["securityContext"][key]
        } else {
            own
        }
    };
    // A runAsUser that is not a number is invalid; it proves nothing.
    let user = setting("runAsUser").as_i64();
    setting("runAsNonRoot") != true && user.is_none_or(|u| u == 0)
}

/// Whether an image reference names no fixed version: no tag, `latest`, and
/// no digest.
pub(super) fn unpinned(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    !image.contains('@') && (!last.contains(':') || last.ends_with(":latest") || last.ends_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_workload_kind_has_its_pod_spec_found() {
        let spec = json!({"containers": [{"name": "a"}]});
        let t = json!({"spec": spec});
        for (kind, object) in [
            ("Pod", json!({"kind": "Pod", "spec": spec})),
            ("PodTemplate", json!({"kind": "PodTemplate", "template": {"spec": spec}})),
            ("Deployment", json!({"kind": "Deployment", "spec": {"template": t}})),
            ("Job", json!({"kind": "Job", "spec": {"template": t}})),
            ("CronJob", json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": t}}}})),
        ] {
            assert_eq!(pod_spec(&object), Some(&spec), "{kind}");
        }
        assert_eq!(pod_spec(&json!({"kind": "Service", "spec": spec})), None);
    }

    #[test]
    fn init_and_ephemeral_containers_are_walked_and_only_sidecars_serve() {
        let spec = json!({
            "initContainers": [{"name": "migrate"}, {"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "web"}],
            "ephemeralContainers": [{"name": "debug"}],
        });
        let found: Vec<(&str, bool)> =
            containers(&spec).into_iter().map(|(k, c)| (c["name"].as_str().unwrap(), serves(k, c))).collect();
        assert_eq!(found, vec![("migrate", false), ("proxy", true), ("web", true), ("debug", false)]);
    }

    #[test]
    fn root_is_decided_by_the_container_over_the_pod() {
        let pod = json!({"securityContext": {"runAsUser": 1000}});
        assert!(!may_run_as_root(&pod, &json!({})));
        assert!(may_run_as_root(&pod, &json!({"securityContext": {"runAsUser": 0}})));
        assert!(may_run_as_root(&json!({}), &json!({})));
        assert!(!may_run_as_root(&json!({"securityContext": {"runAsNonRoot": true}}), &json!({})));
        assert!(may_run_as_root(&json!({"securityContext": {"runAsUser": "username"}}), &json!({})));
    }

    #[test]
    fn images_without_a_fixed_version_are_unpinned() {
        for image in ["nginx", "nginx:latest", "localhost:5000/nginx", "nginx:", ""] {
            assert!(unpinned(image), "{image}");
        }
        for image in ["nginx:1.25", "localhost:5000/nginx:1.25", "nginx@sha256:abc", "nginx:latest@sha256:abc"] {
            assert!(!unpinned(image), "{image}");
        }
    }
}
