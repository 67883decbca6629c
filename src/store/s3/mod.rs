//! An S3 state store (`s3://bucket/prefix?endpoint=URL&region=R`): the
//! same journals and locks as the PostgreSQL store, kept as objects. S3 has
//! no append, so a run's journal is one object per flushed batch, numbered
//! so that listing gives them in order; a lock is one object per name,
//! written only with conditional requests (`If-None-Match: *` to create,
//! `If-Match: ETAG` to renew, take over and release). Requests are signed
//! (presigned URLs, `SigV4`) with the usual AWS environment variables and
//! sent by the crate's HTTP client on a thread of its own, so callers on
//! any thread (inside a tokio runtime or not) can wait for them.

pub mod journal;
pub mod lease;
pub mod runs;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::error::StoreError;

/// How long a presigned request stays valid: only as long as it takes to send.
const SIGNED_FOR: Duration = Duration::from_secs(300);
/// How long one request may take before the store counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime, &reqwest::Client) + Send>;

/// An answer from the store.
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
    /// The server's `Date`, milliseconds since the epoch.
    date_ms: Option<i64>,
}

/// A conditional write.
pub enum Cond<'a> {
    None,
    /// Only when no object has the key (`If-None-Match: *`).
    Absent,
    /// Only when the object is still this version (`If-Match`).
    Etag(&'a str),
}

/// A bucket and a key prefix, with the credentials that sign requests.
pub struct S3 {
    bucket: Bucket,
    credentials: Option<Credentials>,
    prefix: String,
    jobs: Sender<Job>,
    /// The server's clock minus this machine's, in milliseconds, from the
    /// `Date` of the last answer: lease expiries are in the server's time,
    /// so machines whose clocks differ agree on them (to a second).
    skew_ms: AtomicI64,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3")
    }
}

impl S3 {
    /// Open `bucket` under `prefix` at `endpoint` (AWS when `None`) and
    /// check it answers: a store that cannot be listed is refused before
    /// anything runs.
    pub fn connect(
        bucket: &str,
        prefix: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, StoreError> {
        let region = region
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_string());
        // A named endpoint (MinIO, SeaweedFS, ...) takes the bucket in the
        // path; AWS itself takes it in the host name.
        let (endpoint, style) = match endpoint {
            Some(e) => (e.to_string(), UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let endpoint = endpoint.parse().map_err(|e| StoreError::S3(format!("endpoint {endpoint}: {e}")))?;
        let bucket = Bucket::new(endpoint, style, bucket.to_string(), region)
            .map_err(|e| StoreError::S3(format!("bucket `{bucket}`: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        let s3 =
            Self { bucket, credentials: Credentials::from_env(), prefix, jobs: start()?, skew_ms: AtomicI64::new(0) };
        s3.list("runs/", 1)?;
        Ok(s3)
    }

    /// The full key of `key` under the store's prefix.
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Send a signed request and wait for its answer; a status other than
    /// 2xx, 404 and 412 is an error.
    fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        cond: &Cond,
        body: Option<String>,
    ) -> Result<Reply, StoreError> {
        let mut headers = reqwest::header::HeaderMap::new();
        match cond {
            Cond::None => {}
            Cond::Absent => {
                headers.insert(reqwest::header::IF_NONE_MATCH, reqwest::header::HeaderValue::from_static("*"));
            }
            Cond::Etag(tag) => {
                let v = reqwest::header::HeaderValue::from_str(tag).map_err(|e| StoreError::S3(e.to_string()))?;
                headers.insert(reqwest::header::IF_MATCH, v);
            }
        }
        let (tx, rx) = sync_channel(1);
        let job: Job = Box::new(move |runtime, client| {
            let answer = runtime.block_on(async move {
                let mut req = client.request(method, url.as_str()).headers(headers).timeout(TIMEOUT);
                if let Some(body) = body {
                    req = req.body(body);
                }
                let resp = req.send().await.map_err(describe)?;
                let status = resp.status().as_u16();
                let header = |h| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
                let etag = header(reqwest::header::ETAG);
                let date_ms = header(reqwest::header::DATE).as_deref().and_then(http_date_ms);
                let body = resp.text().await.map_err(describe)?;
                Ok::<_, String>(Reply { status, etag, body, date_ms })
            });
            let _ = tx.send(answer);
        });
        self.jobs.send(job).map_err(|_| StoreError::S3("the store's client stopped".into()))?;
        let reply =
            rx.recv().map_err(|_| StoreError::S3("the store's client stopped".into()))?.map_err(StoreError::S3)?;
        if let Some(server) = reply.date_ms {
            self.skew_ms.store(server - local_ms(), Ordering::Relaxed);
        }
        if (200..300).contains(&reply.status) || reply.status == 404 || reply.status == 412 {
            return Ok(reply);
        }
        Err(StoreError::S3(format!("the store answered {}: {}", reply.status, error_code(&reply.body))))
    }

    /// Now by the server's clock, milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        local_ms() + self.skew_ms.load(Ordering::Relaxed)
    }

    /// The object `key`, `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Reply>, StoreError> {
        let key = self.key(key);
        let url = self.bucket.get_object(self.credentials.as_ref(), &key).sign(SIGNED_FOR);
        let reply = self.send(reqwest::Method::GET, url, &Cond::None, None)?;
        Ok((reply.status != 404).then_some(reply))
    }

    /// Write `key`; `Ok(None)` when the condition did not hold, else the new `ETag`.
    pub fn put(&self, key: &str, body: String, cond: &Cond) -> Result<Option<String>, StoreError> {
        let key = self.key(key);
        let url = self.bucket.put_object(self.credentials.as_ref(), &key).sign(SIGNED_FOR);
        let reply = self.send(reqwest::Method::PUT, url, cond, Some(body))?;
        match reply.status {
            412 => Ok(None),
            404 => Err(StoreError::S3(format!("the bucket `{}` does not exist", self.bucket.name()))),
            _ => Ok(Some(reply.etag.unwrap_or_default())),
        }
    }

    /// Up to `max` keys (relative to the prefix) starting with `under`,
    /// in order; every key when `max` is 0.
    pub fn list(&self, under: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let under = self.key(under);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(self.credentials.as_ref());
            action.with_prefix(under.as_str());
            if max > 0 {
                action.with_max_keys(max);
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            let reply = self.send(reqwest::Method::GET, url, &Cond::None, None)?;
            if reply.status == 404 {
                return Err(StoreError::S3(format!("the bucket `{}` does not exist", self.bucket.name())));
            }
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&reply.body)
                .map_err(|e| StoreError::S3(format!("cannot read the store's listing: {e}")))?;
            keys.extend(page.contents.into_iter().filter_map(|c| c.key.strip_prefix(&self.prefix).map(str::to_string)));
            token = page.next_continuation_token;
            if token.is_none() || (max > 0 && keys.len() >= max) {
                break;
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// The client's thread: one runtime, one connection pool.
fn start() -> Result<Sender<Job>, StoreError> {
    let (jobs, rx) = channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::S3(e.to_string()))?;
    let client =
        reqwest::Client::builder().connect_timeout(TIMEOUT).build().map_err(|e| StoreError::S3(e.to_string()))?;
    std::thread::Builder::new()
        .name("state-store-s3".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job(&runtime, &client);
            }
        })
        .map_err(|e| StoreError::S3(e.to_string()))?;
    Ok(jobs)
}

/// The error with its cause (reqwest keeps the why in its source), without
/// the request's URL: a presigned URL carries the access key and signature.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The `<Code>` of an S3 error document, else the start of the body.
fn error_code(body: &str) -> String {
    match (body.find("<Code>"), body.find("</Code>")) {
        (Some(a), Some(b)) if a + 6 <= b => body[a + 6..b].to_string(),
        _ => body.chars().take(200).collect(),
    }
}

fn local_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An HTTP date (`Mon, 07 Dec 2026 15:19:29 GMT`) in milliseconds since the epoch.
fn http_date_ms(date: &str) -> Option<i64> {
    let mut parts = date.split_whitespace().skip(1);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| Some(*m) == parts.clone().next())? as i64
        + 1;
    let year: i64 = parts.nth(1)?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(str::parse::<i64>);
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_read() {
        assert_eq!(super::http_date_ms("Thu, 01 Jan 1970 00:00:01 GMT"), Some(1000));
        assert_eq!(super::http_date_ms("Mon, 07 Dec 2026 15:19:29 GMT"), Some(1_796_656_769_000));
        assert_eq!(super::http_date_ms("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600_000));
        assert_eq!(super::http_date_ms("yesterday"), None);
    }
}
