//! `capstan stats`: journals of generated runs with known outcomes and
//! times give exact counts, change failure rates, times to restore, lead
//! times and step percentiles; real runs of the binary in the same journal
//! keep the generator honest (its lines have the fields real ones have) and
//! are counted too; the Prometheus file passes `promtool check metrics`;
//! `--state postgres://…` counts the runs of two machines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::support::daemons::require;
use crate::support::postgres::shared;
use crate::support::{capstan_bin, events_in, Playbook};

const S: i64 = 1000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;
const D: i64 = 24 * H;

fn ts(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap()))
        .to_string()
}

fn millis(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// One generated run: journal lines as `capstan run` writes them.
struct Gen {
    id: String,
    playbook: String,
    params: Value,
    lines: Vec<Value>,
    seq: u32,
}

impl Gen {
    fn new(at: i64, playbook: &str, params: Value) -> Self {
        let id = format!("{}-{:04x}", ts(at).replace(['-', ':', '.'], ""), at.rem_euclid(0xffff));
        let mut g = Self { id, playbook: playbook.into(), params, lines: Vec::new(), seq: 1 };
        g.started(at, false, false);
        g
    }

    fn push(&mut self, at: i64, mut line: Value) {
        let fields = line.as_object_mut().unwrap();
        fields.insert("ts".into(), ts(at).into());
        fields.insert("run_id".into(), self.id.clone().into());
        self.lines.push(line);
    }

    fn started(&mut self, at: i64, dry_run: bool, resumed: bool) {
        let mut line = json!({
            "event": "run_started", "playbook": self.playbook, "dry_run": dry_run, "version": "0.1.0",
            "phases": ["do"], "playbook_sha256": "00", "params": self.params, "step_key_salt": "00",
        });
        if resumed {
            line["resumed"] = true.into();
        }
        self.push(at, line);
        self.push(at, json!({ "event": "phase_started", "phase": "do" }));
    }

    fn dry(at: i64, playbook: &str, params: Value) -> Self {
        let mut g = Self::new(at, playbook, params);
        g.lines.clear();
        g.started(at, true, false);
        g
    }

    fn resume(mut self, at: i64) -> Self {
        self.started(at, false, true);
        self
    }

    /// A step that ended at `end` after `ms`, in `attempts` attempts.
    fn step(mut self, end: i64, name: &str, status: &str, ms: i64, attempts: u32) -> Self {
        self.seq += 1;
        let seq = self.seq;
        self.push(
            end - ms,
            json!({ "event": "step_started", "phase": "do", "step": name, "seq": seq, "step_key": name }),
        );
        let mut line = json!({
            "event": "step_finished", "phase": "do", "step": name, "seq": seq, "status": status,
            "duration_ms": ms, "attempts": attempts, "step_key": name,
        });
        if status == "failed" {
            line["error"] = "boom".into();
            line["error_at"] = "deploy.rhai:1:1".into();
        }
        self.push(end, line);
        self
    }

    fn undo(mut self, at: i64, name: &str) -> Self {
        self.seq += 1;
        let seq = self.seq;
        self.push(at, json!({ "event": "undo_started", "phase": "do", "step": name, "seq": seq }));
        let line = json!({ "event": "undo_finished", "phase": "do", "step": name, "seq": seq, "status": "ok", "duration_ms": 0, "step_key": name });
        self.push(at, line);
        self
    }

    fn event(mut self, at: i64, kind: &str, data: Value) -> Self {
        self.push(at, json!({ "event": "event", "type": kind, "data": data }));
        self
    }

    fn commit(self, at: i64, committed: i64) -> Self {
        let committed = ts(committed / S * S).replace(".000Z", "Z");
        self.event(at, "git_commit", json!({ "sha": "0123abcd", "committed_at": committed }))
    }

    fn finish(mut self, at: i64, status: &str, code: i32) -> Self {
        let phase = if status == "ok" { "ok" } else { "failed" };
        self.push(
            at,
            json!({ "event": "phase_finished", "phase": "do", "status": phase, "duration_ms": 1, "attempts": 1 }),
        );
        let mut line = json!({ "event": "run_finished", "status": status, "exit_code": code, "duration_ms": M });
        if status == "failed" {
            line["error"] = "boom".into();
        }
        self.push(at, line);
        self
    }

    fn write(&self, root: &Path) {
        let dir = root.join(".capstan/runs").join(&self.id);
        std::fs::create_dir_all(dir.join("steps")).unwrap();
        let text: String = self.lines.iter().map(|l| l.to_string() + "\n").collect();
        std::fs::write(dir.join("journal.jsonl"), text).unwrap();
    }
}

/// The runs of the scenario README "Delivery statistics" walks through,
/// for `deploy.rhai` in `prod` (and one each elsewhere), ending at `n`.
fn scenario(n: i64) -> Vec<Gen> {
    let prod = || json!({ "env": "prod", "version": "1.4.2" });
    let p = "deploy.rhai";
    let (r1, r2, r3, r4) = (n - 6 * D, n - 5 * D, n - 5 * D + 2 * H, n - 5 * D + 3 * H);
    let (r5, r6, r9, r10) = (n - 3 * D, n - 3 * D + 30 * M, n - 20 * H, n - 2 * H);
    vec![
        // The previous period: one deployment, `deploy` took 50 ms.
        Gen::new(n - 10 * D, p, prod()).step(n - 10 * D + S, "deploy", "ok", 50, 1).finish(n - 10 * D + M, "ok", 0),
        // Lead time 4 h; `migrate` passed on its second attempt.
        Gen::new(r1, p, prod())
            .commit(r1, r1 + M - 4 * H)
            .step(r1 + 10 * S, "migrate", "ok", 10, 2)
            .step(r1 + 20 * S, "deploy", "ok", 100, 1)
            .finish(r1 + M, "ok", 0),
        // Incident 1 opens (failed, `migrate` undone); a second failure; restored by r4 after 3 h.
        Gen::new(r2, p, prod())
            .step(r2 + 10 * S, "migrate", "ok", 15, 1)
            .step(r2 + 20 * S, "deploy", "failed", 300, 1)
            .undo(r2 + 30 * S, "migrate")
            .finish(r2 + M, "failed", 1),
        Gen::new(r3, p, prod()).step(r3 + 20 * S, "deploy", "failed", 200, 1).finish(r3 + M, "failed", 1),
        Gen::new(r4, p, prod())
            .step(r4 + 10 * S, "migrate", "ok", 20, 1)
            .step(r4 + 20 * S, "deploy", "ok", 120, 1)
            .finish(r4 + M, "ok", 0),
        // Incident 2: a run that ended ok but rolled back a canary.
        Gen::new(r5, p, prod())
            .step(r5 + 20 * S, "deploy", "ok", 110, 1)
            .event(r5 + 30 * S, "canary_rollback", json!({ "rung": 10, "breach_to_restored_ms": 5 }))
            .finish(r5 + M, "ok", 0),
        // Failed, then resumed an hour later: `deploy` passed on resume and restored incident 2 (90 min).
        Gen::new(r6, p, prod())
            .step(r6 + 20 * S, "deploy", "failed", 400, 1)
            .finish(r6 + M, "failed", 1)
            .resume(r6 + H)
            .step(r6 + H + 20 * S, "deploy", "ok", 130, 1)
            .finish(r6 + H + M, "ok", 0),
        // Neither a dry run nor a blocked run is a deployment.
        Gen::dry(n - D, p, prod()).step(n - D + S, "deploy", "dry_run", 0, 0).finish(n - D + M, "ok", 0),
        Gen::new(n - D + H, p, prod()).finish(n - D + H + M, "failed", 3),
        // Lead time 2 h.
        Gen::new(r9, p, prod()).commit(r9, r9 + M - 2 * H).step(r9 + 20 * S, "deploy", "ok", 140, 1).finish(
            r9 + M,
            "ok",
            0,
        ),
        // Incident 3, still open.
        Gen::new(r10, p, prod()).step(r10 + 20 * S, "deploy", "failed", 500, 1).finish(r10 + M, "failed", 1),
        // Elsewhere: staging, and a playbook without environment params.
        Gen::new(n - 2 * D, p, json!({ "env": "staging", "version": "7" }))
            .step(n - 2 * D + S, "deploy", "ok", 90, 1)
            .finish(n - 2 * D + M, "ok", 0),
        Gen::new(n - D, "other.rhai", json!({ "version": "3" })).step(n - D + S, "ship", "ok", 40, 1).finish(
            n - D + M,
            "ok",
            0,
        ),
    ]
}

/// Two real runs in `qa`: the first fails (its `migrate` passes on a
/// retry and is undone), the second succeeds and records its commit.
const REAL: &str = r#"
let env = param("env");
let sha = git::sha();
phase("do", || {
    step("migrate", #{ retries: 1, retry_delay: "10ms", undo: || info("undo migrate") }, || {
        if !fs::exists("tried") { fs::write("tried", "1"); fail("first try"); }
    });
    step("deploy", || if fs::exists("broken") { fail("broken") });
});
"#;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn stats(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(capstan_bin())
        .current_dir(dir)
        .arg("stats")
        .args(args)
        .env_remove("CAPSTAN_STATE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn group<'a>(doc: &'a Value, playbook: &str, environment: &str) -> &'a Value {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["playbook"] == playbook && g["environment"] == environment)
        .unwrap_or_else(|| panic!("no group {playbook} [{environment}] in {doc:#}"))
}

fn step<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}"))
}

/// Keys of every event of each kind (`event`, or `event:type` for user events).
fn fields(lines: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in lines {
        let mut kind = l["event"].as_str().unwrap().to_string();
        if let Some(t) = l["type"].as_str() {
            kind = format!("{kind}:{t}");
        }
        out.entry(kind).or_default().extend(l.as_object().unwrap().keys().cloned());
    }
    out
}

#[test]
fn stats_of_generated_and_real_runs_are_exact() {
    let p = Playbook::new(REAL).args(["--param", "env=qa"]);
    let dir = p.dir.path();
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join(".gitignore"), ".capstan/\ntried\nbroken\n*.prom\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "release"]);
    std::fs::write(dir.join("broken"), "").unwrap();
    p.run().code(1);
    std::fs::remove_file(dir.join("broken")).unwrap();
    let resumed = p.command("run").args(["--resume", "last", "--log-format", "plain"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", String::from_utf8_lossy(&resumed.stderr));
    p.run().code(0);
    let real: Vec<Vec<Value>> = {
        let mut ids: Vec<_> =
            std::fs::read_dir(dir.join(".capstan/runs")).unwrap().flatten().map(|e| e.path()).collect();
        ids.sort();
        ids.iter().map(|d| events_in(&std::fs::read_to_string(d.join("journal.jsonl")).unwrap())).collect()
    };
    assert_eq!(real.len(), 2);

    // Whole seconds, as commit times are.
    let n = millis(SystemTime::now()) / S * S;
    let runs = scenario(n);
    for r in &runs {
        r.write(dir);
    }
    // A line torn by a crash, and one that is not UTF-8, are skipped.
    let torn = dir.join(".capstan/runs").join(&runs[10].id).join("journal.jsonl");
    let mut bytes = std::fs::read(&torn).unwrap();
    bytes.extend_from_slice(b"\xff\xfe\n{\"ts\":\"2026-");
    std::fs::write(&torn, bytes).unwrap();
    // The generator writes what real runs write: every field of its lines
    // is one a real line of that kind has.
    let real_fields = fields(&real.concat());
    for (kind, keys) in fields(&runs.iter().flat_map(|r| r.lines.clone()).collect::<Vec<_>>()) {
        if kind == "event:canary_rollback" {
            continue; // a canary playbook's event, tested with the canary
        }
        let have = real_fields.get(&kind).unwrap_or_else(|| panic!("real runs wrote no {kind}"));
        let extra: Vec<_> = keys.difference(have).collect();
        assert!(extra.is_empty(), "generated {kind} has fields real ones lack: {extra:?}");
    }

    let out = stats(dir, &["--since", "7d", "--json", "--prometheus", "capstan.prom"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json parses");
    let prod = group(&doc, "deploy.rhai", "prod");
    assert_eq!(prod["deployments"], 8, "{prod:#}");
    assert_eq!(prod["failed"], 5);
    assert_eq!(prod["change_failure_rate"], 0.625);
    assert_eq!(prod["per_day"].as_f64(), Some(8.0 / 7.0));
    assert_eq!(prod["previous"]["deployments"], 1);
    assert_eq!(prod["all_time"]["deployments"], 9);
    let restore = &prod["time_to_restore"];
    let restored: Vec<_> = restore["incidents"].as_array().unwrap().iter().map(|i| i["restore_ms"].clone()).collect();
    assert_eq!(restored, [json!(3 * H), json!(90 * M), Value::Null]);
    assert_eq!(restore["median_ms"], 90 * M);
    assert_eq!(restore["open"], 1);
    assert_eq!(restore["incidents"][1]["failed_run"].as_str(), Some(runs[5].id.as_str()));
    assert_eq!(restore["incidents"][1]["restored_run"].as_str(), Some(runs[6].id.as_str()));
    assert_eq!(prod["lead_time"], json!({ "median_ms": 2 * H, "runs": 2 }));
    let deploy = step(prod, "do/deploy");
    assert_eq!(
        (deploy["runs"].clone(), deploy["p50_ms"].clone(), deploy["p95_ms"].clone()),
        (json!(9), json!(140), json!(500))
    );
    assert_eq!((deploy["previous_p50_ms"].clone(), deploy["trend_pct"].clone()), (json!(50), json!(180.0)));
    assert_eq!((deploy["flaky"].clone(), deploy["passed_on_resume"].clone()), (json!(1), json!(1)));
    let migrate = step(prod, "do/migrate");
    assert_eq!(
        (migrate["runs"].clone(), migrate["p50_ms"].clone(), migrate["p95_ms"].clone()),
        (json!(3), json!(15), json!(20))
    );
    assert_eq!((migrate["flaky"].clone(), migrate["passed_after_retry"].clone()), (json!(1), json!(1)));
    assert_eq!(group(&doc, "deploy.rhai", "staging")["deployments"], 1);
    assert_eq!(group(&doc, "other.rhai", "")["change_failure_rate"], 0.0);

    // The real runs: the first failed (undone) and was resumed to success,
    // which restored it; both recorded their commit.
    let ends = |events: &[Value]| -> Vec<i64> {
        let stamps = events.iter().filter(|e| e["event"] == "run_finished").map(|e| e["ts"].as_str().unwrap());
        stamps.map(|t| millis(humantime::parse_rfc3339(t).unwrap())).collect()
    };
    let (first, second) = (ends(&real[0]), ends(&real[1]));
    assert_eq!((first.len(), second.len()), (2, 1), "a failed attempt and its resume, then a run");
    let commit = real[0].iter().find(|e| e["type"] == "git_commit").expect("git::sha recorded the commit");
    let committed = millis(humantime::parse_rfc3339(commit["data"]["committed_at"].as_str().unwrap()).unwrap());
    let qa = group(&doc, "deploy.rhai", "qa");
    assert_eq!((qa["deployments"].clone(), qa["failed"].clone()), (json!(2), json!(1)), "{qa:#}");
    assert_eq!(qa["time_to_restore"]["median_ms"], first[1] - first[0]);
    assert_eq!(qa["lead_time"], json!({ "median_ms": first[1] - committed, "runs": 2 }));
    assert_eq!(step(qa, "do/migrate")["passed_after_retry"], 1);
    assert_eq!(step(qa, "do/deploy")["passed_on_resume"], 1);

    // The Prometheus file passes promtool and carries the same figures.
    let prom = std::fs::read_to_string(dir.join("capstan.prom")).unwrap();
    let check = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(dir.join("capstan.prom")).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{prom}");
    for line in [
        r#"capstan_deployments_total{playbook="deploy.rhai",environment="prod"} 9"#,
        r#"capstan_change_failures_total{playbook="deploy.rhai",environment="prod"} 5"#,
        r#"capstan_change_failure_ratio{playbook="deploy.rhai",environment="prod"} 0.625"#,
        r#"capstan_time_to_restore_seconds{playbook="deploy.rhai",environment="prod"} 5400"#,
        r#"capstan_lead_time_seconds{playbook="deploy.rhai",environment="prod"} 7200"#,
        r#"capstan_step_duration_seconds{playbook="deploy.rhai",environment="prod",step="do/deploy",quantile="0.95"} 0.5"#,
        r#"capstan_step_flaky_executions{playbook="deploy.rhai",environment="prod",step="do/migrate"} 1"#,
        "capstan_stats_window_seconds 604800",
    ] {
        assert!(prom.lines().any(|l| l == line), "no `{line}` in\n{prom}");
    }

    // The table: within 80 columns, with the same figures.
    let out = stats(dir, &["--since", "7d", "--playbook", "deploy"]);
    let table = String::from_utf8(out.stdout).unwrap();
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line:?}");
    }
    assert!(!table.contains("other.rhai"), "--playbook deploy shows deploy.rhai only:\n{table}");
    let prod_block = table.split("\n\n").find(|b| b.starts_with("deploy.rhai [prod]")).expect(&table);
    let want = "deploy.rhai [prod]
  deployments  8 (1.14/day; previous period 1)
  failed       5 (62.5% change failure rate)
  restore      median 1h30m over 2 incidents, 1 still open
  lead time    median 2h00m over 2 runs
  STEP                                  RUNS     P50     P95   TREND FLAKY
  do/deploy                                9   140ms   500ms   +180%     1
  do/migrate                               3    15ms    20ms       -     1";
    assert_eq!(prod_block.trim_end(), want, "{table}");
}

#[test]
fn stats_over_a_postgres_store_counts_the_runs_of_two_machines() {
    use crate::state_store::{command, copy, PLAYBOOK};
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let url =
        shared().database(&format!("s{}_{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let state = ["--state", url.as_str()];
    // Copy A fails in `verify` (no `ok` file); copy B, on another "machine", succeeds.
    let failed = command(a.path(), dir.path(), "a", &state).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let ok = command(b.path(), dir.path(), "b", &state).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));

    // From a third folder with no journal of its own: both machines' runs.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = stats(elsewhere.path(), &["--json", "--state", &url]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = group(&doc, "deploy.rhai", "");
    assert_eq!((g["deployments"].clone(), g["failed"].clone()), (json!(2), json!(1)), "{doc:#}");
    assert_eq!(g["time_to_restore"]["open"], 0);
    assert_eq!(g["time_to_restore"]["incidents"].as_array().map(Vec::len), Some(1));
    assert_eq!(step(g, "build/one")["runs"], 2);
    // The environment variable works as the flag does.
    let mut c = Command::new(capstan_bin());
    let env = c.current_dir(elsewhere.path()).args(["stats", "--json"]).env("CAPSTAN_STATE", &url).output().unwrap();
    let doc: Value = serde_json::from_slice(&env.stdout).unwrap();
    assert_eq!(group(&doc, "deploy.rhai", "")["deployments"], 2);
}

#[test]
fn stats_without_runs_says_where_they_are_and_refuses_a_window_of_no_time() {
    let top = tempfile::tempdir().unwrap();
    Gen::new(millis(SystemTime::now()) - H, "deploy.rhai", json!({}))
        .finish(millis(SystemTime::now()) - H + M, "ok", 0)
        .write(&top.path().join("svc"));
    let out = stats(top.path(), &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no runs under ./.capstan/runs"), "{said}");
    assert!(said.contains("capstan stats --journal-dir svc"), "{said}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no runs"));
    let doc: Value = serde_json::from_slice(&stats(top.path(), &["--journal-dir", "svc", "--json"]).stdout).unwrap();
    assert_eq!(group(&doc, "deploy.rhai", "")["deployments"], 1);

    let zero = Command::new(capstan_bin()).current_dir(top.path()).args(["stats", "--since", "0s"]).output().unwrap();
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--since 0 is a window of no time"));
}
