//! `capstan stats`: delivery statistics over the journal's runs, or over
//! every machine's runs in a shared `--state` store, as `capstan runs`
//! reads them.

use std::time::SystemTime;

use super::args::StatsArgs;
use super::runs::{elsewhere, ids};
use crate::error::Error;
use crate::report::runs_dir;
use crate::stats::{prometheus, table, RunFacts};
use crate::store::State;

pub fn stats(args: &StatsArgs) -> Result<(), Error> {
    if args.since.is_zero() {
        return Err(Error::usage_with_hint(
            "--since 0 is a window of no time",
            "give a duration: --since 30d, --since 12h",
        ));
    }
    let state = State::open(args.state.as_deref())?;
    let (runs, empty) = if let Some(shared) = state.shared() {
        let journals = crate::store::runs::journals(&shared.backend)
            .map_err(|e| Error::usage(format!("cannot read the runs in the state store {}: {e}", shared.shown)))?;
        let runs: Vec<RunFacts> = journals.iter().map(|(_, text)| RunFacts::from_journal(text)).collect();
        (runs, format!("no runs in {}", shared.shown))
    } else {
        let root = state.journal_root(args.journal_dir.as_ref(), ".".into())?;
        let dir = runs_dir(&root);
        let runs: Vec<RunFacts> = ids(&dir)
            .iter()
            .filter_map(|id| std::fs::read(dir.join(id).join("journal.jsonl")).ok())
            // A line that is not UTF-8 (a damaged journal) must not hide the rest.
            .map(|bytes| RunFacts::from_journal(&String::from_utf8_lossy(&bytes)))
            .collect();
        let mut empty = format!("no runs under {}", dir.display());
        if runs.is_empty() && args.journal_dir.is_none() {
            if let Some(hint) = elsewhere(&root, "stats") {
                empty = format!("{empty}\n   = hint: {hint}");
            }
        }
        (runs, empty)
    };
    if runs.is_empty() {
        crate::errln!("{empty}");
    }
    let shown = humantime::format_duration(args.since).to_string();
    let stats = crate::stats::stats(&runs, args.playbook.as_deref(), args.since, &shown, SystemTime::now());
    if let Some(path) = &args.prometheus {
        prometheus::write(&stats, path)
            .map_err(|e| Error::io("cannot write", path.clone(), e).with_hint("check the --prometheus path"))?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&stats).unwrap_or_default());
    } else {
        outln!("{}", table::render(&stats).trim_end());
    }
    Ok(())
}
