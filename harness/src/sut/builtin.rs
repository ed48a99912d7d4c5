//! The built-in booking designs as a [`System`]: each session is a
//! [`workloads::Client`] with its own Postgres (and Redis) connection, in this process.
//! Clients go through the fault proxies; setup and the final read go straight to the
//! server, which no fault touches.

use std::sync::Arc;
use std::time::Duration;

use checkers::BookingRow;
use workloads::{Client, Config, DesignName, LockEndpoints, Outcome, Request};

use super::{BoxFuture, Session, SutError, System};
use crate::nodes::Cluster;

/// One built-in design against the run's servers.
pub struct BuiltinSystem {
    design: DesignName,
    cfg: Config,
    /// Through the fault proxies: what users get.
    pg_url: String,
    lock: LockEndpoints,
    /// Straight to the server: setup and the final read.
    direct_pg_url: String,
    /// The longest a connect may take before it counts as failed.
    connect_timeout: Duration,
}

impl BuiltinSystem {
    /// `design` with the run's client settings, against `cluster`.
    pub fn new(
        design: DesignName,
        cfg: Config,
        cluster: &Arc<Cluster>,
        connect_timeout: Duration,
    ) -> BuiltinSystem {
        BuiltinSystem {
            design,
            cfg,
            pg_url: cluster.postgres.url(),
            lock: cluster.lock_endpoints(),
            direct_pg_url: cluster.postgres.direct_url(),
            connect_timeout,
        }
    }

    async fn connect_direct(&self) -> Result<tokio_postgres::Client, String> {
        let connect = tokio_postgres::connect(&self.direct_pg_url, tokio_postgres::NoTls);
        // The address names the server in the error, never its password: errors reach
        // run.log, the history (a failed read's error) and stderr.
        let at = checkers::text::redact_credentials(&self.direct_pg_url);
        // Setup and the final read are not ops: a tiny --op-timeout must not starve them.
        let timeout = self.connect_timeout.max(Duration::from_secs(10));
        let (client, conn) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connecting to postgres at {at} timed out after {timeout:?}"))?
            .map_err(|e| format!("connecting to postgres at {at}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

impl System for BuiltinSystem {
    fn name(&self) -> String {
        self.design.to_string()
    }

    fn setup(&self) -> BoxFuture<'_, Result<(), SutError>> {
        Box::pin(async move {
            let setup_error = |reason: String| SutError::Setup {
                system: format!("the {} schema", self.design),
                reason,
            };
            let client = self.connect_direct().await.map_err(setup_error)?;
            workloads::setup(self.design, &client, &self.cfg)
                .await
                .map_err(|e| setup_error(e.to_string()))
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Session>, SutError>> {
        Box::pin(async move {
            let connect =
                Client::connect_to(self.design, self.cfg.clone(), &self.pg_url, &self.lock);
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(Ok(client)) => Ok(Box::new(BuiltinSession(client)) as Box<dyn Session>),
                Ok(Err(e)) => Err(SutError::Open(with_causes(&e))),
                Err(_) => Err(SutError::Open(format!(
                    "timed out after {:?}",
                    self.connect_timeout
                ))),
            }
        })
    }

    fn read_all(&self) -> BoxFuture<'_, Result<Vec<BookingRow>, SutError>> {
        Box::pin(async move {
            let client = self.connect_direct().await.map_err(SutError::Read)?;
            workloads::read_all(self.design, &client)
                .await
                .map_err(|e| SutError::Read(e.to_string()))
        })
    }
}

/// An error and its causes on one line: tokio-postgres says only "db error" at the top,
/// and the server's words ("sorry, too many clients already") are its source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// One simulated user's client.
struct BuiltinSession(Client);

impl Session for BuiltinSession {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match request {
                Request::Book(b) => self.0.book(b).await,
                Request::Cancel { booking, request } => self.0.cancel(*booking, request).await,
            }
        })
    }
}
