//! `kubectl::`: resources through the kubectl CLI, with the cluster
//! options on every call. `get` and `rollout_status` run under --dry-run.

use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str, Map};

use super::cluster::{cluster_options, done, json_result, Cluster, KUBECTL};
use super::options::Text;
use super::registration::{docs, Api};
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::Services;

cluster_options! {
    struct ApplyOptions {
        server_side: bool,
    }
}

cluster_options! {
    struct GetOptions {
        selector: Option<Text>,
    }
}

fn get(services: &Arc<Services>, kind: &str, name: Option<&str>, o: &GetOptions) -> RhaiResultOf<Dynamic> {
    let mut args = vec!["get".to_string(), kind.to_string()];
    if let Some(n) = name {
        args.push(n.to_string());
    }
    super::options::flag(&mut args, "--selector", o.selector.as_ref());
    args.extend(["--output".to_string(), "json".into()]);
    json_result(KUBECTL.exec(services, args, &o.cluster(), true, true)?)
}

cluster_options! {
    struct StatusOptions {
        timeout: Option<Text>,
    }
}

cluster_options! {
    struct UndoOptions {
        to_revision: Option<Text>,
    }
}

/// `kubectl rollout VERB TARGET`, with the one flag the verb takes when it is given.
fn rollout(
    services: &Arc<Services>,
    verb: &str,
    target: &str,
    flag: Option<String>,
    cluster: &Cluster<'_>,
    read_only: bool,
) -> RhaiResultOf<Map> {
    let mut args = vec!["rollout".to_string(), verb.to_string(), target.to_string()];
    args.extend(flag);
    done(KUBECTL.exec(services, args, cluster, read_only, false)?)
}

fn rollout_status(services: &Arc<Services>, target: Str, o: StatusOptions) -> RhaiResultOf<Map> {
    let timeout = o.timeout.as_ref().map(|t| format!("--timeout={}", t.0));
    rollout(services, "status", &target, timeout, &o.cluster(), true)
}

fn rollout_undo(services: &Arc<Services>, target: Str, o: UndoOptions) -> RhaiResultOf<Map> {
    let revision = o.to_revision.as_ref().map(|r| format!("--to-revision={}", r.0));
    rollout(services, "undo", &target, revision, &o.cluster(), false)
}

cluster_options! {
    struct SetImageOptions {}
}

cluster_options! {
    struct PatchOptions {
        r#type: Option<Text>,
    }
}

fn patch(services: &Arc<Services>, kind: &str, name: &str, patch: &Map, o: &PatchOptions) -> RhaiResultOf<Map> {
    let body = serde_json::to_string(&Dynamic::from_map(patch.clone()))
        .map_err(|e| failure(FailureKind::Usage, format!("the patch cannot be sent as JSON: {e}")))?;
    let kind_of_patch = o.r#type.as_ref().map_or_else(|| "merge".to_string(), |t| t.0.clone());
    let args = vec!["patch".into(), kind.into(), name.into(), "--type".into(), kind_of_patch, "--patch".into(), body];
    done(KUBECTL.exec(services, args, &o.cluster(), false, false)?)
}

cluster_options! {
    struct AnnotateOptions {
        overwrite: Option<bool>,
    }
}

fn annotate(
    services: &Arc<Services>,
    kind: &str,
    name: &str,
    annotations: &Map,
    o: &AnnotateOptions,
) -> RhaiResultOf<Map> {
    let mut args = vec!["annotate".to_string(), kind.to_string(), name.to_string()];
    for (k, v) in annotations {
        if v.is_unit() {
            args.push(format!("{k}-"));
        } else {
            args.push(format!("{k}={v}"));
        }
    }
    if o.overwrite.unwrap_or(true) {
        args.push("--overwrite".into());
    }
    done(KUBECTL.exec(services, args, &o.cluster(), false, false)?)
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts_only1(
        "apply",
        &["path: &str", "Map"],
        docs! {
            /// `kubectl apply -f PATH` (a file, a folder or `-`). Options `server_side` and the cluster options.
            /// ```rhai
            /// kubectl::apply("k8s/production", #{ namespace: "shop" });
            /// ```
        },
        |svc, path: Str, o: ApplyOptions| {
            let mut args = vec!["apply".to_string(), "--filename".into(), path.to_string()];
            if o.server_side {
                args.push("--server-side".into());
            }
            done(KUBECTL.exec(svc, args, &o.cluster(), false, false)?)
        },
    );
    api.opts_only2(
        "get",
        &["kind: &str", "name: &str", "?"],
        docs! {
            /// `kubectl get KIND NAME -o json`, parsed.
            /// ```rhai
            /// let d = kubectl::get("deployment", "checkout", #{ namespace: "shop" });
            /// ```
        },
        |svc, kind: Str, name: Str, o: GetOptions| get(svc, &kind, Some(&name), &o),
    );
    api.opts_only1(
        "get",
        &["kind: &str", "?"],
        docs! {
            /// `kubectl get KIND -o json` (a List), parsed. Option `selector`.
            /// ```rhai
            /// let pods = kubectl::get("pods", #{ selector: "app=checkout" }).items;
            /// ```
        },
        |svc, kind: Str, o: GetOptions| get(svc, &kind, None, &o),
    );
    api.opts_only1(
        "rollout_status",
        &["target: &str", "Map"],
        docs! {
            /// `kubectl rollout status TARGET` (e.g. deployment/checkout) with `timeout`; fails when it does not roll out.
            /// ```rhai
            /// kubectl::rollout_status("deployment/checkout", #{ timeout: "5m" });
            /// ```
        },
        rollout_status,
    );
    api.opts_only1(
        "rollout_undo",
        &["target: &str", "Map"],
        docs! {
            /// `kubectl rollout undo TARGET`, optionally `to_revision`.
            /// ```rhai
            /// kubectl::rollout_undo("deployment/checkout", #{});
            /// ```
        },
        rollout_undo,
    );
    api.opts_only3(
        "set_image",
        &["target: &str", "container: &str", "image: &str", "Map"],
        docs! {
            /// `kubectl set image TARGET CONTAINER=IMAGE`.
            /// ```rhai
            /// kubectl::set_image("deployment/checkout", "app", `registry.local/checkout:${v}`, #{});
            /// ```
        },
        |svc, target: Str, container: Str, image: Str, o: SetImageOptions| {
            let args = vec!["set".into(), "image".into(), target.to_string(), format!("{container}={image}")];
            done(KUBECTL.exec(svc, args, &o.cluster(), false, false)?)
        },
    );
    api.opts_only3(
        "patch",
        &["kind: &str", "name: &str", "patch: Map", "Map"],
        docs! {
            /// `kubectl patch` with a map as the patch (`type`: merge by default, strategic or json).
            /// ```rhai
            /// kubectl::patch("deployment", "checkout", #{ spec: #{ replicas: 5 } }, #{});
            /// ```
        },
        |svc, kind: Str, name: Str, body: Map, o: PatchOptions| patch(svc, &kind, &name, &body, &o),
    );
    api.opts_only3(
        "annotate",
        &["kind: &str", "name: &str", "annotations: Map", "Map"],
        docs! {
            /// `kubectl annotate` (overwriting unless `overwrite: false`); a `()` value removes the key.
            /// ```rhai
            /// kubectl::annotate("deployment", "checkout", #{ "deploy/version": v }, #{});
            /// ```
        },
        |svc, kind: Str, name: Str, annotations: Map, o: AnnotateOptions| annotate(svc, &kind, &name, &annotations, &o),
    );
}
