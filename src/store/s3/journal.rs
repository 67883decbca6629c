//! A run's journal in an S3 state store: `runs/ID/run.json` says what ran
//! and where, `runs/ID/events/NNNNNNNN.jsonl` holds the event lines of one
//! flushed batch (S3 has no append; the zero-padded numbers list in
//! order), `runs/ID/values/FILE` the large recorded values and
//! `runs/ID/logs/SEQ-NNNNNNNN.json` a step log's tail with where the
//! whole log is kept.

use serde::{Deserialize, Serialize};

use super::{Cond, S3};
use crate::store::error::StoreError;

/// What `run.json` holds.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub playbook: String,
    pub user: String,
    pub host: String,
    /// Where the run ran, `user@host:folder`; several when it was resumed elsewhere.
    pub place: String,
    pub started: String,
    pub params: serde_json::Value,
}

/// The number the next batch of run `run_id` takes (one past the last
/// written: a resumed run continues the list).
fn next_batch(s3: &S3, run_id: &str) -> Result<u64, StoreError> {
    let keys = s3.list(&format!("runs/{run_id}/events/"), 0)?;
    Ok(keys
        .iter()
        .filter_map(|k| k.rsplit('/').next()?.strip_suffix(".jsonl")?.parse::<u64>().ok())
        .max()
        .map_or(0, |n| n + 1))
}

/// Append one batch of lines and step log tails (`seq`, tail, location).
pub fn append(
    s3: &S3,
    run_id: &str,
    next: &mut Option<u64>,
    lines: &[String],
    logs: &[(i32, String, String)],
) -> Result<(), StoreError> {
    let body = lines.iter().fold(String::new(), |acc, l| acc + l.as_str() + "\n");
    for _ in 0..3 {
        let batch = match *next {
            Some(n) => n,
            None => next_batch(s3, run_id)?,
        };
        let key = format!("runs/{run_id}/events/{batch:08}.jsonl");
        // Never overwrite a batch: a copy that wrote one meanwhile keeps it.
        if s3.put(&key, body.clone(), &Cond::Absent)?.is_none() {
            *next = None;
            continue;
        }
        *next = Some(batch + 1);
        for (seq, tail, location) in logs {
            let log = serde_json::json!({ "tail": tail, "location": location }).to_string();
            s3.put(&format!("runs/{run_id}/logs/{seq:06}-{batch:08}.json"), log, &Cond::None)?;
        }
        return Ok(());
    }
    Err(StoreError::S3("another writer keeps taking the journal's next batch".into()))
}

/// Record that run `run_id` started here; a resumed run keeps its record
/// and adds where it ran last.
pub fn started(s3: &S3, run_id: &str, meta: &Meta) -> Result<(), StoreError> {
    let key = format!("runs/{run_id}/run.json");
    for _ in 0..3 {
        let (body, cond) = match s3.get(&key)? {
            Some(reply) => {
                let mut old: Meta =
                    serde_json::from_str(&reply.body).map_err(|e| StoreError::S3(format!("cannot read {key}: {e}")))?;
                if old.place.contains(&meta.place) {
                    return Ok(());
                }
                old.place = format!("{}, {}", old.place, meta.place);
                (serde_json::to_string(&old), reply.etag)
            }
            None => (serde_json::to_string(meta), None),
        };
        let body = body.map_err(|e| StoreError::S3(e.to_string()))?;
        let cond = cond.as_deref().map_or(Cond::Absent, Cond::Etag);
        if s3.put(&key, body, &cond)?.is_some() {
            return Ok(());
        }
    }
    Err(StoreError::S3(format!("{key} keeps changing under this run")))
}

/// Keep a large recorded value.
pub fn value(s3: &S3, run_id: &str, file: &str, value: String) -> Result<(), StoreError> {
    s3.put(&format!("runs/{run_id}/values/{file}"), value, &Cond::None).map(|_| ())
}
