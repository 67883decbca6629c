//! `health::`: is it up (`check`), wait until it is (`wait`), and how does
//! it behave under load (`probe`: the golden signals with percentiles from
//! a histogram). Targets are `http(s)://` URLs, `tcp://host:port`, or an
//! argv array whose exit status says healthy or not. All read-only.
//!
//! Under `--dry-run` the service may not be there yet (the deploy before the
//! check was skipped), so `wait` and `probe` try once, log what they would
//! wait for and what they see now, and return that one look marked
//! `dry_run: true` instead of failing or waiting it out.

mod check;
mod functions;
mod probe;
mod target;

pub(super) use check::wait_with as wait;
pub use functions::register;
