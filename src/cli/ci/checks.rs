//! The fail-fast shape: phases marked `check: true` run as jobs of their
//! own, all at once, and the first other phase's job needs them all; the
//! jobs keep the stack's dependencies in a cache keyed on its lock file.
//!
//! A check job is a run of its own (`--phase lint --journal-dir
//! .capstan-check-lint`), not part of the chain the later jobs resume: checks
//! are independent by definition, so nothing they compute is needed later,
//! and two jobs cannot append to one journal at once. The chain then starts
//! at the first other phase and its later jobs resume it `--from` there, so
//! no check runs twice.

use crate::process::quote;

use super::pipeline::{Job, Pipeline};
use super::setup::StateChoice;

impl Pipeline {
    /// The `capstan run` command line of check job `index`: its phase, as a
    /// run of its own, with the params the chain's first job takes.
    pub fn check_command(&self, index: usize, log_format: &str) -> String {
        let job = &self.checks[index];
        let mut words =
            vec!["capstan".to_string(), "run".into(), quote(&self.playbook), "--phase".into(), quote(&job.phase)];
        match &self.settings.state {
            None => words.extend(["--journal-dir".into(), check_journal(job)]),
            Some(StateChoice::Url(url)) => words.extend(["--state".into(), quote(url)]),
            Some(StateChoice::Secret) => {}
        }
        words.extend(["--log-format".into(), log_format.into(), "--junit".into(), self.check_junit(index)]);
        words.extend(self.param_flags());
        words.join(" ")
    }

    /// Where check job `index` writes its `JUnit` report.
    pub fn check_junit(&self, index: usize) -> String {
        format!("reports/junit-{}.xml", self.checks[index].id)
    }

    /// Check jobs' ids, which the chain's first job needs.
    pub fn check_ids(&self) -> Vec<&str> {
        self.checks.iter().map(|c| c.id.as_str()).collect()
    }
}

/// A check's own journal folder.
fn check_journal(job: &Job) -> String {
    format!(".capstan-check-{}", job.id)
}
