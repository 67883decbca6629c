//! `report::write(dir)`: the run so far as `report.json`, `report.md` and
//! `report.html`.

use std::path::Path;
use std::sync::Arc;

use rhai::{Engine, ImmutableString as Str, Map};
use serde::Serialize;

use super::registration::{docs, Api};
use super::values::to_map;
use crate::events::Level;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::report::{files, html, record};
use crate::services::Action;
use crate::state::RunState;

/// What `report::write` returns: the paths written (or that would be).
#[derive(Serialize)]
struct Written {
    json: String,
    markdown: String,
    html: String,
    dry_run: bool,
}

/// `report::` reads the run's record, so it keeps the run state.
pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    Api::add_namespace(engine, "report", state.clone(), functions);
}

fn functions(api: &mut Api<'_, Arc<RunState>>) {
    api.func1(
        "write",
        &["dir: &str", "Map"],
        docs! {
            /// Write `report.json`, `report.md` and `report.html` into `dir`: phases, steps,
            /// durations, gates, events, undo and, when the run failed, an incident summary (what
            /// failed, what was undone, how long it took). The HTML page adds a timeline and a
            /// chart per analysed metric; it is self-contained (opens offline, prints). Call it in
            /// the last phase or in `on_failure`. Returns `#{ json, markdown, html }` (the paths).
            /// ```rhai
            /// on_failure(|err| report::write("reports/"));
            /// ```
        },
        |state, dir: Str| write(state, &dir),
    );
}

fn write(state: &RunState, dir: &str) -> RhaiResultOf<Map> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let description = format!("write report.json, report.md and report.html to {dir}");
    if !state.services.should_act(&Action { description: &description, read_only: false }) {
        // The paths it would write.
        let dir = Path::new(dir);
        return to_map(&Written {
            json: path(&dir.join("report.json")),
            markdown: path(&dir.join("report.md")),
            html: path(&dir.join("report.html")),
            dry_run: true,
        });
    }
    let snapshot = record::lock(&state.record).clone();
    let cannot = |e: std::io::Error| failure(FailureKind::Fail, format!("cannot write the report to {dir}: {e}"));
    let (json, md) = files::write(&snapshot, Path::new(dir)).map_err(cannot)?;
    let page = Path::new(dir).join("report.html");
    html::write(&snapshot, &page).map_err(cannot)?;
    state
        .services
        .log(Level::Info, format!("report written to {}, {} and {}", json.display(), md.display(), page.display()));
    to_map(&Written { json: path(&json), markdown: path(&md), html: path(&page), dry_run: false })
}
