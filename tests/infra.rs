//! Infrastructure primitives against real daemons on loopback: Prometheus,
//! `HAProxy`, nginx, sshd, dockerd with a registry.

use std::fmt::Write as _;

use crate::support::daemons::{
    free_port, http_get, require, shared_dockerd, Backend, Haproxy, Nginx, Prometheus, Registry, Sshd,
};
use crate::support::{named, Playbook, Run};

fn event_data(r: &Run, kind: &str) -> serde_json::Value {
    named(&r.events(), "event")
        .iter()
        .find(|e| e["type"] == kind)
        .map_or_else(|| panic!("no event {kind}: {}", r.all()), |e| e["data"].clone())
}

#[test]
fn metrics_value_reads_exact_backfilled_values() {
    // A gauge at 0.02 for five minutes, then 0.3; and a counter per instance.
    let t0: i64 = 1_700_000_000;
    let mut om = String::new();
    for i in 0..=60 {
        let v = if i <= 30 { 0.02 } else { 0.3 };
        let _ = writeln!(om, "error_ratio{{service=\"api\"}} {v} {}", t0 + i * 10);
    }
    for inst in ["a", "b"] {
        for i in 0..=60 {
            let _ = writeln!(om, "up_count{{instance=\"{inst}\"}} 1 {}", t0 + i * 10);
        }
    }
    let prom = Prometheus::start_with_backfill(&om);
    let p = Playbook::new(&format!(
        r#"
        let prom = "{url}";
        phase("do", || {{
            let early = metrics::value(prom, "error_ratio", #{{ time: {early} }});
            let late = metrics::value(prom, "error_ratio{{service=\"api\"}}", #{{ time: {late} }});
            let series = metrics::query(prom, "up_count", #{{ time: {early} }});
            event("read", #{{ early: early, late: late, series: series.len(), instance: series[0].labels.instance }});
            try {{ metrics::value(prom, "no_such_metric", #{{ time: {early} }}); }} catch (e) {{ info(e.message); }}
            try {{ metrics::value(prom, "up_count", #{{ time: {early} }}); }} catch (e) {{ info(e.message); }}
            try {{ metrics::value(prom, "sum(", #{{ time: {early} }}); }} catch (e) {{ info(e.message); }}
        }});
        "#,
        url = prom.url,
        early = t0 + 100,
        late = t0 + 500,
    ));
    let r = p.run_json();
    r.code(0);
    let d = event_data(&r, "read");
    assert_eq!(d["early"], 0.02);
    assert_eq!(d["late"], 0.3);
    assert_eq!(d["series"], 2);
    assert_eq!(d["instance"], "a");
    let logs: Vec<String> =
        named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(logs[0], "`no_such_metric` returned no data");
    assert!(logs[1].starts_with("`up_count` returned 2 series where one number was expected"), "{}", logs[1]);
    assert!(logs[2].starts_with("Prometheus rejected `sum(`"), "{}", logs[2]);
}

#[test]
fn haproxy_weights_move_real_traffic() {
    let _exclusive = crate::support::exclusive();
    let (v1, v2) = (Backend::ok("v1"), Backend::ok("v2"));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let p = Playbook::new(&format!(
        r#"
        let sock = "{sock}";
        phase("shift", || event("weights", traffic::haproxy(#{{ socket: sock, backend: "app", weights: #{{ v1: 95, v2: 5 }} }})));
        phase("count", || event("stats", traffic::haproxy_stats(#{{ socket: sock, backend: "app" }})));
        "#,
        sock = haproxy.socket.display()
    ));
    let r = Run::from(p.command("run").args(["--phase", "shift", "--log-format", "json"]).output().unwrap());
    r.code(0);
    assert_eq!(event_data(&r, "weights")["weights"], serde_json::json!({ "v1": 95, "v2": 5 }));
    for _ in 0..1000 {
        let (status, _) = http_get(&haproxy.url());
        assert_eq!(status, 200);
    }
    let r = Run::from(p.command("run").args(["--phase", "count", "--log-format", "json"]).output().unwrap());
    r.code(0);
    let stats = event_data(&r, "stats");
    // HAProxy's weighted round robin picks up a runtime weight change at its
    // current position in the cycle, so 1,000 requests split 950/50 give or take one.
    let (r1, r2) = (stats["v1"]["requests"].as_i64().unwrap(), stats["v2"]["requests"].as_i64().unwrap());
    assert_eq!(r1 + r2, 1000, "{stats}");
    assert!((r2 - 50).abs() <= 1, "v2 got {r2} of 1000: {stats}");
    assert_eq!(stats["v2"]["2xx"].as_i64(), Some(r2));
    assert_eq!((v1.hits() as i64, v2.hits() as i64), (r1, r2), "HAProxy's counters match what the servers saw");
    assert!(stats.get("BACKEND").is_none(), "only servers");
}

#[test]
fn haproxy_dry_run_changes_nothing() {
    let (v1, v2) = (Backend::ok("v1"), Backend::ok("v2"));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let p = Playbook::new(&format!(
        r#"phase("do", || traffic::haproxy(#{{ socket: "{}", backend: "app", weights: #{{ v1: 0, v2: 100 }} }}));"#,
        haproxy.socket.display()
    ))
    .arg("--dry-run");
    let r = p.run();
    r.code(0);
    assert!(r.stderr.contains("would run: set HAProxy weights in app: v1=0, v2=100"), "{}", r.stderr);
    assert!(haproxy.admin("get weight app/v1").starts_with('1'), "weight unchanged");
}

#[test]
fn nginx_upstream_weights_move_real_traffic_after_reload() {
    let _exclusive = crate::support::exclusive();
    let (v1, v2) = (Backend::ok("v1"), Backend::ok("v2"));
    let nginx = Nginx::start(&[(v1.port, 1)]);
    let args: Vec<String> = nginx.conf_args().iter().map(|a| format!("{a:?}")).collect();
    let p = Playbook::new(&format!(
        r#"phase("do", || {{
            let servers = #{{}};
            servers["127.0.0.1:{p1}"] = 95;
            servers["127.0.0.1:{p2}"] = 5;
            event("nginx", traffic::nginx(#{{ file: "{file}", servers: servers, nginx_args: [{args}] }}));
        }});"#,
        p1 = v1.port,
        p2 = v2.port,
        file = nginx.upstream_file.display(),
        args = args.join(", ")
    ));
    let r = p.run_json();
    r.code(0);
    assert_eq!(event_data(&r, "nginx")["reloaded"], true);
    // The reload is asynchronous: wait until the new workers serve v2.
    assert!(crate::support::wait_until(std::time::Duration::from_secs(10), || {
        http_get(&nginx.url());
        v2.hits() > 0
    }));
    let (b1, b2) = (v1.hits(), v2.hits());
    for _ in 0..1000 {
        assert_eq!(http_get(&nginx.url()).0, 200);
    }
    let (d1, d2) = (v1.hits() - b1, v2.hits() - b2);
    assert_eq!(d1 + d2, 1000);
    assert_eq!((d1, d2), (950, 50));

    // A config that nginx -t rejects is rolled back and not reloaded.
    let bad = Playbook::new(&format!(
        r#"phase("do", || traffic::nginx(#{{ file: "{file}", servers: #{{ "not a host:x": 1 }}, nginx_args: [{args}] }}));"#,
        file = nginx.upstream_file.display(),
        args = args.join(", ")
    ));
    let before = std::fs::read_to_string(&nginx.upstream_file).unwrap();
    let r = bad.run();
    r.code(1);
    assert!(r.stderr.contains("was restored; nginx was not reloaded"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&nginx.upstream_file).unwrap(), before);
}

#[test]
fn ssh_run_propagates_exit_codes_and_output() {
    let sshd = Sshd::start();
    let opts: Vec<String> =
        sshd.ssh_options().chunks(2).filter(|c| c[0] == "-o").map(|c| format!("{:?}", c[1])).collect();
    let p = Playbook::new(&format!(
        r#"
        let o = #{{ port: {port}, user: "{user}", identity: "{id}", options: [{opts}] }};
        phase("do", || {{
            let ok = ssh::run("127.0.0.1", ["sh", "-c", "echo \"$0 $1\"; echo err >&2", "two words", "it's"], o);
            let o2 = o; o2.check = false;
            let bad = ssh::run("127.0.0.1", ["sh", "-c", "exit 3"], o2);
            fs::write("payload.txt", "shipped");
            ssh::copy("127.0.0.1", "payload.txt", "{dst}", o);
            let back = ssh::run("127.0.0.1", ["cat", "{dst}"], o);
            event("ssh", #{{ out: ok.stdout, err: ok.stderr, code: bad.code, copied: back.stdout }});
            ssh::run("127.0.0.1", ["false"], o);
        }});
        "#,
        port = sshd.port,
        user = sshd.user,
        id = sshd.identity.display(),
        opts = opts.join(", "),
        dst = sshd.dir().join("copied.txt").display(),
    ));
    let r = p.run_json();
    r.code(1);
    let d = event_data(&r, "ssh");
    assert_eq!(d["out"], "two words it's\n");
    assert_eq!(d["err"], "err\n");
    assert_eq!(d["code"], 3);
    assert_eq!(d["copied"], "shipped");
    let last = named(&r.events(), "run_finished")[0]["error"].as_str().unwrap().to_string();
    assert!(last.contains("failed with exit status 1"), "{last}");
}

#[test]
fn docker_build_push_pull_by_digest_run_and_health_wait() {
    let _exclusive = crate::support::exclusive();
    let dockerd = shared_dockerd().expect("dockerd must run here; the reason is printed above");
    let registry = Registry::start();
    let port = free_port();
    let p = Playbook::new(&format!(
        r#"
        let image = "{reg}/capstan/web:v1";
        phase("do", || {{
            let built = docker::build("app", #{{ tags: [image] }});
            let pushed = docker::push(image);
            docker::rm("capstan-web-{port}");
            let pulled = docker::pull(pushed.reference);
            let ran = docker::run(pushed.reference, #{{
                name: "capstan-web-{port}", network: "host",
                args: ["httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"],
                health: #{{ target: "http://127.0.0.1:{port}/index.html", expect_body: "hello", within: "20s", interval: "100ms" }},
            }});
            event("docker", #{{ id: built.id, digest: pushed.digest, reference: pushed.reference, pulled: pulled.id, ran: ran.id, healthy: ran.health.ok }});
            docker::rm("capstan-web-{port}");
        }});
        "#,
        reg = registry.addr,
    ))
    .file("app/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\"]\n")
    .file("app/www/index.html", "hello from capstan\n");
    std::fs::copy(require("busybox"), p.path("app/busybox")).unwrap();
    let mut cmd = p.command("run");
    cmd.args(["--log-format", "json"]);
    for (k, v) in dockerd.envs() {
        cmd.env(k, v);
    }
    let r = Run::from(cmd.output().unwrap());
    r.code(0);
    let d = event_data(&r, "docker");
    assert!(d["id"].as_str().unwrap().starts_with("sha256:"), "{d}");
    assert!(d["digest"].as_str().unwrap().starts_with("sha256:"), "{d}");
    assert_eq!(
        d["reference"].as_str().unwrap(),
        format!("{}/capstan/web@{}", registry.addr, d["digest"].as_str().unwrap())
    );
    assert_eq!(d["pulled"], d["id"], "the image pulled by digest is the one built");
    assert_eq!(d["healthy"], true);
}
