//! Posting trace batches from a thread of their own, so the run never waits
//! on the collector: the run hands a batch over and goes on. After the first
//! failure the thread drops the rest (one warning, not one per batch).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::Config;

pub struct Exporter {
    batches: Option<Sender<Vec<u8>>>,
    /// Closed when the thread has sent (or dropped) every batch.
    finished: Receiver<()>,
    error: Arc<Mutex<Option<String>>>,
    timeout: Duration,
}

impl Exporter {
    pub fn start(config: Config) -> Self {
        let (batches, inbox) = mpsc::channel::<Vec<u8>>();
        let (done, finished) = mpsc::channel::<()>();
        let error = Arc::new(Mutex::new(None));
        let failed = error.clone();
        let timeout = config.timeout;
        let spawned = std::thread::Builder::new().name("otlp".into()).spawn(move || {
            let posted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| post_all(&config, &inbox)));
            let error = match posted {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("the exporter stopped on an internal error".to_string()),
            };
            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = error;
            drop(done);
        });
        if let Err(e) = spawned {
            *error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(format!("no thread to export with: {e}"));
        }
        Self { batches: Some(batches), finished, error, timeout }
    }

    pub fn send(&self, body: Vec<u8>) {
        if let Some(tx) = &self.batches {
            let _ = tx.send(body);
        }
    }

    /// No more batches: wait for the last to be delivered (at most the
    /// export timeout) and say what went wrong, if anything did.
    pub fn finish(&mut self) -> Option<String> {
        drop(self.batches.take());
        let deadline = Instant::now() + self.timeout + Duration::from_millis(250);
        let waited = loop {
            match self.finished.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => break true,
                Err(RecvTimeoutError::Timeout) => break false,
            }
        };
        let error = self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match (error, waited) {
            (Some(e), _) => Some(e),
            (None, false) => {
                Some(format!("the collector did not answer within {}", humantime::format_duration(self.timeout)))
            }
            (None, true) => None,
        }
    }
}

/// Post every batch in order; the first failure ends the export.
fn post_all(config: &Config, inbox: &Receiver<Vec<u8>>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime to export with: {e}"))?;
    // Loading the root certificates is most of a client's start-up; a plain
    // http:// collector (the usual local agent) has no use for them.
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(!config.endpoint.starts_with("http://"))
        .timeout(config.timeout)
        .build()
        .map_err(|e| format!("no HTTP client to export with: {e}"))?;
    for body in inbox {
        let mut request =
            client.post(&config.endpoint).header(reqwest::header::CONTENT_TYPE, "application/x-protobuf").body(body);
        for (k, v) in &config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        // `send` starts the request's timer, which needs the runtime: call it inside.
        let sent = runtime.block_on(async move { request.send().await });
        let response = sent.map_err(|e| format!("POST {}: {}", config.endpoint, reason(&e)))?;
        if !response.status().is_success() {
            return Err(format!("POST {}: the collector answered {}", config.endpoint, response.status()));
        }
    }
    Ok(())
}

/// The innermost cause of a transport error ("Connection refused"), which
/// reqwest's own message leaves out.
fn reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
