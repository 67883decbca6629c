//! `helm::` and `kubectl::`: the Kubernetes tools, driven through their
//! CLIs with `context`/`kube_context`, `namespace` and `kubeconfig` on every
//! call. Reads (status, history, get, template, lint) run under --dry-run.

use std::sync::Arc;

use rhai::{Dynamic, Engine, Map, Module};

use super::registration::module_func;
use super::tool::{self, ToolCall};
use super::values;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::state::RunState;

/// Options every Kubernetes call understands.
const CLUSTER: &[&str] = &["namespace", "context", "kubeconfig"];

fn cluster_args(map: &Map, helm: bool) -> Vec<String> {
    let mut args = Vec::new();
    for (k, v) in map {
        match k.as_str() {
            "namespace" => args.extend(["--namespace".to_string(), v.to_string()]),
            "context" if helm => args.extend(["--kube-context".to_string(), v.to_string()]),
            "context" => args.extend(["--context".to_string(), v.to_string()]),
            "kubeconfig" => args.extend(["--kubeconfig".to_string(), v.to_string()]),
            _ => {}
        }
    }
    args
}

fn check_keys(map: &Map, extra: &[&str], what: &str) -> RhaiResultOf<()> {
    for k in map.keys() {
        if !CLUSTER.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            let all: Vec<&str> = CLUSTER.iter().chain(extra).copied().collect();
            return Err(failure(
                FailureKind::Usage,
                format!("unknown {what} option `{k}`; the options are: {}", all.join(", ")),
            ));
        }
    }
    Ok(())
}

fn strings(v: &Dynamic, what: &str) -> RhaiResultOf<Vec<String>> {
    values::list(v, true).ok_or_else(|| failure(FailureKind::Usage, format!("{what} must be an array")))
}

/// Flatten nested maps into `a.b.c=value` for `--set`.
fn set_pairs(prefix: &str, v: &Dynamic, out: &mut Vec<String>) {
    if let Some(m) = v.read_lock::<Map>() {
        for (k, v) in m.iter() {
            let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
            set_pairs(&key, v, out);
        }
    } else {
        out.push(format!("{prefix}={v}"));
    }
}

fn exec(
    state: &RunState,
    program: &str,
    args: Vec<String>,
    read_only: bool,
    quiet: bool,
) -> RhaiResultOf<Option<crate::process::Outcome>> {
    let mut call = ToolCall::new(program, args);
    call.read_only = read_only;
    call.quiet = quiet;
    match tool::call(&state.services, &call)? {
        Some(out) if !out.success() => Err(tool::failed(&call, &out, None)),
        other => Ok(other),
    }
}

fn json_result(out: Option<crate::process::Outcome>) -> RhaiResultOf<Dynamic> {
    let Some(out) = out else { return Ok(Dynamic::UNIT) };
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read the JSON the tool printed: {e}")))?;
    rhai::serde::to_dynamic(v)
}

fn done(out: Option<crate::process::Outcome>) -> Map {
    let mut m = Map::new();
    m.insert("dry_run".into(), out.is_none().into());
    m.insert("stdout".into(), out.map(|o| o.stdout).unwrap_or_default().into());
    m
}

// ---- helm ----

fn helm_upgrade(state: &RunState, release: &str, chart: &str, map: &Map) -> RhaiResultOf<Map> {
    check_keys(
        map,
        &["install", "wait", "atomic", "timeout", "values", "set", "version", "create_namespace"],
        "helm::upgrade",
    )?;
    let mut args = vec!["upgrade".to_string(), release.to_string(), chart.to_string()];
    let flag = |k: &str| map.get(k).and_then(|v| v.as_bool().ok());
    if flag("install").unwrap_or(true) {
        args.push("--install".into());
    }
    if flag("wait").unwrap_or(false) {
        args.push("--wait".into());
    }
    if flag("atomic").unwrap_or(false) {
        args.push("--atomic".into());
    }
    if flag("create_namespace").unwrap_or(false) {
        args.push("--create-namespace".into());
    }
    if let Some(t) = map.get("timeout") {
        args.extend(["--timeout".to_string(), t.to_string()]);
    }
    if let Some(v) = map.get("version") {
        args.extend(["--version".to_string(), v.to_string()]);
    }
    values_args(map, &mut args)?;
    args.extend(cluster_args(map, true));
    Ok(done(exec(state, "helm", args, false, false)?))
}

/// `--values FILE` and `--set key=value` from the `values` and `set` options.
fn values_args(map: &Map, args: &mut Vec<String>) -> RhaiResultOf<()> {
    if let Some(v) = map.get("values") {
        for f in strings(v, "helm option `values`")? {
            args.extend(["--values".to_string(), f]);
        }
    }
    if let Some(s) = map.get("set") {
        let mut pairs = Vec::new();
        set_pairs("", s, &mut pairs);
        for p in pairs {
            args.extend(["--set".to_string(), p]);
        }
    }
    Ok(())
}

fn helm_rollback(state: &RunState, release: &str, revision: Option<i64>, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["wait", "timeout"], "helm::rollback")?;
    let mut args = vec!["rollback".to_string(), release.to_string()];
    if let Some(r) = revision {
        args.push(r.to_string());
    }
    if map.get("wait").and_then(|v| v.as_bool().ok()).unwrap_or(false) {
        args.push("--wait".into());
    }
    if let Some(t) = map.get("timeout") {
        args.extend(["--timeout".to_string(), t.to_string()]);
    }
    args.extend(cluster_args(map, true));
    Ok(done(exec(state, "helm", args, false, false)?))
}

fn helm_read(state: &RunState, verb: &str, release: &str, map: &Map) -> RhaiResultOf<Dynamic> {
    check_keys(map, &[], &format!("helm::{verb}"))?;
    let mut args = vec![verb.to_string(), release.to_string(), "--output".into(), "json".into()];
    args.extend(cluster_args(map, true));
    json_result(exec(state, "helm", args, true, true)?)
}

fn helm_template(state: &RunState, release: &str, chart: &str, map: &Map) -> RhaiResultOf<String> {
    check_keys(map, &["values", "set", "version"], "helm::template")?;
    let mut args = vec!["template".to_string(), release.to_string(), chart.to_string()];
    values_args(map, &mut args)?;
    if let Some(v) = map.get("version") {
        args.extend(["--version".to_string(), v.to_string()]);
    }
    args.extend(cluster_args(map, true).into_iter().filter(|a| a != "--kube-context"));
    Ok(exec(state, "helm", args, true, true)?.map(|o| o.stdout).unwrap_or_default())
}

fn helm_lint(state: &RunState, chart: &str) -> RhaiResultOf<Map> {
    let out = exec(state, "helm", vec!["lint".into(), chart.into()], true, false)?;
    let mut m = Map::new();
    m.insert("ok".into(), true.into());
    m.insert("output".into(), out.map(|o| o.stdout).unwrap_or_default().into());
    Ok(m)
}

fn helm_package(state: &RunState, chart: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut args = vec!["package".to_string(), chart.to_string()];
    for (k, v) in map {
        match k.as_str() {
            "destination" => args.extend(["--destination".to_string(), v.to_string()]),
            "version" => args.extend(["--version".to_string(), v.to_string()]),
            "app_version" => args.extend(["--app-version".to_string(), v.to_string()]),
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!(
                    "unknown helm::package_chart option `{other}`; the options are: destination, version, app_version"
                ),
                ))
            }
        }
    }
    let out = exec(state, "helm", args, false, false)?;
    let mut m = Map::new();
    m.insert("dry_run".into(), out.is_none().into());
    // "Successfully packaged chart and saved it to: /path/app-0.1.0.tgz";
    // under --dry-run nothing is saved and the path is empty.
    let path = out
        .and_then(|o| o.stdout.lines().find_map(|l| l.split_once("saved it to: ").map(|(_, p)| p.trim().to_string())))
        .unwrap_or_default();
    m.insert("path".into(), path.into());
    Ok(m)
}

fn helm_push(state: &RunState, package: &str, remote: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut args = vec!["push".to_string(), package.to_string(), remote.to_string()];
    for (k, v) in map {
        match k.as_str() {
            "plain_http" => {
                if v.as_bool().unwrap_or(false) {
                    args.push("--plain-http".into());
                }
            }
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown helm::push option `{other}`; the option is: plain_http"),
                ))
            }
        }
    }
    let out = exec(state, "helm", args, false, false)?;
    let mut m = Map::new();
    m.insert("dry_run".into(), out.is_none().into());
    // Under --dry-run nothing is pushed: both are empty.
    let text = out.map(|o| format!("{}\n{}", o.stdout, o.stderr)).unwrap_or_default();
    let find = |key: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    m.insert("pushed".into(), find("Pushed:").into());
    m.insert("digest".into(), find("Digest:").into());
    Ok(m)
}

// ---- kubectl ----

fn kubectl(
    state: &RunState,
    mut args: Vec<String>,
    map: &Map,
    read_only: bool,
    quiet: bool,
) -> RhaiResultOf<Option<crate::process::Outcome>> {
    args.extend(cluster_args(map, false));
    exec(state, "kubectl", args, read_only, quiet)
}

fn k_apply(state: &RunState, path: &str, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["server_side"], "kubectl::apply")?;
    let mut args = vec!["apply".to_string(), "--filename".into(), path.to_string()];
    if map.get("server_side").and_then(|v| v.as_bool().ok()).unwrap_or(false) {
        args.push("--server-side".into());
    }
    Ok(done(kubectl(state, args, map, false, false)?))
}

fn k_get(state: &RunState, kind: &str, name: Option<&str>, map: &Map) -> RhaiResultOf<Dynamic> {
    check_keys(map, &["selector"], "kubectl::get")?;
    let mut args = vec!["get".to_string(), kind.to_string()];
    if let Some(n) = name {
        args.push(n.to_string());
    }
    if let Some(s) = map.get("selector") {
        args.extend(["--selector".to_string(), s.to_string()]);
    }
    args.extend(["--output".to_string(), "json".into()]);
    json_result(kubectl(state, args, map, true, true)?)
}

fn k_rollout(state: &RunState, verb: &str, target: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut args = vec!["rollout".to_string(), verb.to_string(), target.to_string()];
    if verb == "status" {
        check_keys(map, &["timeout"], "kubectl::rollout_status")?;
        if let Some(t) = map.get("timeout") {
            args.push(format!("--timeout={t}"));
        }
    } else {
        check_keys(map, &["to_revision"], "kubectl::rollout_undo")?;
        if let Some(r) = map.get("to_revision") {
            args.push(format!("--to-revision={r}"));
        }
    }
    Ok(done(kubectl(state, args, map, verb == "status", false)?))
}

fn k_set_image(state: &RunState, target: &str, container: &str, image: &str, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &[], "kubectl::set_image")?;
    Ok(done(kubectl(
        state,
        vec!["set".into(), "image".into(), target.into(), format!("{container}={image}")],
        map,
        false,
        false,
    )?))
}

fn k_patch(state: &RunState, kind: &str, name: &str, patch: &Map, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["type"], "kubectl::patch")?;
    let body = serde_json::to_string(&Dynamic::from_map(patch.clone()))
        .map_err(|e| failure(FailureKind::Usage, format!("the patch cannot be sent as JSON: {e}")))?;
    let kind_of_patch = map.get("type").map_or_else(|| "merge".to_string(), ToString::to_string);
    let args = vec!["patch".into(), kind.into(), name.into(), "--type".into(), kind_of_patch, "--patch".into(), body];
    Ok(done(kubectl(state, args, map, false, false)?))
}

fn k_annotate(state: &RunState, kind: &str, name: &str, annotations: &Map, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["overwrite"], "kubectl::annotate")?;
    let mut args = vec!["annotate".to_string(), kind.to_string(), name.to_string()];
    for (k, v) in annotations {
        if v.is_unit() {
            args.push(format!("{k}-"));
        } else {
            args.push(format!("{k}={v}"));
        }
    }
    if map.get("overwrite").and_then(|v| v.as_bool().ok()).unwrap_or(true) {
        args.push("--overwrite".into());
    }
    Ok(done(kubectl(state, args, map, false, false)?))
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut h = Module::new();
    const UPGRADE: &str = "`helm upgrade --install RELEASE CHART`: options `install` (true), `wait`, `atomic`,\n`timeout`, `namespace`, `values` (files), `set` (map; nested maps become a.b=v), `version`,\n`create_namespace`, `context`, `kubeconfig`.\n```rhai\nhelm::upgrade(\"checkout\", \"charts/checkout\", #{ set: #{ image: #{ tag: v } }, wait: true, atomic: true });\n```";
    for with_options in [false, true] {
        let s = state.clone();
        if with_options {
            module_func(
                &mut h,
                "upgrade",
                &["release: &str", "chart: &str", "options: Map", "Map"],
                UPGRADE,
                move |r: &str, c: &str, o: Map| helm_upgrade(&s, r, c, &o),
            );
        } else {
            module_func(
                &mut h,
                "upgrade",
                &["release: &str", "chart: &str", "Map"],
                UPGRADE,
                move |r: &str, c: &str| helm_upgrade(&s, r, c, &Map::new()),
            );
        }
    }
    let s = state.clone();
    module_func(
        &mut h,
        "rollback",
        &["release: &str", "Map"],
        "`helm rollback RELEASE` to the previous revision.\n```rhai\nhelm::rollback(\"checkout\");\n```",
        move |r: &str| helm_rollback(&s, r, None, &Map::new()),
    );
    let s = state.clone();
    module_func(&mut h, "rollback", &["release: &str", "revision: i64", "options: Map", "Map"], "`helm rollback RELEASE REVISION` with `wait`, `timeout` and the cluster options.\n```rhai\nhelm::rollback(\"checkout\", 3, #{ namespace: \"shop\" });\n```", move |r: &str, rev: i64, o: Map| helm_rollback(&s, r, Some(rev), &o));
    for (verb, doc) in [
        ("history", "`helm history RELEASE -o json`: an array of `#{ revision, status, chart, app_version, description }`.\n```rhai\nlet revs = helm::history(\"checkout\");\n```"),
        ("status", "`helm status RELEASE -o json`, parsed.\n```rhai\nlet st = helm::status(\"checkout\");\ninfo(st.info.status);\n```"),
    ] {
        let s = state.clone();
        module_func(&mut h, verb, &["release: &str", "?"], doc, move |r: &str| helm_read(&s, verb, r, &Map::new()));
        let s = state.clone();
        module_func(&mut h, verb, &["release: &str", "options: Map", "?"], doc, move |r: &str, o: Map| helm_read(&s, verb, r, &o));
    }
    let s = state.clone();
    module_func(&mut h, "template", &["release: &str", "chart: &str", "options: Map", "String"], "`helm template` (runs under --dry-run): the rendered manifests. Options `values`, `set`, `version`.\n```rhai\nlet manifests = helm::template(\"checkout\", \"charts/checkout\", #{ set: #{ replicas: 3 } });\n```", move |r: &str, c: &str, o: Map| helm_template(&s, r, c, &o));
    let s = state.clone();
    module_func(
        &mut h,
        "lint",
        &["chart: &str", "Map"],
        "`helm lint`; fails with helm's findings.\n```rhai\nhelm::lint(\"charts/checkout\");\n```",
        move |c: &str| helm_lint(&s, c),
    );
    let s = state.clone();
    // `package` is a reserved word in Rhai, hence `package_chart`.
    module_func(&mut h, "package_chart", &["chart: &str", "options: Map", "Map"], "`helm package` (named so because `package` is reserved in Rhai): `#{ path }`. Options `destination`, `version`, `app_version`.\n```rhai\nlet pkg = helm::package_chart(\"charts/checkout\", #{ destination: \"dist\" });\n```", move |c: &str, o: Map| helm_package(&s, c, &o));
    let s = state.clone();
    module_func(&mut h, "push", &["package: &str", "remote: &str", "options: Map", "Map"], "`helm push PACKAGE oci://...`: `#{ pushed, digest }`. Option `plain_http` for a registry without TLS.\n```rhai\nhelm::push(pkg.path, \"oci://registry.local/charts\", #{});\n```", move |p: &str, r: &str, o: Map| helm_push(&s, p, r, &o));
    engine.register_static_module("helm", h.into());

    let mut k = Module::new();
    let s = state.clone();
    module_func(&mut k, "apply", &["path: &str", "options: Map", "Map"], "`kubectl apply -f PATH` (a file, a folder or `-`). Options `server_side` and the cluster options.\n```rhai\nkubectl::apply(\"k8s/production\", #{ namespace: \"shop\" });\n```", move |p: &str, o: Map| k_apply(&s, p, &o));
    let s = state.clone();
    module_func(&mut k, "get", &["kind: &str", "name: &str", "options: Map", "?"], "`kubectl get KIND NAME -o json`, parsed.\n```rhai\nlet d = kubectl::get(\"deployment\", \"checkout\", #{ namespace: \"shop\" });\n```", move |kind: &str, n: &str, o: Map| k_get(&s, kind, Some(n), &o));
    let s = state.clone();
    module_func(&mut k, "get", &["kind: &str", "options: Map", "?"], "`kubectl get KIND -o json` (a List), parsed. Option `selector`.\n```rhai\nlet pods = kubectl::get(\"pods\", #{ selector: \"app=checkout\" }).items;\n```", move |kind: &str, o: Map| k_get(&s, kind, None, &o));
    let s = state.clone();
    module_func(&mut k, "rollout_status", &["target: &str", "options: Map", "Map"], "`kubectl rollout status TARGET` (e.g. deployment/checkout) with `timeout`; fails when it does not roll out.\n```rhai\nkubectl::rollout_status(\"deployment/checkout\", #{ timeout: \"5m\" });\n```", move |t: &str, o: Map| k_rollout(&s, "status", t, &o));
    let s = state.clone();
    module_func(&mut k, "rollout_undo", &["target: &str", "options: Map", "Map"], "`kubectl rollout undo TARGET`, optionally `to_revision`.\n```rhai\nkubectl::rollout_undo(\"deployment/checkout\", #{});\n```", move |t: &str, o: Map| k_rollout(&s, "undo", t, &o));
    let s = state.clone();
    module_func(&mut k, "set_image", &["target: &str", "container: &str", "image: &str", "options: Map", "Map"], "`kubectl set image TARGET CONTAINER=IMAGE`.\n```rhai\nkubectl::set_image(\"deployment/checkout\", \"app\", `registry.local/checkout:${v}`, #{});\n```", move |t: &str, c: &str, i: &str, o: Map| k_set_image(&s, t, c, i, &o));
    let s = state.clone();
    module_func(&mut k, "patch", &["kind: &str", "name: &str", "patch: Map", "options: Map", "Map"], "`kubectl patch` with a map as the patch (`type`: merge by default, strategic or json).\n```rhai\nkubectl::patch(\"deployment\", \"checkout\", #{ spec: #{ replicas: 5 } }, #{});\n```", move |kind: &str, n: &str, p: Map, o: Map| k_patch(&s, kind, n, &p, &o));
    let s = state.clone();
    module_func(&mut k, "annotate", &["kind: &str", "name: &str", "annotations: Map", "options: Map", "Map"], "`kubectl annotate` (overwriting unless `overwrite: false`); a `()` value removes the key.\n```rhai\nkubectl::annotate(\"deployment\", \"checkout\", #{ \"deploy/version\": v }, #{});\n```", move |kind: &str, n: &str, a: Map, o: Map| k_annotate(&s, kind, n, &a, &o));
    engine.register_static_module("kubectl", k.into());
}
