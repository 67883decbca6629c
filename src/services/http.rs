//! HTTP for primitives: the run's one client, kept on the services handle
//! and built on first use so connections are reused from call to call; a
//! builder for a caller that needs a pool of its own (`health::probe`); and
//! the one send, which Ctrl-C, the run's timeout and step timeouts cut
//! short as they cut [`wait::block_on`] short.
//!
//! Timeouts are per request (`RequestBuilder::timeout`), never on a client.

use std::fmt;
use std::future::Future;

pub use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use rhai::EvalAltResult;

use super::{wait, Services};
use crate::cancel::Interrupt;
use crate::failure::{failure, terminated, FailureKind};

/// Why a request got no answer.
#[derive(Debug)]
pub enum HttpError {
    /// There is no async runtime to send it on.
    NoRuntime,
    /// The client could not be built.
    Client(reqwest::Error),
    /// The step or run was stopped while it was under way.
    Interrupted(Interrupt),
    /// It failed on the way: no connection, timed out, a broken body.
    Transport(reqwest::Error),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NoRuntime => f.write_str("no async runtime for network checks"),
            HttpError::Client(e) => write!(f, "cannot build the HTTP client: {e}"),
            HttpError::Interrupted(_) => f.write_str("interrupted"),
            HttpError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Client(e) | HttpError::Transport(e) => Some(e),
            HttpError::NoRuntime | HttpError::Interrupted(_) => None,
        }
    }
}

/// As a script error: an interruption stops the run as every wait does.
impl From<HttpError> for Box<EvalAltResult> {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Interrupted(reason) => terminated(reason),
            HttpError::Transport(_) => failure(FailureKind::Command, e),
            HttpError::NoRuntime | HttpError::Client(_) => failure(FailureKind::Fail, e),
        }
    }
}

/// A client builder with the settings every capstan client has; for a
/// caller that needs its own pool (`pool_max_idle_per_host`).
pub fn builder() -> reqwest::ClientBuilder {
    Client::builder()
}

/// Build a client from [`builder`].
pub fn build(builder: reqwest::ClientBuilder) -> Result<Client, HttpError> {
    builder.build().map_err(HttpError::Client)
}

/// The run's shared client (a cheap handle onto one connection pool).
pub fn client(services: &Services) -> Result<Client, HttpError> {
    if let Some(client) = services.http.get() {
        return Ok(client.clone());
    }
    let client = build(builder())?;
    Ok(services.http.get_or_init(|| client).clone())
}

/// Send a request and wait for the response's head.
pub fn send(services: &Services, request: RequestBuilder) -> Result<Response, HttpError> {
    // `send` starts the request's timer, which needs the runtime: call it inside.
    wait_for(services, async move { request.send().await })
}

/// Read a response's body as text, as cancellable as [`send`].
pub fn text(services: &Services, response: Response) -> Result<String, HttpError> {
    wait_for(services, response.text())
}

fn wait_for<T>(services: &Services, fut: impl Future<Output = Result<T, reqwest::Error>>) -> Result<T, HttpError> {
    let rt = services.runtime.clone().ok_or(HttpError::NoRuntime)?;
    wait::until_interrupted(&rt, services, fut).map_err(HttpError::Interrupted)?.map_err(HttpError::Transport)
}
