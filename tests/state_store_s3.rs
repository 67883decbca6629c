//! `--state s3://…`: two working copies act as two machines sharing one
//! real S3 server (`SeaweedFS`, started by the test harness,
//! tests/support/seaweed.rs). The lock and runs scenarios are the
//! PostgreSQL ones (`tests/state_store.rs`) on an S3 store: a held lock
//! blocks the other machine, an expired lease is taken over, runs are
//! listed and resumed across machines; and an unreachable store, or one
//! that refuses the signature, is refused with no secret in what is said.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::state_store::{
    command, copy, held_lock_blocks_queues_and_is_taken_over, lost_store_stops_at_the_next_boundary,
    runs_listed_and_resumed_elsewhere, text, twenty_runs_one_at_a_time, PLAYBOOK,
};
use crate::support::seaweed::{shared, Seaweed, ACCESS_KEY, SECRET_KEY};

/// A prefix of its own on the shared server, per test.
fn store() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    shared().url(&format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)))
}

#[test]
fn s3_a_held_lock_blocks_the_other_machine_queues_it_and_is_taken_over_when_its_lease_expires() {
    held_lock_blocks_queues_and_is_taken_over(&store());
}

#[test]
fn s3_runs_lists_every_machine_and_a_failed_run_resumes_on_the_other() {
    runs_listed_and_resumed_elsewhere(&store());
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

#[test]
fn s3_twenty_runs_from_four_machines_on_one_lock_hold_it_one_at_a_time() {
    twenty_runs_one_at_a_time(&store());
}

#[test]
fn s3_losing_the_store_mid_run_stops_at_the_next_step_boundary_and_undoes() {
    let s3 = Seaweed::start().expect("SeaweedFS must run here");
    let url = s3.url("lost");
    lost_store_stops_at_the_next_boundary(&url, || s3.stop(), &format!("state store {url}"));
}
