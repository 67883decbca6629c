//! `ssh::run` and `ssh::copy` through the system OpenSSH client: batch
//! mode, connection reuse (`ControlMaster`), and the options and result of
//! `run`. The remote argv is quoted for the remote shell, never joined raw.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use super::tool::{self, ToolCall};
use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::process::quote;
use crate::state::RunState;

const OPTIONS: &[&str] =
    &["user", "port", "identity", "options", "reuse", "timeout", "check", "read_only", "quiet", "stdin", "env", "cwd"];

#[derive(Default)]
#[allow(clippy::struct_excessive_bools)] // option flags
struct SshOptions {
    user: Option<String>,
    port: Option<i64>,
    identity: Option<String>,
    options: Vec<String>,
    reuse: bool,
    timeout: Option<Duration>,
    check: bool,
    read_only: bool,
    quiet: bool,
    stdin: Option<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
}

fn parse(map: &Map) -> RhaiResultOf<SshOptions> {
    let mut o = SshOptions { check: true, reuse: true, ..SshOptions::default() };
    let flag = |k: &str, v: &Dynamic| {
        v.as_bool().map_err(|_| failure(FailureKind::Usage, format!("ssh option `{k}` must be true or false")))
    };
    for (k, v) in map {
        match k.as_str() {
            "user" => o.user = Some(v.to_string()),
            "port" => {
                o.port =
                    Some(v.as_int().map_err(|_| failure(FailureKind::Usage, "ssh option `port` must be an integer"))?);
            }
            "identity" => o.identity = Some(v.to_string()),
            "options" => {
                o.options =
                    v.read_lock::<Array>().map(|a| a.iter().map(ToString::to_string).collect()).ok_or_else(|| {
                        failure(FailureKind::Usage, "ssh option `options` must be an array of \"Key=Value\"")
                    })?;
            }
            "reuse" => o.reuse = flag(k, v)?,
            "timeout" => {
                o.timeout = Some(
                    parse_duration(v).map_err(|e| failure(FailureKind::Usage, format!("ssh option `timeout`: {e}")))?,
                );
            }
            "check" => o.check = flag(k, v)?,
            "read_only" => o.read_only = flag(k, v)?,
            "quiet" => o.quiet = flag(k, v)?,
            "stdin" => o.stdin = Some(v.to_string()),
            "cwd" => o.cwd = Some(v.to_string()),
            "env" => {
                o.env = v
                    .read_lock::<Map>()
                    .map(|m| m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
                    .ok_or_else(|| failure(FailureKind::Usage, "ssh option `env` must be a map"))?;
            }
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown ssh option `{other}`; the options are: {}", OPTIONS.join(", ")),
                ))
            }
        }
    }
    Ok(o)
}

/// `-o` options shared by ssh and scp: batch mode and connection reuse.
fn common(o: &SshOptions) -> Vec<String> {
    let mut args = vec!["-o".to_string(), "BatchMode=yes".into()];
    if let Some(id) = &o.identity {
        args.extend(["-i".to_string(), id.clone(), "-o".into(), "IdentitiesOnly=yes".into()]);
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
    for opt in &o.options {
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
        Some(u) if !host.contains('@') => format!("{u}@{host}"),
        _ => host.to_string(),
    }
}

fn result(out: Option<crate::process::Outcome>) -> Map {
    let mut m = Map::new();
    let dry = out.is_none();
    let out = out.unwrap_or_else(|| crate::process::Outcome {
        code: Some(0),
        signal: None,
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        duration: Duration::ZERO,
        timed_out: false,
    });
    m.insert("code".into(), out.code.map_or_else(|| i64::from(-out.signal.unwrap_or(1)), i64::from).into());
    m.insert("stdout".into(), out.stdout.into());
    m.insert("stderr".into(), out.stderr.into());
    m.insert("duration_ms".into(), (out.duration.as_millis() as i64).into());
    m.insert("dry_run".into(), dry.into());
    m
}

fn run(state: &RunState, host: &str, argv: Array, map: &Map) -> RhaiResultOf<Map> {
    let o = parse(map)?;
    let argv: Vec<String> = argv.iter().map(ToString::to_string).collect();
    if argv.is_empty() {
        return Err(failure(FailureKind::Usage, "ssh::run: argv is empty"));
    }
    let mut remote = String::new();
    if let Some(dir) = &o.cwd {
        let _ = write!(remote, "cd {} && ", quote(dir));
    }
    if !o.env.is_empty() {
        remote.push_str("env ");
        for (k, v) in &o.env {
            let _ = write!(remote, "{}={} ", k, quote(v));
        }
    }
    remote.push_str(&argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "));
    let mut args = common(&o);
    if let Some(p) = o.port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    args.extend([destination(host, &o), "--".into(), remote]);
    let mut call = ToolCall::new("ssh", args);
    call.timeout = o.timeout;
    call.read_only = o.read_only;
    call.quiet = o.quiet;
    call.stdin.clone_from(&o.stdin);
    let out = tool::call(&state.services, &call)?;
    if let Some(out) = &out {
        // 255 is ssh's own failure (connection, auth), not the remote command's.
        if o.check && !out.success() {
            let hint = (out.code == Some(255))
                .then(|| format!("ssh could not reach {host}: check the host, port, user and key"));
            return Err(tool::failed(&call, out, hint));
        }
    }
    Ok(result(out))
}

fn copy(state: &RunState, host: &str, src: &str, dst: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = parse(map)?;
    let mut args = common(&o);
    if let Some(p) = o.port {
        args.extend(["-P".to_string(), p.to_string()]);
    }
    if std::path::Path::new(src).is_dir() {
        args.push("-r".into());
    }
    args.extend([src.to_string(), format!("{}:{dst}", destination(host, &o))]);
    let mut call = ToolCall::new("scp", args);
    call.timeout = o.timeout;
    call.quiet = o.quiet;
    let out = tool::call(&state.services, &call)?;
    if let Some(out) = &out {
        if !out.success() {
            return Err(tool::failed(&call, out, None));
        }
    }
    Ok(result(out))
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    const RUN_DOC: &str = "Run argv on a host with the system ssh client (batch mode, connection reuse).\n\
        Options: `user`, `port`, `identity`, `options` (ssh `-o` values), `reuse` (true),\n\
        `cwd`, `env`, plus `run`'s `timeout`, `check`, `read_only`, `quiet`, `stdin`.\n\
        Returns `run`'s `#{ code, stdout, stderr, duration_ms, dry_run }`.\n\
        ```rhai\nssh::run(\"web1.internal\", [\"systemctl\", \"restart\", \"app\"], #{ user: \"deploy\" });\n```";
    const COPY_DOC: &str = "Copy a local file or folder to `host:dst` with scp; the options of `ssh::run`.\n\
        ```rhai\nssh::copy(\"web1.internal\", \"build/app.tar.gz\", \"/srv/releases/\", #{ user: \"deploy\" });\n```";
    let s = state.clone();
    module_func(&mut m, "run", &["host: &str", "argv: Array", "Map"], RUN_DOC, move |h: &str, a: Array| {
        run(&s, h, a, &Map::new())
    });
    let s = state.clone();
    module_func(
        &mut m,
        "run",
        &["host: &str", "argv: Array", "options: Map", "Map"],
        RUN_DOC,
        move |h: &str, a: Array, o: Map| run(&s, h, a, &o),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "copy",
        &["host: &str", "src: &str", "dst: &str", "Map"],
        COPY_DOC,
        move |h: &str, src: &str, dst: &str| copy(&s, h, src, dst, &Map::new()),
    );
    let s = state.clone();
    module_func(
        &mut m,
        "copy",
        &["host: &str", "src: &str", "dst: &str", "options: Map", "Map"],
        COPY_DOC,
        move |h: &str, src: &str, dst: &str, o: Map| copy(&s, h, src, dst, &o),
    );
    engine.register_static_module("ssh", m.into());
}
