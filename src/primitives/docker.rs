//! `docker::`: build, tag, push, run, stop, rm through the docker CLI
//! (`DOCKER_HOST` is honoured). Results carry image ids and digests.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use super::tool::{self, ToolCall};
use super::values;
use crate::events::Level;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::state::RunState;

fn strings(v: &Dynamic, key: &str) -> RhaiResultOf<Vec<String>> {
    values::list(v, true).ok_or_else(|| failure(FailureKind::Usage, format!("docker option `{key}` must be an array")))
}

fn pairs(v: &Dynamic, key: &str) -> RhaiResultOf<Vec<(String, String)>> {
    values::pairs(v, ToString::to_string)
        .ok_or_else(|| failure(FailureKind::Usage, format!("docker option `{key}` must be a map")))
}

/// Run docker; `None` in dry-run; a failure carries docker's own message.
fn docker(
    state: &RunState,
    args: Vec<String>,
    read_only: bool,
    quiet: bool,
) -> RhaiResultOf<Option<crate::process::Outcome>> {
    let mut call = ToolCall::new("docker", args);
    call.read_only = read_only;
    call.quiet = quiet;
    match tool::call(&state.services, &call)? {
        Some(out) if !out.success() => {
            Err(tool::failed(&call, &out, Some("docker's message is above; is the daemon up (DOCKER_HOST)?".into())))
        }
        other => Ok(other),
    }
}

fn inspect(state: &RunState, what: &str, format: &str) -> RhaiResultOf<String> {
    let out = docker(
        state,
        vec!["image".into(), "inspect".into(), "--format".into(), format.into(), what.into()],
        true,
        true,
    )?;
    Ok(out.map(|o| o.stdout.trim().to_string()).unwrap_or_default())
}

fn build(state: &RunState, context: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut args = vec!["build".to_string()];
    let mut tags = Vec::new();
    for (k, v) in map {
        match k.as_str() {
            "file" => args.extend(["--file".to_string(), v.to_string()]),
            "tags" => tags = strings(v, k)?,
            "build_args" => {
                for (name, value) in pairs(v, k)? {
                    args.extend(["--build-arg".to_string(), format!("{name}={value}")]);
                }
            }
            "target" => args.extend(["--target".to_string(), v.to_string()]),
            "network" => args.extend(["--network".to_string(), v.to_string()]),
            "pull" => {
                if v.as_bool().unwrap_or(false) {
                    args.push("--pull".into());
                }
            }
            other => return Err(failure(FailureKind::Usage, format!("unknown docker::build option `{other}`; the options are: file, tags, build_args, target, network, pull"))),
        }
    }
    for t in &tags {
        args.extend(["--tag".to_string(), t.clone()]);
    }
    args.push(context.to_string());
    let out = docker(state, args, false, false)?;
    let mut m = Map::new();
    m.insert("tags".into(), tags.iter().cloned().map(Dynamic::from).collect::<Array>().into());
    m.insert("dry_run".into(), out.is_none().into());
    // Under --dry-run no image exists: its id is an empty placeholder.
    let id = match tags.first() {
        Some(t) if out.is_some() => inspect(state, t, "{{.Id}}")?,
        _ => String::new(),
    };
    m.insert("id".into(), id.into());
    Ok(m)
}

fn tag(state: &RunState, source: &str, target: &str) -> RhaiResultOf<Map> {
    let out = docker(state, vec!["tag".into(), source.into(), target.into()], false, false)?;
    let mut m = Map::new();
    m.insert("tag".into(), target.into());
    m.insert("dry_run".into(), out.is_none().into());
    Ok(m)
}

fn push(state: &RunState, image: &str) -> RhaiResultOf<Map> {
    let out = docker(state, vec!["push".into(), image.into()], false, false)?;
    let mut m = Map::new();
    m.insert("image".into(), image.into());
    m.insert("dry_run".into(), out.is_none().into());
    let Some(out) = out else {
        // Nothing pushed, so no digest: the reference is the tag itself,
        // which is what a later `docker::run(pushed.reference)` shows.
        m.insert("digest".into(), String::new().into());
        m.insert("reference".into(), image.into());
        return Ok(m);
    };
    // "latest: digest: sha256:... size: 528"
    let digest =
        out.stdout.split_whitespace().skip_while(|w| *w != "digest:").nth(1).map(str::to_string).unwrap_or_default();
    let repo = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(image, |(r, _)| r);
    m.insert("reference".into(), (if digest.is_empty() { String::new() } else { format!("{repo}@{digest}") }).into());
    m.insert("digest".into(), digest.into());
    Ok(m)
}

fn pull(state: &RunState, image: &str) -> RhaiResultOf<Map> {
    let out = docker(state, vec!["pull".into(), image.into()], true, false)?;
    let mut m = Map::new();
    m.insert("image".into(), image.into());
    if out.is_some() {
        m.insert("id".into(), inspect(state, image, "{{.Id}}")?.into());
    }
    Ok(m)
}

fn run(state: &RunState, image: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut args = vec!["run".to_string()];
    let mut detach = true;
    let mut command = Vec::new();
    let mut health: Option<(Dynamic, Map)> = None;
    let mut name = None;
    for (k, v) in map {
        match k.as_str() {
            "name" => {
                name = Some(v.to_string());
                args.extend(["--name".to_string(), v.to_string()]);
            }
            "detach" => detach = v.as_bool().map_err(|_| failure(FailureKind::Usage, "docker::run option `detach` must be true or false"))?,
            "network" => args.extend(["--network".to_string(), v.to_string()]),
            "env" => {
                for (key, value) in pairs(v, k)? {
                    args.extend(["--env".to_string(), format!("{key}={value}")]);
                }
            }
            "ports" => {
                for p in strings(v, k)? {
                    args.extend(["--publish".to_string(), p]);
                }
            }
            "volumes" => {
                for p in strings(v, k)? {
                    args.extend(["--volume".to_string(), p]);
                }
            }
            "restart" => args.extend(["--restart".to_string(), v.to_string()]),
            "rm" => {
                if v.as_bool().unwrap_or(false) {
                    args.push("--rm".into());
                }
            }
            "args" => command = strings(v, k)?,
            "health" => {
                let h = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| failure(FailureKind::Usage, "docker::run option `health` must be a map like #{ target: \"http://...\", within: \"30s\" }"))?;
                let target = h.get("target").cloned().ok_or_else(|| failure(FailureKind::Usage, "docker::run `health` needs a `target`"))?;
                let mut rest = h.clone();
                rest.remove("target");
                health = Some((target, rest));
            }
            other => return Err(failure(FailureKind::Usage, format!("unknown docker::run option `{other}`; the options are: name, detach, network, env, ports, volumes, restart, rm, args, health"))),
        }
    }
    if detach {
        args.push("--detach".into());
    }
    args.push(image.to_string());
    args.extend(command);
    let out = docker(state, args, false, !detach)?;
    let mut m = Map::new();
    m.insert("image".into(), image.into());
    m.insert("name".into(), name.map_or(Dynamic::UNIT, Dynamic::from));
    m.insert("dry_run".into(), out.is_none().into());
    let Some(out) = out else {
        // The real result's keys, with placeholders; the health wait looks
        // once under --dry-run.
        if detach {
            m.insert("id".into(), String::new().into());
        } else {
            m.insert("stdout".into(), String::new().into());
            m.insert("code".into(), 0_i64.into());
        }
        if let Some((target, opts)) = health {
            m.insert("health".into(), super::health::wait(&state.services, &target, &opts)?.into());
        }
        return Ok(m);
    };
    if detach {
        m.insert("id".into(), out.stdout.trim().lines().last().unwrap_or_default().to_string().into());
    } else {
        m.insert("stdout".into(), out.stdout.into());
        m.insert("code".into(), out.code.map_or(Dynamic::UNIT, |c| Dynamic::from(i64::from(c))));
    }
    if let Some((target, opts)) = health {
        let h = super::health::wait(&state.services, &target, &opts)?;
        state.services.log(Level::Info, format!("container from {image} is healthy"));
        m.insert("health".into(), h.into());
    }
    Ok(m)
}

fn container(state: &RunState, verb: &str, name: &str, extra: &[&str]) -> RhaiResultOf<Map> {
    let mut args = vec![verb.to_string()];
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args.push(name.to_string());
    let out = docker(state, args, false, true)?;
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("dry_run".into(), out.is_none().into());
    Ok(m)
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    let s = state.clone();
    module_func(
        &mut m,
        "build",
        &["context: &str", "options: Map", "Map"],
        "`docker build` with `file`, `tags`, `build_args`, `target`, `network`, `pull`:\n`#{ id, tags, dry_run }`.\n```rhai\nlet img = docker::build(\".\", #{ tags: [`registry.local/app:${v}`], build_args: #{ VERSION: v } });\n```",
        move |c: &str, o: Map| build(&s, c, &o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "tag",
        &["source: &str", "target: &str", "Map"],
        "`docker tag`.\n```rhai\ndocker::tag(\"app:1.2\", \"registry.local/app:1.2\");\n```",
        move |a: &str, b: &str| tag(&s, a, b),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "push",
        &["image: &str", "Map"],
        "`docker push`: `#{ image, digest, reference, dry_run }` (reference = repo@digest, to pull or run by\ndigest; under --dry-run the digest is empty and the reference is the tag).\n```rhai\nlet pushed = docker::push(\"registry.local/app:1.2\");\n```",
        move |i: &str| push(&s, i),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "pull",
        &["image: &str", "Map"],
        "`docker pull` (runs under --dry-run): `#{ image, id }`.\n```rhai\ndocker::pull(pushed.reference);\n```",
        move |i: &str| pull(&s, i),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "run",
        &["image: &str", "options: Map", "Map"],
        "`docker run` (detached unless `detach: false`) with `name`, `network`, `env`, `ports`,\n`volumes`, `restart`, `rm`, `args`, and `health: #{ target, within, ... }` to wait until\nhealthy (as `health::wait`). Returns `#{ id, name, image, health, dry_run }`.\n```rhai\ndocker::run(img, #{ name: \"app-v2\", network: \"host\", health: #{ target: \"http://127.0.0.1:8082/\" } });\n```",
        move |i: &str, o: Map| run(&s, i, &o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "stop",
        &["name: &str", "Map"],
        "`docker stop`.\n```rhai\ndocker::stop(\"app-v1\");\n```",
        move |n: &str| container(&s, "stop", n, &[]),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "rm",
        &["name: &str", "Map"],
        "`docker rm --force`.\n```rhai\ndocker::rm(\"app-v1\");\n```",
        move |n: &str| container(&s, "rm", n, &["--force"]),
    );
    engine.register_static_module("docker", m.into());
}
