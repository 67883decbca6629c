//! `capstan ci`: a CI pipeline that runs the playbook's phases as jobs.
//!
//! One job per phase, in declaration order, each after the one before. The
//! first job starts a run with `--journal-dir .capstan-ci`; each later job
//! gets that folder, and the `artifacts` the phases so far declared, from
//! the job before it and continues the same run with `--resume last --to P`
//! (steps that prepare the workspace, such as `terraform init`, run again:
//! a job starts from a fresh checkout). Phases that call `approve(...)` wait
//! for the platform's own gate (a protected environment, a manual job, an
//! `input` step, an approval job) and then pass `--approve NAME` to capstan.
//! Runs of one playbook and environment wait for each other. With `--state`
//! the run lives in a shared store instead: the first job names it after the
//! pipeline (`--run-name`) and the later jobs resume that name, so only the
//! phases' artifacts travel.

mod checks;
mod circleci;
mod github;
mod gitlab;
mod jenkins;
mod lines;
mod pipeline;
mod setup;
mod shape;

use std::io::Write as _;

use super::args::{CiArgs, Platform};
use crate::error::Error;
use pipeline::Pipeline;

pub fn ci(args: &CiArgs) -> Result<(), Error> {
    let settings = setup::Settings::from_args(args)?;
    let pipeline = Pipeline::inspect(&args.playbook, settings)?;
    let text = match args.platform {
        Platform::Github => github::render(&pipeline),
        Platform::Gitlab => gitlab::render(&pipeline),
        Platform::Jenkins => jenkins::render(&pipeline),
        Platform::Circleci => circleci::render(&pipeline),
    };
    // The pipeline names secrets and never holds their values; should a value
    // still reach the text (the playbook's own path, a job name), it is masked.
    let text = pipeline.services.mask(&text).into_owned();
    let mut out = crate::launch::output();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        drop(out);
        return Err(Error::io("cannot write the pipeline", None, e).with_hint("check the -o path"));
    }
    Ok(())
}
