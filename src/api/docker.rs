//! `docker::`: build, tag, push, run, stop, rm through the docker CLI
//! (`DOCKER_HOST` is honoured). Results carry image ids and digests.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};

use super::options::{flag, List, Text};
use super::registration::{docs, Api};
use super::tool::{self, ToolCall};
use super::values::to_map;
use crate::events::Level;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::services::Services;

/// Run docker; `None` in dry-run; a failure carries docker's own message.
fn docker(
    services: &Services,
    args: Vec<String>,
    read_only: bool,
    quiet: bool,
) -> RhaiResultOf<Option<crate::process::Outcome>> {
    let mut call = ToolCall::new("docker", args);
    call.read_only = read_only;
    call.quiet = quiet;
    tool::checked(services, &call, Some("docker's message is above; is the daemon up (DOCKER_HOST)?"))
}

fn inspect(services: &Services, what: &str, format: &str) -> RhaiResultOf<String> {
    let out = docker(
        services,
        vec!["image".into(), "inspect".into(), "--format".into(), format.into(), what.into()],
        true,
        true,
    )?;
    Ok(out.map(|o| o.stdout.trim().to_string()).unwrap_or_default())
}

/// `--flag key=value` for each entry.
fn assignments(args: &mut Vec<String>, name: &str, values: &BTreeMap<String, Text>) {
    for (key, value) in values {
        args.extend([name.to_string(), format!("{key}={}", value.0)]);
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct BuildOptions {
    build_args: BTreeMap<String, Text>,
    /// Images whose layers may serve as the build's cache (`--cache-from`),
    /// such as the last image pushed: a fresh CI runner has no layers of
    /// its own, and a pulled image is a cache only when named here.
    cache_from: List,
    file: Option<Text>,
    network: Option<Text>,
    pull: bool,
    tags: List,
    target: Option<Text>,
}

#[derive(Serialize)]
struct Built {
    id: String,
    tags: Vec<String>,
    dry_run: bool,
}

fn build(services: &Services, context: &str, o: BuildOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["build".to_string()];
    assignments(&mut args, "--build-arg", &o.build_args);
    for image in &o.cache_from.0 {
        args.extend(["--cache-from".to_string(), image.clone()]);
    }
    flag(&mut args, "--file", o.file.as_ref());
    flag(&mut args, "--network", o.network.as_ref());
    if o.pull {
        args.push("--pull".into());
    }
    flag(&mut args, "--target", o.target.as_ref());
    for t in &o.tags.0 {
        args.extend(["--tag".to_string(), t.clone()]);
    }
    args.push(context.to_string());
    let out = docker(services, args, false, false)?;
    // Under --dry-run no image exists: its id is an empty placeholder.
    let id = match o.tags.0.first() {
        Some(t) if out.is_some() => inspect(services, t, "{{.Id}}")?,
        _ => String::new(),
    };
    to_map(&Built { id, tags: o.tags.0, dry_run: out.is_none() })
}

#[derive(Serialize)]
struct Pushed<'a> {
    image: &'a str,
    digest: String,
    reference: String,
    dry_run: bool,
}

fn push(services: &Services, image: &str) -> RhaiResultOf<Map> {
    let Some(out) = docker(services, vec!["push".into(), image.into()], false, false)? else {
        // Nothing pushed, so no digest: the reference is the tag itself,
        // which is what a later `docker::run(pushed.reference)` shows.
        return to_map(&Pushed { image, digest: String::new(), reference: image.into(), dry_run: true });
    };
    // "latest: digest: sha256:... size: 528"
    let digest =
        out.stdout.split_whitespace().skip_while(|w| *w != "digest:").nth(1).map(str::to_string).unwrap_or_default();
    let repo = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(image, |(r, _)| r);
    let reference = if digest.is_empty() { String::new() } else { format!("{repo}@{digest}") };
    to_map(&Pushed { image, digest, reference, dry_run: false })
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RunOptions {
    args: List,
    #[serde(deserialize_with = "detach")]
    detach: Option<bool>,
    env: BTreeMap<String, Text>,
    health: Option<Dynamic>,
    name: Option<Text>,
    network: Option<Text>,
    ports: List,
    restart: Option<Text>,
    rm: bool,
    volumes: List,
}

fn detach<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    bool::deserialize(deserializer).map(Some)
}

/// What `docker::run` returns.
#[derive(Serialize)]
struct Ran<'a> {
    image: &'a str,
    name: Option<String>,
    dry_run: bool,
    #[serde(flatten)]
    output: RunOutput,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Dynamic>,
}

/// A detached container's id, or an attached one's output and exit code.
#[derive(Serialize)]
#[serde(untagged)]
enum RunOutput {
    Detached { id: String },
    Attached { stdout: String, code: Option<i64> },
}

fn run(services: &Services, image: &str, o: RunOptions) -> RhaiResultOf<Map> {
    let detach = o.detach.unwrap_or(true);
    let health = match &o.health {
        None => None,
        Some(h) => {
            let mut rest = h.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                failure(
                    FailureKind::Usage,
                    "docker::run option `health` must be a map like #{ target: \"http://...\", within: \"30s\" }",
                )
            })?;
            let target = rest
                .remove("target")
                .ok_or_else(|| failure(FailureKind::Usage, "docker::run `health` needs a `target`"))?;
            Some((target, rest))
        }
    };
    let mut args = vec!["run".to_string()];
    assignments(&mut args, "--env", &o.env);
    flag(&mut args, "--name", o.name.as_ref());
    flag(&mut args, "--network", o.network.as_ref());
    for p in &o.ports.0 {
        args.extend(["--publish".to_string(), p.clone()]);
    }
    flag(&mut args, "--restart", o.restart.as_ref());
    if o.rm {
        args.push("--rm".into());
    }
    for v in &o.volumes.0 {
        args.extend(["--volume".to_string(), v.clone()]);
    }
    if detach {
        args.push("--detach".into());
    }
    args.push(image.to_string());
    args.extend(o.args.0);
    let out = docker(services, args, false, !detach)?;
    let dry_run = out.is_none();
    // Under --dry-run the real result's keys hold placeholders, and the
    // health wait looks once.
    let output = match (out, detach) {
        (Some(out), true) => RunOutput::Detached { id: out.stdout.trim().lines().last().unwrap_or_default().into() },
        (Some(out), false) => RunOutput::Attached { stdout: out.stdout, code: out.code.map(i64::from) },
        (None, true) => RunOutput::Detached { id: String::new() },
        (None, false) => RunOutput::Attached { stdout: String::new(), code: Some(0) },
    };
    let mut ran = Ran { image, name: o.name.map(|n| n.0), dry_run, output, health: None };
    if let Some((target, opts)) = health {
        ran.health = Some(super::health::wait(services, &target, &opts)?.into());
        if !ran.dry_run {
            services.log(Level::Info, format!("container from {image} is healthy"));
        }
    }
    to_map(&ran)
}

#[derive(Serialize)]
struct Tagged<'a> {
    tag: &'a str,
    dry_run: bool,
}

/// What `docker::pull` returns; no `id` under --dry-run.
#[derive(Serialize)]
struct Pulled<'a> {
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

#[derive(Serialize)]
struct Container<'a> {
    name: &'a str,
    dry_run: bool,
}

fn container(services: &Services, verb: &str, name: &str, extra: &[&str]) -> RhaiResultOf<Map> {
    let mut args = vec![verb.to_string()];
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args.push(name.to_string());
    let out = docker(services, args, false, true)?;
    to_map(&Container { name, dry_run: out.is_none() })
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts_only1(
        "build",
        &["context: &str", "Map"],
        docs! {
            /// `docker build` with `file`, `tags`, `build_args`, `target`, `network`, `pull`, and
            /// `cache_from` (images whose layers the build may reuse: on a fresh CI runner, the
            /// last image pushed, pulled first): `#{ id, tags, dry_run }`.
            /// ```rhai
            /// let img = docker::build(".", #{ tags: [`registry.local/app:${v}`], build_args: #{ VERSION: v } });
            /// ```
        },
        |svc, context: Str, o: BuildOptions| build(svc, &context, o),
    );
    api.func2(
        "tag",
        &["source: &str", "target: &str", "Map"],
        docs! {
            /// `docker tag`.
            /// ```rhai
            /// docker::tag("app:1.2", "registry.local/app:1.2");
            /// ```
        },
        |svc, source: Str, target: Str| {
            let out = docker(svc, vec!["tag".into(), source.to_string(), target.to_string()], false, false)?;
            to_map(&Tagged { tag: &target, dry_run: out.is_none() })
        },
    );
    api.func1(
        "push",
        &["image: &str", "Map"],
        docs! {
            /// `docker push`: `#{ image, digest, reference, dry_run }` (reference = repo@digest, to pull or run by
            /// digest; under --dry-run the digest is empty and the reference is the tag).
            /// ```rhai
            /// let pushed = docker::push("registry.local/app:1.2");
            /// ```
        },
        |svc, image: Str| push(svc, &image),
    );
    api.func1(
        "pull",
        &["image: &str", "Map"],
        docs! {
            /// `docker pull` (runs under --dry-run): `#{ image, id }`.
            /// ```rhai
            /// docker::pull(pushed.reference);
            /// ```
        },
        |svc, image: Str| {
            let out = docker(svc, vec!["pull".into(), image.to_string()], true, false)?;
            let id = if out.is_some() { Some(inspect(svc, &image, "{{.Id}}")?) } else { None };
            to_map(&Pulled { image: &image, id })
        },
    );
    api.opts_only1(
        "run",
        &["image: &str", "Map"],
        docs! {
            /// `docker run` (detached unless `detach: false`) with `name`, `network`, `env`, `ports`,
            /// `volumes`, `restart`, `rm`, `args`, and `health: #{ target, within, ... }` to wait until
            /// healthy (as `health::wait`). Returns `#{ id, name, image, health, dry_run }`.
            /// ```rhai
            /// docker::run(img, #{ name: "app-v2", network: "host", health: #{ target: "http://127.0.0.1:8082/" } });
            /// ```
        },
        |svc, image: Str, o: RunOptions| run(svc, &image, o),
    );
    api.func1(
        "stop",
        &["name: &str", "Map"],
        docs! {
            /// `docker stop`.
            /// ```rhai
            /// docker::stop("app-v1");
            /// ```
        },
        |svc, name: Str| container(svc, "stop", &name, &[]),
    );
    api.func1(
        "rm",
        &["name: &str", "Map"],
        docs! {
            /// `docker rm --force`.
            /// ```rhai
            /// docker::rm("app-v1");
            /// ```
        },
        |svc, name: Str| container(svc, "rm", &name, &["--force"]),
    );
}
