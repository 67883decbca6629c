//! A real HTTP server on loopback for webhook tests: records every request
//! body and answers with the statuses it is told to, in order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct Server {
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Answer the n-th request with `statuses[n]`, then 200 for the rest.
    pub fn start(statuses: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                let status = statuses.get(n).copied().unwrap_or(200);
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Self { url, bodies }
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A loopback port with nothing listening.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// A keep-alive HTTP server with a known latency distribution and error
/// share, recording the latency it served each request with.
pub struct LatencyServer {
    pub url: String,
    served_us: Arc<Mutex<Vec<u64>>>,
}

impl LatencyServer {
    /// Latency uniform in `min_ms..=max_ms` (a fixed pseudo-random sequence);
    /// every `error_every`-th request answers 500.
    pub fn start(min_ms: u64, max_ms: u64, error_every: u64) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let served_us: Arc<Mutex<Vec<u64>>> = Arc::default();
        let record = served_us.clone();
        let counter = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (record, counter) = (record.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line.trim().is_empty() {
                            continue;
                        }
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                                break;
                            }
                        }
                        let start = std::time::Instant::now();
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        // A multiplicative hash spreads n evenly over the range.
                        let spread = (n.wrapping_mul(2_654_435_761) % 1000) as f64 / 999.0;
                        let delay = min_ms as f64 + spread * (max_ms - min_ms) as f64;
                        std::thread::sleep(std::time::Duration::from_secs_f64(delay / 1000.0));
                        let status = if error_every > 0 && n % error_every == error_every - 1 { 500 } else { 200 };
                        let body = "ok";
                        let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                        record.lock().unwrap().push(start.elapsed().as_micros() as u64);
                    }
                });
            }
        });
        Self { url, served_us }
    }

    /// The server's own latency at quantile `q`, in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.served_us.lock().unwrap().clone();
        v.sort_unstable();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    }

    pub fn served(&self) -> usize {
        self.served_us.lock().unwrap().len()
    }
}
