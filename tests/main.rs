//! The one integration-test binary: every test drives the real `capstan`.

mod support;

mod check;
mod ci;
mod data;
mod diagnostics;
mod dry_run;
mod examples;
mod guards;
mod health;
mod imports;
mod journal;
mod notify;
mod outputs;
mod processes;
mod resume;
mod run;
mod secrets;
mod signals;
mod terraform;
mod daemons_smoke;
