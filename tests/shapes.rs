//! Dry-run results keep the real result's shape. For every primitive that
//! `capstan doc --json` marks as changing the world, the same call is made
//! for real (real docker, registry, helm, terraform, `HAProxy`, nginx, sshd,
//! a loopback webhook receiver; the stand-ins where a cluster is needed) and
//! under --dry-run, and both results must have the same type and keys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Command;

use serde_json::Value;

use crate::support::daemons::{require, shared_dockerd, Backend, Haproxy, Nginx, Registry, Sshd};
use crate::support::http::Server;
use crate::support::{capstan_bin, named, repo_root, Playbook, Run};

/// The functions `capstan doc --json` marks as changing the world.
fn mutating_functions() -> BTreeSet<String> {
    let out = Command::new(capstan_bin()).args(["doc", "--json"]).output().expect("capstan doc");
    let doc: Vec<Value> = serde_json::from_slice(&out.stdout).expect("doc --json is JSON");
    doc.iter()
        .filter(|f| f["effect"].as_str().is_some_and(|e| e != "read-only"))
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

const CHART_YAML: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const VALUES: &str = "image:\n  tag: v1\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n";
const MANIFESTS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.local/web:v1\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web-canary\nspec: {}\n";
const TERRAFORM: &str = "resource \"terraform_data\" \"app\" {\n  input = \"v1\"\n}\n";

/// What each call's result looks like: its type and, for a map, its keys.
fn shapes(r: &Run) -> BTreeMap<String, (String, BTreeSet<String>)> {
    r.code(0);
    named(&r.events(), "event")
        .iter()
        .filter(|e| e["type"] == "shape")
        .map(|e| {
            let d = &e["data"];
            let keys = d["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
            (d["name"].as_str().unwrap().to_string(), (d["type"].as_str().unwrap().to_string(), keys))
        })
        .collect()
}

#[test]
fn every_mutating_primitive_keeps_its_result_shape_under_dry_run() {
    let _exclusive = crate::support::exclusive();
    let mutating = mutating_functions();
    for expected in ["run", "sh", "docker::build", "docker::push", "helm::upgrade", "kubectl::apply", "fs::write"] {
        assert!(mutating.contains(expected), "`capstan doc --json` marks {expected} as mutating: {mutating:?}");
    }

    let dockerd = shared_dockerd().expect("dockerd must run here; the reason is printed above");
    let registry = Registry::start();
    let hook = Server::start(Vec::new());
    let backend = Backend::ok("v1");
    let haproxy = Haproxy::start(&[("v1", backend.port)]);
    let nginx = Nginx::start(&[(backend.port, 1)]);
    let sshd = Sshd::start();
    let nginx_args: Vec<String> = nginx.conf_args().iter().map(|a| format!("{a:?}")).collect();
    let ssh_opts: Vec<String> =
        sshd.ssh_options().chunks(2).filter(|c| c[0] == "-o").map(|c| format!("{:?}", c[1])).collect();
    let image = format!("{}/capstan/shape:v1", registry.addr);
    let container = format!("capstan-shape-{}", std::process::id());

    // In order: later calls use what earlier ones made (a built image, a release).
    let scenarios: Vec<(&str, String)> = vec![
        ("run", r#"run(["true"])"#.into()),
        ("sh", r#"sh("true")"#.into()),
        ("fs::write", r#"fs::write("out/version.txt", "v1")"#.into()),
        ("report::write", r#"report::write("reports")"#.into()),
        ("compliance::sarif", r#"compliance::sarif([], "reports/capstan.sarif")"#.into()),
        ("notify::webhook", format!(r#"notify::webhook("{}", #{{ version: "v1" }})"#, hook.url)),
        ("notify::slack", format!(r#"notify::slack("{}", "v1 is live")"#, hook.url)),
        ("terraform::fmt", r#"{ terraform::init("tf"); terraform::fmt("tf", #{ write: true }) }"#.into()),
        ("terraform::apply", r#"terraform::apply("tf")"#.into()),
        (
            "terraform::scaffold",
            r#"terraform::scaffold("infra", #{ provider: "none", envs: ["dev"], modules: ["net"] })"#.into(),
        ),
        (
            "traffic::haproxy",
            format!(
                r#"traffic::haproxy(#{{ socket: "{}", backend: "app", weights: #{{ v1: 50 }} }})"#,
                haproxy.socket.display()
            ),
        ),
        (
            "traffic::nginx",
            format!(
                r#"traffic::nginx(#{{ file: "{}", servers: #{{ "127.0.0.1:{}": 2 }}, nginx_args: [{}] }})"#,
                nginx.upstream_file.display(),
                backend.port,
                nginx_args.join(", ")
            ),
        ),
        ("kubectl::apply", r#"kubectl::apply("k8s/web.yaml", #{})"#.into()),
        ("kubectl::set_image", r#"kubectl::set_image("deployment/web", "app", "registry.local/web:v2", #{})"#.into()),
        ("kubectl::patch", r#"kubectl::patch("deployment", "web", #{ spec: #{ replicas: 3 } }, #{})"#.into()),
        ("kubectl::annotate", r#"kubectl::annotate("deployment", "web", #{ "deploy/version": "v2" }, #{})"#.into()),
        ("kubectl::rollout_undo", r#"kubectl::rollout_undo("deployment/web", #{})"#.into()),
        ("traffic::ingress_nginx", r#"traffic::ingress_nginx("web-canary", 10, #{})"#.into()),
        ("helm::upgrade", r#"helm::upgrade("web", "charts/web", #{ set: #{ image: #{ tag: "v2" } } })"#.into()),
        ("helm::rollback", r#"helm::rollback("web", 1, #{})"#.into()),
        ("helm::package_chart", r#"helm::package_chart("charts/web", #{ destination: "dist" })"#.into()),
        (
            "helm::push",
            format!(r#"helm::push("dist/web-0.1.0.tgz", "oci://{}/charts", #{{ plain_http: true }})"#, registry.addr),
        ),
        ("docker::build", format!(r#"docker::build("app", #{{ tags: ["{image}"] }})"#)),
        ("docker::tag", format!(r#"docker::tag("{image}", "{image}-again")"#)),
        ("docker::push", format!(r#"docker::push("{image}")"#)),
        (
            "docker::run",
            format!(r#"docker::run("{image}", #{{ name: "{container}", network: "none", args: ["sleep", "30"] }})"#),
        ),
        ("docker::stop", format!(r#"docker::stop("{container}")"#)),
        ("docker::rm", format!(r#"docker::rm("{container}")"#)),
        (
            "ssh::run",
            format!(
                r#"ssh::run("127.0.0.1", ["true"], #{{ port: {}, user: "{}", identity: "{}", options: [{}] }})"#,
                sshd.port,
                sshd.user,
                sshd.identity.display(),
                ssh_opts.join(", ")
            ),
        ),
        (
            "ssh::copy",
            format!(
                r#"ssh::copy("127.0.0.1", "k8s/web.yaml", "{}", #{{ port: {}, user: "{}", identity: "{}", options: [{}] }})"#,
                sshd.dir().join("copied.yaml").display(),
                sshd.port,
                sshd.user,
                sshd.identity.display(),
                ssh_opts.join(", ")
            ),
        ),
    ];
    let covered: BTreeSet<String> = scenarios.iter().map(|(n, _)| (*n).to_string()).collect();
    let missing: Vec<&String> = mutating.difference(&covered).collect();
    assert!(missing.is_empty(), "mutating functions without a shape scenario here: {missing:?}");

    let mut body = String::new();
    for (name, call) in scenarios.iter().filter(|(n, _)| mutating.contains(*n)) {
        let _ = writeln!(body, "    shape(\"{name}\", {call});");
    }
    let source = format!(
        "fn shape(name, r) {{\n    let keys = if type_of(r) == \"map\" {{ r.keys() }} else {{ [] }};\n    \
         event(\"shape\", #{{ name: name, type: type_of(r), keys: keys }});\n}}\n\
         phase(\"shapes\", || {{\n{body}}});\n"
    );
    let playbook = |dry: bool| -> Run {
        let p = Playbook::new(&source)
            .file("charts/web/Chart.yaml", CHART_YAML)
            .file("charts/web/values.yaml", VALUES)
            .file("charts/web/templates/deployment.yaml", DEPLOYMENT)
            .file("k8s/web.yaml", MANIFESTS)
            .file("tf/main.tf", TERRAFORM)
            .file("tf/terraformrc", "disable_checkpoint = true\n")
            .file("app/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n");
        std::fs::copy(require("busybox"), p.path("app/busybox")).unwrap();
        let path =
            format!("{}:{}", repo_root().join("tests/standins").display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = p.command("run");
        cmd.args(["--log-format", "json"])
            .env("PATH", path)
            .env("CAPSTAN_STANDIN_STATE", p.path("cluster"))
            .env("KUBECONFIG", p.path("kubeconfig"))
            .env("TF_CLI_CONFIG_FILE", p.path("tf/terraformrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1");
        for (k, v) in dockerd.envs() {
            cmd.env(k, v);
        }
        if dry {
            cmd.arg("--dry-run");
        }
        Run::from(cmd.output().unwrap())
    };
    let real = shapes(&playbook(false));
    let dry = shapes(&playbook(true));
    let _ = Command::new("docker").envs(dockerd.envs()).args(["rm", "--force", &container]).output();

    assert_eq!(real.len(), mutating.len(), "every call ran for real: {real:?}");
    let mut differ = Vec::new();
    for (name, shape) in &real {
        if dry.get(name) != Some(shape) {
            differ.push(format!("{name}: real {shape:?}, dry-run {:?}", dry.get(name)));
        }
        if shape.0 == "map" {
            assert!(shape.1.contains("dry_run"), "{name}'s real result says whether it was a dry run: {shape:?}");
        }
    }
    assert!(differ.is_empty(), "dry-run results differ from the real ones:\n{}", differ.join("\n"));
}
