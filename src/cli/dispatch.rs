//! Parse the arguments, set up the process, hand the command to its file.

use std::io::Write;

use clap::{CommandFactory, Parser};

use super::args::{Cli, Command};
use super::{check, ci, doc, list, man, new, run, runs, stats};
use crate::error::Error;
use crate::{exit, launch};

/// Parse the arguments and run the command; returns the exit code.
pub async fn main() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == crate::process::reaper::SUBCOMMAND) {
        return crate::process::reaper::run();
    }
    crate::process::tree::become_subreaper();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    if let Some(path) = &cli.output {
        match std::fs::File::create(path) {
            Ok(file) => {
                launch::send_output_to(file);
            }
            Err(e) => return fail(&Error::io("cannot write", path.clone(), e).with_hint("check the -o path")),
        }
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => check::check(&args),
        Command::List(args) => list::list(&args),
        Command::Doc(args) => doc::doc(&args),
        Command::Runs(args) => runs::runs(&args),
        Command::Stats(args) => stats::stats(&args),
        Command::Repl(args) => crate::repl::repl(args).await,
        Command::New(args) => new::new(&args),
        Command::Ci(args) => ci::ci(&args),
        Command::Man => man::man(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "capstan", &mut *launch::output());
            Ok(())
        }
    };
    let _ = launch::output().flush();
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(&e),
    }
}

/// The one place a command's error reaches the terminal.
fn fail(error: &Error) -> i32 {
    error.report();
    error.code()
}

fn init_tracing() {
    // Internal diagnostics for capstan's own developers: CAPSTAN_LOG=debug.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
}
