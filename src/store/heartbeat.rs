//! A held lease, whatever store holds it: renewed every third of its TTL
//! on a thread of its own, released when dropped; a renewal that fails, or
//! finds the lease taken by another run, is told to the run's journal
//! health, so the run stops at the next step boundary.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::error::StoreError;
use crate::lock::Holder;
use crate::services::JournalHealth;

/// A taken lease.
pub struct Taken {
    pub lease: Lease,
    pub token: i64,
    /// The holder whose expired lease was taken over, and whether its
    /// connection was still open (`None`: the store cannot tell).
    pub took_over: Option<(Holder, Option<bool>)>,
}

/// Why a lease was not taken.
pub enum Refused {
    /// Another run holds it, or (`position > 1`) runs that asked earlier
    /// wait for it; `position` is 0 where the store keeps no line.
    Held {
        holder: Option<Holder>,
        position: i64,
    },
    Store(StoreError),
}

/// A held lease: renewed every third of its TTL on a thread (and, in
/// PostgreSQL, a connection) of its own, released when dropped. A renewal that fails, or finds the lease
/// taken by another run, is told to the run's journal health: the run stops
/// at the next step boundary.
pub struct Lease {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Set once the run's health is known; until then a lost lease is only logged.
    health: Arc<std::sync::Mutex<Option<Arc<JournalHealth>>>>,
}

impl Lease {
    /// A lease renewed every third of `ttl` on a thread of its own:
    /// `open` makes what the heartbeat uses, `renew` answers whether the
    /// lease is still this run's, `release` gives it up when dropped.
    pub fn spawn<S: 'static>(
        shown: &str,
        name: &str,
        token: i64,
        ttl: Duration,
        open: impl FnOnce() -> Result<S, StoreError> + Send + 'static,
        mut renew: impl FnMut(&mut S) -> Result<bool, StoreError> + Send + 'static,
        release: impl FnOnce(&mut S) + Send + 'static,
    ) -> Self {
        let shown = shown.to_string();
        let (stop, rx) = channel::<()>();
        let health: Arc<std::sync::Mutex<Option<Arc<JournalHealth>>>> = Arc::default();
        let told = health.clone();
        let name = name.to_string();
        let thread = std::thread::Builder::new()
            .name("lease-heartbeat".into())
            .spawn(move || {
                let fail = |why: String| {
                    if let Some(h) = told.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                        h.failed(why);
                    }
                };
                let mut state = match open() {
                    Ok(s) => s,
                    Err(e) => return fail(format!("cannot renew lock `{name}` in the state store {shown}: {e}")),
                };
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(ttl / 3) {
                    match renew(&mut state) {
                        Ok(true) => {}
                        Ok(false) => {
                            return fail(format!(
                                "lost lock `{name}`: its lease expired and another run took it (fencing token {token})"
                            ))
                        }
                        Err(e) => return fail(format!("cannot renew lock `{name}` in the state store {shown}: {e}")),
                    }
                }
                release(&mut state);
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
