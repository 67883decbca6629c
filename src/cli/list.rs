//! `capstan list`: the phases, params and secrets a playbook declares.
//! Evaluating the top level reads the secrets it uses; their values (a param
//! default, a phase name built from one) are masked in what is printed.

use serde_json::json;

use super::args::ListArgs;
use super::{inspection, load};
use crate::diagnostics;
use crate::events::redact_json;
use crate::executor::{self, exit};

pub fn list(args: &ListArgs) -> i32 {
    let root = super::playbook_root(&args.playbook);
    let (state, engine) = inspection(&root);
    let redactor = state.services.redactor.clone();
    let loaded = match load(&engine, &args.playbook, &redactor) {
        Ok(l) => l,
        Err(code) => return code,
    };
    crate::playbook::scan::mask_secrets_early(&loaded.ast, &redactor);
    // Listing runs the top level; one that never ends is stopped.
    state.services.cancel.set_run_deadline(std::time::Instant::now().checked_add(std::time::Duration::from_secs(10)));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        crate::err!("{}", diagnostics::render_eval(&e, &args.playbook.to_string_lossy(), &redactor));
        return exit::USAGE;
    }
    let model = state.model();
    if args.json {
        let mut doc = json!({
            "playbook": args.playbook,
            "phases": model.phase_names(),
            "params": model.params,
            "secrets": model.secrets,
        });
        redact_json(&mut doc, &redactor);
        outln!("{doc}");
        return exit::OK;
    }
    let show = |line: String| outln!("{}", redactor.redact(&line));
    show("phases:".into());
    for p in &model.phases {
        show(format!("  {}", p.name));
    }
    if !model.params.is_empty() {
        show("params:".into());
        for p in &model.params {
            if let Some(d) = &p.default {
                show(format!("  {} (default {d})", p.name));
            } else {
                show(format!("  {} (required)", p.name));
            }
        }
    }
    if !model.secrets.is_empty() {
        show("secrets:".into());
        for s in &model.secrets {
            show(format!("  {s}"));
        }
    }
    exit::OK
}
