//! nginx: upstream servers with weights written to an include file,
//! checked with `nginx -t` (and put back when that fails), then reloaded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rhai::{Dynamic, Map};
use serde::{Deserialize, Serialize};

use super::weights::{required, weights};
use crate::api::options::{List, Text};
use crate::api::tool::{self, ToolCall};
use crate::api::values::to_map;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::{Action, Services};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct NginxOptions {
    file: Option<Text>,
    upstream: Option<Text>,
    servers: Option<BTreeMap<String, Dynamic>>,
    reload: bool,
    nginx_args: List,
}

impl Default for NginxOptions {
    fn default() -> Self {
        Self { file: None, upstream: None, servers: None, reload: true, nginx_args: List::default() }
    }
}

#[derive(Serialize)]
struct Written {
    file: String,
    servers: BTreeMap<String, i64>,
    reloaded: bool,
    dry_run: bool,
}

/// The upstream servers as nginx reads them; weight 0 marks a server `down`.
fn config(servers: &BTreeMap<String, i64>, upstream: Option<&Text>) -> String {
    let mut body = String::new();
    for (addr, weight) in servers {
        // nginx weights start at 1; weight 0 takes a server out as `down`.
        if *weight == 0 {
            let _ = writeln!(body, "server {addr} down;");
        } else {
            let _ = writeln!(body, "server {addr} weight={weight};");
        }
    }
    match upstream {
        Some(name) => {
            let indented = body.lines().fold(String::new(), |mut acc, l| {
                let _ = writeln!(acc, "    {l}");
                acc
            });
            format!("upstream {} {{\n{indented}}}\n", name.0)
        }
        None => body,
    }
}

pub(super) fn nginx(services: &Services, o: NginxOptions) -> RhaiResultOf<Map> {
    const WHAT: &str = "traffic::nginx";
    let file = required(o.file, "file", WHAT)?;
    let servers = weights(o.servers, "servers", WHAT)?;
    let content = config(&servers, o.upstream.as_ref());
    let description = format!(
        "write {file} ({}) and reload nginx",
        servers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    );
    if !services.should_act(&Action { description: &description, read_only: false }) {
        return to_map(&Written { file, servers, reloaded: false, dry_run: true });
    }
    let previous = std::fs::read_to_string(&file).ok();
    std::fs::write(&file, &content).map_err(|e| failure(FailureKind::Fail, format!("cannot write {file}: {e}")))?;
    let nginx_args = o.nginx_args.0;
    let mut test = ToolCall::new("nginx", nginx_args.iter().cloned().chain(["-t".to_string()]));
    test.read_only = true;
    test.quiet = true;
    let tested = tool::call(services, &test)?.filter(|o| !o.success());
    if let Some(out) = tested {
        // Put the working file back so the next reload does not pick up a broken one.
        match &previous {
            Some(text) => {
                let _ = std::fs::write(&file, text);
            }
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
        return Err(tool::failed(&test, &out, Some(format!("{file} was restored; nginx was not reloaded"))));
    }
    if o.reload {
        let call = ToolCall::new("nginx", nginx_args.into_iter().chain(["-s".to_string(), "reload".to_string()]));
        tool::checked(services, &call, None)?;
    }
    to_map(&Written { file, servers, reloaded: o.reload, dry_run: false })
}
