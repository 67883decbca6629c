//! Locks in a PostgreSQL state store, as leases: a row per lock names its
//! holder (run, user, host, pid, since), expires unless a heartbeat renews
//! it, and carries a fencing token that grows with every holder. The row is
//! changed only in transactions serialised by a transaction-level advisory
//! lock; the holder also keeps a session-level advisory lock on its
//! heartbeat connection, which dies with the connection, so a takeover can
//! tell a holder that is gone from one that stopped renewing.

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::db::Db;
use crate::lock::{host, user, Holder};
use crate::services::JournalHealth;

/// The first key of the advisory lock that serialises changes to a lease
/// row; the second is the lock name's hash.
const ADVISORY: i32 = 7143;
/// The first key of the advisory lock a holder keeps on its heartbeat
/// connection, for as long as that connection lives.
const LIVENESS: i32 = 7144;

/// A taken lease.
pub struct Taken {
    pub lease: Lease,
    pub token: i64,
    /// The holder whose expired lease was taken over, and whether its
    /// connection was still open.
    pub took_over: Option<(Holder, bool)>,
}

/// Why a lease was not taken.
pub enum Refused {
    /// Another run holds it, or (`position > 1`) runs that asked earlier wait for it.
    Held {
        holder: Option<Holder>,
        position: i64,
    },
    Store(super::error::StoreError),
}

/// Try once to take lease `name` for `ttl`; a waiting run (`waiting`) is
/// queued and takes the lease only when its turn has come.
pub fn try_take(
    db: &Db,
    shown: &str,
    name: &str,
    run_id: &str,
    ttl: Duration,
    waiting: bool,
) -> Result<Taken, Refused> {
    let me = Holder {
        run_id: run_id.to_string(),
        user: user(),
        pid: std::process::id(),
        host: host(),
        since: crate::events::timestamp(std::time::SystemTime::now()),
    };
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let (lock_name, holder) = (name.to_string(), me.clone());
    let answer = db
        .call(move |c| async move {
            let n = lock_name.as_str();
            c.batch_execute("BEGIN").await?;
            c.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&ADVISORY, &n]).await?;
            let mut position = 1;
            if waiting {
                c.execute(
                    "INSERT INTO capstan_waiters (name, run_id, since, seen) VALUES ($1, $2, now(), now())
                     ON CONFLICT (name, run_id) DO UPDATE SET seen = now()",
                    &[&n, &holder.run_id],
                )
                .await?;
                // A waiter not seen for a while has gone away: it keeps no place.
                let row = c
                    .query_one(
                        "SELECT count(*) + 1 FROM capstan_waiters w, capstan_waiters me
                         WHERE w.name = $1 AND me.name = $1 AND me.run_id = $2 AND w.run_id <> $2
                           AND w.seen > now() - interval '5 seconds' AND w.since < me.since",
                        &[&n, &holder.run_id],
                    )
                    .await?;
                position = row.get(0);
            }
            let row = c
                .query_opt(
                    "SELECT run_id, username, host, pid, since, released, expires < now(), token,
                            pg_try_advisory_lock($2, hashtext($1))
                     FROM capstan_leases WHERE name = $1 FOR UPDATE",
                    &[&n, &LIVENESS],
                )
                .await?;
            let mut took_over = None;
            let mut token = 1;
            if let Some(row) = &row {
                let old = Holder {
                    run_id: row.get(0),
                    user: row.get(1),
                    host: row.get(2),
                    pid: u32::try_from(row.get::<_, i32>(3)).unwrap_or_default(),
                    since: row.get(4),
                };
                let (released, expired, gone): (bool, bool, bool) = (row.get(5), row.get(6), row.get(8));
                if gone {
                    // Only a probe: the holder's session lock is what it tells.
                    c.execute("SELECT pg_advisory_unlock($1, hashtext($2))", &[&LIVENESS, &n]).await?;
                }
                token = row.get::<_, i64>(7) + 1;
                if !released && !expired {
                    c.batch_execute("ROLLBACK").await?;
                    return Ok(Err((Some(old), position)));
                }
                if !released {
                    took_over = Some((old, !gone));
                }
            }
            if position > 1 {
                c.batch_execute("ROLLBACK").await?;
                return Ok(Err((None, position)));
            }
            let pid = i32::try_from(holder.pid).unwrap_or_default();
            c.execute(
                "INSERT INTO capstan_leases (name, run_id, username, host, pid, since, expires, token, released)
                 VALUES ($1, $2, $3, $4, $5, $6, now() + $7::float8 * interval '1 millisecond', $8, false)
                 ON CONFLICT (name) DO UPDATE SET run_id = $2, username = $3, host = $4, pid = $5, since = $6,
                    expires = now() + $7::float8 * interval '1 millisecond', token = $8, released = false",
                &[&n, &holder.run_id, &holder.user, &holder.host, &pid, &holder.since, &(ttl_ms as f64), &token],
            )
            .await?;
            c.execute("DELETE FROM capstan_waiters WHERE name = $1 AND run_id = $2", &[&n, &holder.run_id]).await?;
            c.batch_execute("COMMIT").await?;
            Ok(Ok((token, took_over)))
        })
        .map_err(Refused::Store)?;
    match answer {
        Ok((token, took_over)) => Ok(Taken { lease: Lease::new(db, shown, name, token, ttl), token, took_over }),
        Err((holder, position)) => Err(Refused::Held { holder, position }),
    }
}

/// Leave the line of lease `name` (a waiter that gave up).
pub fn leave(db: &Db, name: &str, run_id: &str) {
    let (name, run_id) = (name.to_string(), run_id.to_string());
    let _ = db.call(move |c| async move {
        c.execute("DELETE FROM capstan_waiters WHERE name = $1 AND run_id = $2", &[&name, &run_id]).await
    });
}

/// A held lease: renewed every third of its TTL on a connection of its
/// own, released when dropped. A renewal that fails, or finds the lease
/// taken by another run, is told to the run's journal health: the run stops
/// at the next step boundary.
pub struct Lease {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Set once the run's health is known; until then a lost lease is only logged.
    health: Arc<std::sync::Mutex<Option<Arc<JournalHealth>>>>,
}

impl Lease {
    fn new(db: &Db, shown: &str, name: &str, token: i64, ttl: Duration) -> Self {
        let shown = shown.to_string();
        let (stop, rx) = channel::<()>();
        let health: Arc<std::sync::Mutex<Option<Arc<JournalHealth>>>> = Arc::default();
        let told = health.clone();
        let heartbeat = db.reconnect();
        let name = name.to_string();
        let thread = std::thread::Builder::new()
            .name("lease-heartbeat".into())
            .spawn(move || {
                let fail = |why: String| {
                    if let Some(h) = told.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                        h.failed(why);
                    }
                };
                let db = match heartbeat {
                    Ok(db) => db,
                    Err(e) => return fail(format!("cannot renew lock `{name}` in the state store {shown}: {e}")),
                };
                let key = name.clone();
                let _ = db.call(move |c| async move {
                    c.execute("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&LIVENESS, &key]).await
                });
                let ttl_ms = ttl.as_secs_f64() * 1000.0;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(ttl / 3) {
                    let key = name.clone();
                    let renewed = db.call(move |c| async move {
                        c.execute(
                            "UPDATE capstan_leases SET expires = now() + $3::float8 * interval '1 millisecond'
                             WHERE name = $1 AND token = $2 AND NOT released",
                            &[&key, &token, &ttl_ms],
                        )
                        .await
                    });
                    match renewed {
                        Ok(1) => {}
                        Ok(_) => {
                            return fail(format!(
                                "lost lock `{name}`: its lease expired and another run took it (fencing token {token})"
                            ))
                        }
                        Err(e) => return fail(format!("cannot renew lock `{name}` in the state store {shown}: {e}")),
                    }
                }
                let key = name.clone();
                let _ = db.call(move |c| async move {
                    c.execute(
                        "UPDATE capstan_leases SET released = true, expires = now() WHERE name = $1 AND token = $2",
                        &[&key, &token],
                    )
                    .await
                });
            })
            .ok();
        Self { stop: Some(stop), thread, health }
    }

    /// From now on a lost lease stops the run at its next step boundary.
    pub fn watch(&self, health: Arc<JournalHealth>) {
        *self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(health);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where a run ran: `user@host:journal folder`.
pub fn place(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("{}@{}:{}", user(), host(), dir.display())
}
