//! `ssh::run` and `ssh::copy` through the system OpenSSH client: batch
//! mode, connection reuse (`ControlMaster`), and the options and result of
//! `run`. The remote argv is quoted for the remote shell, never joined raw.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Array, Dynamic, ImmutableString as Str, Map};
use serde::Deserialize;

use super::options::{List, Seconds, Text};
use super::process::RunResult;
use super::registration::{docs, Api};
use super::tool::{self, ToolCall};
use super::values::to_map;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::process::{self, quote, Outcome};
use crate::services::ssh_masters::{self, Target};
use crate::services::Services;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)] // option flags
struct SshOptions {
    user: Option<Text>,
    port: Option<i64>,
    identity: Option<Text>,
    config: Option<Text>,
    options: List,
    reuse: bool,
    timeout: Option<Seconds>,
    check: bool,
    read_only: bool,
    quiet: bool,
    stdin: Option<Text>,
    env: BTreeMap<String, Text>,
    cwd: Option<Text>,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            user: None,
            port: None,
            identity: None,
            config: None,
            options: List::default(),
            reuse: true,
            timeout: None,
            check: true,
            read_only: false,
            quiet: false,
            stdin: None,
            env: BTreeMap::new(),
            cwd: None,
        }
    }
}

/// A host as a name (`"web1"`, `"deploy@web1"`) or an inventory host map
/// (`#{ name, address, port, user, identity, .. }`); the call's options win
/// over the map's values.
fn target(host: &Dynamic, o: &SshOptions) -> RhaiResultOf<Target> {
    let field = |map: &Map, key: &str| map.get(key).filter(|v| !v.is_unit()).cloned();
    let (address, user, port, identity) = if let Some(name) = host.read_lock::<Str>() {
        (name.to_string(), None, None, None)
    } else if let Some(map) = host.read_lock::<Map>() {
        let address = field(&map, "address").or_else(|| field(&map, "name")).map(|v| text(&v)).ok_or_else(|| {
            failure_with_hint(FailureKind::Usage, "ssh: the host map has neither `address` nor `name`", HOST_SHAPE)
        })?;
        let port = match field(&map, "port") {
            Some(p) => Some(p.as_int().map_err(|_| {
                failure_with_hint(FailureKind::Usage, "ssh: the host map's `port` is not an integer", HOST_SHAPE)
            })?),
            None => None,
        };
        (address, field(&map, "user").map(|v| text(&v)), port, field(&map, "identity").map(|v| text(&v)))
    } else {
        return Err(failure_with_hint(
            FailureKind::Usage,
            format!("ssh: the host is {}, not a string or a host map", host.type_name()),
            HOST_SHAPE,
        ));
    };
    let user = o.user.as_ref().map(|u| u.0.clone()).or(user);
    let destination = match user {
        Some(u) if !address.contains('@') => format!("{u}@{address}"),
        _ => address,
    };
    let mut args = vec!["-o".to_string(), "BatchMode=yes".into()];
    if let Some(id) = o.identity.as_ref().map(|i| i.0.clone()).or(identity) {
        args.extend(["-i".to_string(), id, "-o".into(), "IdentitiesOnly=yes".into()]);
    }
    for opt in &o.options.0 {
        args.extend(["-o".to_string(), opt.clone()]);
    }
    Ok(Target { destination, port: o.port.or(port), config: o.config.as_ref().map(|c| c.0.clone()), args })
}

const HOST_SHAPE: &str =
    "pass a host name or a map like #{ name: \"web1\", address: \"10.0.0.5\", port: 22, user: \"deploy\" }";

fn text(value: &Dynamic) -> String {
    super::builtins::text(value)
}

/// How a call reaches its host: the ssh arguments, and the control socket
/// of the host's master when there is one.
struct Reuse {
    args: Vec<String>,
    master: Option<Master>,
}

/// A host's master: its socket, what a session sends as its environment,
/// and the connection already made to it.
struct Master {
    socket: PathBuf,
    env: Vec<String>,
    control: Option<std::os::unix::net::UnixStream>,
}

/// Run the call through the target's master (started now if need be) when
/// connections are reused and the call will run; plainly otherwise.
fn through_master(
    services: &Arc<Services>,
    target: &Target,
    o: &SshOptions,
    read_only: bool,
    call: impl FnOnce(Reuse) -> RhaiResultOf<Option<Outcome>>,
) -> RhaiResultOf<Option<Outcome>> {
    if !o.reuse || (services.dry_run() && !read_only) {
        let none = vec!["-o".to_string(), "ControlMaster=no".into(), "-o".into(), "ControlPath=none".into()];
        return call(Reuse { args: if o.reuse { Vec::new() } else { none }, master: None });
    }
    let session = ssh_masters::session(services, target)?;
    let master =
        Some(Master { socket: session.socket().to_owned(), env: session.env(), control: session.take_control() });
    session.with(services, || call(Reuse { args: session.args.clone(), master }))?
}

fn run(services: &Arc<Services>, host: &Dynamic, argv: Array, o: SshOptions) -> RhaiResultOf<Map> {
    let argv: Vec<String> = argv.iter().map(ToString::to_string).collect();
    if argv.is_empty() {
        return Err(failure(FailureKind::Usage, "ssh::run: argv is empty"));
    }
    let target = target(host, &o)?;
    let mut remote = String::new();
    if let Some(dir) = &o.cwd {
        let _ = write!(remote, "cd {} && ", quote(&dir.0));
    }
    if !o.env.is_empty() {
        remote.push_str("env ");
        for (k, v) in &o.env {
            let _ = write!(remote, "{}={} ", k, quote(&v.0));
        }
    }
    remote.push_str(&argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "));
    let mut made = None;
    let out = through_master(services, &target, &o, o.read_only, |reuse| {
        let mut args = target.base_args("-p");
        args.extend(reuse.args);
        args.extend([target.destination.clone(), "--".into(), remote.clone()]);
        let mut call = ToolCall::new("ssh", args);
        call.timeout = o.timeout.map(|t| t.0);
        call.read_only = o.read_only;
        call.quiet = o.quiet;
        call.stdin = o.stdin.as_ref().map(|t| t.0.clone());
        // Through the master, the session is asked of it directly: the
        // same session as the ssh client would open, without the client.
        let out = match reuse.master {
            Some(master) => tool::call_with(services, &call, || {
                let remote = process::Remote {
                    socket: &master.socket,
                    control: master.control,
                    command: &remote,
                    env: &master.env,
                };
                process::execute_via_master(services.as_ref(), &call.spec, remote)
            }),
            None => tool::call(services, &call),
        };
        made = Some(call);
        out
    })?;
    if let (Some(out), Some(call)) = (&out, &made) {
        // 255 is ssh's own failure (connection, auth), not the remote command's.
        if o.check && !out.success() {
            let hint = (out.code == Some(255))
                .then(|| format!("ssh could not reach {}: check the host, port, user and key", target.destination));
            return Err(tool::failed(call, out, hint));
        }
    }
    to_map(&RunResult::of(out))
}

fn copy(services: &Arc<Services>, host: &Dynamic, src: Str, dst: Str, o: SshOptions) -> RhaiResultOf<Map> {
    let target = target(host, &o)?;
    let out = through_master(services, &target, &o, false, |reuse| {
        let mut args = target.base_args("-P");
        args.extend(reuse.args);
        if std::path::Path::new(src.as_str()).is_dir() {
            args.push("-r".into());
        }
        args.extend([src.to_string(), format!("{}:{dst}", target.destination)]);
        let mut call = ToolCall::new("scp", args);
        call.timeout = o.timeout.map(|t| t.0);
        call.quiet = o.quiet;
        tool::checked(services, &call, None)
    })?;
    to_map(&RunResult::of(out))
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts2(
        "run",
        &["host: &str", "argv: Array", "Map"],
        docs! {
            /// Run argv on a host with the system ssh client (batch mode). One `ControlMaster`
            /// per host serves the whole run (closed when it ends), each command a session
            /// asked of it directly (no client process per command); at most `--ssh-starts`
            /// handshakes run at once. Options: `user`, `port`, `identity`, `config` (an
            /// ssh_config file, `ssh -F`), `options` (ssh `-o` values), `reuse` (true: through
            /// the host's master), `cwd`, `env`, plus `run`'s `timeout`, `check`, `read_only`,
            /// `quiet`, `stdin`. Returns `run`'s `#{ code, stdout, stderr, duration_ms, dry_run }`.
            /// A host that cannot be reached fails with kind `unreachable`.
            /// ```rhai
            /// ssh::run("web1.internal", ["systemctl", "restart", "app"], #{ user: "deploy" });
            /// ```
        },
        |s, host: Str, argv: Array, o: SshOptions| run(s, &host.into(), argv, o),
    );
    api.opts2(
        "run",
        &["host: Map", "argv: Array", "Map"],
        docs! {
            /// `ssh::run` on an inventory host map `#{ name, address, port, user, identity }`
            /// (`()` fields are not given); the call's options win over the map's.
            /// ```rhai
            /// ssh::run(#{ name: "web1", address: "10.0.0.5", user: "deploy" }, ["uptime"]);
            /// ```
        },
        |s, host: Map, argv: Array, o: SshOptions| run(s, &host.into(), argv, o),
    );
    api.opts3(
        "copy",
        &["host: &str", "src: &str", "dst: &str", "Map"],
        docs! {
            /// Copy a local file or folder to `host:dst` with scp, through the host's master;
            /// the options of `ssh::run`.
            /// ```rhai
            /// ssh::copy("web1.internal", "build/app.tar.gz", "/srv/releases/", #{ user: "deploy" });
            /// ```
        },
        |s, host: Str, src: Str, dst: Str, o: SshOptions| copy(s, &host.into(), src, dst, o),
    );
    api.opts3(
        "copy",
        &["host: Map", "src: &str", "dst: &str", "Map"],
        docs! {
            /// `ssh::copy` to an inventory host map, as `ssh::run` takes it.
            /// ```rhai
            /// ssh::copy(#{ name: "web1", address: "10.0.0.5" }, "app.tar.gz", "/srv/releases/");
            /// ```
        },
        |s, host: Map, src: Str, dst: Str, o: SshOptions| copy(s, &host.into(), src, dst, o),
    );
}
