//! Waiting on the script thread: the one cancellable sleep and the one
//! "run a future until cancelled" (`block_on`). Ctrl-C, the run's timeout
//! and step timeouts cut both short, as [`frame::check`] reports them.

use std::time::{Duration, Instant};

use super::{frame, Services};
use crate::cancel::Interrupt;
use crate::failure::{failure, terminated, FailureKind, RhaiResultOf};

/// A sleep that Ctrl-C, the run's timeout and step timeouts cut short.
pub fn sleep(services: &Services, duration: Duration) -> RhaiResultOf<()> {
    // A duration too long for the clock is as good as forever.
    let end = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    loop {
        if let Some(reason) = frame::check(&services.cancel) {
            return Err(terminated(reason));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let mut wait = end - now;
        if let Some(d) = frame::next_deadline(&services.cancel) {
            wait = wait.min(d.saturating_duration_since(now) + Duration::from_millis(1));
        }
        services.cancel.sleep(wait.min(Duration::from_millis(250)));
    }
}

pub fn runtime(services: &Services) -> RhaiResultOf<tokio::runtime::Handle> {
    services.runtime.clone().ok_or_else(|| failure(FailureKind::Fail, "no async runtime for network checks"))
}

/// Run a future on the runtime, stopping when the step or run is interrupted.
pub fn block_on<T>(services: &Services, fut: impl std::future::Future<Output = T>) -> RhaiResultOf<T> {
    let rt = runtime(services)?;
    until_interrupted(&rt, services, fut).map_err(terminated)
}

/// [`block_on`] on a runtime already in hand, with the reason it was cut
/// short kept as it is (for callers with typed errors, as [`super::http`]).
pub fn until_interrupted<T>(
    rt: &tokio::runtime::Handle,
    services: &Services,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Interrupt> {
    rt.block_on(async {
        tokio::select! {
            v = fut => Ok(v),
            () = interrupted(services) => Err(()),
        }
    })
    .map_err(|()| frame::check(&services.cancel).unwrap_or(Interrupt::Signal))
}

async fn interrupted(services: &Services) {
    loop {
        if frame::check(&services.cancel).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
