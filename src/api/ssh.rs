//! `ssh::run` and `ssh::copy` through the system OpenSSH client: batch
//! mode, connection reuse (`ControlMaster`), and the options and result of
//! `run`. The remote argv is quoted for the remote shell, never joined raw.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Array, ImmutableString as Str, Map};
use serde::Deserialize;

use super::options::{List, Seconds, Text};
use super::process::RunResult;
use super::registration::{docs, Api};
use super::tool::{self, ToolCall};
use super::values::to_map;
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::process::quote;
use crate::services::Services;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)] // option flags
struct SshOptions {
    user: Option<Text>,
    port: Option<i64>,
    identity: Option<Text>,
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

/// `-o` options shared by ssh and scp: batch mode and connection reuse.
fn common(o: &SshOptions) -> Vec<String> {
    let mut args = vec!["-o".to_string(), "BatchMode=yes".into()];
    if let Some(id) = &o.identity {
        args.extend(["-i".to_string(), id.0.clone(), "-o".into(), "IdentitiesOnly=yes".into()]);
    }
    if o.reuse {
        let dir = control_dir();
        args.extend([
            "-o".to_string(),
            "ControlMaster=auto".into(),
            "-o".into(),
            format!("ControlPath={}/%C", dir.display()),
            "-o".into(),
            "ControlPersist=60s".into(),
        ]);
    }
    for opt in &o.options.0 {
        args.extend(["-o".to_string(), opt.clone()]);
    }
    args
}

/// A private folder for control sockets (their paths must stay short).
fn control_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capstan-ssh-{}", nix::unistd::getuid()));
    let _ = std::fs::create_dir_all(&dir);
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    dir
}

fn destination(host: &str, o: &SshOptions) -> String {
    match &o.user {
        Some(u) if !host.contains('@') => format!("{}@{host}", u.0),
        _ => host.to_string(),
    }
}

fn run(services: &Arc<Services>, host: Str, argv: Array, o: SshOptions) -> RhaiResultOf<Map> {
    let argv: Vec<String> = argv.iter().map(ToString::to_string).collect();
    if argv.is_empty() {
        return Err(failure(FailureKind::Usage, "ssh::run: argv is empty"));
    }
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
    let mut args = common(&o);
    if let Some(p) = o.port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    args.extend([destination(&host, &o), "--".into(), remote]);
    let mut call = ToolCall::new("ssh", args);
    call.timeout = o.timeout.map(|t| t.0);
    call.read_only = o.read_only;
    call.quiet = o.quiet;
    call.stdin = o.stdin.as_ref().map(|t| t.0.clone());
    let out = tool::call(services, &call)?;
    if let Some(out) = &out {
        // 255 is ssh's own failure (connection, auth), not the remote command's.
        if o.check && !out.success() {
            let hint = (out.code == Some(255))
                .then(|| format!("ssh could not reach {host}: check the host, port, user and key"));
            return Err(tool::failed(&call, out, hint));
        }
    }
    to_map(&RunResult::of(out))
}

fn copy(services: &Arc<Services>, host: Str, src: Str, dst: Str, o: SshOptions) -> RhaiResultOf<Map> {
    let mut args = common(&o);
    if let Some(p) = o.port {
        args.extend(["-P".to_string(), p.to_string()]);
    }
    if std::path::Path::new(src.as_str()).is_dir() {
        args.push("-r".into());
    }
    args.extend([src.to_string(), format!("{}:{dst}", destination(&host, &o))]);
    let mut call = ToolCall::new("scp", args);
    call.timeout = o.timeout.map(|t| t.0);
    call.quiet = o.quiet;
    let out = tool::checked(services, &call, None)?;
    to_map(&RunResult::of(out))
}

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.opts2(
        "run",
        &["host: &str", "argv: Array", "Map"],
        docs! {
            /// Run argv on a host with the system ssh client (batch mode, connection reuse).
            /// Options: `user`, `port`, `identity`, `options` (ssh `-o` values), `reuse` (true),
            /// `cwd`, `env`, plus `run`'s `timeout`, `check`, `read_only`, `quiet`, `stdin`.
            /// Returns `run`'s `#{ code, stdout, stderr, duration_ms, dry_run }`.
            /// ```rhai
            /// ssh::run("web1.internal", ["systemctl", "restart", "app"], #{ user: "deploy" });
            /// ```
        },
        run,
    );
    api.opts3(
        "copy",
        &["host: &str", "src: &str", "dst: &str", "Map"],
        docs! {
            /// Copy a local file or folder to `host:dst` with scp; the options of `ssh::run`.
            /// ```rhai
            /// ssh::copy("web1.internal", "build/app.tar.gz", "/srv/releases/", #{ user: "deploy" });
            /// ```
        },
        copy,
    );
}
