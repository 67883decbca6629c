//! One PostgreSQL connection on a thread of its own: callers on any thread
//! (the script's, a step's, the bus's) hand it a query and wait for the
//! answer, so no caller needs to be outside a tokio runtime. The schema is
//! created on first use and migrated by version.

use std::future::Future;
use std::str::FromStr;
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use super::error::StoreError;

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime, Arc<Client>) + Send>;

/// A connection; queries run one at a time, in the order they are given.
pub struct Db {
    jobs: Sender<Job>,
    config: Config,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// How long a connection attempt may take before the store counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one entry per version; a store at version N gets N+1.. applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE capstan_runs (
        run_id text PRIMARY KEY, playbook text NOT NULL, username text NOT NULL, host text NOT NULL,
        place text NOT NULL, started text NOT NULL, params jsonb NOT NULL DEFAULT '{}'::jsonb);
     CREATE TABLE capstan_events (id bigserial PRIMARY KEY, run_id text NOT NULL, line text NOT NULL);
     CREATE INDEX capstan_events_run ON capstan_events (run_id, id);
     CREATE TABLE capstan_values (run_id text NOT NULL, file text NOT NULL, value text NOT NULL,
        PRIMARY KEY (run_id, file));
     CREATE TABLE capstan_step_logs (id bigserial PRIMARY KEY, run_id text NOT NULL, seq integer NOT NULL,
        tail text NOT NULL, location text NOT NULL);
     CREATE TABLE capstan_leases (name text PRIMARY KEY, run_id text NOT NULL, username text NOT NULL,
        host text NOT NULL, pid integer NOT NULL, since text NOT NULL, expires timestamptz NOT NULL,
        token bigint NOT NULL, released boolean NOT NULL DEFAULT false);
     CREATE TABLE capstan_waiters (name text NOT NULL, run_id text NOT NULL, since timestamptz NOT NULL,
        seen timestamptz NOT NULL, PRIMARY KEY (name, run_id));"];

impl Db {
    /// Connect to `url` and bring its schema up to date.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("capstan");
        // A store that stops answering (a network cut, not a closed
        // connection) is noticed instead of hanging the run.
        config.keepalives(true).keepalives_idle(Duration::from_secs(10));
        let db = Self::start(config)?;
        db.migrate()?;
        // Every step's journal lines wait for their insert; a commit that
        // waits for the server's disk too would cost each step a flush.
        db.call(
            |c| async move { c.batch_execute("SET synchronous_commit = off; SET statement_timeout = '30s'").await },
        )?;
        Ok(db)
    }

    /// Another connection to the same store (a lease's heartbeat).
    pub fn reconnect(&self) -> Result<Self, StoreError> {
        Self::start(self.config.clone())
    }

    fn start(config: Config) -> Result<Self, StoreError> {
        let (jobs, rx) = channel::<Job>();
        let (ready_tx, ready_rx) = sync_channel::<Result<(), StoreError>>(1);
        let cfg = config.clone();
        std::thread::Builder::new()
            .name("state-store".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Database(e.to_string())));
                        return;
                    }
                };
                let client = match runtime.block_on(cfg.connect(NoTls)) {
                    Ok((client, connection)) => {
                        runtime.spawn(connection);
                        Arc::new(client)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Database(describe(&e))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job(&runtime, client.clone());
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the connection thread: {e}")))?;
        ready_rx.recv().map_err(|_| StoreError::Database("the connection thread stopped".into()))??;
        Ok(Self { jobs, config })
    }

    /// Run `query` on the connection and wait for its answer.
    pub fn call<T, F, Fut>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let (tx, rx) = sync_channel(1);
        let job: Job = Box::new(move |runtime, client| {
            let _ = tx.send(runtime.block_on(query(client)).map_err(|e| StoreError::Database(describe(&e))));
        });
        let closed = || StoreError::Database("the connection is closed".into());
        self.jobs.send(job).map_err(|_| closed())?;
        rx.recv().map_err(|_| closed())?
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.call(|client| async move {
            // First use by many runs at once: one creates, the others wait.
            client
                .batch_execute(
                    "BEGIN; SELECT pg_advisory_xact_lock(7145, 0);
                     CREATE TABLE IF NOT EXISTS capstan_migrations (
                        version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());",
                )
                .await?;
            let row = client.query_one("SELECT coalesce(max(version), 0) FROM capstan_migrations", &[]).await?;
            let at: i32 = row.get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
                client.batch_execute(sql).await?;
                let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
                client.execute("INSERT INTO capstan_migrations (version) VALUES ($1)", &[&version]).await?;
            }
            client.batch_execute("COMMIT").await
        })
    }
}

/// The error with its cause: tokio-postgres says "error connecting to
/// server" and keeps the why in its source.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
