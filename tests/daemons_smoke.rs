//! The real daemons behind the deployment tests start on loopback, answer and
//! stop: one quick check per helper in `support::daemons`.

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use crate::support::daemons::{
    http_get, require, shared_dockerd, try_http_get, Backend, Haproxy, Nginx, Prometheus, Registry, Sshd,
};

/// Run a command to success; its stdout.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn haproxy_round_robins_over_two_backends_and_takes_runtime_weights() {
    let a = Backend::start(200, "a\n");
    let b = Backend::start(200, "b\n");
    let haproxy = Haproxy::start(&[("a", a.port), ("b", b.port)]);

    let mut upstreams = Vec::new();
    for _ in 0..10 {
        let response = try_http_get(&haproxy.url()).expect("GET through haproxy");
        assert_eq!(response.status, 200, "{}", haproxy.log());
        upstreams.push(response.header("X-Upstream").unwrap_or_default().to_string());
    }
    assert_eq!((a.hits(), b.hits()), (5, 5), "upstreams in order: {upstreams:?}");
    assert!(upstreams.windows(2).all(|pair| pair[0] != pair[1]), "not alternating: {upstreams:?}");

    assert_eq!(haproxy.admin("get weight app/a").trim(), "1 (initial 1)");
    haproxy.admin("set weight app/a 0");
    for _ in 0..4 {
        assert_eq!(http_get(&haproxy.url()), (200, "b\n".to_string()));
    }
    assert_eq!((a.hits(), b.hits()), (5, 9));
    assert_eq!(haproxy.server_stat("b", "hrsp_2xx"), "9");
    assert_eq!(haproxy.server_stat("a", "weight"), "0");
}

#[test]
fn nginx_proxies_to_a_backend_and_passes_its_status_through() {
    let backend = Backend::start(200, "hello from the backend\n");
    let nginx = Nginx::start(&[(backend.port, 1)]);

    let response = try_http_get(&nginx.url()).expect("GET through nginx");
    assert_eq!((response.status, response.body.as_str()), (200, "hello from the backend\n"), "{}", nginx.log());
    assert_eq!(response.header("X-Upstream"), Some(backend.addr().as_str()));
    backend.set_reply(503, "down\n");
    assert_eq!(http_get(&nginx.url()), (503, "down\n".to_string()));
    assert_eq!(backend.hits(), 2);

    // The flags capstan passes to `nginx -t` / `nginx -s reload` act on this instance.
    run(Command::new(require("nginx")).arg("-t").args(nginx.conf_args()).stdin(Stdio::null()));
}

#[test]
fn prometheus_answers_queries_over_backfilled_series() {
    // Two counters, one sample every 10 s for 10 minutes: 2 % of requests fail.
    let t0: i64 = 1_700_000_000;
    let mut openmetrics = String::new();
    for (status, per_step) in [("200", 98), ("500", 2)] {
        for i in 0..=60 {
            let _ =
                writeln!(openmetrics, "http_requests_total{{status=\"{status}\"}} {} {}", i * per_step, t0 + i * 10);
        }
    }
    let prometheus = Prometheus::start_with_backfill(&openmetrics);

    let ratio = prometheus.query_value(
        r#"sum(rate(http_requests_total{status=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#,
        Some(t0 + 300),
    );
    assert!(ratio.is_some_and(|r| (r - 0.02).abs() < 1e-9), "error ratio {ratio:?}\n{}", prometheus.log());
    assert_eq!(prometheus.query_value(r#"http_requests_total{status="500"}"#, Some(t0 + 300)), Some(60.0));
    assert_eq!(prometheus.query_value("http_requests_total", Some(t0 - 3600)), None);
}

#[test]
fn sshd_runs_remote_commands_and_passes_their_exit_codes_back() {
    let sshd = Sshd::start();

    let ok = Command::new("ssh")
        .arg("-p")
        .arg(sshd.port.to_string())
        .args(sshd.ssh_options())
        .arg(sshd.destination())
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh");
    assert_eq!(ok.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&ok.stderr), sshd.log());

    let three = sshd.ssh().arg("exit 3").output().expect("run ssh");
    assert_eq!(three.status.code(), Some(3), "{}\n{}", String::from_utf8_lossy(&three.stderr), sshd.log());
}

#[test]
fn the_registry_answers_the_v2_api() {
    let registry = Registry::start();
    let response = try_http_get(&format!("{}/v2/", registry.url)).expect("GET /v2/");
    assert_eq!((response.status, response.body.trim()), (200, "{}"), "{}", registry.log());
    assert_eq!(response.header("Docker-Distribution-Api-Version"), Some("registry/2.0"));
}

#[test]
fn dockerd_answers_docker_info_and_pushes_to_the_registry() {
    let dockerd = shared_dockerd().expect("dockerd must run on this machine: the reason is printed above");
    let version = run(dockerd.docker().args(["info", "--format", "{{.ServerVersion}}"]));
    assert!(!version.trim().is_empty(), "docker info gave no server version");

    // A FROM-scratch image with static busybox, built, run and pushed to a real registry.
    let registry = Registry::start();
    let context = tempfile::tempdir().expect("temp dir");
    std::fs::copy(require("busybox"), context.path().join("busybox")).expect("copy busybox");
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .expect("write Dockerfile");
    let image = format!("{}/capstan-smoke/busybox:v1", registry.addr);
    run(dockerd.docker().args(["build", "-q", "-t", &image]).arg(context.path()));
    let echoed = run(dockerd.docker().args(["run", "--rm", "--network", "none", &image, "echo", "hi"]));
    assert_eq!(echoed.trim(), "hi");
    run(dockerd.docker().args(["push", "-q", &image]));
    let (status, catalog) = http_get(&format!("{}/v2/_catalog", registry.url));
    assert_eq!(status, 200, "{catalog}");
    assert!(catalog.contains("capstan-smoke/busybox"), "catalog: {catalog}\n{}", registry.log());
}
