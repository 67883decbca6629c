//! The page from a hand-written journal: escaped, self-contained, and with
//! each part where a reader looks for it.

use super::render;
use crate::report::RunRecord;

const JOURNAL: &str = r#"{"ts":"2026-01-01T00:00:00.000Z","run_id":"r1","event":"run_started","playbook":"p<1>.rhai","params":{"who":"<b>x</b>","token":"***"}}
{"ts":"2026-01-01T00:00:00.010Z","run_id":"r1","event":"phase_started","phase":"release"}
{"ts":"2026-01-01T00:00:00.020Z","run_id":"r1","event":"step_started","phase":"release","step":"<script>alert(1)</script>","seq":1}
{"ts":"2026-01-01T00:00:00.030Z","run_id":"r1","event":"log","phase":"release","step":"<script>alert(1)</script>","seq":1,"level":"warn","message":"attempt 1/2 failed: boom; retrying in 10ms"}
{"ts":"2026-01-01T00:00:00.040Z","run_id":"r1","event":"output","phase":"release","step":"<script>alert(1)</script>","seq":1,"stream":"stdout","line":"a \"quoted\" & <tagged> line"}
{"ts":"2026-01-01T00:00:00.050Z","run_id":"r1","event":"event","phase":"release","step":"<script>alert(1)</script>","seq":1,"type":"canary_decision","data":{"title":"canary 5%","rung":5,"verdict":"fail","reason":"error_rate 0.2 > 0.01","no_data":"inconclusive","summary":"error_rate 0.2 > 0.01 BREACH","checks":[{"metric":"error_rate","threshold":0.01,"op":"<=","value":0.2,"ok":false},{"metric":"p99_ms","threshold":200,"op":"<=","value":null,"ok":null}],"sample":{"requests":10},"baseline":null}}
{"ts":"2026-01-01T00:00:00.055Z","run_id":"r1","event":"event","phase":"release","step":"<script>alert(1)</script>/rollback","type":"canary_rollback","data":{"rung":5,"reason":"error_rate 0.2 > 0.01","breach_to_restored_ms":3}}
{"ts":"2026-01-01T00:00:00.060Z","run_id":"r1","event":"step_finished","phase":"release","step":"<script>alert(1)</script>","status":"failed","duration_ms":40,"attempts":2,"error":"it's <broken> & gone"}
{"ts":"2026-01-01T00:00:00.070Z","run_id":"r1","event":"phase_finished","phase":"release","status":"failed","duration_ms":60}
{"ts":"2026-01-01T00:00:00.080Z","run_id":"r1","event":"run_finished","status":"failed","exit_code":1,"duration_ms":80}
"#;

#[test]
fn everything_is_escaped_and_nothing_is_fetched() {
    let html = render(&RunRecord::from_journal(JOURNAL)).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<b>x</b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("it&#x27;s &lt;broken&gt; &amp; gone"), "{html}");
    for needle in ["http:", "https:", "@import", "url("] {
        assert!(!html.contains(needle), "{needle}");
    }
}

#[test]
fn the_failure_its_retry_output_and_samples_are_shown() {
    let html = render(&RunRecord::from_journal(JOURNAL)).unwrap();
    assert!(html.contains("id=\"failure\""));
    assert!(html.contains("attempt 1/2 failed: boom"));
    assert!(html.contains("a &quot;quoted&quot; &amp; &lt;tagged&gt; line"));
    assert!(html.contains("<h3>error_rate: at most 0.01"));
    assert!(html.contains("<h3>p99_ms: at most 200"));
    assert!(html.contains(">no data</text>"), "a missing value is drawn as no data");
    assert!(html.contains("No-data policy: <code>inconclusive</code>"));
    assert!(html.contains("breach: canary 5%: error_rate 0.2 &gt; 0.01"), "the breach links to its rollback");
    assert!(html.contains("<td><code>token</code></td><td><code>***</code></td>"));
}

/// An approval asked for on a terminal is a bar from the asking to the answer.
#[test]
fn an_approval_waited_for_is_drawn_as_a_wait() {
    let journal = r#"{"ts":"2026-01-01T00:00:00.000Z","run_id":"r1","event":"run_started","playbook":"p.rhai"}
{"ts":"2026-01-01T00:00:00.010Z","run_id":"r1","event":"phase_started","phase":"do"}
{"ts":"2026-01-01T00:00:00.020Z","run_id":"r1","event":"step_started","phase":"do","step":"gate","seq":1}
{"ts":"2026-01-01T00:00:00.030Z","run_id":"r1","event":"log","phase":"do","step":"gate","seq":1,"level":"debug","message":"waiting for approval `prod`"}
{"ts":"2026-01-01T00:00:04.530Z","run_id":"r1","event":"gate","phase":"do","step":"gate","seq":1,"name":"approval: prod","passed":true,"by":"ana","via":"terminal"}
{"ts":"2026-01-01T00:00:04.540Z","run_id":"r1","event":"step_finished","phase":"do","step":"gate","status":"ok","duration_ms":4520,"attempts":1}
{"ts":"2026-01-01T00:00:04.550Z","run_id":"r1","event":"phase_finished","phase":"do","status":"ok","duration_ms":4540}
{"ts":"2026-01-01T00:00:04.560Z","run_id":"r1","event":"run_finished","status":"ok","exit_code":0,"duration_ms":4560}
"#;
    let html = render(&RunRecord::from_journal(journal)).unwrap();
    assert!(html.contains("approval prod: waited 4.5s, given by ana via terminal"), "{html}");
    assert!(html.contains("⧗ approval prod"));
    // Without the asking, an approval (given by --approve) stays a marker.
    let given = journal.lines().filter(|l| !l.contains("waiting for approval")).collect::<Vec<_>>().join("\n");
    assert!(!render(&RunRecord::from_journal(&given)).unwrap().contains("⧗ approval prod"));
}
