//! `capstan repl`: an interactive session with every primitive loaded.

use crate::cli::ReplArgs;

pub async fn repl(args: ReplArgs) -> i32 {
    crate::cli::usage_error(&format!("capstan repl {:?} is not available yet", args.playbook), None)
}
