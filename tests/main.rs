//! The one integration-test binary: every test drives the real `capstan`.

mod support;

mod check;
mod ci;
mod compliance;
mod daemons_smoke;
mod data;
mod delivery;
mod diagnostics;
mod dry_run;
mod examples;
mod fuzz;
mod guards;
mod health;
mod hostile;
mod imports;
mod infra;
mod infra_examples;
mod journal;
mod kube;
mod leak_matrix;
mod notify;
mod outputs;
mod peers;
mod pipelines;
mod process_tree;
mod processes;
mod reference;
mod repl;
mod resume;
mod resume_hostile;
mod run;
mod secrets;
mod signals;
mod templates;
mod terraform;
