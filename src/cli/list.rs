//! `capstan list`: the phases, params and secrets a playbook declares, and
//! with `-i` the inventory's hosts the playbook gets.
//! Evaluating the top level reads the secrets it uses; their values (a param
//! default, a phase name built from one) are masked in what is printed.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::args::ListArgs;
use crate::error::Error;
use crate::executor;
use crate::inventory::Host;
use crate::launch::compile_text;
use crate::session::inspection_of;
use crate::state::TopLevelBudget;

/// How long listing may evaluate the top level.
const LIST_TIME: Duration = Duration::from_secs(10);

pub fn list(args: &ListArgs) -> Result<(), Error> {
    let text = crate::launch::read_playbook(&args.playbook)?;
    let inventory =
        args.inventory.inventory.is_some().then(|| crate::session::inventory(&args.inventory)).transpose()?;
    let shown = Shown { as_json: args.json, inventory };
    for line in listing(&args.playbook, &text, &shown, TopLevelBudget::default(), LIST_TIME)? {
        outln!("{line}");
    }
    Ok(())
}

/// How `list` shows a playbook.
#[derive(Default)]
pub(crate) struct Shown {
    pub as_json: bool,
    /// The hosts of `-i` (after `--limit`), when one was given.
    pub inventory: Option<Vec<Host>>,
}

/// The lines `list` prints for one playbook's text. The top level gets
/// `budget` and at most `time`.
pub(crate) fn listing(
    path: &Path,
    text: &str,
    shown: &Shown,
    budget: TopLevelBudget,
    time: Duration,
) -> Result<Vec<String>, Error> {
    let root = crate::launch::playbook_root(path);
    let (state, engine) = inspection_of(&root, budget, shown.inventory.clone().unwrap_or_default());
    let services = state.services.clone();
    let loaded = compile_text(&engine, path, text, &services)?;
    crate::playbook::scan::mask_secrets_early(&loaded.ast, &services.redactor);
    // Listing runs the top level; one that never ends is stopped.
    state.services.cancel.set_run_deadline(std::time::Instant::now().checked_add(time));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        return Err(Error::Script { diagnostic: services.render_error(&e, &path.to_string_lossy()) });
    }
    let model = state.model();
    if shown.as_json {
        let mut doc = json!({
            "playbook": path,
            "phases": model.phase_names(),
            "params": model.params,
            "secrets": model.secrets,
        });
        if let Some(hosts) = &shown.inventory {
            doc["inventory"] = json!(hosts);
        }
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
    if let Some(hosts) = &shown.inventory {
        show(format!("inventory: {} host{}", hosts.len(), if hosts.len() == 1 { "" } else { "s" }));
        let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
        for h in hosts {
            show(format!("  {:width$}  {}  {}", h.name, ssh_target(h), h.groups.join(",")).trim_end().to_string());
        }
    }
    Ok(lines)
}

/// `user@address:port`, with what the inventory leaves to ssh left out.
fn ssh_target(host: &Host) -> String {
    let user = host.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    let port = host.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{user}{}{port}", host.address)
}
