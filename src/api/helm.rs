//! `helm::`: releases and charts through the helm CLI, with the cluster
//! options on every call. Reads (status, history, template, lint) run
//! under --dry-run.

use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str, Map};
use serde::Serialize;

use super::cluster::{cluster_options, done, exec, json_result, Cluster, HELM};
use super::options::{flag, List, Text};
use super::registration::{docs, Api};
use super::values::to_map;
use crate::failure::RhaiResultOf;
use crate::services::Services;

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

/// `--values FILE` and `--set key=value` from the `values` and `set` options.
fn values_args(values: &List, set: Option<&Dynamic>, args: &mut Vec<String>) {
    for f in &values.0 {
        args.extend(["--values".to_string(), f.clone()]);
    }
    if let Some(s) = set {
        let mut pairs = Vec::new();
        set_pairs("", s, &mut pairs);
        for p in pairs {
            args.extend(["--set".to_string(), p]);
        }
    }
}

cluster_options! {
    struct UpgradeOptions {
        install: Option<bool>,
        wait: bool,
        atomic: bool,
        timeout: Option<Text>,
        values: List,
        set: Option<Dynamic>,
        version: Option<Text>,
        create_namespace: bool,
    }
}

fn upgrade(services: &Arc<Services>, release: Str, chart: Str, o: UpgradeOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["upgrade".to_string(), release.to_string(), chart.to_string()];
    for (on, name) in [
        (o.install.unwrap_or(true), "--install"),
        (o.wait, "--wait"),
        (o.atomic, "--atomic"),
        (o.create_namespace, "--create-namespace"),
    ] {
        if on {
            args.push(name.into());
        }
    }
    flag(&mut args, "--timeout", o.timeout.as_ref());
    flag(&mut args, "--version", o.version.as_ref());
    values_args(&o.values, o.set.as_ref(), &mut args);
    done(HELM.exec(services, args, &o.cluster(), false, false)?)
}

cluster_options! {
    struct RollbackOptions {
        wait: bool,
        timeout: Option<Text>,
    }
}

fn rollback(services: &Arc<Services>, release: &str, revision: Option<i64>, o: &RollbackOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["rollback".to_string(), release.to_string()];
    if let Some(r) = revision {
        args.push(r.to_string());
    }
    if o.wait {
        args.push("--wait".into());
    }
    flag(&mut args, "--timeout", o.timeout.as_ref());
    done(HELM.exec(services, args, &o.cluster(), false, false)?)
}

cluster_options! {
    struct ReadOptions {}
}

fn read(services: &Arc<Services>, verb: &str, release: &str, o: &ReadOptions) -> RhaiResultOf<Dynamic> {
    let args = vec![verb.to_string(), release.to_string(), "--output".into(), "json".into()];
    json_result(HELM.exec(services, args, &o.cluster(), true, true)?)
}

cluster_options! {
    struct TemplateOptions {
        values: List,
        set: Option<Dynamic>,
        version: Option<Text>,
    }
}

fn template(services: &Arc<Services>, release: Str, chart: Str, o: TemplateOptions) -> RhaiResultOf<String> {
    let mut args = vec!["template".to_string(), release.to_string(), chart.to_string()];
    values_args(&o.values, o.set.as_ref(), &mut args);
    flag(&mut args, "--version", o.version.as_ref());
    // Rendering talks to no cluster: the context is not passed on.
    let cluster = Cluster { context: None, ..o.cluster() };
    Ok(HELM.exec(services, args, &cluster, true, true)?.map(|o| o.stdout).unwrap_or_default())
}

#[derive(Serialize)]
struct Linted {
    ok: bool,
    output: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PackageOptions {
    app_version: Option<Text>,
    destination: Option<Text>,
    version: Option<Text>,
}

#[derive(Serialize)]
struct Packaged {
    dry_run: bool,
    path: String,
}

fn package(services: &Arc<Services>, chart: Str, o: PackageOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["package".to_string(), chart.to_string()];
    flag(&mut args, "--app-version", o.app_version.as_ref());
    flag(&mut args, "--destination", o.destination.as_ref());
    flag(&mut args, "--version", o.version.as_ref());
    let out = exec(services, "helm", args, false, false)?;
    let dry_run = out.is_none();
    // "Successfully packaged chart and saved it to: /path/app-0.1.0.tgz";
    // under --dry-run nothing is saved and the path is empty.
    let path = out
        .and_then(|o| o.stdout.lines().find_map(|l| l.split_once("saved it to: ").map(|(_, p)| p.trim().to_string())))
        .unwrap_or_default();
    to_map(&Packaged { dry_run, path })
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PushOptions {
    plain_http: bool,
}

#[derive(Serialize)]
struct ChartPush {
    dry_run: bool,
    pushed: String,
    digest: String,
}

fn push(services: &Arc<Services>, package: Str, remote: Str, o: PushOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["push".to_string(), package.to_string(), remote.to_string()];
    if o.plain_http {
        args.push("--plain-http".into());
    }
    let out = exec(services, "helm", args, false, false)?;
    let dry_run = out.is_none();
    // Under --dry-run nothing is pushed: both are empty.
    let text = out.map(|o| format!("{}\n{}", o.stdout, o.stderr)).unwrap_or_default();
    let find = |key: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    to_map(&ChartPush { dry_run, pushed: find("Pushed:"), digest: find("Digest:") })
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts2(
        "upgrade",
        &["release: &str", "chart: &str", "Map"],
        docs! {
            /// `helm upgrade --install RELEASE CHART`: options `install` (true), `wait`, `atomic`,
            /// `timeout`, `namespace`, `values` (files), `set` (map; nested maps become a.b=v), `version`,
            /// `create_namespace`, `context`, `kubeconfig`.
            /// ```rhai
            /// helm::upgrade("checkout", "charts/checkout", #{ set: #{ image: #{ tag: v } }, wait: true, atomic: true });
            /// ```
        },
        upgrade,
    );
    api.func1(
        "rollback",
        &["release: &str", "Map"],
        docs! {
            /// `helm rollback RELEASE` to the previous revision.
            /// ```rhai
            /// helm::rollback("checkout");
            /// ```
        },
        |svc, release: Str| rollback(svc, &release, None, &RollbackOptions::default()),
    );
    api.opts_only2(
        "rollback",
        &["release: &str", "revision: i64", "Map"],
        docs! {
            /// `helm rollback RELEASE REVISION` with `wait`, `timeout` and the cluster options.
            /// ```rhai
            /// helm::rollback("checkout", 3, #{ namespace: "shop" });
            /// ```
        },
        |svc, release: Str, revision: i64, o: RollbackOptions| rollback(svc, &release, Some(revision), &o),
    );
    api.opts1(
        "history",
        &["release: &str", "?"],
        docs! {
            /// `helm history RELEASE -o json`: an array of `#{ revision, status, chart, app_version, description }`.
            /// ```rhai
            /// let revs = helm::history("checkout");
            /// ```
        },
        |svc, release: Str, o: ReadOptions| read(svc, "history", &release, &o),
    );
    api.opts1(
        "status",
        &["release: &str", "?"],
        docs! {
            /// `helm status RELEASE -o json`, parsed.
            /// ```rhai
            /// let st = helm::status("checkout");
            /// info(st.info.status);
            /// ```
        },
        |svc, release: Str, o: ReadOptions| read(svc, "status", &release, &o),
    );
    api.opts_only2(
        "template",
        &["release: &str", "chart: &str", "String"],
        docs! {
            /// `helm template` (runs under --dry-run): the rendered manifests. Options `values`, `set`, `version`.
            /// ```rhai
            /// let manifests = helm::template("checkout", "charts/checkout", #{ set: #{ replicas: 3 } });
            /// ```
        },
        template,
    );
    api.func1(
        "lint",
        &["chart: &str", "Map"],
        docs! {
            /// `helm lint`; fails with helm's findings.
            /// ```rhai
            /// helm::lint("charts/checkout");
            /// ```
        },
        |svc, chart: Str| {
            let out = exec(svc, "helm", vec!["lint".into(), chart.to_string()], true, false)?;
            to_map(&Linted { ok: true, output: out.map(|o| o.stdout).unwrap_or_default() })
        },
    );
    // `package` is a reserved word in Rhai, hence `package_chart`.
    api.opts_only1(
        "package_chart",
        &["chart: &str", "Map"],
        docs! {
            /// `helm package` (named so because `package` is reserved in Rhai): `#{ path }`. Options `destination`, `version`, `app_version`.
            /// ```rhai
            /// let pkg = helm::package_chart("charts/checkout", #{ destination: "dist" });
            /// ```
        },
        package,
    );
    api.opts_only2(
        "push",
        &["package: &str", "remote: &str", "Map"],
        docs! {
            /// `helm push PACKAGE oci://...`: `#{ pushed, digest }`. Option `plain_http` for a registry without TLS.
            /// ```rhai
            /// helm::push(pkg.path, "oci://registry.local/charts", #{});
            /// ```
        },
        push,
    );
}
