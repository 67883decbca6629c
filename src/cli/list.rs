//! `capstan list`: the phases, params and secrets a playbook declares.

use serde_json::json;

use super::args::ListArgs;
use super::{inspection, load};
use crate::executor::{self, exit};
use crate::{diagnostics, secrets::Redactor};

pub fn list(args: &ListArgs) -> i32 {
    let root = super::playbook_root(&args.playbook);
    let (state, engine) = inspection(&root);
    let loaded = match load(&engine, &args.playbook, &Redactor::new()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // Listing runs the top level; one that never ends is stopped.
    state.services.cancel.set_run_deadline(std::time::Instant::now().checked_add(std::time::Duration::from_secs(10)));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        crate::err!("{}", diagnostics::render_eval(&e, &args.playbook.to_string_lossy(), &Redactor::new()));
        return exit::USAGE;
    }
    let model = state.model();
    if args.json {
        let doc = json!({
            "playbook": args.playbook,
            "phases": model.phase_names(),
            "params": model.params,
            "secrets": model.secrets,
        });
        outln!("{doc}");
        return exit::OK;
    }
    outln!("phases:");
    for p in &model.phases {
        outln!("  {}", p.name);
    }
    if !model.params.is_empty() {
        outln!("params:");
        for p in &model.params {
            if let Some(d) = &p.default {
                outln!("  {} (default {d})", p.name);
            } else {
                outln!("  {} (required)", p.name);
            }
        }
    }
    if !model.secrets.is_empty() {
        outln!("secrets:");
        for s in &model.secrets {
            outln!("  {s}");
        }
    }
    exit::OK
}
