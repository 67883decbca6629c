//! The runs an S3 state store holds, read back: every run's record and
//! journal (its batches in order), and a run's large values.

use super::journal::Meta;
use super::S3;
use crate::store::error::StoreError;

/// The id of the run a key under `runs/` belongs to.
fn run_of(key: &str) -> Option<&str> {
    key.strip_prefix("runs/")?.split('/').next()
}

/// Every run as (id, place), oldest first.
pub fn list(s3: &S3) -> Result<Vec<(String, String, String)>, StoreError> {
    let keys = s3.list("runs/", 0)?;
    let mut out = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with("/run.json")) {
        let Some(id) = run_of(key) else { continue };
        let Some(reply) = s3.get(key)? else { continue };
        let meta: Meta =
            serde_json::from_str(&reply.body).map_err(|e| StoreError::S3(format!("cannot read {key}: {e}")))?;
        let journal = read_batches(s3, keys.iter().filter(|k| is_batch(k, id)))?;
        out.push((id.to_string(), meta.place, journal));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn is_batch(key: &str, id: &str) -> bool {
    // The store writes the names itself, always in lower case.
    key.starts_with(&format!("runs/{id}/events/"))
        && std::path::Path::new(key).extension().is_some_and(|e| e == "jsonl")
}

fn read_batches<'a>(s3: &S3, keys: impl Iterator<Item = &'a String>) -> Result<String, StoreError> {
    let mut text = String::new();
    for key in keys {
        if let Some(reply) = s3.get(key)? {
            text.push_str(&reply.body);
        }
    }
    Ok(text)
}

/// The run `wanted` picks (`last`, a run id, or a `--run-name`) among the
/// runs with journal lines.
pub fn find(s3: &S3, wanted: &str) -> Result<Option<String>, StoreError> {
    // A run id is looked up under its own prefix, not among every run's keys.
    if wanted != "last" && !wanted.contains('/') && !s3.list(&format!("runs/{wanted}/events/"), 1)?.is_empty() {
        return Ok(Some(wanted.to_string()));
    }
    let keys = s3.list("runs/", 0)?;
    Ok(crate::report::format::pick_run(
        keys.iter().filter(|k| k.contains("/events/")).filter_map(|k| run_of(k)),
        wanted,
    ))
}

/// Run `id`'s journal lines, `None` when the store has no such run.
pub fn journal(s3: &S3, id: &str) -> Result<Option<String>, StoreError> {
    let keys = s3.list(&format!("runs/{id}/events/"), 0)?;
    let text = read_batches(s3, keys.iter().filter(|k| is_batch(k, id)))?;
    Ok((!text.is_empty()).then_some(text))
}

/// Run `id`'s large values, as (file, value).
pub fn values(s3: &S3, id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let under = format!("runs/{id}/values/");
    let mut out = Vec::new();
    for key in s3.list(&under, 0)? {
        if let (Some(file), Some(reply)) = (key.strip_prefix(&under), s3.get(&key)?) {
            out.push((file.to_string(), reply.body));
        }
    }
    Ok(out)
}
