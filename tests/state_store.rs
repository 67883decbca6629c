//! `--state postgres://…`: two working copies with journal folders of their
//! own act as two machines sharing one real PostgreSQL (started by the test
//! harness, tests/support/postgres.rs): locks are leases every machine sees,
//! runs are listed and resumed across machines, and a store that is
//! unreachable or lost stops the run as the issue asks.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::capstan_bin;
use crate::support::postgres::{shared, Postgres};
use crate::support::seaweed;

/// Waits for `FILE` to exist, then succeeds: a step that holds the run
/// until the test lets it go.
pub(crate) const PLAYBOOK: &str = r#"
let dir = param("dir");
phase("build", || {
    step("one", #{ undo: || sh(`touch ${dir}/undone-${param("copy")}`) }, || sh(`echo x >> ${dir}/one-ran`));
    step("hold", || sh(`touch ${dir}/holding-${param("copy")}; while [ ! -e ${dir}/go ]; do sleep 0.05; done`));
});
phase("verify", || {
    step("check", || sh(`test -e ${dir}/ok`));
    step("after", || sh(`touch ${dir}/after-ran`));
});
"#;

/// A database of its own on the shared server, per test.
fn database() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    shared().database(&format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)))
}

/// A working copy: the playbook in a folder of its own (its journal goes there).
pub(crate) fn copy(playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.rhai"), playbook).unwrap();
    dir
}

/// `c` with the S3 test identity in the AWS variables (a PostgreSQL store ignores them).
fn signed(mut c: Command) -> Command {
    c.env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN");
    c
}

pub(crate) fn command(copy: &Path, shared_dir: &Path, name: &str, args: &[&str]) -> Command {
    let mut c = signed(Command::new(capstan_bin()));
    c.current_dir(copy)
        .args(["run", "deploy.rhai", "--log-format", "plain", "--param"])
        .arg(format!("dir={}", shared_dir.display()))
        .args(["--param", &format!("copy={name}")])
        .args(args)
        .env_remove("CAPSTAN_STATE")
        .env("NO_COLOR", "1");
    c
}

pub(crate) fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn capstan")
}

pub(crate) fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub(crate) fn wait_for(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before {} appeared", path.display());
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run ids in a working copy's journal folder.
pub(crate) fn run_ids(copy: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(copy.join(".capstan/runs"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn a_held_lock_blocks_the_other_machine_queues_it_and_is_taken_over_when_its_holder_dies() {
    held_lock_blocks_queues_and_is_taken_over(&database());
}

/// The lock scenario on the store at `url` (PostgreSQL here, S3 in `state_store_s3.rs`).
pub(crate) fn held_lock_blocks_queues_and_is_taken_over(url: &str) {
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let lock = ["--state", url, "--lock", "prod"];

    let mut first = spawn(command(a.path(), dir.path(), "a", &lock));
    wait_for(&dir.path().join("holding-a"), &mut first);
    let first_id = run_ids(a.path()).pop().expect("copy A journals its run");

    // Blocked: exit 3 naming the holder on the other machine.
    let blocked = command(b.path(), dir.path(), "b", &lock).output().unwrap();
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
    let said = String::from_utf8_lossy(&blocked.stderr);
    assert!(said.contains(&format!("lock `prod` is held by run {first_id} (pid {}", first.id())), "{said}");
    assert!(
        !dir.path().join("one-ran").exists()
            || std::fs::read_to_string(dir.path().join("one-ran")).unwrap().lines().count() == 1
    );

    // Waiting in line: it says for whom, and runs once the holder is done.
    let mut waiting = command(b.path(), dir.path(), "b", &lock);
    waiting.args(["--lock-wait", "60s"]);
    let waiting = spawn(waiting);
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = first.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    let queued = waiting.wait_with_output().unwrap();
    assert_eq!(queued.status.code(), Some(0), "{}", text(&queued));
    let said = String::from_utf8_lossy(&queued.stderr);
    assert!(said.contains(&format!("waiting for lock `prod`, held by run {first_id}")), "{said}");
    // PostgreSQL keeps a line of waiters; S3 does not, and says no place.
    assert_eq!(said.contains("(position 1 in line)"), url.starts_with("postgres"), "{said}");
    assert!(!said.contains("took over"), "released cleanly: {said}");
    assert!(String::from_utf8_lossy(&done.stderr).contains("fencing token"), "{}", text(&done));

    // The holder SIGKILLed: its lease (3 s) expires and the other takes over.
    std::fs::remove_file(dir.path().join("go")).unwrap();
    std::fs::remove_file(dir.path().join("holding-a")).unwrap();
    let mut short = command(a.path(), dir.path(), "a", &lock);
    short.args(["--lock-ttl", "3s"]);
    let mut doomed = spawn(short);
    wait_for(&dir.path().join("holding-a"), &mut doomed);
    let doomed_id = run_ids(a.path()).pop().unwrap();
    let killed_at = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(doomed.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = doomed.wait();
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut taker = command(b.path(), dir.path(), "b", &lock);
    taker.args(["--lock-wait", "30s"]);
    let took = taker.output().unwrap();
    assert_eq!(took.status.code(), Some(0), "{}", text(&took));
    let said = String::from_utf8_lossy(&took.stderr);
    assert!(said.contains(&format!("took over lock `prod` from run {doomed_id}")), "{said}");
    assert!(said.contains("its lease expired"), "{said}");
    assert!(killed_at.elapsed() >= Duration::from_secs(2), "not before the lease expired");
}

#[test]
fn runs_lists_every_machine_and_a_failed_run_resumes_on_the_other() {
    runs_listed_and_resumed_elsewhere(&database());
}

/// The runs scenario on the store at `url` (PostgreSQL here, S3 in `state_store_s3.rs`).
pub(crate) fn runs_listed_and_resumed_elsewhere(url: &str) {
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let state = ["--state", url];

    // Copy A fails in `verify` (no `ok` file) after `build` completed.
    let failed = command(a.path(), dir.path(), "a", &state).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let failed_id = run_ids(a.path()).pop().unwrap();
    assert!(dir.path().join("undone-a").exists(), "the failed run undid `one`");

    // Copy B has no journal of it: it resumes it from the store.
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let before = std::fs::read_to_string(dir.path().join("one-ran")).unwrap().lines().count();
    let mut resume = command(b.path(), dir.path(), "b", &state);
    resume.args(["--resume", "last"]);
    let resumed = resume.output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains(&format!("resuming run {failed_id}")),
        "{}",
        text(&resumed)
    );
    // `one` was undone, so it runs again; `hold` completed and is not run again.
    let after = std::fs::read_to_string(dir.path().join("one-ran")).unwrap().lines().count();
    assert_eq!(after, before + 1, "only the undone step ran again");
    assert!(!dir.path().join("holding-b").exists(), "`hold` completed in copy A and was replayed");
    assert!(dir.path().join("after-ran").exists());

    // And a run of copy B's own.
    let own = command(b.path(), dir.path(), "b", &state).output().unwrap();
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));
    let own_id = run_ids(b.path()).into_iter().find(|id| *id != failed_id).unwrap();

    // `runs --state` from a third folder lists both machines' runs.
    let elsewhere = tempfile::tempdir().unwrap();
    let list = signed(Command::new(capstan_bin()))
        .current_dir(elsewhere.path())
        .args(["runs", "--json", "--state", url])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let resumed_row = rows.iter().find(|r| r["run_id"] == failed_id.as_str()).unwrap();
    assert_eq!(resumed_row["status"], "ok");
    let places = resumed_row["where"].as_str().unwrap();
    let (a_path, b_path) = (a.path().canonicalize().unwrap(), b.path().canonicalize().unwrap());
    assert!(places.contains(&*a_path.to_string_lossy()) && places.contains(&*b_path.to_string_lossy()), "{places}");
    assert_eq!(resumed_row["params"]["dir"], dir.path().to_string_lossy().as_ref(), "its params");
    assert!(rows.iter().any(|r| r["run_id"] == own_id.as_str()));
    let show = signed(Command::new(capstan_bin()))
        .current_dir(elsewhere.path())
        .args(["runs", "show", &failed_id, "--state", url])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains(&format!("run {failed_id}")) && shown.contains("check"), "{shown}");
}

#[test]
fn a_store_that_cannot_be_used_stops_the_run_before_anything_runs() {
    let (a, dir) = (copy(PLAYBOOK), tempfile::tempdir().unwrap());
    let port = crate::support::daemons::free_port();
    let url = format!("postgres://capstan:hunter2@127.0.0.1:{port}/capstan");
    let r = command(a.path(), dir.path(), "a", &["--state", &url]).output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stderr);
    assert!(
        said.contains(&format!("cannot use the state store postgres://capstan:***@127.0.0.1:{port}/capstan")),
        "{said}"
    );
    assert!(said.contains("refused"), "the why: {said}");
    assert!(!said.contains("hunter2"), "{said}");
    assert!(!dir.path().join("one-ran").exists(), "nothing ran");

    let mut env = command(a.path(), dir.path(), "a", &[]);
    env.env("CAPSTAN_STATE", "redis://127.0.0.1/0");
    let r = env.output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown state store `redis://`"), "{}", text(&r));
    assert!(!dir.path().join("one-ran").exists(), "nothing ran");
}

#[test]
fn losing_the_store_mid_run_stops_at_the_next_step_boundary_and_undoes() {
    let pg = Postgres::start().expect("PostgreSQL must run here");
    let url = pg.database("lost");
    lost_store_stops_at_the_next_boundary(&url, || pg.stop(), "state store postgres://capstan@127.0.0.1");
}

/// The store at `url` goes away (`stop`) while a run holds its lock: the
/// run stops at the next step boundary, says so (`expected`), and undoes.
pub(crate) fn lost_store_stops_at_the_next_boundary(url: &str, stop: impl FnOnce(), expected: &str) {
    let (a, dir) = (copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let mut run = spawn(command(a.path(), dir.path(), "a", &["--state", url, "--lock", "prod"]));
    wait_for(&dir.path().join("holding-a"), &mut run);
    stop();
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(expected), "{said}");
    assert!(dir.path().join("undone-a").exists(), "undo ran: {said}");
    assert!(!dir.path().join("after-ran").exists(), "nothing ran after the boundary");
}

#[test]
fn twenty_runs_from_four_machines_on_one_lock_hold_it_one_at_a_time() {
    twenty_runs_one_at_a_time(&database());
}

/// Twenty runs from four copies on one lock of the store at `url`.
pub(crate) fn twenty_runs_one_at_a_time(url: &str) {
    let playbook = r#"phase("deploy", || { step("work", || sh("sleep 0.1")); });"#;
    let copies: Vec<_> = (0..4).map(|_| copy(playbook)).collect();
    let children: Vec<Child> = (0..20)
        .map(|i| {
            let mut c = signed(Command::new(capstan_bin()));
            c.current_dir(copies[i % 4].path())
                .args(["run", "deploy.rhai", "--log-format", "plain", "--state", url, "--lock", "prod"])
                .args(["--lock-wait", "180s"])
                .env("NO_COLOR", "1");
            spawn(c)
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // From every journal: the time from run_started to run_finished, which
    // lies inside the time the run held the lock.
    let mut spans = Vec::new();
    let mut tokens = Vec::new();
    for c in &copies {
        for id in run_ids(c.path()) {
            let journal =
                std::fs::read_to_string(c.path().join(".capstan/runs").join(&id).join("journal.jsonl")).unwrap();
            let events: Vec<serde_json::Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let ts = |kind: &str| {
                events.iter().find(|e| e["event"] == kind).and_then(|e| e["ts"].as_str()).unwrap().to_string()
            };
            spans.push((ts("run_started"), ts("run_finished"), id.clone()));
            let token = events
                .iter()
                .filter_map(|e| e["message"].as_str())
                .find_map(|m| m.split("fencing token ").nth(1).map(|t| t.trim_end_matches(')').to_string()))
                .unwrap_or_else(|| panic!("run {id} records its fencing token"));
            tokens.push(token.parse::<i64>().unwrap());
        }
    }
    assert_eq!(spans.len(), 20, "none lost");
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs {} and {} held the lock at once: {pair:?}", pair[0].2, pair[1].2);
    }
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 20, "every holder had a fencing token of its own");
}

#[test]
fn a_repl_session_on_another_machine_holds_the_shared_lock() {
    let url = database();
    let (a, b) = (copy(r#"phase("do", || step("s", || sh("true")));"#), copy(""));
    let mut session = Command::new(capstan_bin())
        .args(["repl", "--state", &url, "--lock", "prod", "--lock-wait", "30s"])
        .current_dir(b.path())
        .env("XDG_STATE_HOME", b.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The session has the lease once a run on the other machine is refused
    // (it waits in line, so the runs asking meanwhile do not turn it away).
    let deadline = Instant::now() + Duration::from_secs(30);
    let blocked = loop {
        let r = Command::new(capstan_bin())
            .current_dir(a.path())
            .args(["run", "deploy.rhai", "--state", &url, "--lock", "prod"])
            .output()
            .unwrap();
        if r.status.code() == Some(3) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("lock `prod` is held by run"), "{}", text(&blocked));
    std::io::Write::write_all(&mut session.stdin.take().unwrap(), b"1 + 1\n").unwrap();
    let out = session.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let free = Command::new(capstan_bin())
        .current_dir(a.path())
        .args(["run", "deploy.rhai", "--state", &url, "--lock", "prod"])
        .output()
        .unwrap();
    assert_eq!(free.status.code(), Some(0), "released when the session ended: {}", text(&free));
}

#[test]
fn file_state_is_the_journal_folder_and_file_locks_can_be_waited_for() {
    let (a, dir, journal) = (copy(PLAYBOOK), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let state = format!("file://{}", journal.path().display());
    let lock = ["--state", state.as_str(), "--lock", "prod"];
    let mut first = spawn(command(a.path(), dir.path(), "a", &lock));
    wait_for(&dir.path().join("holding-a"), &mut first);
    assert_eq!(run_ids(journal.path()).len(), 1, "the journal goes to file://DIR");
    assert!(run_ids(a.path()).is_empty(), "and not next to the playbook");
    let mut waiting = command(a.path(), dir.path(), "b", &lock);
    waiting.args(["--lock-wait", "60s"]);
    let waiting = spawn(waiting);
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(dir.path().join("go"), "").unwrap();
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(0));
    let queued = waiting.wait_with_output().unwrap();
    assert_eq!(queued.status.code(), Some(0), "{}", text(&queued));
    assert!(
        String::from_utf8_lossy(&queued.stderr).contains("waiting for lock `prod`, held by run"),
        "{}",
        text(&queued)
    );
    let list = Command::new(capstan_bin()).args(["runs", "--json", "--state", &state]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{}", text(&list));
    let both = Command::new(capstan_bin())
        .args(["runs", "--state", &state, "--journal-dir", &a.path().to_string_lossy()])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "two journal folders: {}", text(&both));
}

/// What the store holds while a run goes and after it crashes: the schema
/// version (migrated once, not again by the next run), each finished step's
/// journal lines at once, the last 100 lines of a step's log with where the
/// whole log is; a SIGKILL loses only the step in flight.
#[test]
fn the_store_holds_the_journal_as_it_happens_and_a_crash_loses_only_the_step_in_flight() {
    let name = format!("asit_{}", std::process::id());
    let url = shared().database(&name);
    let source = r#"
let dir = param("dir");
phase("build", || {
    step("chatty", || sh("for i in $(seq 1 150); do echo line-$i; done"));
    step("hold", || sh(`touch ${dir}/holding; while [ ! -e ${dir}/go ]; do sleep 0.05; done`));
    step("after", || sh("true"));
});
"#;
    let (a, dir) = (copy(source), tempfile::tempdir().unwrap());
    let mut c = signed(Command::new(capstan_bin()));
    c.current_dir(a.path())
        .args(["run", "deploy.rhai", "--log-format", "plain", "--state", &url, "--param"])
        .arg(format!("dir={}", dir.path().display()))
        .env_remove("CAPSTAN_STATE");
    let mut run = spawn(c);
    wait_for(&dir.path().join("holding"), &mut run);
    let id = run_ids(a.path()).pop().expect("a run");

    // While `hold` runs, the store already has `chatty` finished, and its log's tail.
    let q = |sql: &str| shared().query(&name, sql);
    let finished = q(&format!(
        "SELECT count(*) FROM capstan_events WHERE run_id = '{id}' AND line LIKE '%\"step_finished\"%\"step\":\"chatty\"%'"
    ));
    assert_eq!(finished.trim(), "1", "the finished step is in the store before the run ends");
    let tail = q(&format!("SELECT tail, location FROM capstan_step_logs WHERE run_id = '{id}' ORDER BY id LIMIT 1"));
    let (lines, location) = tail.trim_end().rsplit_once('|').expect("a tail and its location");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!((lines.len(), lines.first().copied(), lines.last().copied()), (100, Some("line-51"), Some("line-150")));
    assert!(location.contains('@') && location.contains(&*a.path().to_string_lossy()), "{location}");
    assert_eq!(q("SELECT version FROM capstan_migrations ORDER BY version").trim(), "1", "the schema's version");

    // A crash: the store keeps every finished step; only `hold` is lost.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = run.wait();
    let show = signed(Command::new(capstan_bin()))
        .args(["runs", "show", &id, "--json", "--state", &url])
        .env_remove("CAPSTAN_STATE")
        .output()
        .unwrap();
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let doc: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let steps: Vec<(String, String)> = doc["run"]["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(steps[0], ("chatty".to_string(), "ok".to_string()), "{steps:?}");
    assert!(steps.iter().all(|(s, st)| s != "after" && !(s == "hold" && st == "ok")), "{steps:?}");
    assert_eq!(doc["run"]["status"], "running", "a crashed run stays running");

    // The next run on the same database does not migrate again.
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut again = signed(Command::new(capstan_bin()));
    again
        .current_dir(a.path())
        .args(["run", "deploy.rhai", "--log-format", "plain", "--state", &url, "--resume", &id])
        .env_remove("CAPSTAN_STATE");
    let again = again.output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(q("SELECT count(*) FROM capstan_migrations").trim(), "1");
}

/// The heartbeat: a holder with a 2 s lease that runs for 5 s keeps it
/// (renewed every third of the TTL), so another machine is still refused
/// after the TTL has passed.
#[test]
fn a_live_holder_renews_its_lease_past_the_ttl() {
    let url = database();
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let mut holder =
        spawn(command(a.path(), dir.path(), "a", &["--state", &url, "--lock", "prod", "--lock-ttl", "2s"]));
    wait_for(&dir.path().join("holding-a"), &mut holder);
    std::thread::sleep(Duration::from_millis(4500));
    let blocked = command(b.path(), dir.path(), "b", &["--state", &url, "--lock", "prod"]).output().unwrap();
    assert_eq!(blocked.status.code(), Some(3), "the lease was renewed: {}", text(&blocked));
    assert!(!String::from_utf8_lossy(&blocked.stderr).contains("took over"), "{}", text(&blocked));
    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = holder.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
}
