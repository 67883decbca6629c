//! `fleet::run` against 30 real SSH hosts (sshd on 127.0.0.2-31, see
//! `support::daemons::shared_fleet`): every host runs, in parallel up to
//! `forks`, through one master per host; `max_fail` stops the fleet with a
//! recap naming the broken host; `--resume` runs only the unfinished hosts.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemons::{shared_fleet, FleetSshd, FLEET_HOSTS};
use crate::support::{events_in, exclusive, named, processes_with, Playbook, Run};

/// The hosts come from `hosts.json` (a params file) until the inventory
/// loader reads them: this line is the one to change.
const HOSTS: &str = r#"let hosts = param("hosts");"#;

/// A playbook over the fleet: `body` is the per-host closure's body (it
/// sees `host` and `config`, the `ssh_config`), `options` the fleet's.
fn fleet_playbook(options: &str, body: &str) -> String {
    format!(
        r#"{HOSTS}
let config = param("ssh_config");
phase("deploy", || {{
    step("restart", || {{
        let r = fleet::run(hosts, {options}, |host| {{
{body}
        }});
        info(`ok: ${{r.ok.len()}}`);
    }});
}});
"#
    )
}

/// The playbook in a folder of its own with the fleet's hosts as params;
/// `hosts` edits them first. The `ssh_config` is copied into the folder, so
/// the ssh masters of this run name a path no other test's do.
fn playbook(fleet: &FleetSshd, source: &str, hosts: impl FnOnce(&mut Vec<Value>)) -> Playbook {
    let mut list: Vec<Value> = FleetSshd::hosts_json().as_array().cloned().unwrap_or_default();
    hosts(&mut list);
    let p = Playbook::new(source);
    let config = p.path("ssh_config");
    std::fs::copy(&fleet.ssh_config, &config).expect("copy ssh_config");
    let params = serde_json::json!({ "hosts": list, "ssh_config": config.display().to_string() });
    p.file("params.json", &params.to_string()).args(["--params-file", "params.json"])
}

fn recap(events: &[Value]) -> Value {
    named(events, "event").into_iter().find(|e| e["type"] == "fleet_recap").expect("a fleet_recap event")["data"]
        .clone()
}

/// Hosts' steps as they finished: `(host, status, resumed)`.
fn host_steps(events: &[Value]) -> Vec<(String, String, bool)> {
    named(events, "step_finished")
        .into_iter()
        .filter(|e| e["step"].as_str().is_some_and(|s| s.starts_with("restart/")))
        .map(|e| {
            (
                e["host"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
                e["resumed"] == true,
            )
        })
        .collect()
}

#[test]
fn thirty_hosts_run_in_parallel_through_one_master_each() {
    let fleet = shared_fleet();
    let source = fleet_playbook(
        "#{ forks: 10 }",
        r#"            let out = ssh::run(host, ["sh", "-c", "sleep 1; echo $SSH_CONNECTION"], #{ config: config });
            let seen = out.stdout.split(" ")[2];
            if seen != host.address { fail(`reached ${seen}, not ${host.address}`); }
            ssh::run(host, ["true"], #{ config: config });
            seen"#,
    );
    let p = playbook(fleet, &source, |_| {});
    let config = p.path("ssh_config").display().to_string();
    let _quiet = exclusive();
    let start = Instant::now();
    let r = p.run_json();
    let took = start.elapsed();
    eprintln!("fleet: {FLEET_HOSTS} hosts x 1 s, forks 10: {took:.2?}");
    r.code(0);
    let events = r.events();
    let steps = host_steps(&events);
    assert_eq!(steps.len(), FLEET_HOSTS, "{steps:?}");
    assert!(steps.iter().all(|(h, s, _)| s == "ok" && h.starts_with("host")), "{steps:?}");
    // Each host's own lines carry its name.
    let host02 = events.iter().filter(|e| e["step"] == "restart/host02" && e["event"] == "output").collect::<Vec<_>>();
    assert!(host02.iter().all(|e| e["host"] == "host02"), "{host02:?}");
    let data = recap(&events);
    assert_eq!(data["ok"], FLEET_HOSTS);
    assert_eq!(data["hosts"].as_array().map(Vec::len), Some(FLEET_HOSTS));
    // Three waves of ten 1 s commands: about 3 s, far below 30 s one after the other.
    assert!(took <= Duration::from_secs(10), "30 hosts x 1 s with forks 10 took {took:?}");
    // The masters ended with the run.
    let left = processes_with(&format!("-F {config}"));
    assert!(left.is_empty(), "ssh processes outlived the run: {left:?}");
    // One master per host: sshd saw no more than one handshake per host
    // (the second command of each host went through the master).
    assert!(!fleet.log().contains("drop connection"), "{}", fleet.log());
}

#[test]
fn a_broken_host_with_max_fail_0_stops_the_fleet_and_the_recap_names_it() {
    let fleet = shared_fleet();
    let marks = tempfile::tempdir().expect("temp dir");
    let undo_log = marks.path().join("undone");
    let source = fleet_playbook(
        &format!(
            r#"#{{ forks: 4, max_fail: 0, undo: |h| run(["sh", "-c", `echo ${{h.name}} >> {}`]) }}"#,
            undo_log.display()
        ),
        r#"            ssh::run(host, ["sleep", "1"], #{ config: config })"#,
    );
    // host05 points at an address no sshd listens on.
    let p = playbook(fleet, &source, |hosts| hosts[3]["address"] = "127.0.0.99".into());
    let r = p.run_json();
    r.code(1);
    let events = r.events();
    let data = recap(&events);
    let rows = data["hosts"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows[0]["host"], "host05", "failures first: {data}");
    assert_eq!(rows[0]["status"], "unreachable", "{data}");
    assert!(rows[0]["error"].as_str().is_some_and(|e| e.contains("127.0.0.99")), "{data}");
    let skipped = data["skipped"].as_u64().unwrap_or(0);
    assert!(skipped >= 20, "no new host starts once max_fail is exceeded: {data}");
    assert_eq!(data["ok"].as_u64().unwrap_or(0) + skipped + 1, FLEET_HOSTS as u64, "{data}");
    // The hosts in flight finished and every host done was undone, newest first.
    let undone = std::fs::read_to_string(&undo_log).unwrap_or_default();
    let undone: Vec<&str> = undone.lines().collect();
    assert_eq!(undone.len() as u64, data["ok"].as_u64().unwrap_or(0), "{undone:?} {data}");
    let finished = named(&events, "step_finished");
    let order: Vec<&str> = finished
        .iter()
        .filter(|e| e["status"] == "ok" && e["step"].as_str().is_some_and(|s| s.starts_with("restart/")))
        .filter_map(|e| e["host"].as_str())
        .collect();
    assert_eq!(undone, order.iter().rev().copied().collect::<Vec<_>>(), "undo runs newest first");
    let run_finished = named(&events, "run_finished");
    let error = run_finished[0]["error"].as_str().unwrap_or("");
    assert!(error.contains("fleet stopped") && error.contains("host05"), "{error}");
    // The terminal shows the recap, failures first.
    let plain = p.run();
    let at = plain.stderr.find("fleet recap:").unwrap_or_else(|| panic!("{}", plain.stderr));
    let table: Vec<&str> = plain.stderr[at..].lines().skip(1).take(2).collect();
    assert!(table[0].contains("host05") && table[0].contains("unreachable"), "{table:?}");
    // `runs show` tells it again.
    let show = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last"])
            .current_dir(p.dir.path())
            .output()
            .expect("runs show"),
    );
    let shown = show.all();
    assert!(shown.contains("fleet recap:") && shown.contains("host05"), "{shown}");
}

#[test]
fn resume_runs_only_the_hosts_that_did_not_finish() {
    let fleet = shared_fleet();
    let marks = tempfile::tempdir().expect("temp dir");
    // The hosts log in as the fleet's user, who writes here.
    std::fs::set_permissions(marks.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let ran = marks.path().join("ran");
    let broken = marks.path().join("broken-host09");
    std::fs::write(&broken, "").expect("break host09");
    let source = fleet_playbook(
        "#{ forks: 4, max_fail: 0 }",
        &format!(
            r#"            ssh::run(host, ["sh", "-c", `echo ${{host.name}} >> {ran}; test ! -e {dir}/broken-${{host.name}}`], #{{ config: config }})"#,
            ran = ran.display(),
            dir = marks.path().display()
        ),
    );
    let p = playbook(fleet, &source, |_| {});
    let first = p.run_json();
    first.code(1);
    let first_steps = host_steps(&first.events());
    let done: Vec<String> = first_steps.iter().filter(|(_, s, _)| s == "ok").map(|(h, _, _)| h.clone()).collect();
    assert!(first_steps.iter().any(|(h, s, _)| h == "host09" && s == "failed"), "{first_steps:?}");
    assert!(done.len() < FLEET_HOSTS - 1, "some hosts were never started: {first_steps:?}");

    std::fs::remove_file(&broken).expect("fix host09");
    std::fs::remove_file(&ran).expect("reset");
    let second = Run::from(p.command("run").args(["--resume", "last", "--log-format", "json"]).output().unwrap());
    second.code(0);
    let steps = host_steps(&second.events());
    let replayed: Vec<&str> = steps.iter().filter(|(_, _, resumed)| *resumed).map(|(h, _, _)| h.as_str()).collect();
    let mut expected: Vec<&str> = done.iter().map(String::as_str).collect();
    expected.sort_unstable();
    let mut replayed_sorted = replayed.clone();
    replayed_sorted.sort_unstable();
    assert_eq!(replayed_sorted, expected, "finished hosts are replayed, not run");
    let ran = std::fs::read_to_string(&ran).unwrap_or_default();
    let mut ran: Vec<&str> = ran.lines().collect();
    ran.sort_unstable();
    assert_eq!(ran.len(), FLEET_HOSTS - done.len(), "only the unfinished hosts ran: {ran:?}");
    assert!(ran.contains(&"host09"), "the failed host runs again: {ran:?}");
    assert!(done.iter().all(|h| !ran.contains(&h.as_str())), "a finished host ran again: {ran:?}");
    let journal = events_in(&p.journal_text());
    assert!(named(&journal, "run_finished").iter().any(|e| e["status"] == "ok"));
}

#[test]
fn bad_fleet_options_are_usage_errors_with_a_hint() {
    let p = Playbook::new(
        r#"phase("p", || { fleet::run(["a"], #{ forkz: 2 }, |h| h); });
"#,
    );
    let r = p.run();
    r.code(1);
    assert!(r.stderr.contains("unknown fleet::run option `forkz`") && r.stderr.contains("forks"), "{}", r.stderr);
    let p = Playbook::new(
        r#"phase("p", || { fleet::run(["a", "a"], #{}, |h| h); });
"#,
    );
    let r = p.run();
    assert!(r.stderr.contains("host `a` is listed twice"), "{}", r.stderr);
}
