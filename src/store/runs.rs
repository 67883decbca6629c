//! The runs a shared state store holds, read back: every machine's runs
//! for `capstan runs`, and one run's journal written into this machine's
//! journal folder, so `--resume` continues it here as it would a local run.

use std::path::Path;

use super::error::StoreError;
use super::Backend;
use crate::report::format::{pick_run, run_name};
use crate::report::{runs_dir, RunRecord};

/// A run as the store has it: the record its journal gives, and where it
/// ran (`user@host:folder`, several when it was resumed elsewhere).
pub struct Stored {
    pub record: RunRecord,
    pub place: String,
}

/// Every run in the store, oldest first.
pub fn list(backend: &Backend) -> Result<Vec<Stored>, StoreError> {
    let stored = |(place, journal): (String, String)| Stored { record: RunRecord::from_journal(&journal), place };
    Ok(journals(backend)?.into_iter().map(stored).collect())
}

/// Every run's journal lines with where it ran, oldest first.
pub fn journals(backend: &Backend) -> Result<Vec<(String, String)>, StoreError> {
    let db = match backend {
        Backend::Postgres(db) => db,
        Backend::S3(s3) => {
            let runs = super::s3::runs::list(s3)?;
            return Ok(runs.into_iter().map(|(_, place, journal)| (place, journal)).collect());
        }
    };
    db.call(|c| async move {
        c.query(
            "SELECT r.run_id, r.place, coalesce(string_agg(e.line, E'\\n' ORDER BY e.id), '')
             FROM capstan_runs r LEFT JOIN capstan_events e ON e.run_id = r.run_id
             GROUP BY r.run_id, r.place ORDER BY r.run_id",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| (r.get::<_, String>(1), r.get::<_, String>(2))).collect::<Vec<_>>())
    })
}

/// The run `wanted` picks (`last`, a run id, or a `--run-name`: see
/// [`pick_run`]) among the runs with journal lines.
pub fn find(backend: &Backend, wanted: &str) -> Result<Option<String>, StoreError> {
    let db = match backend {
        Backend::Postgres(db) => db,
        Backend::S3(s3) => return super::s3::runs::find(s3, wanted),
    };
    if wanted == "last" {
        return db.call(|c| async move {
            c.query_opt("SELECT max(run_id) FROM capstan_events", &[]).await.map(|r| r.and_then(|r| r.get(0)))
        });
    }
    // The id itself, or the runs whose id ends in `-NAME`.
    let (id, tail) = (wanted.to_string(), run_name(wanted).map(|n| format!("-{n}")).unwrap_or_default());
    let ids: Vec<String> = db.call(move |c| async move {
        c.query(
            "SELECT r.run_id FROM capstan_runs r WHERE (r.run_id = $1 OR right(r.run_id, char_length($2)) = $2)
             AND EXISTS (SELECT 1 FROM capstan_events e WHERE e.run_id = r.run_id)",
            &[&id, &tail],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    })?;
    Ok(pick_run(ids, wanted))
}

/// Run `id`'s journal lines, `None` when the store has no such run.
pub fn journal(backend: &Backend, id: &str) -> Result<Option<String>, StoreError> {
    let db = match backend {
        Backend::Postgres(db) => db,
        Backend::S3(s3) => return super::s3::runs::journal(s3, id),
    };
    let id = id.to_string();
    let lines: Vec<String> = db.call(move |c| async move {
        c.query("SELECT line FROM capstan_events WHERE run_id = $1 ORDER BY id", &[&id])
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    })?;
    Ok((!lines.is_empty()).then(|| lines.iter().fold(String::new(), |acc, l| acc + l.as_str() + "\n")))
}

/// Run `id`'s large recorded values, as (file, value).
fn values(backend: &Backend, id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let db = match backend {
        Backend::Postgres(db) => db,
        Backend::S3(s3) => return super::s3::runs::values(s3, id),
    };
    let key = id.to_string();
    db.call(move |c| async move {
        c.query("SELECT file, value FROM capstan_values WHERE run_id = $1", &[&key])
            .await
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

/// Write run `id` (`last`, an id or a run name) from the store into
/// `root/.capstan/runs/ID/`: its journal and the values kept beside it.
/// `Ok(None)` when the store has no such run.
pub fn materialize(backend: &Backend, id: &str, root: &Path) -> Result<Option<String>, StoreError> {
    let Some(id) = find(backend, id)? else { return Ok(None) };
    let Some(text) = journal(backend, &id)? else { return Ok(None) };
    let values = values(backend, &id)?;
    let dir = runs_dir(root).join(&id);
    let write = |path: &Path, text: &str| -> Result<(), StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        std::fs::write(path, text).map_err(|e| StoreError::io(path, e))
    };
    for (file, value) in &values {
        // A value's file name comes from the journal: keep it inside the run's folder.
        if Path::new(file).components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            write(&dir.join(file), value)?;
        }
    }
    write(&dir.join("journal.jsonl"), &text)?;
    std::fs::create_dir_all(dir.join("steps")).map_err(|e| StoreError::io(&dir, e))?;
    Ok(Some(id))
}
