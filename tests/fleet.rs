//! `fleet::run` against 30 real SSH hosts (sshd on 127.0.0.2-31, see
//! `support::daemons::shared_fleet`): every host runs, in parallel up to
//! `forks`, through one master per host; `max_fail` stops the fleet with a
//! recap naming the broken host; `--resume` runs only the unfinished hosts.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemons::{shared_fleet, FleetSshd, FLEET_HOSTS};
use crate::support::{events_in, exclusive, named, processes_with, Playbook, Run};

/// The hosts, from the Ansible inventory written beside the playbook
/// (`inventory.ini`, groups `web` and `db`).
const HOSTS: &str = r#"let hosts = inventory::load("inventory.ini");"#;

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
    let params = serde_json::json!({ "ssh_config": config.display().to_string() });
    p.file("inventory.ini", &inventory_ini(&list))
        .file("params.json", &params.to_string())
        .args(["--params-file", "params.json"])
}

/// The hosts as an Ansible-style INI inventory, one section per group in
/// the order the groups first appear, so the hosts load in their order.
fn inventory_ini(hosts: &[Value]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for h in hosts {
        let line = format!("{} ansible_host={}", h["name"].as_str().unwrap_or(""), h["address"].as_str().unwrap_or(""));
        let group = h["groups"][0].as_str().unwrap_or("ungrouped");
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((group, vec![line])),
        }
    }
    groups.iter().map(|(group, lines)| ["[", group, "]\n", &lines.join("\n"), "\n"].concat()).collect()
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
    let p = playbook(fleet, &source, |_| {}).args(["--junit", "junit.xml"]);
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
    // JUnit: one testcase per host.
    let junit = std::fs::read_to_string(p.path("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase name=\"restart/host").count(), FLEET_HOSTS, "{junit}");
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
    ) + "on_failure(|e| report::write(\"reports\"));\n";
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
    // So does the report.
    let md = std::fs::read_to_string(p.path("reports/report.md")).expect("report.md");
    let table = md.split("## Fleet recap").nth(1).unwrap_or_else(|| panic!("{md}"));
    assert!(table.lines().nth(4).is_some_and(|l| l.starts_with("| host05 | unreachable |")), "{md}");
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

/// `script` as `ssh` in a folder of its own, and a `PATH` that finds it first.
fn ssh_on_path(script: &str) -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().expect("temp dir");
    let ssh = bin.path().join("ssh");
    std::fs::write(&ssh, script).expect("ssh script");
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    (bin, path)
}

/// PIDs of the ssh masters started with this `ssh_config`.
fn masters(config: &str) -> Vec<i32> {
    processes_with(&format!("-F {config}"))
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("ControlMaster=yes"))
        })
        .collect()
}

/// Start a fleet of three hosts running `sleep 60`, wait for their masters,
/// then send capstan `signal`: the masters must be gone soon after.
fn masters_close_on(signal: nix::sys::signal::Signal) -> Option<i32> {
    let fleet = shared_fleet();
    let source = fleet_playbook("#{ forks: 3 }", r#"            ssh::run(host, ["sleep", "60"], #{ config: config })"#);
    let p = playbook(fleet, &source, |hosts| hosts.truncate(3));
    let config = p.path("ssh_config").display().to_string();
    let mut child = p.spawn(&["--log-format", "plain"]);
    let up = crate::support::wait_until(Duration::from_secs(20), || masters(&config).len() == 3);
    assert!(up, "three masters, one per host: {:?}", masters(&config));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("signal capstan");
    let status = crate::support::wait_until(Duration::from_secs(20), || child.try_wait().ok().flatten().is_some());
    assert!(status, "capstan did not stop on {signal}");
    let code = child.wait().ok().and_then(|s| s.code());
    let gone =
        crate::support::wait_until(Duration::from_secs(10), || processes_with(&format!("-F {config}")).is_empty());
    assert!(gone, "ssh outlived capstan after {signal}: {:?}", processes_with(&format!("-F {config}")));
    code
}

#[test]
fn the_reaper_closes_the_masters_when_capstan_is_killed() {
    masters_close_on(nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn ctrl_c_stops_the_hosts_and_closes_the_masters() {
    assert_eq!(masters_close_on(nix::sys::signal::Signal::SIGINT), Some(130));
}

#[test]
fn sigterm_stops_the_hosts_and_closes_the_masters() {
    assert_eq!(masters_close_on(nix::sys::signal::Signal::SIGTERM), Some(130));
}

/// A stand-in `ssh` that logs when masters start and sessions run, to count
/// how many were in flight at once; a master leaves its control socket
/// (not a socket: sessions go through the client); `-G` prints no settings.
const STUB_SSH: &str = r#"#!/bin/sh
log="$(dirname "$0")/log"
case "$*" in
  *" -G "*) exit 0 ;;
  *ControlMaster=yes*) echo "+ start" >>"$log"; sleep 0.3; echo "- start" >>"$log"
    for a in "$@"; do case "$a" in ControlPath=*) : >"${a#ControlPath=}" ;; esac; done ;;
  *) echo "+ session" >>"$log"; sleep 0.2; echo "- session" >>"$log" ;;
esac
"#;

/// The most lines of `kind` in flight at once in the stub's log.
fn most_at_once(log: &str, kind: &str) -> usize {
    let (mut now, mut most) = (0_usize, 0);
    for line in log.lines().filter(|l| l.ends_with(kind)) {
        if line.starts_with('+') {
            now += 1;
            most = most.max(now);
        } else {
            now = now.saturating_sub(1);
        }
    }
    most
}

#[test]
fn ssh_starts_bound_the_handshakes_and_sessions_per_master_are_bounded() {
    let (bin, path) = ssh_on_path(STUB_SSH);
    let p = Playbook::new(
        r#"phase("p", || {
    step("hosts", || fleet::run(["a", "b", "c", "d", "e", "f"], #{ forks: 6 }, |h| ssh::run(h, ["true"])));
    let calls = [];
    for i in 1..=12 { calls.push(|| ssh::run("a", ["true"])); }
    step("one host", || parallel(calls));
});
"#,
    )
    .env("PATH", &path)
    .args(["--ssh-starts", "2"]);
    p.run().code(0);
    let log = std::fs::read_to_string(bin.path().join("log")).unwrap_or_default();
    assert_eq!(log.lines().filter(|l| *l == "+ start").count(), 6, "one master per host: {log}");
    assert_eq!(most_at_once(&log, "start"), 2, "--ssh-starts 2: {log}");
    assert_eq!(log.lines().filter(|l| *l == "+ session").count(), 18, "{log}");
    let sessions = most_at_once(&log, "session");
    assert!((2..=8).contains(&sessions), "at most 8 sessions through host a's master at once: {sessions}\n{log}");
    let r = Playbook::new("phase(\"p\", || {});\n").args(["--ssh-starts", "0"]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// Without `--ssh-starts`, 10 handshakes at most are in flight (below
/// sshd's default `MaxStartups 10:30:100`), whatever `forks` allows.
#[test]
fn ssh_starts_default_to_10() {
    let (bin, path) = ssh_on_path(STUB_SSH);
    let p = Playbook::new(
        r#"phase("p", || {
    let hosts = [];
    for i in 1..=14 { hosts.push(`h${i}`); }
    fleet::run(hosts, #{ forks: 14 }, |h| ssh::run(h, ["true"]));
});
"#,
    )
    .env("PATH", &path);
    p.run().code(0);
    let log = std::fs::read_to_string(bin.path().join("log")).unwrap_or_default();
    assert_eq!(log.lines().filter(|l| *l == "+ start").count(), 14, "{log}");
    assert_eq!(most_at_once(&log, "start"), 10, "{log}");
}

#[test]
fn rolling_batches_run_their_hosts_in_parallel() {
    let p = Playbook::new(
        r#"import "capstan/rolling" as rolling;
phase("release", || {
    let r = rolling::run(#{
        hosts: ["h1", "h2", "h3", "h4", "h5", "h6"], batch: "50%",
        deploy: |h| run(["sleep", "0.5"]),
    });
    info(`updated ${r.updated.len()}`);
});
"#,
    );
    let start = Instant::now();
    let r = p.run();
    let took = start.elapsed();
    r.code(0);
    assert!(r.stderr.contains("updated 6"), "{}", r.stderr);
    // Two batches of three 0.5 s hosts: about 1 s, not 3 s.
    assert!(took < Duration::from_millis(2500), "{took:?}\n{}", r.stderr);
}

#[test]
fn a_host_timeout_is_that_hosts_failure_and_dry_run_touches_no_host() {
    let p = Playbook::new(
        r#"phase("p", || {
    step("hosts", || {
        let r = fleet::run(["a", "b", "c"], #{ timeout: "1s", max_fail: 1 }, |h| {
            run(["sleep", if h == "b" { "30" } else { "0" }]);
            h
        });
        info(`ok ${r.ok} failed ${r.failed}`);
    });
});
"#,
    );
    let start = Instant::now();
    let r = p.run_json();
    r.code(0);
    assert!(start.elapsed() < Duration::from_secs(15), "b's sleep was killed at its timeout");
    let events = r.events();
    let data = recap(&events);
    assert_eq!((data["ok"].as_u64(), data["failed"].as_u64()), (Some(2), Some(1)), "{data}");
    assert_eq!(data["hosts"][0]["host"], "b");
    assert!(data["hosts"][0]["error"].as_str().is_some_and(|e| e.contains("timed out")), "{data}");
    // Dry run: each host's step says what it would run; no ssh starts.
    let p = Playbook::new(
        r#"phase("p", || {
    fleet::run(["web1", "web2"], #{}, |h| ssh::run(h, ["systemctl", "restart", "app"]));
});
"#,
    )
    .env("PATH", "/nonexistent")
    .arg("--dry-run");
    let r = p.run();
    r.code(0);
    assert_eq!(r.stderr.matches("would run: ssh").count(), 2, "{}", r.stderr);
}

#[test]
fn ssh_copy_and_run_take_host_maps_and_the_call_options_win() {
    let fleet = shared_fleet();
    let drop_box = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(drop_box.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let source = fleet_playbook(
        "#{ forks: 3 }",
        &format!(
            r#"            let dst = `{dir}/${{host.name}}.txt`;
            ssh::copy(host, "payload.txt", dst, #{{ config: config }});
            ssh::run(host, ["cat", dst], #{{ config: config }}).stdout.trim()"#,
            dir = drop_box.path().display()
        ),
    );
    let p = playbook(fleet, &source, |hosts| hosts.truncate(3)).file("payload.txt", "v42\n");
    p.run().code(0);
    for n in 2..5 {
        let copied = std::fs::read_to_string(drop_box.path().join(format!("host{n:02}.txt"))).unwrap_or_default();
        assert_eq!(copied, "v42\n", "host{n:02}");
    }
    // The map's port is used unless the call gives one: a wrong port in the
    // map makes the host unreachable, the call's own port reaches it.
    let source = format!(
        r#"{HOSTS}
let config = param("ssh_config");
phase("p", || {{
    let host = hosts[0];
    host.port = 1;
    let r = fleet::run([host], #{{ max_fail: 1 }}, |h| ssh::run(h, ["true"], #{{ config: config }}));
    if r.unreachable != ["host02"] {{ fail(`not unreachable: ${{r}}`); }}
    ssh::run(host, ["true"], #{{ config: config, port: {port} }});
}});
"#,
        port = fleet.port
    );
    playbook(fleet, &source, |_| {}).run().code(0);
}

/// `-i` and `--limit`: the playbook works the hosts `inventory()` gives,
/// which are the inventory's less what the limit leaves out.
#[test]
fn limit_picks_the_hosts_of_the_fleet() {
    let fleet = shared_fleet();
    let source = r#"
let config = param("ssh_config");
phase("deploy", || {
    step("restart", || {
        let r = fleet::run(inventory(), #{ forks: 10 }, |host| ssh::run(host, ["true"], #{ config: config }));
        info(`ok: ${r.ok.len()}`);
    });
});
"#;
    let p = playbook(fleet, source, |_| {}).args(["-i", "inventory.ini", "--limit", "db:!host25"]);
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let mut hosts: Vec<String> =
        host_steps(&events).into_iter().map(|(h, status, _)| format!("{h} {status}")).collect();
    hosts.sort();
    let expected: Vec<String> = (17..=31).filter(|n| *n != 25).map(|n| format!("host{n:02} ok")).collect();
    assert_eq!(hosts, expected, "the db group less host25");
}

/// A wrapper `ssh` first on PATH: logs how it was started, then runs the real client.
const LOGGING_SSH: &str = r#"#!/bin/sh
echo "$*" >>"$(dirname "$0")/log"
exec /usr/bin/ssh "$@"
"#;

/// Through a host's master, a command is a session asked of the master over
/// its control socket: no ssh client starts for it, and stdin, both outputs
/// (more than a pipe holds), the exit status, masking and timeouts behave
/// as for the client.
#[test]
fn commands_through_a_master_start_no_ssh_client() {
    let fleet = shared_fleet();
    let (bin, path) = ssh_on_path(LOGGING_SSH);
    let payload = (0..6000).fold(String::new(), |mut text, i| {
        let _ = writeln!(text, "line {i:05} of the payload, padded out to fifty.");
        text
    });
    let source = format!(
        r#"{HOSTS}
let config = param("ssh_config");
let token = secret("CAPSTAN_MUX_TOKEN");
phase("p", || {{
    let host = hosts[0];
    let o = #{{ config: config }};
    step("io", || {{
        let input = fs::read("payload.txt");
        let echo = ssh::run(host, ["cat"], #{{ config: config, stdin: input, quiet: true }});
        if echo.stdout != input {{ fail(`stdin came back as ${{echo.stdout.len()}} bytes, not ${{input.len()}}`); }}
        let mixed = ssh::run(host, ["sh", "-c", "echo out; echo err >&2; exit 7"], #{{ config: config, check: false }});
        ssh::run(host, ["echo", `token=${{token}}`], o);
        let env = ssh::run(host, ["sh", "-c", "echo $CAPSTAN_SENT $CAPSTAN_SET"], #{{ config: config,
            options: ["SendEnv=CAPSTAN_SENT", "SetEnv=CAPSTAN_SET=by-config"] }});
        event("mux", #{{ bytes: echo.stdout.len(), code: mixed.code, out: mixed.stdout, err: mixed.stderr, env: env.stdout }});
    }});
    step("slow", || ssh::run(host, ["sleep", "30"], #{{ config: config, timeout: "1s" }}));
}});
"#
    );
    let p = playbook(fleet, &source, |_| {})
        .file("payload.txt", &payload)
        .env("PATH", &path)
        .env("CAPSTAN_MUX_TOKEN", "mux-secret-4417")
        .env("CAPSTAN_SENT", "from-capstan");
    let start = Instant::now();
    let r = p.run_json();
    r.code(1);
    assert!(start.elapsed() < Duration::from_secs(20), "the 1 s timeout ended the remote sleep's session");
    let events = r.events();
    let d = &named(&events, "event").into_iter().find(|e| e["type"] == "mux").expect("mux event")["data"];
    assert_eq!(d["bytes"].as_u64(), Some(payload.len() as u64), "{d}");
    assert_eq!((d["code"].as_i64(), d["out"].as_str(), d["err"].as_str()), (Some(7), Some("out\n"), Some("err\n")));
    assert!(r.stdout.contains("token=***") && !r.stdout.contains("mux-secret-4417"), "{}", r.stdout);
    // The session got the environment the client would send (`SendEnv`, `SetEnv`).
    assert_eq!(d["env"], "from-capstan by-config\n");
    let error = named(&events, "run_finished")[0]["error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("timed out after 1s"), "{error}");
    // Two ssh started for each master: `ssh -G` (what to send) and the
    // master. The commands went through the masters: no ssh each.
    let log = std::fs::read_to_string(bin.path().join("log")).unwrap_or_default();
    assert_eq!(log.lines().filter(|l| l.contains("ControlMaster=yes")).count(), 2, "{log}");
    assert_eq!(log.lines().filter(|l| l.contains(" -G ")).count(), 2, "{log}");
    assert_eq!(log.lines().count(), 4, "{log}");
}

/// `batch` holds the next batch until the current one finished, and each
/// host retries as a step of its own: a host that succeeds on its retry is
/// no failure (`max_fail: 0` holds) and only it ran twice.
#[test]
fn batches_wait_for_each_other_and_each_host_retries_on_its_own() {
    let p = Playbook::new(
        r#"phase("p", || {
    step("roll", || {
        let r = fleet::run(["h1", "h2", "h3", "h4"], #{ forks: 4, batch: "50%", retries: 1, retry_delay: "0s" }, |h| {
            if h == "h2" && !fs::exists("h2-tried") {
                fs::write("h2-tried", "yes");
                fail("h2's first try");
            }
            run(["echo", `hello from ${h}`]);
            run(["sleep", "0.3"]);
            h
        });
        info(`ok ${r.ok.len()} failed ${r.failed.len()}`);
    });
});
"#,
    );
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let at = |kind: &str, host: &str| {
        events.iter().position(|e| e["event"] == kind && e["step"] == format!("roll/{host}")).unwrap_or(usize::MAX)
    };
    let first_batch_done = at("step_finished", "h1").max(at("step_finished", "h2"));
    let second_batch_started = at("step_started", "h3").min(at("step_started", "h4"));
    assert!(first_batch_done < second_batch_started, "batch 2 started before batch 1 finished");
    let attempts: Vec<(String, u64)> = named(&events, "step_finished")
        .iter()
        .filter_map(|e| Some((e["step"].as_str()?.strip_prefix("roll/")?.to_string(), e["attempts"].as_u64()?)))
        .collect();
    let mut attempts = attempts;
    attempts.sort();
    let expected: Vec<(String, u64)> =
        [("h1", 1), ("h2", 2), ("h3", 1), ("h4", 1)].iter().map(|(h, n)| ((*h).to_string(), *n)).collect();
    assert_eq!(attempts, expected);
    assert!(r.stdout.contains("ok 4 failed 0") || r.stderr.contains("ok 4 failed 0"), "{}", r.stderr);
    // The recap gives each host its duration: at least its 0.3 s sleep.
    let data = recap(&events);
    for row in data["hosts"].as_array().cloned().unwrap_or_default() {
        assert!(row["duration_ms"].as_u64().is_some_and(|ms| (300..10_000).contains(&ms)), "{row}");
    }
    // Each host's step has a log of its own, with only its own lines.
    let runs: Vec<_> = std::fs::read_dir(p.path(".capstan/runs")).expect("runs").flatten().collect();
    let steps = runs[0].path().join("steps");
    for host in ["h1", "h2", "h3", "h4"] {
        let log = std::fs::read_dir(&steps)
            .expect("steps")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&format!("-{host}.log")))
            .unwrap_or_else(|| panic!("no log for {host}"));
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("hello from")).collect::<Vec<_>>(),
            [format!("hello from {host}")]
        );
    }
}

/// `max_fail` as a percentage: "10%" of 10 hosts lets one fail (the fleet
/// succeeds and says which), and stops the fleet at the second.
#[test]
fn max_fail_takes_a_percentage_of_the_hosts() {
    let source = |broken: &str| {
        format!(
            r#"phase("p", || {{
    step("roll", || {{
        let hosts = [];
        for i in 1..=10 {{ hosts.push(`h${{i}}`); }}
        let broken = [{broken}];
        let r = fleet::run(hosts, #{{ forks: 1, max_fail: "10%" }}, |h| {{
            if broken.contains(h) {{ fail(`${{h}} is broken`); }}
        }});
        info(`ok ${{r.ok.len()}} failed ${{r.failed}}`);
    }});
}});
"#
        )
    };
    let r = Playbook::new(&source(r#""h3""#)).run();
    r.code(0);
    assert!(r.stderr.contains("ok 9 failed [\"h3\"]"), "{}", r.stderr);
    let r = Playbook::new(&source(r#""h3", "h7""#)).run_json();
    r.code(1);
    let events = r.events();
    let data = recap(&events);
    // One host at a time: h1-h6 ran (h3 failed), h7 failed, h8-h10 never started.
    assert_eq!((data["ok"].as_u64(), data["failed"].as_u64(), data["skipped"].as_u64()), (Some(5), Some(2), Some(3)));
    let error = named(&events, "run_finished")[0]["error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("fleet stopped"), "{error}");
    let r = Playbook::new(&source(r#""h1", "h2""#)).run_json();
    r.code(1);
    let data = recap(&r.events());
    assert_eq!(data["skipped"].as_u64(), Some(8), "no host starts after the second failure: {data}");
}

/// A master killed outright leaves its socket with nobody listening: the
/// next command starts the host's master again instead of making a
/// connection of its own, and the commands after it go through the new one.
#[test]
fn a_master_killed_outright_is_started_again() {
    let fleet = shared_fleet();
    let (bin, path) = ssh_on_path(LOGGING_SSH);
    let source = format!(
        r#"{HOSTS}
let config = param("ssh_config");
phase("p", || {{
    let host = hosts[0];
    let o = #{{ config: config }};
    ssh::run(host, ["true"], o);
    run(["pkill", "-KILL", "-f", "--", `-F ${{config}} .*ControlMaster=yes`]);
    for word in ["one", "two", "three"] {{
        if ssh::run(host, ["echo", word], o).stdout != word + "\n" {{ fail(`no ${{word}}`); }}
    }}
}});
"#
    );
    let p = playbook(fleet, &source, |_| {}).env("PATH", &path);
    p.run().code(0);
    let log = std::fs::read_to_string(bin.path().join("log")).unwrap_or_default();
    assert_eq!(log.lines().filter(|l| l.contains("ControlMaster=yes")).count(), 2, "{log}");
    assert_eq!(log.lines().filter(|l| !l.contains("ControlMaster=yes") && !l.contains(" -G ")).count(), 0, "{log}");
}

/// The fleet playbook the README shows beside its Ansible twin passes
/// `capstan check`, and a dry run works the hosts `-i` and `--limit` give it.
#[test]
fn the_readme_fleet_playbook_checks() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let after = readme.split("A fleet playbook and the Ansible playbook").nth(1).expect("the fleet section");
    let block = after.split("```rhai\n").nth(1).and_then(|b| b.split("```").next()).expect("its rhai block");
    assert!(block.contains("fleet::run(hosts"), "{block}");
    let p = Playbook::new(block).file("hosts.ini", "[web]\nweb[01:03]\n[db]\ndb1\n");
    let r = p.check();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Dry run over the limited inventory: each web host's step says what it would do.
    let r = Playbook::new(block)
        .file("hosts.ini", "[web]\nweb[01:03]\n[db]\ndb1\n")
        .args(["-i", "hosts.ini", "--limit", "web", "--param", "version=1.4.2", "--dry-run"])
        .run();
    r.code(0);
    assert_eq!(r.stderr.matches("would run: ssh").count(), 6, "{}", r.stderr);
    assert_eq!(r.stderr.matches("would run: scp").count(), 3, "{}", r.stderr);
    assert!(!r.stderr.contains("db1"), "{}", r.stderr);
}
