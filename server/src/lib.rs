//! The `mesh-metrics` server: configuration, TLS, the HTTP entry point, caching and
//! backend routing. The data side lives in the `adapters` crate, the wire side in
//! `apiservice`.
//!
//! * [`config`]: flags + YAML file → [`config::Config`].
//! * [`tls`]: serving certificate (files or self-signed).
//! * [`listener`]: the HTTPS accept loop.
//! * [`api`]: where a request enters and is dispatched.
//! * [`authz`]: authorization modes.
//! * [`backends`]: mesh adapters + Prometheus per backend, namespace routing.
//! * [`cache`]: the coalescing Prometheus result cache.

pub mod api;
pub mod authz;
pub mod backends;
pub mod cache;
pub mod cli;
pub mod config;
pub mod listener;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::AppState;
use crate::authz::Authorizer;
use crate::backends::Backends;
use crate::config::Config;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    cert_pem: String,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The serving certificate (PEM), for clients that must trust it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Stops accepting, marks itself not ready, and waits for open requests (at most `drain`).
    pub async fn shutdown(self, drain: Duration) {
        self.state.ready.store(false, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(drain + Duration::from_secs(1), self.task).await;
    }
}

/// Starts serving `config`. Fails when the port cannot be bound or a file is unusable.
pub async fn start(config: &Config, drain: Duration) -> Result<Server, String> {
    let identity = match &config.tls_files {
        Some((cert, key)) => tls::load(cert, key)?,
        None => {
            tracing::info!(
                "no --tls-cert-file given: generated an in-memory self-signed certificate for localhost, 127.0.0.1 and ::1"
            );
            tls::self_signed()?
        }
    };
    let cert_pem = identity.cert_pem.clone();
    let tls = tls::server_config(identity)?;
    let backends = Backends::new(
        &config.backends,
        config.evaluation_interval,
        config.cache_max_bytes,
    )?;
    let state = Arc::new(AppState {
        backends,
        windows: config.windows,
        evaluation_interval: config.evaluation_interval,
        authorizer: Authorizer::new(config.authorization_mode),
        ready: AtomicBool::new(true),
    });
    let bind = SocketAddr::new(config.bind_address, config.secure_port);
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        format!(
            "cannot listen on {bind}: {e} (is the port in use? pick another with --secure-port)"
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = watch::channel(false);
    let app = api::router(state.clone());
    let task = tokio::spawn(listener::serve(listener, tls, app, rx, drain));
    Ok(Server {
        addr,
        cert_pem,
        state,
        shutdown: tx,
        task,
    })
}
