//! `capstan list`: the phases, params and secrets a playbook declares.
//! Evaluating the top level reads the secrets it uses; their values (a param
//! default, a phase name built from one) are masked in what is printed.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::args::ListArgs;
use crate::error::Error;
use crate::executor;
use crate::launch::compile_text;
use crate::session::inspection;
use crate::state::TopLevelBudget;

/// How long listing may evaluate the top level.
const LIST_TIME: Duration = Duration::from_secs(10);

pub fn list(args: &ListArgs) -> Result<(), Error> {
    let text = crate::launch::read_playbook(&args.playbook)?;
    for line in listing(&args.playbook, &text, args.json, TopLevelBudget::default(), LIST_TIME)? {
        outln!("{line}");
    }
    Ok(())
}

/// The lines `list` prints for one playbook's text. The top level gets
/// `budget` and at most `time`.
pub(crate) fn listing(
    path: &Path,
    text: &str,
    as_json: bool,
    budget: TopLevelBudget,
    time: Duration,
) -> Result<Vec<String>, Error> {
    let root = crate::launch::playbook_root(path);
    let (state, engine) = inspection(&root, budget);
    let services = state.services.clone();
    let loaded = compile_text(&engine, path, text, &services)?;
    crate::playbook::scan::mask_secrets_early(&loaded.ast, &services.redactor);
    // Listing runs the top level; one that never ends is stopped.
    state.services.cancel.set_run_deadline(std::time::Instant::now().checked_add(time));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        return Err(Error::Script { diagnostic: services.render_error(&e, &path.to_string_lossy()) });
    }
    let model = state.model();
    if as_json {
        let mut doc = json!({
            "playbook": path,
            "phases": model.phase_names(),
            "params": model.params,
            "secrets": model.secrets,
        });
        services.mask_json(&mut doc);
        return Ok(vec![doc.to_string()]);
    }
    let mut lines = Vec::new();
    let mut show = |line: String| lines.push(services.mask(&line).into_owned());
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
    Ok(lines)
}
