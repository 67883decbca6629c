//! A real PostgreSQL on loopback for the shared-state tests: `initdb` and
//! `postgres -D DIR -c listen_addresses=127.0.0.1 -p PORT -k DIR` as the
//! `postgres` user (shared/TESTBED.md), under a watchdog shell whose stdin
//! is a pipe from the test process: when the pipe closes (Drop, or the test
//! process exiting, even for the shared instance in a static) the watchdog
//! stops the server by its PID (fast shutdown) and removes its folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::daemons::{free_port, which};

const WATCHDOG: &str = r#"dir=$1; port=$2; bin=$3
runuser -u postgres -- "$bin/postgres" -D "$dir/pg" -c listen_addresses=127.0.0.1 -p "$port" -k "$dir" \
    -c fsync=off -c max_connections=200 </dev/null >"$dir/postgres.log" 2>&1 &
cat >/dev/null
pid=$(head -1 "$dir/pg/postmaster.pid" 2>/dev/null)
[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
wait
rm -rf "$dir"
"#;

pub struct Postgres {
    pub port: u16,
    pub dir: PathBuf,
    watchdog: Mutex<Option<Child>>,
}

/// The folder holding PostgreSQL's programs (Debian keeps them off PATH).
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(p) = which("initdb") {
        let real = std::fs::canonicalize(&p).unwrap_or(p);
        return Ok(real.parent().unwrap_or(Path::new("/")).to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed (run scripts/install-daemons): {e}"))?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("postgres").exists())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| "PostgreSQL is not installed (run scripts/install-daemons)".to_string())
}

impl Postgres {
    /// A server of one's own, stopped and removed on Drop.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("capstan-pg-").tempdir().map_err(|e| e.to_string())?.keep();
        run(Command::new("chmod").args(["755"]).arg(&dir))?;
        run(Command::new("chown").arg("postgres").arg(&dir))?;
        run(Command::new("runuser").args(["-u", "postgres", "--"]).arg(bin.join("initdb")).args([
            "-D",
            &dir.join("pg").to_string_lossy(),
            "-U",
            "capstan",
            "--auth=trust",
            "--no-sync",
        ]))?;
        let port = free_port();
        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&dir)
            .arg(port.to_string())
            .arg(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "capstan", "-d", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                break;
            }
            if Instant::now() > deadline || watchdog.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                let _ = watchdog.stdin.take();
                return Err(format!("postgres did not start on 127.0.0.1:{port}:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { port, dir, watchdog: Mutex::new(Some(watchdog)) })
    }

    /// A URL to a database of its own (created now), so tests sharing the
    /// server do not see each other's runs and locks.
    pub fn database(&self, name: &str) -> String {
        let bin = bin_dir().expect("postgres bin");
        let out = Command::new(bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "capstan", "-d", "postgres", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("run psql");
        assert!(out.status.success(), "CREATE DATABASE {name}: {}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://capstan@127.0.0.1:{}/{name}", self.port)
    }

    /// The rows `sql` returns in database `db`, one line each, fields
    /// separated by `|` (`psql -At`).
    pub fn query(&self, db: &str, sql: &str) -> String {
        let bin = bin_dir().expect("postgres bin");
        let out = Command::new(bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "capstan", "-d", db, "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stop the server now (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        if let Some(mut w) = self.watchdog.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            if let Some(mut stdin) = w.stdin.take() {
                let _ = stdin.flush();
            }
            let _ = w.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(c: &mut Command) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();

/// One server for the whole test binary, started by the first caller; its
/// watchdog stops it when the test process exits.
pub fn shared() -> &'static Postgres {
    match SHARED.get_or_init(Postgres::start) {
        Ok(pg) => pg,
        Err(why) => panic!("PostgreSQL must run here: {why}"),
    }
}
