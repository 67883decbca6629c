//! Real daemons on loopback for the deployment tests: haproxy, nginx,
//! Prometheus (with promtool backfill), sshd, dockerd and a local registry,
//! plus a tiny std-only HTTP backend and client. `shared/TESTBED.md` records
//! how each one runs on these machines; `scripts/install-daemons` installs
//! them.
//!
//! Each helper starts the real daemon in the foreground as a child of the
//! test process, in its own temp dir, bound to 127.0.0.1 (never any other
//! address) on a free high port. It polls with a deadline until the daemon
//! answers, and on Drop it stops the daemon by PID and reaps it. The daemon's
//! stdout and stderr go to a file in its temp dir, and every panic quotes it.
//! A start that loses the race for its port ("address already in use") is
//! retried on a new port.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// How long a daemon may take to answer. Generous, because the machine may be
/// busy compiling; each daemon usually takes 10–500 ms.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// dockerd also starts its own containerd.
const DOCKERD_READY_TIMEOUT: Duration = Duration::from_secs(45);
/// After SIGTERM, how long to wait before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// dockerd stops its containers (`--shutdown-timeout=2`) and containerd first.
const DOCKERD_STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);
/// Starts retried when another process took the chosen port first.
const START_ATTEMPTS: usize = 3;
/// How much of a daemon's log a panic message quotes.
const LOG_TAIL: usize = 8000;

// ---------------------------------------------------------------------------
// Tools, ports, temp dirs
// ---------------------------------------------------------------------------

/// Full path of `tool`, looked up on PATH and then in /usr/local/sbin,
/// /usr/sbin and /sbin (where sshd and dockerd live).
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let path = PathBuf::from(tool);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
        .map(|found| if found.is_absolute() { found } else { fs::canonicalize(&found).unwrap_or(found) })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Full path of `tool`; panics if it is not installed.
#[track_caller]
pub fn require(tool: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!("`{tool}` is not installed (not on PATH, nor in /usr/sbin or /sbin): install it with scripts/install-daemons")
    })
}

/// A loopback port that was free a moment ago (bind port 0, then drop).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

fn temp_dir(name: &str) -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix(&format!("capstan-{name}-"))
        .tempdir()
        .map_err(|e| format!("create a temp dir: {e}"))
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The effective user id, from /proc (no libc: the crate forbids unsafe code).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn is_root() -> bool {
    effective_uid() == Some(0)
}

fn current_user() -> String {
    if is_root() {
        return "root".to_string();
    }
    Command::new("id")
        .arg("-un")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .expect("the current user's name (id -un)")
}

/// Is `pid` running (and not a zombie waiting to be reaped)?
fn is_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// The last `max` bytes of a file, for error messages.
fn tail(path: &Path, max: usize) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("<cannot read {}: {e}>", path.display()),
    };
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run `attempt` until it succeeds, retrying only when the daemon lost the
/// race for its port; panics with every error otherwise.
fn start_with_retries<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let mut errors = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(started) => return started,
            Err(e) => {
                let port_taken = e.to_ascii_lowercase().contains("address already in use");
                errors.push(e);
                if !port_taken {
                    break;
                }
            }
        }
    }
    panic!("could not start {what}:\n{}", errors.join("\n--- next attempt ---\n"));
}

// ---------------------------------------------------------------------------
// A daemon child process
// ---------------------------------------------------------------------------

/// A daemon running in the foreground as our child. Drop sends `stop`, waits,
/// then SIGKILLs, and always reaps.
struct Daemon {
    name: &'static str,
    child: Child,
    /// stdout + stderr of the daemon.
    log: PathBuf,
    /// Other logs the daemon writes itself (nginx's error log).
    extra_logs: Vec<PathBuf>,
    stop: Signal,
}

impl Daemon {
    fn spawn(name: &'static str, mut command: Command, log: &Path, stop: Signal) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("dup {}: {e}", log.display()))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn().map_err(|e| format!("cannot run {name} ({command:?}): {e}"))?;
        Ok(Self { name, child, log: log.to_path_buf(), extra_logs: Vec::new(), stop })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the daemon has exited (and been reaped).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the daemon logged, for error messages.
    fn logs(&self) -> String {
        let mut text = format!("--- {} ({})\n{}", self.name, self.log.display(), tail(&self.log, LOG_TAIL));
        for extra in &self.extra_logs {
            let _ = write!(text, "\n--- {}\n{}", extra.display(), tail(extra, LOG_TAIL));
        }
        text
    }

    /// Poll `ready` until it holds. Fails, quoting the logs, if the daemon
    /// exits first or the deadline passes.
    fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("{} exited while starting ({status})\n{}", self.name, self.logs()));
            }
            if ready() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{} (pid {}) did not answer within {timeout:?}\n{}",
                    self.name,
                    self.pid(),
                    self.logs()
                ));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), self.stop);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------

/// `haproxy -db -f haproxy.cfg`: frontend `fe` on 127.0.0.1:`port` balances
/// (`balance roundrobin`) over backend `app`, whose servers are named as
/// given. Responses carry `X-Upstream: <server name>`. Servers have no health
/// checks, so they are always UP unless set otherwise over the runtime API.
pub struct Haproxy {
    /// Frontend port: `http://127.0.0.1:{port}/`.
    pub port: u16,
    /// Runtime API socket (`stats socket … level admin`): `set weight app/a 50`,
    /// `get weight app/a`, `set server app/a state drain`, `show stat`.
    pub socket: PathBuf,
    /// Stats page, HTML; add `;csv` for CSV.
    pub stats_url: String,
    pub config: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

impl Haproxy {
    /// Backend `app` with these `(name, port)` servers on 127.0.0.1, weight 1 each.
    pub fn start(servers: &[(&str, u16)]) -> Self {
        let weighted: Vec<(&str, u16, u32)> = servers.iter().map(|&(name, port)| (name, port, 1)).collect();
        Self::start_weighted(&weighted)
    }

    /// Backend `app` with these `(name, port, weight)` servers on 127.0.0.1
    /// (haproxy weights are 0–256; `set weight app/NAME N%` is relative to these).
    pub fn start_weighted(servers: &[(&str, u16, u32)]) -> Self {
        let bin = require("haproxy");
        start_with_retries("haproxy", || {
            let dir = temp_dir("haproxy")?;
            let port = free_port();
            let stats_port = free_port();
            let socket = dir.path().join("admin.sock");
            let config = dir.path().join("haproxy.cfg");
            let server_lines = servers
                .iter()
                .map(|(name, server_port, weight)| {
                    format!("    server {name} 127.0.0.1:{server_port} weight {weight}\n")
                })
                .collect::<Vec<_>>()
                .concat();
            let text = format!(
                "global
    stats socket {socket} mode 600 level admin
    stats timeout 30s
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    http-response set-header X-Upstream %s
    default_backend app
listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
backend app
    balance roundrobin
{server_lines}",
                socket = socket.display(),
            );
            write_file(&config, &text)?;
            let mut command = Command::new(&bin);
            command.arg("-db").arg("-f").arg(&config).current_dir(dir.path());
            let mut daemon = Daemon::spawn("haproxy", command, &dir.path().join("haproxy.log"), Signal::SIGTERM)?;
            // The admin socket answers only once every listener is bound.
            daemon.wait_ready(READY_TIMEOUT, || admin_command(&socket, "show info").is_ok())?;
            Ok(Self { port, socket, stats_url: format!("http://127.0.0.1:{stats_port}/stats"), config, daemon, dir })
        })
    }

    /// `http://127.0.0.1:{port}/`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// One runtime-API command, e.g. `set weight app/a 50`; returns the answer
    /// (empty, apart from a newline, when the command succeeded silently).
    pub fn admin(&self, command: &str) -> String {
        admin_command(&self.socket, command)
            .unwrap_or_else(|e| panic!("haproxy admin `{command}`: {e}\n{}", self.daemon.logs()))
    }

    /// `show stat`, one map per row, keyed by the CSV header (`pxname`,
    /// `svname`, `weight`, `status`, `stot`, `hrsp_2xx`, `hrsp_5xx`, …).
    pub fn stats(&self) -> Vec<BTreeMap<String, String>> {
        parse_show_stat(&self.admin("show stat"))
    }

    /// One `show stat` field of server `app/<server>`, e.g. `("a", "stot")`.
    pub fn server_stat(&self, server: &str, field: &str) -> String {
        let rows = self.stats();
        let row = rows
            .iter()
            .find(|r| r.get("pxname").is_some_and(|p| p == "app") && r.get("svname").is_some_and(|s| s == server))
            .unwrap_or_else(|| panic!("no server app/{server} in haproxy's show stat"));
        row.get(field).cloned().unwrap_or_else(|| panic!("no field {field} in haproxy's show stat"))
    }

    /// What haproxy logged.
    pub fn log(&self) -> String {
        self.daemon.logs()
    }
}

fn admin_command(socket: &Path, command: &str) -> io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(command.as_bytes())?;
    stream.write_all(b"\n")?;
    // Non-interactive mode: HAProxy answers one line and closes.
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn parse_show_stat(csv: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows = csv.lines();
    let Some(header) = rows.next() else { return Vec::new() };
    let keys: Vec<&str> = header.trim_start_matches('#').trim().split(',').collect();
    rows.filter(|line| !line.trim().is_empty())
        .map(|line| {
            keys.iter()
                .zip(line.split(','))
                .filter(|(key, _)| !key.is_empty())
                .map(|(key, value)| ((*key).to_string(), value.to_string()))
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------

/// nginx in the foreground (`-g 'daemon off;'`) with its own prefix, config,
/// pid file and logs in a temp dir, one worker (so weighted round-robin is
/// exact), and
///
/// ```nginx
/// upstream app { include <upstream_file>; }
/// server { listen 127.0.0.1:<port>; location / { proxy_pass http://app; proxy_next_upstream off; } }
/// ```
///
/// Responses carry `X-Upstream: <upstream addr>`; `/healthz` is answered by
/// nginx itself. Weights change only by rewriting `upstream_file` and
/// `nginx <conf_args> -s reload`.
pub struct Nginx {
    pub port: u16,
    /// Included inside `upstream app { … }`: `server 127.0.0.1:P weight=W;` lines.
    pub upstream_file: PathBuf,
    pub prefix: PathBuf,
    pub config: PathBuf,
    pub pid_file: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

/// The contents of an upstream file: one `server 127.0.0.1:PORT weight=W;` per `(port, weight)`.
pub fn upstream_conf(servers: &[(u16, u32)]) -> String {
    servers
        .iter()
        .map(|(port, weight)| format!("server 127.0.0.1:{port} weight={weight};\n"))
        .collect::<Vec<_>>()
        .concat()
}

impl Nginx {
    /// Upstream `app` with these `(port, weight)` servers on 127.0.0.1 (at least one).
    pub fn start(servers: &[(u16, u32)]) -> Self {
        let bin = require("nginx");
        start_with_retries("nginx", || {
            let dir = temp_dir("nginx")?;
            let d = dir.path();
            for sub in ["logs", "tmp"] {
                fs::create_dir_all(d.join(sub)).map_err(|e| format!("create {sub}: {e}"))?;
            }
            let port = free_port();
            let config = d.join("nginx.conf");
            let upstream_file = d.join("upstream.conf");
            let pid_file = d.join("nginx.pid");
            let error_log = d.join("logs/error.log");
            let access_log = d.join("logs/access.log");
            write_file(&upstream_file, &upstream_conf(servers))?;
            // As root, run the worker as root too: the temp dir is mode 0700.
            let user = if is_root() { "user root;\n" } else { "" };
            let text = format!(
                r#"{user}worker_processes 1;
pid {pid};
error_log {error_log} warn;
events {{ worker_connections 256; }}
http {{
    access_log {access_log};
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    upstream app {{ include {upstream}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_next_upstream off;
            add_header X-Upstream $upstream_addr always;
        }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"#,
                pid = pid_file.display(),
                error_log = error_log.display(),
                access_log = access_log.display(),
                d = d.display(),
                upstream = upstream_file.display(),
            );
            write_file(&config, &text)?;
            let conf_args = nginx_conf_args(d, &config, &error_log);
            let mut command = Command::new(&bin);
            command.args(conf_args).args(["-g", "daemon off;"]).current_dir(d);
            let mut daemon = Daemon::spawn("nginx", command, &d.join("nginx.out"), Signal::SIGTERM)?;
            daemon.extra_logs.push(error_log.clone());
            let healthz = format!("http://127.0.0.1:{port}/healthz");
            daemon.wait_ready(READY_TIMEOUT, || try_http_get(&healthz).is_ok_and(|r| r.status == 200))?;
            Ok(Self {
                port,
                upstream_file,
                prefix: d.to_path_buf(),
                config,
                pid_file,
                error_log,
                access_log,
                daemon,
                dir,
            })
        })
    }

    /// `http://127.0.0.1:{port}/`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `-p PREFIX/ -c CONFIG -e ERROR_LOG`: what `nginx -t` and
    /// `nginx -s reload` need to act on this instance (and nothing else).
    pub fn conf_args(&self) -> Vec<String> {
        nginx_conf_args(&self.prefix, &self.config, &self.error_log)
    }

    /// Rewrite the upstream file (takes effect on the next reload).
    pub fn write_upstream(&self, servers: &[(u16, u32)]) {
        fs::write(&self.upstream_file, upstream_conf(servers)).expect("write nginx upstream file");
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What nginx logged (stdout/stderr and the error log).
    pub fn log(&self) -> String {
        self.daemon.logs()
    }
}

fn nginx_conf_args(prefix: &Path, config: &Path, error_log: &Path) -> Vec<String> {
    vec![
        "-p".to_string(),
        format!("{}/", prefix.display()),
        "-c".to_string(),
        config.display().to_string(),
        "-e".to_string(),
        error_log.display().to_string(),
    ]
}

// ---------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------

/// `prometheus` on 127.0.0.1, its TSDB in a temp dir, optionally filled first
/// with exact series by `promtool tsdb create-blocks-from openmetrics`.
///
/// Time retention is 3650d, so backfilled blocks far in the past are kept
/// (retention counts back from the newest block: a short one deletes older
/// backfilled blocks). The lookback delta is Prometheus' default, 5m: an
/// instant query at `time=t` sees the newest sample in `(t-5m, t]`, so query
/// backfilled series at explicit times inside the data.
pub struct Prometheus {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

impl Prometheus {
    /// An empty Prometheus that scrapes nothing.
    pub fn start() -> Self {
        Self::start_with("", &[], &[])
    }

    /// Backfill `openmetrics` first. The text is in `OpenMetrics` format: each series'
    /// samples together and sorted by time, timestamps in (fractional) Unix
    /// seconds, e.g. `http_requests_total{status="500"} 7 1700000010`. A
    /// missing final `# EOF` is added.
    pub fn start_with_backfill(openmetrics: &str) -> Self {
        Self::start_with(openmetrics, &[], &[])
    }

    /// Backfill `openmetrics` (if not empty), scrape `scrape_targets`
    /// (`127.0.0.1:PORT`, every second, job `app`) and pass `extra_args` to
    /// prometheus (they replace the default `--storage.tsdb.retention.time`
    /// and `--log.level` if they set those).
    pub fn start_with(openmetrics: &str, scrape_targets: &[&str], extra_args: &[&str]) -> Self {
        let prometheus = require("prometheus");
        let promtool = if openmetrics.trim().is_empty() { None } else { Some(require("promtool")) };
        start_with_retries("prometheus", || {
            let dir = temp_dir("prometheus")?;
            let d = dir.path();
            let data_dir = d.join("data");
            fs::create_dir_all(&data_dir).map_err(|e| format!("create {}: {e}", data_dir.display()))?;
            if let Some(promtool) = &promtool {
                backfill(promtool, d, &data_dir, openmetrics)?;
            }
            let config = d.join("prometheus.yml");
            let mut yaml = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
            if !scrape_targets.is_empty() {
                let targets: Vec<String> = scrape_targets.iter().map(|t| format!("\"{t}\"")).collect();
                let _ = writeln!(
                    yaml,
                    "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]",
                    targets.join(", ")
                );
            }
            write_file(&config, &yaml)?;
            let port = free_port();
            let mut args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data_dir.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            for default in ["--storage.tsdb.retention.time=3650d", "--log.level=warn"] {
                let flag = default.split('=').next().unwrap_or(default);
                if !extra_args.iter().any(|a| a.split('=').next() == Some(flag)) {
                    args.push(default.to_string());
                }
            }
            args.extend(extra_args.iter().map(|a| (*a).to_string()));
            let mut command = Command::new(&prometheus);
            command.args(args).current_dir(d);
            // SIGKILL: a graceful stop takes about a second and the data is thrown away.
            let mut daemon = Daemon::spawn("prometheus", command, &d.join("prometheus.log"), Signal::SIGKILL)?;
            let url = format!("http://127.0.0.1:{port}");
            let ready = format!("{url}/-/ready");
            daemon.wait_ready(READY_TIMEOUT, || try_http_get(&ready).is_ok_and(|r| r.status == 200))?;
            Ok(Self { url, port, data_dir, config, daemon, dir })
        })
    }

    /// `GET /api/v1/query` (at `time`, Unix seconds, if given); the whole
    /// JSON answer. Panics unless its `status` is `success`.
    pub fn query(&self, promql: &str, time: Option<i64>) -> serde_json::Value {
        let mut url = format!("{}/api/v1/query?query={}", self.url, url_encode(promql));
        if let Some(time) = time {
            let _ = write!(url, "&time={time}");
        }
        let response =
            try_http_get(&url).unwrap_or_else(|e| panic!("prometheus query {promql}: {e}\n{}", self.daemon.logs()));
        let json: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_else(|e| {
            panic!("prometheus answered {} with non-JSON ({e}): {}", response.status, response.body)
        });
        assert_eq!(json["status"], "success", "prometheus query {promql} failed: {}", response.body);
        json
    }

    /// The value of the first sample of a vector or scalar answer; None when empty.
    pub fn query_value(&self, promql: &str, time: Option<i64>) -> Option<f64> {
        let json = self.query(promql, time);
        let data = &json["data"];
        let value = if data["resultType"] == "vector" { &data["result"][0]["value"] } else { &data["result"] };
        value[1].as_str().map(|v| v.parse::<f64>().unwrap_or_else(|e| panic!("prometheus value {v}: {e}")))
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.daemon.logs()
    }
}

fn backfill(promtool: &Path, dir: &Path, data_dir: &Path, openmetrics: &str) -> Result<(), String> {
    let input = dir.join("backfill.om");
    let mut text = openmetrics.trim_end().to_string();
    if !text.ends_with("# EOF") {
        text.push_str("\n# EOF");
    }
    text.push('\n');
    write_file(&input, &text)?;
    let output = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(input)
        .arg(data_dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool tsdb create-blocks-from openmetrics failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

// ---------------------------------------------------------------------------
// sshd
// ---------------------------------------------------------------------------

/// `sshd -D -e -f sshd_config` on 127.0.0.1 with a throwaway host key and a
/// throwaway client key authorised for the current user (root here:
/// `PermitRootLogin prohibit-password`, `StrictModes no`, `UsePAM no`).
pub struct Sshd {
    pub port: u16,
    /// The login name (the user the tests run as).
    pub user: String,
    /// The client's private key.
    pub identity: PathBuf,
    /// A `known_hosts` file holding this server's host key for `[127.0.0.1]:PORT`.
    pub known_hosts: PathBuf,
    pub config: PathBuf,
    daemon: Daemon,
    dir: TempDir,
}

impl Sshd {
    pub fn start() -> Self {
        // sshd re-executes itself, so it needs an absolute path; `which` gives one.
        let sshd = require("sshd");
        let keygen = require("ssh-keygen");
        require("ssh");
        if is_root() {
            // The privilege-separation dir; the package creates it only when its service starts.
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let user = current_user();
        start_with_retries("sshd", || {
            let dir = temp_dir("sshd")?;
            let d = dir.path();
            let keys = SshKeys::make(&keygen, d)?;
            let (host_key, identity, authorized_keys) = (keys.host_key, keys.identity, keys.authorized_keys);
            let port = free_port();
            let host_pub = keys.host_pub;
            let known_hosts = d.join("known_hosts");
            write_file(&known_hosts, &format!("[127.0.0.1]:{port} {host_pub}\n"))?;
            let pid_file = d.join("sshd.pid");
            let config = d.join("sshd_config");
            let text = format!(
                "Port {port}
ListenAddress 127.0.0.1
AddressFamily inet
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
LogLevel ERROR
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
",
                host_key = host_key.display(),
                pid_file = pid_file.display(),
                authorized_keys = authorized_keys.display(),
            );
            write_file(&config, &text)?;
            let mut command = Command::new(&sshd);
            command.arg("-D").arg("-e").arg("-f").arg(&config).current_dir(d);
            let mut daemon = Daemon::spawn("sshd", command, &d.join("sshd.log"), Signal::SIGTERM)?;
            // sshd writes its pid file once the listening socket is bound.
            daemon.wait_ready(READY_TIMEOUT, || fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')))?;
            Ok(Self { port, user: user.clone(), identity, known_hosts, config, daemon, dir })
        })
    }

    /// `-o` options (as `["-o", "K=V", …]`) a client needs for this server:
    /// its own `known_hosts` with strict checking, only the throwaway key, no
    /// prompts, and a fast key exchange. Add `-p PORT` (or `-o Port=PORT`)
    /// and `USER@127.0.0.1`.
    pub fn ssh_options(&self) -> Vec<String> {
        [
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            "UpdateHostKeys=no".to_string(),
            format!("IdentityFile={}", self.identity.display()),
            "IdentitiesOnly=yes".to_string(),
            "BatchMode=yes".to_string(),
            "PasswordAuthentication=no".to_string(),
            "KexAlgorithms=curve25519-sha256".to_string(),
            "ConnectTimeout=10".to_string(),
            "ControlMaster=no".to_string(),
            "ControlPath=none".to_string(),
            "LogLevel=ERROR".to_string(),
        ]
        .into_iter()
        .flat_map(|option| ["-o".to_string(), option])
        .collect()
    }

    /// `USER@127.0.0.1`
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// `ssh -F /dev/null -p PORT <ssh_options> USER@127.0.0.1`; append the remote command.
    pub fn ssh(&self) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(["-F", "/dev/null", "-p"])
            .arg(self.port.to_string())
            .args(self.ssh_options())
            .arg(self.destination())
            .stdin(Stdio::null());
        command
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.daemon.logs()
    }
}

/// A throwaway host key and client key, the client's public key authorised.
struct SshKeys {
    host_key: PathBuf,
    identity: PathBuf,
    authorized_keys: PathBuf,
    /// The host key's `TYPE BASE64`, for `known_hosts` lines.
    host_pub: String,
}

impl SshKeys {
    fn make(keygen: &Path, dir: &Path) -> Result<Self, String> {
        let host_key = dir.join("ssh_host_ed25519_key");
        let identity = dir.join("id_ed25519");
        keygen_ed25519(keygen, &host_key)?;
        keygen_ed25519(keygen, &identity)?;
        let authorized_keys = dir.join("authorized_keys");
        fs::copy(identity.with_extension("pub"), &authorized_keys).map_err(|e| format!("authorized_keys: {e}"))?;
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).map_err(|e| format!("host key: {e}"))?;
        let host_pub = host_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        Ok(Self { host_key, identity, authorized_keys, host_pub })
    }
}

fn keygen_ed25519(keygen: &Path, path: &Path) -> Result<(), String> {
    let output = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "capstan-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ssh-keygen {} failed: {}", path.display(), String::from_utf8_lossy(&output.stderr)))
    }
}

// ---------------------------------------------------------------------------
// a fleet of SSH hosts: sshd on 30 loopback addresses
// ---------------------------------------------------------------------------

/// Hosts of the fleet: 127.0.0.2 to 127.0.0.31.
pub const FLEET_HOSTS: usize = 30;
/// The fleet's login when it exists (scripts/install-test-deps).
const FLEET_USER: &str = "capstan-fleet";
/// Addresses one sshd listens on (it takes at most 16).
const FLEET_PER_SSHD: usize = 15;

/// The sshds stop when this pipe closes: Drop, or the test process exiting
/// (the shared instance sits in a static that is never dropped).
const FLEET_WATCHDOG: &str = r#"dir=$1; sshd=$2; shift 2
pids=
for config in "$@"; do "$sshd" -D -e -f "$config" </dev/null >>"$dir/sshd.log" 2>&1 & pids="$pids $!"; done
cat >/dev/null
kill $pids 2>/dev/null
wait
rm -rf "$dir"
"#;

/// Two sshds on one port sharing 30 loopback addresses, a throwaway host
/// key and client key, `MaxStartups`/`MaxSessions` raised, and an
/// `ssh_config` (`ssh -F`) that reaches every address as the current user.
pub struct FleetSshd {
    pub port: u16,
    pub user: String,
    /// The client's `ssh_config`: user, port, key, `known_hosts`.
    pub ssh_config: PathBuf,
    pub dir: PathBuf,
    watchdog: Mutex<Option<Child>>,
}

static SHARED_FLEET: OnceLock<Result<FleetSshd, String>> = OnceLock::new();

/// The fleet's sshds for the whole test binary, started by the first caller.
pub fn shared_fleet() -> &'static FleetSshd {
    match SHARED_FLEET.get_or_init(FleetSshd::start) {
        Ok(fleet) => fleet,
        Err(why) => panic!("the fleet's sshd must run here: {why}"),
    }
}

impl FleetSshd {
    fn start() -> Result<Self, String> {
        let sshd = require("sshd");
        let keygen = require("ssh-keygen");
        require("ssh");
        if is_root() {
            fs::create_dir_all("/run/sshd").map_err(|e| format!("create /run/sshd: {e}"))?;
        }
        // A user whose login shell is /bin/sh (scripts/install-test-deps makes
        // it): each session then starts in milliseconds.
        let user = if is_root() && Command::new("id").arg(FLEET_USER).output().is_ok_and(|o| o.status.success()) {
            FLEET_USER.to_string()
        } else {
            current_user()
        };
        let dir = temp_dir("fleet-sshd")?.keep();
        // sshd reads authorized_keys as the user logging in.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| format!("chmod: {e}"))?;
        let SshKeys { host_key, identity, authorized_keys, host_pub } = SshKeys::make(&keygen, &dir)?;
        fs::set_permissions(&authorized_keys, fs::Permissions::from_mode(0o644)).map_err(|e| format!("chmod: {e}"))?;
        let port = free_port();
        let known: String =
            Self::addresses().map(|a| format!("[{a}]:{port} {host_pub}\n")).collect::<Vec<_>>().concat();
        write_file(&dir.join("known_hosts"), &known)?;
        let mut configs = Vec::new();
        let addresses: Vec<String> = Self::addresses().collect();
        for (n, chunk) in addresses.chunks(FLEET_PER_SSHD).enumerate() {
            let listen = chunk.iter().fold(String::new(), |mut out, a| {
                let _ = writeln!(out, "ListenAddress {a}");
                out
            });
            let config = dir.join(format!("sshd_config.{n}"));
            write_file(
                &config,
                &format!(
                    "Port {port}\n{listen}AddressFamily inet\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\nLogLevel ERROR\n\
                     MaxStartups 200:30:400\nMaxSessions 100\nSubsystem sftp internal-sftp\nAcceptEnv CAPSTAN_*\n",
                    host_key.display(),
                    dir.join(format!("sshd.{n}.pid")).display(),
                    authorized_keys.display(),
                ),
            )?;
            configs.push(config);
        }
        let ssh_config = dir.join("ssh_config");
        write_file(
            &ssh_config,
            &format!(
                "Host *\n  User {user}\n  Port {port}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  UpdateHostKeys no\n  \
                 KexAlgorithms curve25519-sha256\n  PasswordAuthentication no\n  ConnectTimeout 10\n  LogLevel ERROR\n",
                identity.display(),
                dir.join("known_hosts").display(),
            ),
        )?;
        let mut command = Command::new("sh");
        command.arg("-c").arg(FLEET_WATCHDOG).arg("fleet-watchdog").arg(&dir).arg(&sshd).args(&configs);
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the fleet's sshd: {e}"))?;
        let fleet = Self { port, user, ssh_config, dir: dir.clone(), watchdog: Mutex::new(Some(child)) };
        let start = Instant::now();
        // Each sshd writes its pid file once its sockets are bound.
        while !(0..configs.len()).all(|n| fs::read_to_string(dir.join(format!("sshd.{n}.pid"))).is_ok()) {
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!("the fleet's sshd did not start:\n{}", tail(&dir.join("sshd.log"), LOG_TAIL)));
            }
            std::thread::sleep(POLL);
        }
        Ok(fleet)
    }

    /// 127.0.0.2 .. 127.0.0.31
    pub fn addresses() -> impl Iterator<Item = String> {
        (2..2 + FLEET_HOSTS).map(|n| format!("127.0.0.{n}"))
    }

    /// The hosts as inventory host maps (JSON): `host02`..`host31`, the
    /// first half in group `web`, the rest in `db`.
    pub fn hosts_json() -> serde_json::Value {
        Self::addresses()
            .enumerate()
            .map(|(i, address)| {
                let group = if i < FLEET_HOSTS / 2 { "web" } else { "db" };
                serde_json::json!({
                    "name": format!("host{:02}", i + 2), "address": address, "port": null, "user": null,
                    "identity": null, "groups": [group], "vars": {},
                })
            })
            .collect()
    }

    /// Everything the sshds logged.
    pub fn log(&self) -> String {
        tail(&self.dir.join("sshd.log"), LOG_TAIL)
    }
}

impl Drop for FleetSshd {
    fn drop(&mut self) {
        if let Some(mut w) = lock(&self.watchdog).take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// dockerd and the registry
// ---------------------------------------------------------------------------

/// Runs dockerd under a small watchdog shell whose stdin is a pipe from the
/// test process. When that pipe closes (Drop, or the test process exiting for
/// any reason, even with the `Dockerd` in a static that is never dropped) the
/// watchdog sends dockerd SIGTERM (dockerd then stops its containers and its
/// containerd), waits for it, unmounts anything left under the temp dir and,
/// when told to (`$2` = 1), removes the temp dir.
const DOCKERD_WATCHDOG: &str = r#"dir=$1; remove=$2; shift 2
"$@" </dev/null &
pid=$!
echo "$pid" >"$dir/dockerd.child-pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
if [ "$remove" = 1 ]; then rm -rf "$dir"; fi
exit "$rc"
"#;

/// A real dockerd with its own data root, exec root, pid file and socket in a
/// temp dir: `--bridge=none --iptables=false --ip6tables=false
/// --ip-forward=false` (no docker0, no NAT, no sysctl changes), storage
/// driver overlay2 (vfs if overlay2 fails; `CAPSTAN_TEST_DOCKER_STORAGE_DRIVER`
/// forces one). Containers use `--network host` (reachable on 127.0.0.1) or
/// `--network none`; `-p` publishing is not available. Images can only come
/// from `docker build`/`load` or a local [`Registry`] (127.0.0.0/8 registries
/// are insecure by default, so push/pull needs no daemon config).
pub struct Dockerd {
    /// `DOCKER_HOST` for clients: `unix:///…/docker.sock`.
    pub host: String,
    pub socket: PathBuf,
    /// `DOCKER_CONFIG` for clients: an empty dir, so no user config or credential helper applies.
    pub client_config: PathBuf,
    /// dockerd's own pid (a grandchild: the watchdog shell is the child).
    pub pid: u32,
    pub storage_driver: String,
    /// The temp dir holding everything.
    pub dir: PathBuf,
    log: PathBuf,
    /// The watchdog shell; its stdin is the pipe whose closing stops dockerd.
    watchdog: Mutex<Option<Child>>,
    /// None for the shared instance, whose watchdog removes the dir itself.
    _temp: Option<TempDir>,
}

static SHARED_DOCKERD: OnceLock<Result<Dockerd, String>> = OnceLock::new();

/// One dockerd for the whole test binary, started by the first caller (the
/// others wait for it). Statics are never dropped, so this one is stopped by
/// its watchdog when the test process exits: the pipe to it closes, it sends
/// dockerd SIGTERM, waits for it and removes its temp dir (this takes about
/// two seconds and goes on after the test binary has exited).
///
/// Returns None, after printing why, if dockerd cannot start here (not
/// installed, no privileges, …). Docker tests must then FAIL, not skip:
/// `shared_dockerd().expect("dockerd must run here; the reason is printed above")`.
pub fn shared_dockerd() -> Option<&'static Dockerd> {
    match SHARED_DOCKERD.get_or_init(|| Dockerd::start_inner(true)) {
        Ok(dockerd) => Some(dockerd),
        Err(reason) => {
            eprintln!("dockerd could not start, so this Docker test cannot run:\n{reason}");
            None
        }
    }
}

impl Dockerd {
    /// A dockerd of one's own, stopped (SIGTERM, about two seconds) and
    /// removed on Drop. Prefer [`shared_dockerd`]: dockerd is heavy.
    pub fn start() -> Result<Self, String> {
        Self::start_inner(false)
    }

    fn start_inner(shared: bool) -> Result<Self, String> {
        let install = "install it with scripts/install-daemons";
        let bin = which("dockerd").ok_or_else(|| format!("dockerd is not installed: {install}"))?;
        let docker = which("docker").ok_or_else(|| format!("the docker client is not installed: {install}"))?;
        let drivers = match std::env::var("CAPSTAN_TEST_DOCKER_STORAGE_DRIVER") {
            Ok(driver) if !driver.is_empty() => vec![driver],
            _ => vec!["overlay2".to_string(), "vfs".to_string()],
        };
        let mut errors = Vec::new();
        for driver in drivers {
            match Self::try_start(&bin, &docker, &driver, shared) {
                Ok(dockerd) => return Ok(dockerd),
                Err(e) => errors.push(format!("dockerd --storage-driver={driver}: {e}")),
            }
        }
        Err(errors.join("\n---\n"))
    }

    fn try_start(bin: &Path, docker: &Path, driver: &str, shared: bool) -> Result<Self, String> {
        let temp = temp_dir("dockerd")?;
        let dir = temp.path().to_path_buf();
        let socket = dir.join("docker.sock");
        let client_config = dir.join("client");
        let log = dir.join("dockerd.log");
        fs::create_dir_all(&client_config).map_err(|e| format!("create {}: {e}", client_config.display()))?;
        let daemon_json = dir.join("daemon.json");
        write_file(&daemon_json, "{}\n")?;
        let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("dup {}: {e}", log.display()))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(DOCKERD_WATCHDOG)
            .arg("capstan-dockerd-watchdog")
            .arg(&dir)
            .arg(if shared { "1" } else { "0" })
            .arg(bin)
            .arg(format!("--config-file={}", daemon_json.display()))
            .arg(format!("--data-root={}", dir.join("root").display()))
            .arg(format!("--exec-root={}", dir.join("exec").display()))
            .arg(format!("--pidfile={}", dir.join("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--shutdown-timeout=2",
                "--log-level=warn",
            ])
            .arg(format!("--storage-driver={driver}"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        let child = command.spawn().map_err(|e| format!("cannot run sh for dockerd: {e}"))?;
        // The shared instance's dir is removed by its watchdog, as no Drop will run.
        let (temp, dir) = if shared { (None, temp.keep()) } else { (Some(temp), dir) };
        let mut dockerd = Self {
            host: format!("unix://{}", socket.display()),
            socket,
            client_config,
            pid: 0,
            storage_driver: driver.to_string(),
            dir,
            log,
            watchdog: Mutex::new(Some(child)),
            _temp: temp,
        };
        match dockerd.wait_ready(docker) {
            Ok(()) => Ok(dockerd),
            Err(e) => {
                // Read the log before Drop: the shared instance's watchdog deletes it.
                let message =
                    format!("{e}\n--- dockerd log ({})\n{}", dockerd.log.display(), tail(&dockerd.log, LOG_TAIL));
                drop(dockerd);
                Err(message)
            }
        }
    }

    fn wait_ready(&mut self, docker: &Path) -> Result<(), String> {
        let start = Instant::now();
        let pid_file = self.dir.join("dockerd.child-pid");
        loop {
            if self.pid == 0 {
                self.pid = fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<u32>().ok()).unwrap_or(0);
            }
            if let Some(Ok(Some(status))) = lock(&self.watchdog).as_mut().map(Child::try_wait) {
                return Err(format!("the dockerd watchdog shell exited ({status})"));
            }
            if self.pid != 0 && !is_alive(self.pid) {
                return Err(format!("dockerd (pid {}) exited while starting", self.pid));
            }
            if docker_ping(&self.socket) {
                break;
            }
            if start.elapsed() > DOCKERD_READY_TIMEOUT {
                return Err(format!("dockerd did not answer /_ping within {DOCKERD_READY_TIMEOUT:?}"));
            }
            std::thread::sleep(POLL);
        }
        let output = self
            .docker_with(docker)
            .args(["info", "--format", "{{.ServerVersion}} {{.Driver}}"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", docker.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`docker info` failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn docker_with(&self, docker: &Path) -> Command {
        let mut command = Command::new(docker);
        command.envs(self.envs()).stdin(Stdio::null());
        command
    }

    /// `docker` with `DOCKER_HOST` and `DOCKER_CONFIG` set for this daemon.
    pub fn docker(&self) -> Command {
        self.docker_with(&require("docker"))
    }

    /// `DOCKER_HOST` and `DOCKER_CONFIG`, for a capstan run that drives docker.
    pub fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("DOCKER_HOST".to_string(), self.host.clone()),
            ("DOCKER_CONFIG".to_string(), self.client_config.display().to_string()),
        ]
    }

    pub fn log(&self) -> String {
        tail(&self.log, LOG_TAIL)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.watchdog.get_mut().ok().and_then(Option::take) else { return };
        // EOF on the watchdog's stdin: it stops dockerd, waits for it and cleans up.
        drop(child.stdin.take());
        let deadline = Instant::now() + DOCKERD_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
        if self.pid != 0 {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `GET /_ping` over the daemon's socket.
fn docker_ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw).is_ok_and(|r| r.status == 200)
}

/// `docker-registry serve config.yml` (Distribution 2.8) on 127.0.0.1, storing
/// in its temp dir, deletes enabled. Push to `{addr}/NAME:TAG`; helm uses
/// `oci://{addr}/charts --plain-http`.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    daemon: Daemon,
    dir: TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let bin = require("docker-registry");
        start_with_retries("docker-registry", || {
            let dir = temp_dir("registry")?;
            let d = dir.path();
            let port = free_port();
            let config = d.join("config.yml");
            let text = format!(
                "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: capstan-test-registry
",
                data = d.join("data").display(),
            );
            write_file(&config, &text)?;
            let mut command = Command::new(&bin);
            command.arg("serve").arg(config).current_dir(d);
            // SIGKILL: nothing to flush, the data is thrown away.
            let mut daemon = Daemon::spawn("docker-registry", command, &d.join("registry.log"), Signal::SIGKILL)?;
            let url = format!("http://127.0.0.1:{port}");
            let v2 = format!("{url}/v2/");
            daemon.wait_ready(READY_TIMEOUT, || try_http_get(&v2).is_ok_and(|r| r.status == 200))?;
            Ok(Self { addr: format!("127.0.0.1:{port}"), url, port, daemon, dir })
        })
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.daemon.logs()
    }
}

// ---------------------------------------------------------------------------
// A tiny HTTP backend and client (std only)
// ---------------------------------------------------------------------------

/// A real HTTP server on 127.0.0.1 in a thread: answers every request with the
/// current status and body (one write, `Connection: close`, header
/// `X-Backend-Port: PORT`) and counts requests. For use behind haproxy or nginx.
pub struct Backend {
    pub port: u16,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    state: Arc<BackendState>,
    accept: Option<JoinHandle<()>>,
}

struct BackendState {
    reply: Mutex<(u16, String)>,
    hits: AtomicUsize,
    paths: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Backend {
    /// Answer every request with `status` and `body`.
    pub fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend on 127.0.0.1");
        let port = listener.local_addr().expect("backend address").port();
        let state = Arc::new(BackendState {
            reply: Mutex::new((status, body.to_string())),
            hits: AtomicUsize::new(0),
            paths: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let per_connection = Arc::clone(&shared);
                std::thread::spawn(move || serve_backend(stream, &per_connection, port));
            }
        });
        Self { port, url: format!("http://127.0.0.1:{port}/"), state, accept: Some(accept) }
    }

    /// `200` with `body`.
    pub fn ok(body: &str) -> Self {
        Self::start(200, body)
    }

    /// Answer later requests with `status` and `body`.
    pub fn set_reply(&self, status: u16, body: &str) {
        *lock(&self.state.reply) = (status, body.to_string());
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The request targets (`/path?query`) answered so far, in order.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.state.paths).clone()
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let woke = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok();
        if let Some(accept) = self.accept.take() {
            if woke {
                let _ = accept.join();
            }
        }
    }
}

fn serve_backend(mut stream: TcpStream, state: &BackendState, port: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    // Read the head (and whatever of the body came with it).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target)) = (request_line.next(), request_line.next()) else { return };
    // Drain the body so closing does not reset the connection.
    let mut unread = content_length(&head).saturating_sub(raw.len() - head_end - 4);
    while unread > 0 {
        match stream.read(&mut buf[..unread.min(4096)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => unread -= n,
        }
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    lock(&state.paths).push(target.to_string());
    let (status, body) = lock(&state.reply).clone();
    let body = if method.eq_ignore_ascii_case("HEAD") { "" } else { body.as_str() };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\nX-Backend-Port: {port}\r\nConnection: close\r\n\r\n{body}",
        reason = reason_phrase(status),
        length = body.len(),
    );
    // One write per response (see TESTBED: split writes stall on Nagle + delayed ACK).
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn bad_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// An HTTP response read by [`try_http_get`] / [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `GET url` (plain `http://`): status and body. Panics if the request fails.
#[track_caller]
pub fn http_get(url: &str) -> (u16, String) {
    let response = try_http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (response.status, response.body)
}

/// `GET url`, with headers; Err when the connection or the response fails.
pub fn try_http_get(url: &str) -> io::Result<HttpResponse> {
    http_request("GET", url, None)
}

/// One request on a new connection (`Connection: close`), read to the end.
/// Handles `Content-Length`, chunked and read-to-close bodies.
pub fn http_request(method: &str, url: &str, body: Option<&str>) -> io::Result<HttpResponse> {
    let (host, port, target) = split_url(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("cannot resolve {host}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: capstan-tests\r\nAccept: */*\r\nConnection: close\r\n"
    );
    if let Some(body) = body {
        let _ = write!(request, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset after a complete response still counts.
            Err(e) => return parse_response(&raw).map_err(|_| e),
        }
    }
    parse_response(&raw)
}

fn split_url(url: &str) -> io::Result<(String, u16, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| bad_data(format!("only http:// URLs: {url}")))?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let target = if target.starts_with('?') { format!("/{target}") } else { target.to_string() };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad_data(format!("bad port in {url}")))?),
        None => (authority, 80),
    };
    Ok((host.to_string(), port, target))
}

fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad_data("incomplete HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut head_lines = head.split("\r\n");
    let status_line = head_lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_data(format!("bad status line: {status_line}")))?;
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let body = if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < length {
            return Err(bad_data(format!("body cut short: {} of {length} bytes", rest.len())));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or_else(|| bad_data("truncated chunk size"))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad_data(format!("bad chunk size {size_hex:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(bad_data("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// Percent-encode everything but unreserved characters (for query strings).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
