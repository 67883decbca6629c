//! The infrastructure examples, run for real: terraform drift, the
//! Prometheus gate, and containerize-and-deploy end to end.

use std::fmt::Write as _;
use std::process::Command;

use crate::support::daemons::{free_port, http_get, shared_dockerd, Backend, Haproxy, Prometheus, Registry};
use crate::support::{repo_root, Run};

fn capstan(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(crate::support::capstan_bin());
    c.current_dir(dir).args(args).env("NO_COLOR", "1").env_remove("GITHUB_ACTIONS");
    c
}

#[test]
fn terraform_drift_example() {
    let work = tempfile::tempdir().unwrap();
    let infra = work.path().join("infra");
    std::fs::create_dir_all(&infra).unwrap();
    std::fs::copy(repo_root().join("examples/terraform/main.tf"), infra.join("main.tf")).unwrap();
    std::fs::write(work.path().join("terraformrc"), "disable_checkpoint = true\n").unwrap();
    let example = repo_root().join("examples/terraform-drift.rhai");
    let run = |extra: &[&str]| {
        let mut c = capstan(work.path(), &["run"]);
        c.arg(&example)
            .args(["--log-format", "plain", "--journal-dir", work.path().to_str().unwrap(), "--param", "dir=infra"])
            .args(extra);
        c.env("TF_CLI_CONFIG_FILE", work.path().join("terraformrc")).env("CHECKPOINT_DISABLE", "1");
        Run::from(c.output().unwrap())
    };
    let fresh = run(&[]);
    fresh.code(1);
    assert!(fresh.stderr.contains("gate failed: no drift"), "{}", fresh.stderr);
    run(&["--param", "accept=true"]).code(0);
    let clean = run(&[]);
    clean.code(0);
    let drifted = run(&["--param", "image_tag=v2"]);
    drifted.code(1);
    assert!(drifted.stderr.contains("terraform_data.deployment: [\"delete\", \"create\"]"), "{}", drifted.stderr);
}

#[test]
fn prometheus_gate_example() {
    let t0: i64 = 1_700_000_000;
    let mut om = String::new();
    // 1,000 requests/s of which 0.5% fail; latency buckets put p99 near 0.25s.
    for (code, per_s) in [("200", 995.0), ("500", 5.0)] {
        for i in 0..=60 {
            let _ = writeln!(
                om,
                "http_requests_total{{service=\"checkout\",code=\"{code}\"}} {} {}",
                per_s * 10.0 * f64::from(i),
                t0 + i64::from(i) * 10
            );
        }
    }
    for (le, share) in [("0.1", 0.90), ("0.25", 0.99), ("0.5", 0.999), ("+Inf", 1.0)] {
        for i in 0..=60 {
            let _ = writeln!(
                om,
                "http_request_duration_seconds_bucket{{service=\"checkout\",le=\"{le}\"}} {} {}",
                share * 10_000.0 * f64::from(i),
                t0 + i64::from(i) * 10
            );
        }
    }
    let prom = Prometheus::start_with_backfill(&om);
    let work = tempfile::tempdir().unwrap();
    let example = repo_root().join("examples/prometheus-gate.rhai");
    let at = (t0 + 400).to_string();
    let run = |extra: &[&str]| {
        let mut c = capstan(work.path(), &["run"]);
        c.arg(&example)
            .args([
                "--log-format",
                "plain",
                "--journal-dir",
                work.path().to_str().unwrap(),
                "--param",
                &format!("prometheus={}", prom.url),
                "--param",
                &format!("at={at}"),
            ])
            .args(extra);
        Run::from(c.output().unwrap())
    };
    let ok = run(&[]);
    ok.code(0);
    assert!(ok.stderr.contains("✓ gate: error ratio 0.005 <= 0.01"), "{}", ok.stderr);
    let strict = run(&["--param", "max_error_ratio=0.001"]);
    strict.code(1);
    assert!(strict.stderr.contains("gate failed: error ratio 0.005 <= 0.001"), "{}", strict.stderr);
}

#[test]
fn containerize_and_deploy_example_end_to_end() {
    let _exclusive = crate::support::exclusive();
    let dockerd = shared_dockerd().expect("dockerd must run here; the reason is printed above");
    let registry = Registry::start();
    let blue = Backend::ok("blue");
    let port = free_port();
    let haproxy = Haproxy::start_weighted(&[("blue", blue.port, 100), ("green", port, 0)]);
    let work = tempfile::tempdir().unwrap();
    // The example works on examples/container relative to where it runs.
    let copy = work.path().join("examples/container");
    std::fs::create_dir_all(copy.join("www")).unwrap();
    for f in ["Dockerfile", "www/index.html"] {
        std::fs::copy(repo_root().join("examples/container").join(f), copy.join(f)).unwrap();
    }
    let example = repo_root().join("examples/containerize-and-deploy.rhai");
    let mut c = capstan(work.path(), &["run"]);
    c.arg(&example).args(["--log-format", "plain", "--journal-dir", work.path().to_str().unwrap()]);
    for p in [
        format!("registry={}", registry.addr),
        format!("haproxy_socket={}", haproxy.socket.display()),
        "version=v2".into(),
        format!("port={port}"),
        format!("busybox={}", crate::support::daemons::require("busybox").display()),
    ] {
        c.args(["--param", &p]);
    }
    for (k, v) in dockerd.envs() {
        c.env(k, v);
    }
    let r = Run::from(c.output().unwrap());
    let cleanup = || {
        let _ = dockerd.docker().args(["rm", "--force", "web-v2"]).output();
    };
    if r.code != 0 {
        cleanup();
    }
    r.code(0);
    // All traffic now reaches the container, not the old server.
    let before = blue.hits();
    for _ in 0..20 {
        let (status, body) = http_get(&haproxy.url());
        assert_eq!((status, body.trim()), (200, "hello from capstan"));
    }
    assert_eq!(blue.hits(), before);
    assert!(haproxy.admin("get weight app/green").starts_with("100"));
    cleanup();
}
