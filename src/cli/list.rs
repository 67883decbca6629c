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
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        eprint!("{}", diagnostics::render_eval(&e, &args.playbook.to_string_lossy(), &Redactor::new()));
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
        println!("{doc}");
        return exit::OK;
    }
    println!("phases:");
    for p in &model.phases {
        println!("  {}", p.name);
    }
    if !model.params.is_empty() {
        println!("params:");
        for p in &model.params {
            match &p.default {
                Some(d) => println!("  {} (default {d})", p.name),
                None => println!("  {} (required)", p.name),
            }
        }
    }
    if !model.secrets.is_empty() {
        println!("secrets:");
        for s in &model.secrets {
            println!("  {s}");
        }
    }
    exit::OK
}
