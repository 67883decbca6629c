//! Retrying: a typed [`RetryPolicy`] and the one [`Backoff`] that turns it
//! into the delays between attempts. Steps and notifications retry through
//! it; neither computes a delay itself.

use std::time::Duration;

/// How often to try again and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The wait before the first retry; each later wait doubles it.
    pub delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Option<Duration>,
}

impl RetryPolicy {
    /// `retries` more attempts, the first after `delay`, doubling, with no cap.
    pub fn doubling(retries: u32, delay: Duration) -> Self {
        Self { retries, delay, max_delay: None }
    }

    /// No wait longer than `max`.
    #[must_use]
    pub fn capped_at(self, max: Duration) -> Self {
        Self { max_delay: Some(max), ..self }
    }

    /// All attempts, the first included.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The waits before each retry, in order; it ends when no retry is left.
    pub fn backoff(&self) -> Backoff {
        Backoff { next: self.delay, max: self.max_delay, left: self.retries }
    }
}

/// The delays a [`RetryPolicy`] gives: one per retry left.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Option<Duration>,
    left: u32,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let delay = self.max.map_or(self.next, |m| self.next.min(m));
        self.next = self.next.saturating_mul(2);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_once_per_retry_and_stops() {
        let delays: Vec<u64> =
            RetryPolicy::doubling(3, Duration::from_millis(100)).backoff().map(|d| d.as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400]);
    }

    #[test]
    fn a_cap_bounds_every_wait() {
        let policy = RetryPolicy::doubling(4, Duration::from_secs(20)).capped_at(Duration::from_secs(30));
        let delays: Vec<u64> = policy.backoff().map(|d| d.as_secs()).collect();
        assert_eq!(delays, [20, 30, 30, 30]);
        assert_eq!(policy.attempts(), 5);
    }

    #[test]
    fn no_retries_no_waits() {
        assert_eq!(RetryPolicy::doubling(0, Duration::from_secs(1)).backoff().count(), 0);
    }

    #[test]
    fn a_huge_delay_saturates() {
        let mut backoff = RetryPolicy::doubling(3, Duration::MAX).backoff();
        assert_eq!(backoff.nth(2), Some(Duration::MAX));
    }
}
