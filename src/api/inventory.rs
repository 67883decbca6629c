//! `inventory()` and `inventory::`: the hosts of an Ansible inventory as
//! `#{ name, address, port, user, identity, groups, vars }` maps, those of
//! `-i FILE` (after `--limit`) or of a file the playbook names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, ImmutableString as Str, Map};

use super::registration::{docs, Api};
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::inventory::{self, Host};
use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>, root: &Path) {
    Api::global(engine, state.clone()).func0(
        "inventory",
        &["Array"],
        docs! {
            /// The hosts of the inventory given with `-i FILE`, picked by `--limit PATTERN`: one map
            /// per host, `#{ name, address, port, user, identity, groups, vars }`, in the file's order.
            /// `address` is `ansible_host` (or the name); `port`, `user` and `identity` are
            /// `ansible_port`, `ansible_user` and `ansible_ssh_private_key_file`, or `()` when the
            /// inventory leaves them to ssh's own configuration; `groups` are sorted, without
            /// `all`; `vars` are the other variables, host vars over child groups' over parents' over
            /// `all`'s. Without `-i`, an empty array.
            /// ```rhai
            /// for host in inventory() {
            ///     info(`${host.name}: ${host.address} in ${host.groups}`);
            /// }
            /// ```
        },
        |state| hosts_array(&state.inventory),
    );
    Api::add_namespace(engine, "inventory", (state.clone(), root.to_path_buf()), functions);
}

fn functions(api: &mut Api<'_, (Arc<RunState>, PathBuf)>) {
    api.func1(
        "load",
        &["path: &str", "Array"],
        docs! {
            /// The hosts of an Ansible inventory file, as `inventory()` gives them: INI (`hosts`,
            /// `*.ini`, `*.cfg`) or YAML (`*.yml`, `*.yaml`), with the `group_vars/` and
            /// `host_vars/` files next to it. A relative path is read from the playbook's folder.
            /// `--limit` does not apply; `inventory::limit` does the same.
            /// ```rhai
            /// let staging = inventory::load("inventories/staging.yml");
            /// ```
        },
        |(state, root), path: Str| {
            // Messages name the file as the playbook does when it is run from its folder.
            let file = if root.as_os_str() == "." { PathBuf::from(path.as_str()) } else { root.join(path.as_str()) };
            let hosts = inventory::load(&file).map_err(|e| {
                let hint = e.hint();
                failure_with_hint(FailureKind::Usage, e, hint)
            })?;
            crate::state::mask_inventory_secrets(&state.services, &hosts);
            hosts_array(&hosts)
        },
    );
    api.func2(
        "limit",
        &["hosts: Array", "pattern: &str", "Array"],
        docs! {
            /// The hosts an Ansible host pattern picks, as `--limit` does: `web`, `web:db` (either),
            /// `web:&prod` (both), `web:!web03` (but not), globs `web0*`, `~regex`. A part that
            /// matches no group or host is an error.
            /// ```rhai
            /// let canaries = inventory::limit(inventory(), "web:&canary");
            /// ```
        },
        |_, hosts: Array, pattern: Str| -> RhaiResultOf<Array> {
            let mut views = Vec::with_capacity(hosts.len());
            for (i, host) in hosts.iter().enumerate() {
                views.push(view(host).ok_or_else(|| {
                    failure(
                        FailureKind::Usage,
                        format!("inventory::limit: host {i} is not a map with a `name` and `groups`"),
                    )
                })?);
            }
            let refs: Vec<(&str, &[String])> = views.iter().map(|(n, g)| (n.as_str(), g.as_slice())).collect();
            let chosen = inventory::select(&refs, &pattern)
                .map_err(|e| failure_with_hint(FailureKind::Usage, &e, e.hint.clone()))?;
            Ok(chosen.into_iter().map(|i| hosts[i].clone()).collect())
        },
    );
}

/// A host map's name and groups.
fn view(host: &Dynamic) -> Option<(String, Vec<String>)> {
    let map = host.read_lock::<Map>()?;
    let name = map.get("name")?.clone().into_string().ok()?;
    let groups = match map.get("groups") {
        None => Vec::new(),
        Some(g) => g.read_lock::<Array>()?.iter().map(|g| g.clone().into_string().ok()).collect::<Option<_>>()?,
    };
    Some((name, groups))
}

fn hosts_array(hosts: &[Host]) -> RhaiResultOf<Array> {
    hosts.iter().map(rhai::serde::to_dynamic).collect()
}
