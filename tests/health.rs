//! `health::check`, `wait` and `probe` against real servers on loopback.

use crate::support::http::{dead_url, LatencyServer, Server};
use crate::support::{named, Playbook};

fn logs(r: &crate::support::Run) -> Vec<String> {
    named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn check_http_tcp_and_command_targets() {
    let up = Server::start(vec![200, 503, 200]);
    let tcp = up.url.trim_start_matches("http://").trim_end_matches("/hook").to_string();
    let dead = dead_url();
    let p = Playbook::new(&format!(
        r#"phase("do", || {{
            let a = health::check("{up}");
            let b = health::check("{up}");
            let c = health::check("{up}", #{{ expect_body: "nope" }});
            let d = health::check("tcp://{tcp}");
            let e = health::check("{dead}");
            let f = health::check(["sh", "-c", "exit 3"]);
            let g = health::check(["true"]);
            info(`${{a.ok}} ${{a.status}} | ${{b.ok}} ${{b.error}} | ${{c.ok}} ${{c.error}} | ${{d.ok}} | ${{e.ok}} | ${{f.ok}} ${{f.status}} | ${{g.ok}} ${{type_of(g.latency_ms)}}`);
        }});"#,
        up = up.url
    ));
    let r = p.arg("--dry-run").run_json();
    r.code(0);
    assert_eq!(
        logs(&r)[0],
        r#"true 200 | false status 503 | false body does not contain "nope" | true | false | false 3 | true f64"#
    );
}

#[test]
fn wait_until_healthy_and_fail_when_not() {
    let server = Server::start(vec![503, 503]);
    let p = Playbook::new(&format!(
        r#"phase("do", || {{
            let w = health::wait("{}", #{{ interval: "50ms", within: "5s" }});
            info(`${{w.ok}} ${{w.attempts}}`);
        }});"#,
        server.url
    ));
    let r = p.run_json();
    r.code(0);
    assert!(logs(&r).contains(&"true 3".to_string()), "{:?}", logs(&r));

    let dead = dead_url();
    let started = std::time::Instant::now();
    let r =
        Playbook::new(&format!(r#"phase("do", || health::wait("{dead}", #{{ interval: "100ms", within: "1s" }}));"#))
            .run();
    r.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(r.stderr.contains("is not healthy within 1s"), "{}", r.stderr);
}

/// The counts must be exact on every run. The latency and throughput
/// figures compare the probe's clock with the server's on a shared 2-core
/// machine, where another test's process can steal a time slice from
/// either side; a figure off by more than its tolerance is measured again,
/// up to three times, and all three must miss for the test to fail.
#[test]
fn probe_measures_error_rate_latency_and_throughput() {
    let _exclusive = crate::support::exclusive();
    let mut misses = Vec::new();
    for _ in 0..3 {
        let server = LatencyServer::start(5, 20, 20);
        let p = Playbook::new(&format!(
            r#"phase("do", || {{
                let p = health::probe("{}", #{{ duration: "3s", concurrency: 64, rate: 2400 }});
                event("probe", p);
            }});"#,
            server.url
        ));
        let r = p.run_json();
        r.code(0);
        let events = r.events();
        let probe = &named(&events, "event")[0]["data"];
        let requests = probe["requests"].as_u64().unwrap();
        assert_eq!(requests as usize, server.served());
        assert_eq!(probe["by_status"]["500"].as_u64().unwrap() + probe["by_status"]["200"].as_u64().unwrap(), requests);
        let error_rate = probe["error_rate"].as_f64().unwrap();
        assert!((error_rate - 0.05).abs() <= 0.015, "error rate {error_rate}");
        let p99 = probe["p99_ms"].as_f64().unwrap();
        let rps = probe["rps"].as_f64().unwrap();
        let server_p99 = server.quantile_ms(0.99);
        // The client sees at least what the server spent.
        assert!(p99 >= server_p99 * 0.95, "probe p99 {p99} ms is below the server's {server_p99} ms");
        if (p99 - server_p99).abs() / server_p99 <= 0.10 && rps >= 2000.0 {
            return;
        }
        misses.push(format!("probe p99 {p99} ms vs server p99 {server_p99} ms, {rps} requests/s"));
    }
    panic!("three measurements off: {misses:#?}");
}

#[test]
fn probe_paced_by_rate() {
    let _exclusive = crate::support::exclusive();
    let server = LatencyServer::start(1, 2, 0);
    let r = Playbook::new(&format!(
        r#"phase("do", || event("probe", health::probe("{}", #{{ duration: "1s", rate: 200, concurrency: 8 }})));"#,
        server.url
    ))
    .run_json();
    r.code(0);
    let events = r.events();
    let requests = named(&events, "event")[0]["data"]["requests"].as_u64().unwrap();
    assert!((190..=201).contains(&requests), "{requests} requests at 200/s for 1s");
}

/// Under --dry-run the service a health check looks at may not exist yet
/// (the deploy before it was skipped): the checks try once, say what they
/// would wait for and what they see now, and the run goes on.
#[test]
fn dry_run_checks_try_once_and_report_instead_of_waiting() {
    let dead = dead_url();
    let addr = dead.trim_start_matches("http://").trim_end_matches("/hook").to_string();
    let source = |target: &str, tcp: &str| {
        format!(
            r#"phase("do", || {{
                let w = health::wait("tcp://{tcp}", #{{ within: "30s" }});
                let h = health::wait("{target}", #{{ within: "20s", interval: "2s" }});
                let p = health::probe("{target}", #{{ duration: "20s" }});
                let c = health::check("tcp://{tcp}");
                event("seen", #{{ wait: w, http: h, probe: p, check: c }});
                step("after", || info("the run went on"));
            }});"#
        )
    };
    let started = std::time::Instant::now();
    let r = Playbook::new(&source(&dead, &addr)).arg("--dry-run").run_json();
    r.code(0);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "it did not wait: {:?}", started.elapsed());
    let logs = logs(&r);
    for expected in [
        format!("would wait up to 30s for tcp://{addr}: not listening now"),
        format!("would wait up to 20s for {dead}: not listening now"),
        format!("would probe {dead} for 20s: not listening now"),
        "the run went on".to_string(),
    ] {
        assert!(logs.contains(&expected), "{expected:?} in {logs:#?}");
    }
    let events = r.events();
    let seen = &named(&events, "event")[0]["data"];
    for key in ["wait", "http", "probe", "check"] {
        assert_eq!(seen[key]["dry_run"], true, "{key}: {seen}");
    }
    assert_eq!(seen["wait"]["ok"], false);
    assert_eq!(seen["wait"]["attempts"], 1);
    assert_eq!(seen["probe"]["requests"], 1);
    assert_eq!(seen["probe"]["by_status"]["error"], 1);

    // The same keys as the real results, plus `dry_run`.
    let up = Server::start(Vec::new());
    let up_addr = up.url.trim_start_matches("http://").trim_end_matches("/hook").to_string();
    let real = Playbook::new(&source(&up.url, &up_addr).replace("20s", "200ms")).run_json();
    real.code(0);
    let real_events = real.events();
    let real_seen = &named(&real_events, "event")[0]["data"];
    for key in ["wait", "http", "probe", "check"] {
        let mut expected: Vec<&String> = real_seen[key].as_object().unwrap().keys().collect();
        let dry_run = "dry_run".to_string();
        expected.push(&dry_run);
        expected.sort();
        let got: Vec<&String> = seen[key].as_object().unwrap().keys().collect();
        assert_eq!(got, expected, "{key}");
    }
}
