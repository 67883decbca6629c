//! The one integration-test binary: every test drives the real `capstan`.

mod support;

mod check;
mod diagnostics;
mod dry_run;
mod examples;
mod imports;
mod journal;
mod outputs;
mod processes;
mod run;
mod secrets;
mod signals;
