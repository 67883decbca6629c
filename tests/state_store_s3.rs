//! `--state s3://…`: two working copies act as two machines sharing one
//! real S3 server (`SeaweedFS`, started by the test harness,
//! tests/support/seaweed.rs), as the PostgreSQL tests do: a held lock
//! blocks the other machine, an expired lease is taken over, runs are
//! listed and resumed across machines, and an unreachable store is refused
//! with no secret in what is said.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::state_store::{copy, run_ids, spawn, text, wait_for, PLAYBOOK};
use crate::support::capstan_bin;
use crate::support::seaweed::{shared, ACCESS_KEY, SECRET_KEY};

/// A prefix of its own on the shared server, per test.
fn store() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    shared().url(&format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)))
}

/// `capstan run` in a working copy, signing with the test identity.
fn command(copy: &Path, shared_dir: &Path, name: &str, args: &[&str]) -> Command {
    let mut c = crate::state_store::command(copy, shared_dir, name, args);
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY).env("AWS_SECRET_ACCESS_KEY", SECRET_KEY).env_remove("AWS_SESSION_TOKEN");
    c
}

#[test]
fn s3_a_held_lock_blocks_the_other_machine_and_is_taken_over_when_its_lease_expires() {
    let url = store();
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let lock = ["--state", url.as_str(), "--lock", "prod"];

    let mut first = spawn(command(a.path(), dir.path(), "a", &lock));
    wait_for(&dir.path().join("holding-a"), &mut first);
    let first_id = run_ids(a.path()).pop().expect("copy A journals its run");

    // Blocked: exit 3 naming the holder on the other machine.
    let blocked = command(b.path(), dir.path(), "b", &lock).output().unwrap();
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
    let said = String::from_utf8_lossy(&blocked.stderr);
    assert!(said.contains(&format!("lock `prod` is held by run {first_id} (pid {}", first.id())), "{said}");

    // Waiting: it runs once the holder is done and has released the lease.
    let mut waiting = command(b.path(), dir.path(), "b", &lock);
    waiting.args(["--lock-wait", "60s"]);
    let waiting = spawn(waiting);
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = first.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    assert!(String::from_utf8_lossy(&done.stderr).contains("fencing token 1"), "{}", text(&done));
    let queued = waiting.wait_with_output().unwrap();
    assert_eq!(queued.status.code(), Some(0), "{}", text(&queued));
    let said = String::from_utf8_lossy(&queued.stderr);
    assert!(said.contains(&format!("waiting for lock `prod`, held by run {first_id}")), "{said}");
    assert!(!said.contains("took over"), "released cleanly: {said}");
    assert!(said.contains("fencing token 2"), "{said}");

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
    assert!(said.contains("fencing token 4"), "{said}");
    assert!(killed_at.elapsed() >= Duration::from_secs(2), "not before the lease expired");
}

#[test]
fn s3_runs_lists_every_machine_and_a_failed_run_resumes_on_the_other() {
    let url = store();
    let (a, b, dir) = (copy(PLAYBOOK), copy(PLAYBOOK), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let state = ["--state", url.as_str()];

    // Copy A fails in `verify` (no `ok` file) after `build` completed.
    let failed = command(a.path(), dir.path(), "a", &state).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let failed_id = run_ids(a.path()).pop().unwrap();

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
    let after = std::fs::read_to_string(dir.path().join("one-ran")).unwrap().lines().count();
    assert_eq!(after, before + 1, "only the undone step ran again");
    assert!(!dir.path().join("holding-b").exists(), "`hold` completed in copy A and was replayed");
    assert!(dir.path().join("after-ran").exists());

    let own = command(b.path(), dir.path(), "b", &state).output().unwrap();
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));
    let own_id = run_ids(b.path()).into_iter().find(|id| *id != failed_id).unwrap();

    // `runs --state` from a third folder lists both machines' runs.
    let elsewhere = tempfile::tempdir().unwrap();
    let list = Command::new(capstan_bin())
        .current_dir(elsewhere.path())
        .args(["runs", "--json", "--state", &url])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
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
    assert!(rows.iter().any(|r| r["run_id"] == own_id.as_str()));
}

#[test]
fn s3_a_store_that_cannot_be_used_stops_the_run_with_no_secret_said() {
    let (a, dir) = (copy(PLAYBOOK), tempfile::tempdir().unwrap());
    let port = crate::support::daemons::free_port();
    let url = format!("s3://capstan/x?endpoint=http://127.0.0.1:{port}");
    let r = command(a.path(), dir.path(), "a", &["--state", &url]).output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stderr);
    assert!(said.contains(&format!("cannot use the state store {url}")), "{said}");
    assert!(said.contains("refused"), "the why: {said}");
    assert!(!said.contains(SECRET_KEY) && !said.contains(ACCESS_KEY), "no key, no signed URL: {said}");
    assert!(!dir.path().join("one-ran").exists(), "nothing ran");

    // A wrong secret: the server refuses the signature; neither key is said.
    let mut wrong = command(a.path(), dir.path(), "a", &["--state", &shared().url("denied")]);
    wrong.env("AWS_SECRET_ACCESS_KEY", "not-the-secret-42");
    let r = wrong.output().unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stderr);
    assert!(said.contains("the store answered 403"), "{said}");
    assert!(!said.contains("not-the-secret-42") && !said.contains(ACCESS_KEY), "{said}");
    assert!(!dir.path().join("one-ran").exists(), "nothing ran");
}
