//! Delivery strategies end to end: real `HAProxy` in front of real app
//! processes (tests/fixtures/app.py) with chosen error rates and latencies.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::daemons::{free_port, http_get, Haproxy, Prometheus};
use crate::support::{named, repo_root, wait_until, Playbook, Run};

/// One version of the app as a real process, killed when dropped.
pub struct App {
    pub port: u16,
    pub child: Child,
}

impl App {
    pub fn start(version: &str, error_rate: f64, latency_ms: u64, jitter_ms: u64) -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .arg(repo_root().join("tests/fixtures/app.py"))
            .args(["--port", &port.to_string(), "--version", version])
            .args([
                "--error-rate",
                &error_rate.to_string(),
                "--latency-ms",
                &latency_ms.to_string(),
                "--jitter-ms",
                &jitter_ms.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the test app");
        let app = Self { port, child };
        assert!(
            wait_until(Duration::from_secs(10), || crate::support::daemons::try_http_get(&app.url()).is_ok()),
            "app {version} did not start"
        );
        app
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The canary playbook used by the tests; `extra` adds canary options.
fn canary_playbook(haproxy: &Haproxy, v1: &App, v2: &App, extra: &str) -> Playbook {
    Playbook::new(&format!(
        r#"
        import "capstan/canary" as canary;
        let sock = "{sock}";
        let v1_pid = {v1pid};
        let v2_pid = {v2pid};
        phase("release", || {{
            canary::run(#{{
                ladder: [5, 25, 50, 100], hold: "600ms", interval: "300ms",
                set_weight: |w| {{
                    let r = traffic::haproxy(#{{ socket: sock, backend: "app", weights: #{{ v1: 100 - w, v2: w }} }});
                    event("weights", #{{ wanted: w, read_back: r.weights }});
                }},
                analyze: || health::probe("{v2url}", #{{ duration: "300ms", concurrency: 4 }}),
                thresholds: #{{ error_rate: 0.01, p99_ms: 200 }},
                promote: || {{ run(["kill", `${{v1_pid}}`]); info("v1 retired"); }},
                rollback: || run(["kill", `${{v2_pid}}`]),
            }} + #{{ {extra} }});
        }});
        on_failure(|e| report::write("reports"));
        "#,
        sock = haproxy.socket.display(),
        v1pid = v1.child.id(),
        v2pid = v2.child.id(),
        v2url = v2.url(),
    ))
}

fn events_of(r: &Run, kind: &str) -> Vec<serde_json::Value> {
    named(&r.events(), "event").iter().filter(|e| e["type"] == kind).map(|e| e["data"].clone()).collect()
}

#[test]
fn healthy_canary_climbs_the_ladder_and_retires_v1() {
    let _exclusive = crate::support::exclusive();
    let (mut v1, mut v2) = (App::start("v1", 0.0, 1, 1), App::start("v2", 0.0, 1, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let r = canary_playbook(&haproxy, &v1, &v2, "").run_json();
    r.code(0);
    let weights: Vec<(i64, i64, i64)> = events_of(&r, "weights")
        .iter()
        .map(|e| {
            (
                e["wanted"].as_i64().unwrap(),
                e["read_back"]["v1"].as_i64().unwrap(),
                e["read_back"]["v2"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights, [(5, 95, 5), (25, 75, 25), (50, 50, 50), (100, 0, 100)]);
    let decisions = events_of(&r, "canary_decision");
    assert_eq!(decisions.len(), 8, "two analyses per rung");
    assert!(decisions.iter().all(|d| d["verdict"] == "pass"));
    assert!(wait_until(Duration::from_secs(5), || !v1.alive()), "v1 was retired");
    assert!(v2.alive());
    assert_eq!(http_get(&haproxy.url()).1.trim(), "v2");
}

#[test]
fn canary_with_errors_is_rolled_back_at_the_first_rung_fast() {
    let _exclusive = crate::support::exclusive();
    let (v1, mut v2) = (App::start("v1", 0.0, 1, 1), App::start("v2", 0.1, 1, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let p = canary_playbook(&haproxy, &v1, &v2, "");
    let r = p.run_json();
    r.code(1);
    let weights: Vec<i64> = events_of(&r, "weights").iter().map(|e| e["wanted"].as_i64().unwrap()).collect();
    assert_eq!(weights, [5, 0], "rolled back at the first rung");
    assert!(haproxy.admin("get weight app/v2").starts_with('0'));
    assert!(wait_until(Duration::from_secs(5), || !v2.alive()), "the canary's process was stopped");
    let rollback = &events_of(&r, "canary_rollback")[0];
    assert_eq!(rollback["rung"], 5);
    let ms = rollback["breach_to_restored_ms"].as_i64().unwrap();
    assert!(ms <= 300 + 1000, "weight 0 came {ms} ms after the failing decision");
    let decision = &events_of(&r, "canary_decision")[0];
    assert_eq!(decision["verdict"], "fail");
    let reason = decision["reason"].as_str().unwrap();
    let rate: f64 = reason
        .strip_prefix("error_rate ")
        .and_then(|r| r.strip_suffix(" > 0.01"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(-1.0);
    assert!((rate - 0.1).abs() < 0.01, "{decision}");
    assert!(r.stderr.contains("canary 5% rolled back: error_rate"), "{}", r.stderr);
    let finished: Vec<_> = named(&r.events(), "step_finished")
        .iter()
        .filter(|e| e["status"] == "failed")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert!(finished.contains(&"canary 5%".to_string()), "{finished:?}");

    // The incident report says which rung, which threshold, the samples and
    // how long traffic took to be restored; `runs show` lists the decision.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reports/report.json")).unwrap()).unwrap();
    let incident = &report["incident"];
    assert_eq!(incident["decision"]["rung"], 5);
    assert_eq!(incident["decision"]["checks"][0]["threshold"], 0.01);
    assert!(incident["decision"]["sample"]["requests"].as_u64().unwrap() > 0);
    assert_eq!(incident["breach_to_restored_ms"].as_i64(), Some(ms));
    let md = std::fs::read_to_string(p.path("reports/report.md")).unwrap();
    assert!(
        md.contains("**Decision:** canary 5%:")
            && md.contains("**Breach to traffic restored:**")
            && md.contains("## Decisions"),
        "{md}"
    );
    let show = Run::from(
        Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    assert!(show.stdout.contains("decisions:\n  ✗ canary 5%: error_rate"), "{}", show.stdout);
}

#[test]
fn slow_canary_is_rolled_back_and_the_record_shows_samples_and_threshold() {
    let _exclusive = crate::support::exclusive();
    let (v1, v2) = (App::start("v1", 0.0, 1, 1), App::start("v2", 0.0, 290, 20));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let r = canary_playbook(&haproxy, &v1, &v2, "").run_json();
    r.code(1);
    let d = &events_of(&r, "canary_decision")[0];
    assert_eq!(d["verdict"], "fail");
    let p99 = d["checks"].as_array().unwrap().iter().find(|c| c["metric"] == "p99_ms").unwrap().clone();
    assert_eq!(p99["threshold"], 200.0);
    assert!(p99["value"].as_f64().unwrap() >= 290.0, "{p99}");
    assert_eq!(p99["ok"], false);
    assert!(d["sample"]["requests"].as_u64().unwrap() > 0, "the raw sample is in the record: {d}");
    assert!(d["sample"]["by_status"]["200"].as_u64().is_some(), "{d}");
    assert_eq!(d["no_data"], "fail");
    assert!(
        d["summary"].as_str().unwrap().contains("p99 ") && d["summary"].as_str().unwrap().contains("> 200ms BREACH"),
        "{d}"
    );
}

#[test]
fn baseline_ratio_decides_relative_to_v1() {
    let _exclusive = crate::support::exclusive();
    for (v1_rate, expected) in [(0.01, 0), (0.002, 1)] {
        let (v1, v2) = (App::start("v1", v1_rate, 0, 1), App::start("v2", 0.01, 0, 1));
        let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
        let extra = format!(
            r#"ladder: [5], thresholds: #{{}}, baseline: || health::probe("{}", #{{ duration: "500ms", concurrency: 4 }}),
               analyze: || health::probe("{}", #{{ duration: "500ms", concurrency: 4 }}), max_ratio_to_baseline: #{{ error_rate: 2.0 }},"#,
            v1.url(),
            v2.url()
        );
        let p = canary_playbook(&haproxy, &v1, &v2, &extra);
        let r = p.run_json();
        r.code(expected);
        let d = &events_of(&r, "canary_decision")[0];
        let check = &d["checks"][0];
        assert_eq!(check["max_ratio"], 2.0);
        assert!(check["baseline"].as_f64().is_some(), "{d}");
    }
}

#[test]
fn no_traffic_fail_and_inconclusive_policies() {
    let (v1, v2) = (App::start("v1", 0.0, 0, 1), App::start("v2", 0.0, 0, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    // The canary gets no traffic: the analysis sees zero requests.
    let quiet = "analyze: || #{ requests: 0, error_rate: 0.0 },";
    let r = canary_playbook(&haproxy, &v1, &v2, &format!("{quiet} no_data: \"fail\",")).run_json();
    r.code(1);
    let d = events_of(&r, "canary_decision");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["verdict"], "fail");
    assert!(d[0]["reason"].as_str().unwrap().contains("no traffic (0 requests); no_data: \"fail\""), "{}", d[0]);

    let r = canary_playbook(&haproxy, &v1, &v2, &format!("{quiet} no_data: \"inconclusive\", inconclusive_limit: 2,"))
        .run_json();
    r.code(1);
    let d = events_of(&r, "canary_decision");
    let verdicts: Vec<&str> = d.iter().map(|x| x["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["inconclusive", "inconclusive", "fail"], "two retries, then it gives up");
    assert!(d[0]["reason"].as_str().unwrap().ends_with("retry 1 of 2"), "{}", d[0]);
    assert!(d[2]["reason"].as_str().unwrap().contains("still inconclusive after 2 retries"), "{}", d[2]);
}

#[test]
fn blue_green_switches_back_on_failed_analysis() {
    let (blue, green) = (App::start("blue", 0.0, 0, 1), App::start("green", 0.2, 0, 1));
    let haproxy = Haproxy::start_weighted(&[("blue", blue.port, 100), ("green", green.port, 0)]);
    let p = Playbook::new(&format!(
        r#"
        import "capstan/blue_green" as blue_green;
        let sock = "{sock}";
        phase("release", || blue_green::run(#{{
            deploy_green: || info("green is already running"),
            healthy: || health::check("{green}").ok,
            switch_to: |color| {{
                let w = if color == "green" {{ #{{ blue: 0, green: 100 }} }} else {{ #{{ blue: 100, green: 0 }} }};
                event("switch", #{{ to: color, weights: traffic::haproxy(#{{ socket: sock, backend: "app", weights: w }}).weights }});
            }},
            analyze: || health::probe("{front}", #{{ duration: "300ms", concurrency: 4 }}),
            thresholds: #{{ error_rate: 0.01 }}, hold: "300ms", interval: "100ms",
        }}));
        "#,
        sock = haproxy.socket.display(),
        green = green.url(),
        front = haproxy.url(),
    ));
    let r = p.run_json();
    r.code(1);
    let switches: Vec<String> = events_of(&r, "switch").iter().map(|e| e["to"].as_str().unwrap().to_string()).collect();
    assert_eq!(switches[..2], ["green", "blue"], "switched, then switched back: {switches:?}");
    assert_eq!(events_of(&r, "blue_green_switch_back").len(), 1);
    assert_eq!(http_get(&haproxy.url()).1.trim(), "blue");
}

#[test]
fn rolling_stops_beyond_max_fail_and_undoes() {
    let p = Playbook::new(
        r#"
        import "capstan/rolling" as rolling;
        phase("release", || rolling::run(#{
            hosts: ["h1", "h2", "h3", "h4", "h5", "h6"], batch: "34%", max_fail: 1,
            deploy: |h| { fs::write(`deployed/${h}`, "v2"); if h == "h4" || h == "h5" { fail(`${h} broke`); } },
            healthy: |h| fs::exists(`deployed/${h}`),
            undo: |h| { run(["rm", `deployed/${h}`]); event("undone", #{ host: h }); },
        }));
        "#,
    );
    let r = p.run_json();
    r.code(1);
    let undone: Vec<String> = events_of(&r, "undone").iter().map(|e| e["host"].as_str().unwrap().to_string()).collect();
    assert_eq!(undone, ["h5", "h4", "h3", "h2", "h1"], "every host it touched, newest first");
    assert!(!p.path("deployed/h6").exists(), "the third batch never started");
    assert!(r.stdout.contains("rolling stopped at batch 2: 2 hosts failed"), "{}", r.stdout);
}

#[test]
fn slo_budget_from_prometheus() {
    let t0: i64 = 1_700_000_000;
    let mut om = String::new();
    for (code, per) in [("200", 999.0), ("500", 1.0)] {
        for i in 0..=60 {
            let _ = writeln!(
                om,
                "http_requests_total{{code=\"{code}\"}} {} {}",
                per * f64::from(i),
                t0 + i64::from(i) * 60
            );
        }
    }
    let prom = Prometheus::start_with_backfill(&om);
    let p = Playbook::new(&format!(
        r#"phase("gate", || {{
            let b = slo::budget(#{{ prometheus: "{url}", objective: 0.9995, window: "30m", time: {at},
                query_good: "http_requests_total{{code!~\"5..\"}}", query_total: "http_requests_total" }});
            event("budget", b);
            gate("error budget left", !b.exhausted, "freeze deploys");
        }});"#,
        url = prom.url,
        at = t0 + 3600
    ));
    let r = p.run_json();
    r.code(1);
    let b = &events_of(&r, "budget")[0];
    assert!((b["error_ratio"].as_f64().unwrap() - 0.001).abs() < 1e-9, "{b}");
    assert!((b["remaining"].as_f64().unwrap() - -1.0).abs() < 1e-6, "twice the budget spent: {b}");
    assert_eq!(b["exhausted"], true);
}

const CHECKOUT_CHART: &str = "apiVersion: v2\nname: checkout\nversion: 0.3.0\nappVersion: \"1.4.1\"\n";
const CHECKOUT_VALUES: &str = "image:\n  repository: registry.local/checkout\n  tag: 1.4.1\ncanary: false\n";
const CHECKOUT_TEMPLATES: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .Release.Name }}
spec: {}
"#;

#[test]
fn kubernetes_canary_example_issues_the_commands_a_cluster_needs() {
    crate::support::daemons::require("helm");
    let t0: i64 = 1_700_000_000;
    let mut om = String::new();
    for ingress in ["checkout", "checkout-canary"] {
        for (status, per_step) in [("200", 995.0), ("500", 5.0)] {
            for i in 0..=30 {
                let _ = writeln!(
                    om,
                    "nginx_ingress_controller_requests{{ingress=\"{ingress}\",status=\"{status}\"}} {} {}",
                    per_step * f64::from(i),
                    t0 + i64::from(i) * 10
                );
            }
        }
    }
    let prom = Prometheus::start_with_backfill(&om);
    let work = tempfile::tempdir().unwrap();
    let chart = work.path().join("charts/checkout");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), CHECKOUT_CHART).unwrap();
    std::fs::write(chart.join("values.yaml"), CHECKOUT_VALUES).unwrap();
    std::fs::write(chart.join("templates/all.yaml"), CHECKOUT_TEMPLATES).unwrap();
    let path =
        format!("{}:{}", repo_root().join("tests/standins").display(), std::env::var("PATH").unwrap_or_default());
    let state = work.path().join("cluster");
    let out = Command::new(crate::support::capstan_bin())
        .current_dir(work.path())
        .arg("run")
        .arg(repo_root().join("examples/canary-k8s.rhai"))
        .args(["--log-format", "json", "--journal-dir", work.path().to_str().unwrap()])
        .args([
            "--param",
            "version=1.4.2",
            "--param",
            "namespace=shop",
            "--param",
            "hold=200ms",
            "--param",
            "interval=100ms",
        ])
        .args(["--param", &format!("prometheus={}", prom.url), "--param", &format!("at={}", t0 + 200)])
        .env("PATH", path)
        .env("CAPSTAN_STANDIN_STATE", &state)
        .env("KUBECONFIG", work.path().join("kubeconfig"))
        .output()
        .unwrap();
    let r = Run::from(out);
    r.code(0);
    let calls: Vec<Vec<String>> = std::fs::read_to_string(state.join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
        .collect();
    let weight = |w: u32| {
        vec![
            "annotate".to_string(),
            "ingress".into(),
            "checkout-canary".into(),
            "nginx.ingress.kubernetes.io/canary=true".into(),
            format!("nginx.ingress.kubernetes.io/canary-weight={w}"),
            "--overwrite".into(),
            "--namespace".into(),
            "shop".into(),
        ]
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<String>>();
    let expected = vec![
        s(&[
            "upgrade",
            "checkout-canary",
            "charts/checkout",
            "--install",
            "--wait",
            "--timeout",
            "5m",
            "--set",
            "canary=true",
            "--set",
            "image.tag=1.4.2",
            "--namespace",
            "shop",
        ]),
        s(&["rollout", "status", "deployment/checkout-canary", "--timeout=5m", "--namespace", "shop"]),
        weight(5),
        weight(25),
        weight(50),
        weight(100),
        s(&[
            "upgrade",
            "checkout",
            "charts/checkout",
            "--install",
            "--wait",
            "--atomic",
            "--timeout",
            "10m",
            "--set",
            "image.tag=1.4.2",
            "--namespace",
            "shop",
        ]),
        s(&["rollout", "status", "deployment/checkout", "--timeout=10m", "--namespace", "shop"]),
        weight(0),
    ];
    assert_eq!(calls, expected);
    let decisions = events_of(&r, "canary_decision");
    assert_eq!(decisions.len(), 8);
    assert!(
        decisions.iter().all(|d| d["verdict"] == "pass" && d["checks"].as_array().unwrap().len() == 2),
        "{decisions:?}"
    );
}

/// A canary judged by `HAProxy`'s own per-server counters of real traffic.
fn counters_playbook(haproxy: &Haproxy, no_data: &str) -> Playbook {
    Playbook::new(&format!(
        r#"
        import "capstan/canary" as canary;
        let sock = "{sock}";
        let last = #{{}};
        phase("release", || canary::run(#{{
            ladder: [5, 100], hold: "500ms", interval: "500ms",
            set_weight: |w| traffic::haproxy(#{{ socket: sock, backend: "app", weights: #{{ v1: 100 - w, v2: w }} }}),
            analyze: || {{
                let s = traffic::haproxy_sample(#{{ socket: sock, backend: "app", server: "v2", since: last }});
                last = s.counters;
                s
            }},
            thresholds: #{{ error_rate: 0.05 }},
            no_data: "{no_data}",
        }}));
        "#,
        sock = haproxy.socket.display()
    ))
}

#[test]
fn canary_judged_by_haproxy_counters_of_real_traffic() {
    let _exclusive = crate::support::exclusive();
    use std::sync::atomic::{AtomicBool, Ordering};
    let (v1, v2) = (App::start("v1", 0.0, 0, 1), App::start("v2", 0.1, 0, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    // Real users: a steady stream of requests through HAProxy while the canary runs.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, url) = (stop.clone(), haproxy.url());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = crate::support::daemons::try_http_get(&url);
            }
        })
    };
    let r = counters_playbook(&haproxy, "fail").run_json();
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    r.code(1);
    // At 5% the canary may see too few requests to show its errors; by the
    // time it has real traffic, the counters give it away.
    let decisions = events_of(&r, "canary_decision");
    let d = decisions
        .iter()
        .find(|d| d["verdict"] == "fail")
        .unwrap_or_else(|| panic!("no failing decision: {decisions:?}"));
    assert_eq!(d["sample"]["source"], "haproxy counters");
    assert!(d["sample"]["requests"].as_i64().unwrap() > 0, "{d}");
    assert!(d["reason"].as_str().unwrap().starts_with("error_rate "), "{d}");
    assert!(haproxy.admin("get weight app/v2").starts_with('0'));
}

#[test]
fn real_absence_of_traffic_is_no_data() {
    let (v1, v2) = (App::start("v1", 0.0, 0, 1), App::start("v2", 0.0, 0, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let r = counters_playbook(&haproxy, "fail").run_json();
    r.code(1);
    let d = &events_of(&r, "canary_decision")[0];
    assert_eq!(d["sample"]["requests"], 0);
    assert!(d["reason"].as_str().unwrap().contains("no traffic (0 requests); no_data: \"fail\""), "{d}");
}

/// Every sample is one readable line: the verdict, each metric with its
/// value, limit and ok or BREACH. A baseline that saw no traffic says so; it
/// is never an infinite ratio.
#[test]
fn canary_prints_one_readable_line_per_sample() {
    let r = Playbook::new(
        r#"
        import "capstan/canary" as canary;
        let n = 0;
        let b = 0;
        phase("release", || canary::run(#{
            ladder: [5], hold: "300ms", interval: "100ms",
            set_weight: |w| {},
            analyze: || { n += 1; #{ requests: 100, error_rate: if n < 3 { 0.004 } else { 0.5 }, p99_ms: 12.0 } },
            baseline: || {
                b += 1;
                if b == 1 { #{ requests: 0, error_rate: 0.0, p99_ms: 0.0 } } else { #{ requests: 100, error_rate: 0.004, p99_ms: 10.0 } }
            },
            thresholds: #{ error_rate: 0.01, p99_ms: 200 },
            max_ratio_to_baseline: #{ error_rate: 2.0 },
            no_data: "inconclusive",
        }));
        "#,
    )
    .run();
    r.code(1);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("canary 5%: ")).collect();
    assert_eq!(lines.len(), 3, "one line per sample:\n{}", r.stderr);
    let expect = [
        ["canary 5%: inconclusive", "error_rate 0.004 <= 0.01 ok", "p99 12ms <= 200ms ok", "no baseline traffic"],
        [
            "canary 5%: pass",
            "error_rate 0.004 <= 0.01 ok",
            "error_rate 0.004 <= 0.008 (x2 baseline 0.004) ok",
            "p99 12ms",
        ],
        [
            "canary 5%: fail",
            "error_rate 0.5 > 0.01 BREACH",
            "error_rate 0.5 > 0.008 (x2 baseline 0.004) BREACH",
            "p99 12ms",
        ],
    ];
    for (line, parts) in lines.iter().zip(expect) {
        for part in parts {
            assert!(line.contains(part), "{part:?} in {line}");
        }
    }
    assert!(!r.stderr.contains("xinf") && !r.stderr.contains(" inf"), "no infinite ratio: {}", r.stderr);
    assert!(!r.stderr.contains("{\""), "no raw JSON on the terminal: {}", r.stderr);
}

/// `hold` is the rung's wall-clock time: the analysis does not stretch it,
/// and the baseline is sampled at the same time as the canary.
#[test]
fn canary_hold_is_wall_clock_and_the_baseline_is_sampled_alongside() {
    let _exclusive = crate::support::exclusive();
    let (canary, baseline) =
        (crate::support::http::LatencyServer::start(1, 2, 0), crate::support::http::LatencyServer::start(1, 2, 0));
    let probe = |of: &str, url: &str| {
        format!(
            r#"|| {{ let from = now_ms(); let s = health::probe("{url}", #{{ duration: "600ms", concurrency: 1 }}); event("window", #{{ of: "{of}", from: from, to: now_ms() }}); s }}"#
        )
    };
    let p = Playbook::new(&format!(
        r#"
        import "capstan/canary" as canary;
        phase("release", || canary::run(#{{
            ladder: [5], hold: "3s", interval: "1s",
            set_weight: |w| {{}},
            analyze: {analyze},
            baseline: {baseline},
            thresholds: #{{ error_rate: 0.5 }},
            max_ratio_to_baseline: #{{ p99_ms: 1000.0 }},
        }}));
        "#,
        analyze = probe("canary", &canary.url),
        baseline = probe("baseline", &baseline.url),
    ));
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let rung = named(&events, "step_finished").into_iter().find(|e| e["step"] == "canary 5%").unwrap()["duration_ms"]
        .as_u64()
        .unwrap();
    // hold ± one interval, and a second for a busy machine; analysis added
    // to every interval would make it 6.6 s.
    assert!((2000..=5000).contains(&rung), "the 3s rung took {rung} ms");
    let windows = events_of(&r, "window");
    let of = |who: &str| -> Vec<(i64, i64)> {
        windows
            .iter()
            .filter(|w| w["of"] == who)
            .map(|w| (w["from"].as_i64().unwrap(), w["to"].as_i64().unwrap()))
            .collect()
    };
    let (c, b) = (of("canary"), of("baseline"));
    assert_eq!(c.len(), b.len());
    assert!((2..=4).contains(&c.len()), "about hold / interval samples: {c:?}");
    for (c, b) in c.iter().zip(&b) {
        assert!(c.0.max(b.0) < c.1.min(b.1), "canary {c:?} and baseline {b:?} were sampled at the same time");
    }
    for pair in c.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!((900..=1800).contains(&gap), "samples start every interval: {c:?}");
    }
}

/// The incident names the playbook line that called `canary::run`, and
/// "breach to traffic restored" starts at the failing decision, not at the
/// start of the probe that led to it.
#[test]
fn canary_incident_points_at_the_playbook_and_times_restore_from_the_decision() {
    let _exclusive = crate::support::exclusive();
    let p = Playbook::new(
        r#"import "capstan/canary" as canary;
phase("release", || {
    info("starting");
    canary::run(#{
        ladder: [5, 100], hold: "100ms", interval: "100ms",
        set_weight: |w| {},
        analyze: || { sleep("800ms"); #{ requests: 100, error_rate: 0.5 } },
        thresholds: #{ error_rate: 0.01 },
    });
});
on_failure(|e| report::write("reports"));
"#,
    );
    let r = p.run_json();
    r.code(1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reports/report.json")).unwrap()).unwrap();
    let incident = &report["incident"];
    assert_eq!(incident["step"], "canary 5%");
    let at = incident["error_at"].as_str().unwrap_or_default();
    assert!(at.starts_with("deploy.rhai:4:"), "the line that called canary::run: {incident}");
    let ms = incident["breach_to_restored_ms"].as_i64().unwrap();
    assert!((0..500).contains(&ms), "measured from the decision, not the 800 ms probe's start: {ms} ms");
    let md = std::fs::read_to_string(p.path("reports/report.md")).unwrap();
    assert!(md.contains(&format!("**What failed:** `release/canary 5%` at `{at}`")), "{md}");
    let show = Run::from(
        Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last", "--json"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["incident"]["error_at"], at, "`runs show` tells the same");
}

/// `hold` is wall-clock time after the switch, as in the canary: a 2 s hold
/// sampled every 500 ms with analyses that take 400 ms lasts about 2 s,
/// not four intervals plus four analyses (3.6 s).
#[test]
fn blue_green_hold_is_wall_clock_time() {
    let _exclusive = crate::support::exclusive();
    let p = Playbook::new(
        r#"
        import "capstan/blue_green" as blue_green;
        phase("release", || blue_green::run(#{
            deploy_green: || (),
            healthy: || true,
            switch_to: |color| event("switch", #{ to: color }),
            analyze: || { sleep("400ms"); #{ requests: 100, errors: 0, error_rate: 0.0 } },
            thresholds: #{ error_rate: 0.01 }, hold: "2s", interval: "500ms",
        }));
        "#,
    );
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let analysis = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "post-switch analysis")
        .expect("the analysis step finished");
    let ms = analysis["duration_ms"].as_u64().unwrap();
    assert!((1_600..=3_000).contains(&ms), "a 2s hold took {ms} ms");
    let samples = events_of(&r, "blue_green_decision").len();
    assert!((3..=4).contains(&samples), "{samples} samples in a 2s hold every 500ms");
}
