//! `report::write(dir)`: the run so far as `report.json` and `report.md`.

use std::sync::Arc;

use rhai::{Engine, Map, Module};

use super::registration::module_func;
use crate::events::Level;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::report::{files, record};
use crate::services::Action;
use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut module = Module::new();
    let s = state.clone();
    module_func(
        &mut module,
        "write",
        &["dir: &str", "Map"],
        "Write `report.json` and `report.md` into `dir`: phases, steps, durations, gates,\n\
         events, undo and, when the run failed, an incident summary (what failed, what\n\
         was undone, how long it took). Call it in the last phase or in `on_failure`.\n\
         Returns `#{ json, markdown }` (the paths).\n\
         ```rhai\non_failure(|err| report::write(\"reports/\"));\n```",
        move |dir: &str| write(&s, dir),
    );
    engine.register_static_module("report", module.into());
}

fn write(state: &RunState, dir: &str) -> RhaiResultOf<Map> {
    let mut result = Map::new();
    let description = format!("write report.json and report.md to {dir}");
    if !state.services.should_act(&Action { description: &description, read_only: false }) {
        // The paths it would write.
        let dir = std::path::Path::new(dir);
        result.insert("json".into(), dir.join("report.json").to_string_lossy().into_owned().into());
        result.insert("markdown".into(), dir.join("report.md").to_string_lossy().into_owned().into());
        result.insert("dry_run".into(), true.into());
        return Ok(result);
    }
    let snapshot = record::lock(&state.record).clone();
    let (json, md) = files::write(&snapshot, std::path::Path::new(dir))
        .map_err(|e| failure(FailureKind::Fail, format!("cannot write the report to {dir}: {e}")))?;
    state.services.log(Level::Info, format!("report written to {} and {}", json.display(), md.display()));
    result.insert("json".into(), json.to_string_lossy().into_owned().into());
    result.insert("markdown".into(), md.to_string_lossy().into_owned().into());
    result.insert("dry_run".into(), false.into());
    Ok(result)
}
