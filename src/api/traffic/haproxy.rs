//! `HAProxy` through its admin socket: set and read back server weights,
//! read per-server counters, and sample one server's traffic.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rhai::{Dynamic, Map};
use serde::{Deserialize, Serialize};

use super::weights::{required, weights};
use crate::api::options::Text;
use crate::api::values::to_map;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::{Action, Services};

/// The admin socket could not be reached, written or read.
#[derive(Debug)]
pub enum HaproxyError {
    Connect { socket: String, source: std::io::Error },
    Io { socket: String, source: std::io::Error },
}

impl fmt::Display for HaproxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaproxyError::Connect { socket, source } => {
                write!(f, "cannot connect to the HAProxy socket {socket}: {source}")
            }
            HaproxyError::Io { socket, source } => write!(f, "HAProxy socket {socket}: {source}"),
        }
    }
}

impl std::error::Error for HaproxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HaproxyError::Connect { source, .. } | HaproxyError::Io { source, .. } => Some(source),
        }
    }
}

/// One command on `HAProxy`'s admin socket; the answer as text.
pub fn haproxy_command(socket: &str, command: &str) -> Result<String, HaproxyError> {
    let io = |source| HaproxyError::Io { socket: socket.to_string(), source };
    let mut stream =
        UnixStream::connect(socket).map_err(|source| HaproxyError::Connect { socket: socket.to_string(), source })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    stream.write_all(format!("{command}\n").as_bytes()).map_err(io)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(io)?;
    Ok(answer)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct WeightOptions {
    socket: Option<Text>,
    backend: Option<Text>,
    weights: Option<BTreeMap<String, Dynamic>>,
}

#[derive(Serialize)]
struct Weights {
    weights: BTreeMap<String, i64>,
    dry_run: bool,
}

pub(super) fn set_weights(services: &Services, o: WeightOptions) -> RhaiResultOf<Map> {
    const WHAT: &str = "traffic::haproxy";
    let socket = required(o.socket, "socket", WHAT)?;
    let backend = required(o.backend, "backend", WHAT)?;
    let wanted = weights(o.weights, "weights", WHAT)?;
    let plan: Vec<String> = wanted.iter().map(|(s, w)| format!("{s}={w}")).collect();
    let description = format!("set HAProxy weights in {backend}: {} (via {socket})", plan.join(", "));
    if !services.should_act(&Action { description: &description, read_only: false }) {
        return to_map(&Weights { weights: wanted, dry_run: true });
    }
    let fail = |m: &dyn fmt::Display| {
        failure_with_hint(
            FailureKind::Command,
            m.to_string(),
            "check the socket path, the backend and server names (`show servers state`)",
        )
    };
    for (server, weight) in &wanted {
        let answer =
            haproxy_command(&socket, &format!("set weight {backend}/{server} {weight}")).map_err(|e| fail(&e))?;
        if !answer.trim().is_empty() {
            return Err(fail(&format!("HAProxy refused `set weight {backend}/{server} {weight}`: {}", answer.trim())));
        }
    }
    let mut read_back = BTreeMap::new();
    for server in wanted.keys() {
        let answer = haproxy_command(&socket, &format!("get weight {backend}/{server}")).map_err(|e| fail(&e))?;
        // "95 (initial 1)"
        let current =
            answer.split_whitespace().next().and_then(|w| w.parse::<i64>().ok()).ok_or_else(|| {
                fail(&format!("HAProxy answered `{}` for get weight {backend}/{server}", answer.trim()))
            })?;
        read_back.insert(server.clone(), current);
    }
    services.log(
        Level::Info,
        format!(
            "HAProxy {backend} weights now {}",
            read_back.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        ),
    );
    to_map(&Weights { weights: read_back, dry_run: false })
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct StatsOptions {
    socket: Option<Text>,
    backend: Option<Text>,
}

/// Responses by status class, under the names scripts read.
#[derive(Serialize, Default, Clone)]
struct Responses {
    #[serde(rename = "2xx")]
    ok: i64,
    #[serde(rename = "4xx")]
    client_errors: i64,
    #[serde(rename = "5xx")]
    server_errors: i64,
}

/// One server's counters.
#[derive(Serialize, Default, Clone)]
struct ServerStats {
    requests: i64,
    #[serde(flatten)]
    responses: Responses,
    weight: i64,
    status: String,
}

fn stats(socket: Option<Text>, backend: Option<Text>, what: &str) -> RhaiResultOf<BTreeMap<String, ServerStats>> {
    let socket = required(socket, "socket", what)?;
    let backend = required(backend, "backend", what)?;
    let csv = haproxy_command(&socket, "show stat").map_err(|m| failure(FailureKind::Command, m))?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv) = (col("pxname").unwrap_or(0), col("svname").unwrap_or(1));
    let mut servers = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f.get(px) != Some(&backend.as_str()) {
            continue;
        }
        let name = f.get(sv).copied().unwrap_or_default();
        if name == "FRONTEND" || name == "BACKEND" {
            continue;
        }
        let num = |c: &str| col(c).and_then(|i| f.get(i)).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        // req_tot counts HTTP requests; stot counts sessions (TCP mode).
        let requests = if num("req_tot") > 0 { num("req_tot") } else { num("stot") };
        let stats = ServerStats {
            requests,
            responses: Responses {
                ok: num("hrsp_2xx"),
                client_errors: num("hrsp_4xx"),
                server_errors: num("hrsp_5xx"),
            },
            weight: num("weight"),
            status: col("status").and_then(|i| f.get(i)).copied().unwrap_or_default().to_string(),
        };
        servers.insert(name.to_string(), stats);
    }
    if servers.is_empty() {
        return Err(failure_with_hint(
            FailureKind::Command,
            format!("HAProxy has no backend `{backend}`"),
            "check the backend name in haproxy.cfg",
        ));
    }
    Ok(servers)
}

pub(super) fn server_stats(o: StatsOptions) -> RhaiResultOf<Map> {
    to_map(&stats(o.socket, o.backend, "traffic::haproxy_stats")?)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SampleOptions {
    socket: Option<Text>,
    backend: Option<Text>,
    server: Option<Text>,
    since: BTreeMap<String, Dynamic>,
}

/// What `traffic::haproxy_sample` returns.
#[derive(Serialize)]
struct Sample {
    requests: i64,
    errors: i64,
    error_rate: f64,
    #[serde(flatten)]
    responses: Responses,
    server: String,
    source: &'static str,
    counters: ServerStats,
}

/// One server's traffic since the previous sample, from `HAProxy`'s counters:
/// an analysis source for a canary that sees real users' requests.
pub(super) fn sample(o: SampleOptions) -> RhaiResultOf<Map> {
    const WHAT: &str = "traffic::haproxy_sample";
    let server = required(o.server, "server", WHAT)?;
    let now = stats(o.socket, o.backend, WHAT)?.remove(&server).ok_or_else(|| {
        failure(FailureKind::Usage, format!("traffic::haproxy_sample: the backend has no server `{server}`"))
    })?;
    let before = |k: &str| o.since.get(k).and_then(|v| v.as_int().ok()).unwrap_or(0);
    // Counters only grow; a restart resets them, and then the new value is the delta.
    let delta = |now: i64, k: &str| {
        let then = before(k);
        if now >= then {
            now - then
        } else {
            now
        }
    };
    let requests = delta(now.requests, "requests");
    let counted = &now.responses;
    let responses = Responses {
        ok: delta(counted.ok, "2xx"),
        client_errors: delta(counted.client_errors, "4xx"),
        server_errors: delta(counted.server_errors, "5xx"),
    };
    let errors = responses.server_errors;
    to_map(&Sample {
        requests,
        errors,
        error_rate: if requests > 0 { errors as f64 / requests as f64 } else { 0.0 },
        responses,
        server,
        source: "haproxy counters",
        counters: now,
    })
}
