//! The HTML report end to end: a canary that real `HAProxy` traffic fails and
//! one that it promotes (the delivery tests' apps and proxy), each written by
//! `report::write` and by `runs show --html`, rendered by a real headless
//! Chromium: the DOM must show every step and metric, the screenshot must
//! not be blank, and the file must need nothing from anywhere else.
//!
//! `CAPSTAN_REPORT_SCREENSHOTS=DIR` keeps the two screenshots there (the
//! README shows them from docs/).

use std::path::{Path, PathBuf};

use crate::delivery::App;
use crate::support::chromium::{dump_dom, pixels, screenshot, HEIGHT, WIDTH};
use crate::support::daemons::Haproxy;
use crate::support::{Playbook, Run};

/// A value no page may show: the secret, also given as a param.
const SECRET: &str = "s3cr3t-report-token-7Qx";

fn playbook(haproxy: &Haproxy, v1: &App, v2: &App, last: &str) -> Playbook {
    Playbook::new(&format!(
        r#"
        import "capstan/canary" as canary;
        import "capstan/gates" as gates;
        let token = secret("REPORT_TOKEN");
        let release = param("release", "v2");
        let api_key = param("api_key", "");
        let sock = "{sock}";
        phase("checks", || {{
            step("scan the Dockerfile", || {{
                let d = compliance::dockerfile("Dockerfile");
                gate("no critical findings", d.filter(|f| f.severity == "critical").len() == 0);
            }});
            step("flaky fetch", #{{ retries: 1, retry_delay: "50ms" }}, || {{
                run(["sh", "-c", "test -e tried || {{ touch tried; echo 'connection reset'; exit 1; }}"]);
            }});
            step("quality gates", || gates::evaluate(gates::load("quality_gates.yaml"), #{{ coverage: 84.2, p99_ms: 181, flaky_tests: 3 }}, #{{}}));
            step("ask", || approve("release", `ship ${{release}} to production?`));
        }});
        phase("release", || {{
            step("deploy", #{{ undo: || run(["echo", "removing the canary"]) }}, || run(["echo", `deploying with ${{token}}`]));
            canary::run(#{{
                ladder: [5, 25, 50, 100], hold: "600ms", interval: "300ms",
                set_weight: |w| traffic::haproxy(#{{ socket: sock, backend: "app", weights: #{{ v1: 100 - w, v2: w }} }}),
                analyze: || health::probe("{v2url}", #{{ duration: "300ms", concurrency: 4 }}),
                baseline: || health::probe("{v1url}", #{{ duration: "300ms", concurrency: 4 }}),
                thresholds: #{{ error_rate: 0.01, p99_ms: 200 }},
                max_ratio_to_baseline: #{{ error_rate: 2.0 }},
                rollback: || info("canary stopped"),
            }});
        }});
        {last}
        on_failure(|e| report::write("reports"));
        "#,
        sock = haproxy.socket.display(),
        v1url = v1.url(),
        v2url = v2.url(),
    ))
    .file("Dockerfile", "FROM python:latest\nENV DEBUG=1\nCOPY . /app\nRUN pip install flask\n")
    .file(
        "quality_gates.yaml",
        "gates:\n  - { name: unit test coverage, metric: coverage, comparison: \">=\", threshold: 80, severity: blocker, area: testing }\n  - { name: latency, metric: p99_ms, comparison: \"<=\", threshold: 200, severity: major, area: performance }\n  - { name: flaky tests, metric: flaky_tests, comparison: \"<=\", threshold: 2, severity: minor, area: testing }\n",
    )
    .env("REPORT_TOKEN", SECRET)
    .args(["--approve", "release", "--param", &format!("api_key={SECRET}"), "--param", "release=v2.1"])
}

/// What every report must be: self-contained, escaped, without the secret.
#[track_caller]
fn self_contained(html: &str) {
    assert!(!html.contains(SECRET), "the secret is in the page");
    for needle in ["http://", "https://", "<script", "@import", "url(", "<link", "<img", "<iframe", "src="] {
        assert!(!html.contains(needle), "the page has `{needle}`");
    }
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "a link out of the page: {}", &href[..href.len().min(60)]);
    }
    assert!(html.contains("@media print"), "no print style");
}

/// The page through Chromium: every step and metric in the DOM, and a
/// screenshot that shows something; returns the DOM and the screenshot.
#[track_caller]
fn rendered(page: &Path, steps: &[&str], metrics: &[&str]) -> (String, PathBuf) {
    let dom = dump_dom(page);
    assert!(dom.contains("<svg class=\"timeline\""), "no timeline in the DOM");
    for s in steps {
        assert!(dom.contains(&format!(">{s}<")), "step `{s}` is not in the DOM");
    }
    for m in metrics {
        assert!(dom.contains(&format!("<h3>{m}: ")), "no chart of `{m}` in the DOM");
    }
    let png = page.with_extension("png");
    screenshot(page, &png);
    let p = pixels(&png);
    assert_eq!((p.width, p.height), (WIDTH, HEIGHT));
    assert!(p.colours > 50, "a blank screenshot: {} colours", p.colours);
    assert!(p.inked > 0.03, "a blank screenshot: {:.3} of the pixels drawn", p.inked);
    (dom, png)
}

/// Keep a screenshot where `CAPSTAN_REPORT_SCREENSHOTS` says.
fn keep(png: &Path, name: &str) {
    if let Some(dir) = std::env::var_os("CAPSTAN_REPORT_SCREENSHOTS") {
        std::fs::copy(png, Path::new(&dir).join(name)).expect("copy the screenshot");
    }
}

/// `capstan runs show last --html FILE` in the playbook's folder.
fn show_html(p: &Playbook, file: &Path) -> Run {
    let run = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .current_dir(p.dir.path())
            .args(["runs", "show", "last", "--html"])
            .arg(file)
            .output()
            .expect("run capstan"),
    );
    run.code(0);
    run
}

const STEPS: [&str; 10] = [
    "scan the Dockerfile",
    "flaky fetch",
    "quality gates",
    "ask",
    "deploy",
    "canary 5%",
    "checks",
    "release",
    "no critical findings",
    "unit test coverage",
];
const METRICS: [&str; 3] = ["error_rate", "p99_ms", "error_rate against the baseline"];

#[test]
fn failed_canary_report_shows_the_breach_the_rollback_and_every_sample() {
    let _exclusive = crate::support::exclusive();
    let (v1, v2) = (App::start("v1", 0.0, 1, 1), App::start("v2", 0.3, 1, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let p = playbook(&haproxy, &v1, &v2, "");
    p.run().code(1);
    let live = p.path("reports/report.html");
    let html = std::fs::read_to_string(&live).expect("report::write wrote report.html");
    self_contained(&html);
    let past = p.path("past.html");
    show_html(&p, &past);
    let past_html = std::fs::read_to_string(&past).unwrap();
    self_contained(&past_html);
    for page in [&html, &past_html] {
        assert!(page.contains("id=\"failure\""), "the failing step is not marked");
        assert!(page.contains("canary 5% rolled back: error_rate"), "the error is not beside the timeline");
        assert!(page.contains("No-data policy: <code>fail</code>"), "the no-data policy is not said");
        assert!(page.contains("breach: canary 5%: error_rate"), "the breach is not linked to its rollback");
        assert!(page.contains("canary rollback"), "no rollback");
        assert!(page.contains("removing the canary") || page.contains("deploy</td><td>ok"), "no undo");
        assert!(page.contains("via --approve release"), "no approval provenance");
        assert!(page.contains("attempt 1/2 failed"), "the retry is not shown");
        assert!(page.contains("dockerfile scan of <code>Dockerfile</code>"), "no compliance findings");
        assert!(page.contains("<th>severity</th><th>rule</th>"), "the findings' severities are not shown");
        let severities =
            ["critical", "high", "medium", "low"].iter().filter(|s| page.contains(&format!("\">{s}</span>")));
        assert!(severities.count() > 0, "no finding with its severity");
        assert!(page.contains("id=\"incident\"") && page.contains("What failed"), "no incident summary");
        assert!(page.contains("<td><code>release</code></td><td><code>v2.1</code></td>"), "params missing");
    }
    let (_, png) = rendered(&past, &STEPS, &METRICS);
    let drawn = pixels(&png);
    assert!(drawn.colours > 50);
    keep(&png, "report-canary-failed.png");
}

#[test]
fn successful_canary_report_shows_every_rung() {
    let _exclusive = crate::support::exclusive();
    let (v1, v2) = (App::start("v1", 0.0, 1, 1), App::start("v2", 0.0, 1, 1));
    let haproxy = Haproxy::start(&[("v1", v1.port), ("v2", v2.port)]);
    let p = playbook(&haproxy, &v1, &v2, r#"phase("report", || report::write("reports"));"#);
    p.run().code(0);
    let live = std::fs::read_to_string(p.path("reports/report.html")).expect("report::write wrote report.html");
    self_contained(&live);
    let past = p.path("past.html");
    show_html(&p, &past);
    let html = std::fs::read_to_string(&past).unwrap();
    self_contained(&html);
    assert!(!html.contains("id=\"failure\""), "a successful run has no failure");
    let steps: Vec<&str> = STEPS.iter().copied().chain(["canary 25%", "canary 50%", "canary 100%"]).collect();
    let (dom, png) = rendered(&past, &steps, &METRICS);
    for rung in ["5%", "25%", "50%", "100%"] {
        assert!(dom.contains(&format!("<td>{rung}</td>")), "no sample of rung {rung}");
    }
    keep(&png, "report-success.png");
}
