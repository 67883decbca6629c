//! Locks in an S3 state store, as leases: one object per lock
//! (`leases/NAME.json`) names its holder, when the lease expires (the
//! writer's clock, milliseconds since the epoch) and its fencing token.
//! Every change is a conditional write, so of two runs that read the same
//! version only one writes the next: `If-None-Match: *` creates the lease,
//! `If-Match: ETAG` takes an expired or released one over, renews it, and
//! releases it. A run that waits polls; S3 keeps no line of waiters.
//! Expiries are in the server's time (from its `Date`), so machines whose
//! clocks differ agree on them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Cond, S3};
use crate::lock::{host, user, Holder};
use crate::store::error::StoreError;
use crate::store::heartbeat::{Lease, Refused, Taken};

#[derive(Serialize, Deserialize)]
struct Record {
    run_id: String,
    user: String,
    host: String,
    pid: u32,
    since: String,
    expires_ms: i64,
    token: i64,
    released: bool,
}

impl Record {
    fn holder(&self) -> Holder {
        Holder {
            run_id: self.run_id.clone(),
            user: self.user.clone(),
            pid: self.pid,
            host: self.host.clone(),
            since: self.since.clone(),
        }
    }
}

fn key(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("leases/{safe}.json")
}

/// The lease object and its version, `None` when there is none.
fn read(s3: &S3, key: &str) -> Result<Option<(Record, String)>, StoreError> {
    let Some(reply) = s3.get(key)? else { return Ok(None) };
    let record = serde_json::from_str(&reply.body).map_err(|e| StoreError::S3(format!("cannot read {key}: {e}")))?;
    Ok(Some((record, reply.etag.unwrap_or_default())))
}

/// Try once to take lease `name` for `ttl`.
pub fn try_take(s3: &Arc<S3>, shown: &str, name: &str, run_id: &str, ttl: Duration) -> Result<Taken, Refused> {
    let key = key(name);
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let since = crate::events::timestamp(SystemTime::now());
    let mut me = Record {
        run_id: run_id.to_string(),
        user: user(),
        host: host(),
        pid: std::process::id(),
        since,
        expires_ms: s3.now_ms() + ttl_ms,
        token: 1,
        released: false,
    };
    let current = read(s3, &key).map_err(Refused::Store)?;
    let mut took_over = None;
    let cond = match &current {
        None => Cond::Absent,
        Some((old, etag)) => {
            if !old.released && old.expires_ms > s3.now_ms() {
                return Err(Refused::Held { holder: Some(old.holder()), position: 0 });
            }
            if !old.released {
                // S3 cannot tell whether the holder is still there.
                took_over = Some((old.holder(), None));
            }
            me.token = old.token + 1;
            Cond::Etag(etag)
        }
    };
    let body = serde_json::to_string(&me).map_err(|e| Refused::Store(StoreError::S3(e.to_string())))?;
    let Some(etag) = s3.put(&key, body, &cond).map_err(Refused::Store)? else {
        // Another run wrote first: it is the holder now.
        let holder = read(s3, &key).ok().flatten().map(|(r, _)| r.holder());
        return Err(Refused::Held { holder, position: 0 });
    };
    let token = me.token;
    let lease = Lease::spawn(
        shown,
        name,
        token,
        ttl,
        {
            let s3 = s3.clone();
            move || Ok((s3, key, me, etag))
        },
        move |(s3, key, me, etag)| {
            me.expires_ms = s3.now_ms() + ttl_ms;
            let body = serde_json::to_string(&*me).map_err(|e| StoreError::S3(e.to_string()))?;
            match s3.put(key, body, &Cond::Etag(etag))? {
                Some(tag) => {
                    *etag = tag;
                    Ok(true)
                }
                None => Ok(false),
            }
        },
        |(s3, key, me, etag)| {
            me.released = true;
            me.expires_ms = s3.now_ms();
            if let Ok(body) = serde_json::to_string(&*me) {
                let _ = s3.put(key, body, &Cond::Etag(etag));
            }
        },
    );
    Ok(Taken { lease, token, took_over })
}
