//! `fleet::run`: a closure over many hosts at once, each host a step (see
//! [`crate::executor::fleet`]). `import "capstan/fleet" as fleet;` reaches
//! the same function.

use std::sync::Arc;

use rhai::{Array, Engine, FnPtr, Map};

use super::registration::{docs, Api};
use crate::executor;
use crate::state::RunState;

/// The `fleet` namespace; also what `import "capstan/fleet"` gives.
pub fn register(engine: &mut Engine, state: &Arc<RunState>) -> rhai::Shared<rhai::Module> {
    Api::add_namespace(engine, "fleet", state.clone(), |api| {
        api.ctx3(
            "run",
            &["hosts: Array", "options: Map", "body: FnPtr", "Map"],
            docs! {
                /// Run `body(host)` for every host, `forks` hosts at a time (10), each host a
                /// step of its own (`<step>/<host name>`, with its log, `retries`, `retry_delay`,
                /// `timeout` and `undo: |host| ...`). Hosts are names or inventory host maps
                /// (`#{ name, address, .. }`). `batch` (a count or "25%") runs the hosts in
                /// batches, one after the other. `max_fail` (a count or "10%", default 0): once
                /// more hosts failed, no new host starts, the hosts in flight finish, the touched
                /// hosts (done or failed) are undone newest first and the fleet fails. A recap
                /// (per host: ok, failed, unreachable or skipped, duration, first error line) is
                /// shown and returned: `#{ ok, failed, unreachable, skipped, values, recap }`.
                /// ```rhai
                /// fleet::run(hosts, #{ forks: 20, max_fail: "10%" }, |host| {
                ///     ssh::run(host, ["systemctl", "restart", "app"]);
                /// });
                /// ```
            },
            |s, ctx, hosts: Array, options: Map, body: FnPtr| executor::fleet::run(s, ctx, hosts, &options, body),
        );
    })
}
