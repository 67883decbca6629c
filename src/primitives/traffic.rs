//! `traffic::`: shift traffic between versions. `HAProxy` through its runtime
//! API (no reload: weights change in place and are read back), nginx
//! through an upstream include file checked with `nginx -t` and reloaded,
//! ingress-nginx through the canary-weight annotation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use super::tool::{self, ToolCall};
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::Action;
use crate::state::RunState;

/// One command on `HAProxy`'s admin socket; the answer as text.
pub fn haproxy_command(socket: &str, command: &str) -> Result<String, String> {
    let mut stream =
        UnixStream::connect(socket).map_err(|e| format!("cannot connect to the HAProxy socket {socket}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    stream.write_all(format!("{command}\n").as_bytes()).map_err(|e| format!("HAProxy socket {socket}: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("HAProxy socket {socket}: {e}"))?;
    Ok(answer)
}

fn text_option(map: &Map, key: &str, what: &str) -> RhaiResultOf<String> {
    map.get(key).map(ToString::to_string).ok_or_else(|| failure(FailureKind::Usage, format!("{what} needs `{key}`")))
}

fn check_keys(map: &Map, allowed: &[&str], what: &str) -> RhaiResultOf<()> {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(failure(
                FailureKind::Usage,
                format!("unknown {what} option `{k}`; the options are: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn weights(map: &Map, key: &str, what: &str) -> RhaiResultOf<BTreeMap<String, i64>> {
    let w = map
        .get(key)
        .and_then(|v| v.read_lock::<Map>().map(|m| m.clone()))
        .ok_or_else(|| failure(FailureKind::Usage, format!("{what} needs `{key}`: a map of server to weight")))?;
    w.iter()
        .map(|(k, v)| {
            let n = v
                .as_int()
                .map_err(|_| failure(FailureKind::Usage, format!("{what}: the weight of `{k}` must be an integer")))?;
            if !(0..=256).contains(&n) {
                return Err(failure(
                    FailureKind::Usage,
                    format!("{what}: the weight of `{k}` must be 0 to 256, not {n}"),
                ));
            }
            Ok((k.to_string(), n))
        })
        .collect()
}

fn haproxy(state: &RunState, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["socket", "backend", "weights"], "traffic::haproxy")?;
    let socket = text_option(map, "socket", "traffic::haproxy")?;
    let backend = text_option(map, "backend", "traffic::haproxy")?;
    let wanted = weights(map, "weights", "traffic::haproxy")?;
    let plan: Vec<String> = wanted.iter().map(|(s, w)| format!("{s}={w}")).collect();
    let description = format!("set HAProxy weights in {backend}: {} (via {socket})", plan.join(", "));
    let mut result = Map::new();
    if !state.services.should_act(&Action { description: &description, read_only: false }) {
        result.insert(
            "weights".into(),
            wanted.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(*v))).collect::<Map>().into(),
        );
        result.insert("dry_run".into(), true.into());
        return Ok(result);
    }
    let fail = |m: String| {
        failure_with_hint(
            FailureKind::Command,
            m,
            "check the socket path, the backend and server names (`show servers state`)",
        )
    };
    for (server, weight) in &wanted {
        let answer = haproxy_command(&socket, &format!("set weight {backend}/{server} {weight}")).map_err(fail)?;
        if !answer.trim().is_empty() {
            return Err(fail(format!("HAProxy refused `set weight {backend}/{server} {weight}`: {}", answer.trim())));
        }
    }
    let mut read_back = Map::new();
    for server in wanted.keys() {
        let answer = haproxy_command(&socket, &format!("get weight {backend}/{server}")).map_err(fail)?;
        // "95 (initial 1)"
        let current =
            answer.split_whitespace().next().and_then(|w| w.parse::<i64>().ok()).ok_or_else(|| {
                fail(format!("HAProxy answered `{}` for get weight {backend}/{server}", answer.trim()))
            })?;
        read_back.insert(server.as_str().into(), current.into());
    }
    state.services.log(
        Level::Info,
        format!(
            "HAProxy {backend} weights now {}",
            read_back.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        ),
    );
    result.insert("weights".into(), read_back.into());
    result.insert("dry_run".into(), false.into());
    Ok(result)
}

fn haproxy_stats(map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["socket", "backend"], "traffic::haproxy_stats")?;
    let socket = text_option(map, "socket", "traffic::haproxy_stats")?;
    let backend = text_option(map, "backend", "traffic::haproxy_stats")?;
    let csv = haproxy_command(&socket, "show stat").map_err(|m| failure(FailureKind::Command, m))?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv) = (col("pxname").unwrap_or(0), col("svname").unwrap_or(1));
    let mut servers = Map::new();
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
        let mut s = Map::new();
        // req_tot counts HTTP requests; stot counts sessions (TCP mode).
        let requests = if num("req_tot") > 0 { num("req_tot") } else { num("stot") };
        s.insert("requests".into(), requests.into());
        s.insert("2xx".into(), num("hrsp_2xx").into());
        s.insert("4xx".into(), num("hrsp_4xx").into());
        s.insert("5xx".into(), num("hrsp_5xx").into());
        s.insert("weight".into(), num("weight").into());
        s.insert("status".into(), col("status").and_then(|i| f.get(i)).copied().unwrap_or_default().into());
        servers.insert(name.into(), s.into());
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

/// One server's traffic since the previous sample, from `HAProxy`'s counters:
/// an analysis source for a canary that sees real users' requests.
fn haproxy_sample(map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["socket", "backend", "server", "since"], "traffic::haproxy_sample")?;
    let server = text_option(map, "server", "traffic::haproxy_sample")?;
    let mut stats_opts = Map::new();
    for k in ["socket", "backend"] {
        if let Some(v) = map.get(k) {
            stats_opts.insert(k.into(), v.clone());
        }
    }
    let stats = haproxy_stats(&stats_opts)?;
    let now = stats.get(server.as_str()).and_then(|v| v.read_lock::<Map>().map(|m| m.clone())).ok_or_else(|| {
        failure(FailureKind::Usage, format!("traffic::haproxy_sample: the backend has no server `{server}`"))
    })?;
    let since = map.get("since").and_then(|v| v.read_lock::<Map>().map(|m| m.clone())).unwrap_or_default();
    let count = |m: &Map, k: &str| m.get(k).and_then(|v| v.as_int().ok()).unwrap_or(0);
    // Counters only grow; a restart resets them, and then the new value is the delta.
    let delta = |k: &str| {
        let (a, b) = (count(&now, k), count(&since, k));
        if a >= b {
            a - b
        } else {
            a
        }
    };
    let requests = delta("requests");
    let errors = delta("5xx");
    let mut m = Map::new();
    m.insert("requests".into(), requests.into());
    m.insert("errors".into(), errors.into());
    m.insert("error_rate".into(), (if requests > 0 { errors as f64 / requests as f64 } else { 0.0 }).into());
    m.insert("2xx".into(), delta("2xx").into());
    m.insert("4xx".into(), delta("4xx").into());
    m.insert("5xx".into(), errors.into());
    m.insert("server".into(), server.into());
    m.insert("source".into(), "haproxy counters".into());
    m.insert("counters".into(), now.into());
    Ok(m)
}

fn nginx(state: &RunState, map: &Map) -> RhaiResultOf<Map> {
    check_keys(map, &["file", "upstream", "servers", "reload", "nginx_args"], "traffic::nginx")?;
    let file = text_option(map, "file", "traffic::nginx")?;
    let servers = weights(map, "servers", "traffic::nginx")?;
    let reload = map
        .get("reload")
        .map_or(Ok(true), Dynamic::as_bool)
        .map_err(|_| failure(FailureKind::Usage, "traffic::nginx option `reload` must be true or false"))?;
    let nginx_args: Vec<String> = map
        .get("nginx_args")
        .and_then(|v| v.read_lock::<Array>().map(|a| a.iter().map(ToString::to_string).collect()))
        .unwrap_or_default();
    let mut body = String::new();
    for (addr, weight) in &servers {
        // nginx weights start at 1; weight 0 takes a server out as `down`.
        if *weight == 0 {
            let _ = writeln!(body, "server {addr} down;");
        } else {
            let _ = writeln!(body, "server {addr} weight={weight};");
        }
    }
    let content = match map.get("upstream") {
        Some(name) => {
            format!(
                "upstream {name} {{\n{}}}\n",
                body.lines().fold(String::new(), |mut acc, l| {
                    let _ = writeln!(acc, "    {l}");
                    acc
                })
            )
        }
        None => body,
    };
    let description = format!(
        "write {file} ({}) and reload nginx",
        servers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    );
    let mut result = Map::new();
    result.insert("file".into(), file.clone().into());
    result.insert(
        "servers".into(),
        servers.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(*v))).collect::<Map>().into(),
    );
    if !state.services.should_act(&Action { description: &description, read_only: false }) {
        result.insert("reloaded".into(), false.into());
        result.insert("dry_run".into(), true.into());
        return Ok(result);
    }
    let previous = std::fs::read_to_string(&file).ok();
    std::fs::write(&file, &content).map_err(|e| failure(FailureKind::Fail, format!("cannot write {file}: {e}")))?;
    let mut test = ToolCall::new("nginx", nginx_args.iter().cloned().chain(["-t".to_string()]));
    test.read_only = true;
    test.quiet = true;
    let tested = tool::call(&state.services, &test)?.filter(|o| !o.success());
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
    if reload {
        let call = ToolCall::new("nginx", nginx_args.into_iter().chain(["-s".to_string(), "reload".to_string()]));
        if let Some(out) = tool::call(&state.services, &call)? {
            if !out.success() {
                return Err(tool::failed(&call, &out, None));
            }
        }
    }
    result.insert("reloaded".into(), reload.into());
    result.insert("dry_run".into(), false.into());
    Ok(result)
}

fn ingress_nginx(state: &RunState, ingress: &str, weight: i64, map: &Map) -> RhaiResultOf<Map> {
    if !(0..=100).contains(&weight) {
        return Err(failure(
            FailureKind::Usage,
            format!("traffic::ingress_nginx: the canary weight must be 0 to 100, not {weight}"),
        ));
    }
    let mut args = vec![
        "annotate".to_string(),
        "ingress".into(),
        ingress.to_string(),
        "nginx.ingress.kubernetes.io/canary=true".into(),
        format!("nginx.ingress.kubernetes.io/canary-weight={weight}"),
        "--overwrite".into(),
    ];
    for (k, v) in map {
        match k.as_str() {
            "namespace" => args.extend(["--namespace".to_string(), v.to_string()]),
            "context" => args.extend(["--context".to_string(), v.to_string()]),
            "kubeconfig" => args.extend(["--kubeconfig".to_string(), v.to_string()]),
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!(
                    "unknown traffic::ingress_nginx option `{other}`; the options are: namespace, context, kubeconfig"
                ),
                ))
            }
        }
    }
    let call = ToolCall::new("kubectl", args);
    let out = tool::call(&state.services, &call)?;
    if let Some(o) = &out {
        if !o.success() {
            return Err(tool::failed(&call, o, None));
        }
    }
    let mut result = Map::new();
    result.insert("ingress".into(), ingress.into());
    result.insert("weight".into(), weight.into());
    result.insert("dry_run".into(), out.is_none().into());
    Ok(result)
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    let s = state.clone();
    module_func(
        &mut m,
        "haproxy",
        &["options: Map", "Map"],
        "Set server weights through HAProxy's runtime API (no reload) and read them back:\n\
         `#{ socket, backend, weights: #{ server: weight } }` gives `#{ weights, dry_run }`.\n\
         ```rhai\ntraffic::haproxy(#{ socket: \"/run/haproxy.sock\", backend: \"app\", weights: #{ v1: 95, v2: 5 } });\n```",
        move |o: Map| haproxy(&s, &o),
    );
    module_func(
        &mut m,
        "haproxy_stats",
        &["options: Map", "Map"],
        "Per-server counters of a backend: `#{ server: #{ requests, 2xx, 4xx, 5xx, weight, status } }`.\n\
         ```rhai\nlet st = traffic::haproxy_stats(#{ socket: sock, backend: \"app\" });\nlet v2_5xx = st.v2[\"5xx\"];\n```",
        |o: Map| haproxy_stats(&o),
    );
    module_func(
        &mut m,
        "haproxy_sample",
        &["options: Map", "Map"],
        "One server's traffic since the previous sample, from HAProxy's counters:\n\
         `#{ socket, backend, server, since }` gives `#{ requests, errors, error_rate, 2xx, 4xx,\n\
         5xx, counters }`; pass `counters` back as `since` next time. A canary analysis\n\
         from real users' traffic.\n\
         ```rhai\nlet last = #{};\nlet analyze = || { let s = traffic::haproxy_sample(#{ socket: sock, backend: \"app\", server: \"v2\", since: last }); last = s.counters; s };\n```",
        |o: Map| haproxy_sample(&o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "nginx",
        &["options: Map", "Map"],
        "Write nginx upstream servers with weights into `file` (the whole `upstream NAME {}`\n\
         block when `upstream` is given), check with `nginx -t`, reload (`reload: true`).\n\
         Weight 0 marks a server `down`. `nginx_args` are passed to both (e.g. `-c`, `-p`).\n\
         A config that fails `nginx -t` is rolled back and nothing is reloaded.\n\
         ```rhai\ntraffic::nginx(#{ file: \"/etc/nginx/upstreams/app.conf\", upstream: \"app\", servers: #{ \"10.0.0.1:8080\": 9, \"10.0.0.2:8080\": 1 } });\n```",
        move |o: Map| nginx(&s, &o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "ingress_nginx",
        &["ingress: &str", "weight: i64", "options: Map", "Map"],
        "Set the ingress-nginx canary weight (0-100) on a canary Ingress with kubectl annotate.\n\
         Options: `namespace`, `context`, `kubeconfig`.\n\
         ```rhai\ntraffic::ingress_nginx(\"checkout-canary\", 25, #{ namespace: \"shop\" });\n```",
        move |i: &str, w: i64, o: Map| ingress_nginx(&s, i, w, &o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "ingress_nginx",
        &["ingress: &str", "weight: i64", "Map"],
        "Set the ingress-nginx canary weight with the current kubectl context.\n```rhai\ntraffic::ingress_nginx(\"checkout-canary\", 100);\n```",
        move |i: &str, w: i64| ingress_nginx(&s, i, w, &Map::new()),
    );
    engine.register_static_module("traffic", m.into());
}
