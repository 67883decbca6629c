//! `helm::` and `kubectl::`. The real helm binary for what needs no cluster
//! (template, lint, package, OCI push to a real registry); the stand-ins in
//! tests/standins for what needs a Kubernetes API server.

use crate::support::daemons::{require, Registry};
use crate::support::{named, repo_root, Playbook, Run};

const CHART_YAML: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const VALUES: &str = "image:\n  repository: registry.local/web\n  tag: v1\nreplicas: 2\n";
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: { app: {{ .Release.Name }} }
  template:
    metadata:
      labels: { app: {{ .Release.Name }} }
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

fn chart(p: Playbook) -> Playbook {
    p.file("charts/web/Chart.yaml", CHART_YAML)
        .file("charts/web/values.yaml", VALUES)
        .file("charts/web/templates/deployment.yaml", DEPLOYMENT)
}

/// Run with the stand-ins first on PATH and their state in the playbook's folder.
fn run_with_standins(p: &Playbook, extra: &[&str]) -> Run {
    let path =
        format!("{}:{}", repo_root().join("tests/standins").display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = p.command("run");
    cmd.args(["--log-format", "json"])
        .args(extra)
        .env("PATH", path)
        .env("CAPSTAN_STANDIN_STATE", p.path("cluster"))
        .env("KUBECONFIG", p.path("kubeconfig"));
    Run::from(cmd.output().unwrap())
}

fn events(r: &Run) -> serde_json::Map<String, serde_json::Value> {
    named(&r.events(), "event").iter().map(|e| (e["type"].as_str().unwrap().to_string(), e["data"].clone())).collect()
}

fn calls(p: &Playbook) -> Vec<Vec<String>> {
    std::fs::read_to_string(p.path("cluster/calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
        .collect()
}

#[test]
fn helm_template_lint_package_and_oci_push_with_the_real_binary() {
    require("helm");
    let registry = Registry::start();
    let p = chart(Playbook::new(&format!(
        r#"phase("do", || {{
            let manifests = helm::template("shop", "charts/web", #{{ set: #{{ image: #{{ tag: "v7" }}, replicas: 4 }} }});
            let docs = yaml::parse_all(manifests);
            helm::lint("charts/web");
            let pkg = helm::package_chart("charts/web", #{{ destination: "dist" }});
            let pushed = helm::push(pkg.path, "oci://{reg}/charts", #{{ plain_http: true }});
            event("helm", #{{ image: docs[0].spec.template.spec.containers[0].image, replicas: docs[0].spec.replicas, pkg: pkg.path, pushed: pushed.pushed, digest: pushed.digest }});
        }});"#,
        reg = registry.addr
    )));
    let r = Run::from(
        p.command("run")
            .args(["--log-format", "json"])
            .env("HELM_CONFIG_HOME", p.path("helm-config"))
            .env("HELM_CACHE_HOME", p.path("helm-cache"))
            .output()
            .unwrap(),
    );
    r.code(0);
    let e = &events(&r)["helm"];
    assert_eq!(e["image"], "registry.local/web:v7");
    assert_eq!(e["replicas"], 4);
    assert!(e["pkg"].as_str().unwrap().ends_with("dist/web-0.1.0.tgz"), "{e}");
    assert_eq!(e["pushed"], format!("{}/charts/web:0.1.0", registry.addr));
    assert!(e["digest"].as_str().unwrap().starts_with("sha256:"), "{e}");
    let (status, _) = crate::support::daemons::http_get(&format!("{}/v2/charts/web/tags/list", registry.url));
    assert_eq!(status, 200);
}

#[test]
fn helm_upgrade_history_rollback_produce_helms_revisions() {
    require("helm");
    let p = chart(Playbook::new(
        r#"
        phase("do", || {
            helm::upgrade("web", "charts/web", #{ namespace: "shop", set: #{ image: #{ tag: "v1" } }, wait: true });
            helm::upgrade("web", "charts/web", #{ namespace: "shop", set: #{ image: #{ tag: "v2" } }, atomic: true, timeout: "2m" });
            helm::rollback("web", 1, #{ namespace: "shop" });
            let h = helm::history("web", #{ namespace: "shop" });
            let st = helm::status("web", #{ namespace: "shop" });
            event("helm", #{ revisions: h.map(|r| `${r.revision}:${r.status}:${r.description}`), status: st.info.status, version: st.version, tag: st.config.image.tag });
        });
        "#,
    ));
    let r = run_with_standins(&p, &[]);
    r.code(0);
    let e = &events(&r)["helm"];
    assert_eq!(
        e["revisions"],
        serde_json::json!([
            "1:superseded:Install complete",
            "2:superseded:Upgrade complete",
            "3:deployed:Rollback to 1"
        ])
    );
    assert_eq!(e["status"], "deployed");
    assert_eq!(e["version"], 3);
    assert_eq!(e["tag"], "v1");
    let argv = calls(&p);
    assert_eq!(
        argv[1],
        [
            "upgrade",
            "web",
            "charts/web",
            "--install",
            "--atomic",
            "--timeout",
            "2m",
            "--set",
            "image.tag=v2",
            "--namespace",
            "shop"
        ]
    );
}

#[test]
fn failed_atomic_upgrade_fails_the_step_and_undo_rolls_back() {
    require("helm");
    let p = chart(Playbook::new(
        r#"
        phase("do", || {
            helm::upgrade("web", "charts/web", #{ set: #{ image: #{ tag: "v1" } } });
            step("upgrade", #{ undo: || helm::rollback("web", 1, #{}) }, || helm::upgrade("web", "charts/web", #{ set: #{ image: #{ tag: "v2" } } }));
            step("bad upgrade", || helm::upgrade("web", "charts/web", #{ set: #{ failDeploy: true }, atomic: true, wait: true }));
        });
        "#,
    ));
    let r = run_with_standins(&p, &[]);
    r.code(1);
    assert!(r.stderr.contains("UPGRADE FAILED"), "helm's own words reach the error: {}", r.stderr);
    let p2 =
        chart(Playbook::new(r#"phase("do", || event("h", #{ h: helm::history("web").map(|r| r.description) }));"#));
    std::fs::rename(p.path("cluster"), p2.path("cluster")).unwrap();
    let after = run_with_standins(&p2, &[]);
    after.code(0);
    let h = &events(&after)["h"]["h"];
    // --atomic rolled the failed revision back to 2 itself; then the undo of
    // the completed upgrade step went back to revision 1.
    assert_eq!(h.as_array().unwrap()[3], "Rollback to 2", "{h}");
    assert_eq!(h.as_array().unwrap().last().unwrap(), "Rollback to 1", "the undo rolled back: {h}");
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.local/web:v1\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web-canary\nspec: {}\n";

#[test]
fn kubectl_apply_get_set_image_rollout_patch_annotate() {
    let p = Playbook::new(
        r#"
        let o = #{ namespace: "shop", context: "prod" };
        phase("do", || {
            kubectl::apply("k8s/web.yaml", o);
            kubectl::set_image("deployment/web", "app", "registry.local/web:v2", o);
            kubectl::rollout_status("deployment/web", #{ namespace: "shop", context: "prod", timeout: "30s" });
            kubectl::patch("deployment", "web", #{ spec: #{ replicas: 5 } }, o);
            kubectl::annotate("deployment", "web", #{ "deploy/version": "v2" }, o);
            traffic::ingress_nginx("web-canary", 25, o);
            let d = kubectl::get("deployment", "web", o);
            let ing = kubectl::get("ingress", "web-canary", o);
            kubectl::rollout_undo("deployment/web", o);
            let back = kubectl::get("deployment", "web", o);
            event("k8s", #{
                image: d.spec.template.spec.containers[0].image, replicas: d.spec.replicas,
                note: d.metadata.annotations["deploy/version"],
                canary: ing.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"],
                undone: back.spec.template.spec.containers[0].image,
            });
            step("broken rollout", || {
                kubectl::set_image("deployment/web", "app", "registry.local/web:broken", o);
                kubectl::rollout_status("deployment/web", #{ namespace: "shop", context: "prod", timeout: "1s" });
            });
        });
        "#,
    )
    .file("k8s/web.yaml", DEPLOY);
    let r = run_with_standins(&p, &[]);
    r.code(1);
    let e = &events(&r)["k8s"];
    assert_eq!(e["image"], "registry.local/web:v2");
    assert_eq!(e["replicas"], 5);
    assert_eq!(e["note"], "v2");
    assert_eq!(e["canary"], "25");
    assert_eq!(e["undone"], "registry.local/web:v1");
    assert!(r.stderr.contains("timed out waiting for the condition"), "{}", r.stderr);
    let argv = calls(&p);
    assert!(
        argv.contains(
            &[
                "annotate",
                "ingress",
                "web-canary",
                "nginx.ingress.kubernetes.io/canary=true",
                "nginx.ingress.kubernetes.io/canary-weight=25",
                "--overwrite",
                "--context",
                "prod",
                "--namespace",
                "shop"
            ]
            .map(String::from)
            .to_vec()
        ),
        "{argv:?}"
    );
}

#[test]
fn kube_mutations_are_skipped_in_dry_run() {
    let p = Playbook::new(
        r#"phase("do", || {
            kubectl::apply("k8s/web.yaml", #{});
            helm::upgrade("web", "charts/web");
        });"#,
    )
    .file("k8s/web.yaml", DEPLOY);
    let r = run_with_standins(&p, &["--dry-run"]);
    r.code(0);
    assert!(r.stdout.contains("would run: kubectl apply --filename k8s/web.yaml"), "{}", r.stdout);
    assert!(r.stdout.contains("would run: helm upgrade web charts/web --install"), "{}", r.stdout);
    assert!(calls(&p).is_empty(), "nothing reached the cluster");
}

#[test]
fn a_failed_kubectl_call_carries_program_args_exit_code_and_stderr_as_data() {
    let p = Playbook::new(
        r#"
        let o = #{ namespace: "shop", context: "prod" };
        phase("do", || {
            kubectl::apply("k8s/web.yaml", o);
            kubectl::set_image("deployment/web", "app", "registry.local/web:broken", o);
            try {
                kubectl::rollout_status("deployment/web", #{ namespace: "shop", context: "prod", timeout: "1s" });
            } catch (e) {
                event("failed", #{ kind: e.kind, message: e.message, data: e.data });
            }
        });
        "#,
    )
    .file("k8s/web.yaml", DEPLOY);
    let r = run_with_standins(&p, &[]);
    r.code(0);
    let e = &events(&r)["failed"];
    assert_eq!(e["kind"], "command_failed");
    assert_eq!(e["data"]["program"], "kubectl");
    let args: Vec<&str> = e["data"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.starts_with(&["rollout", "status", "deployment/web"]), "{args:?}");
    assert_eq!(e["data"]["exit_code"], 1, "{e}");
    let stderr = e["data"]["stderr"].as_str().unwrap();
    assert!(stderr.contains("timed out waiting for the condition"), "{e}");
    assert!(e["message"].as_str().unwrap().ends_with(stderr), "the message keeps the tool's words: {e}");
}
