//! The `mesh-metrics` server: configuration, TLS, the HTTP entry point, caching and
//! backend routing. The data side lives in the `adapters` crate, the wire side in
//! `apiservice`.
//!
//! * [`config`]: flags + YAML file → [`config::Config`].
//! * [`tls`]: serving certificate (files, hot-reloaded, or self-signed) and
//!   optional client certificates.
//! * [`reload`]: re-reading certificate and CA files when they change.
//! * [`listener`]: the HTTPS accept loop.
//! * [`api`]: where a request enters and is dispatched.
//! * [`authz`]: authorization modes; [`auth`]: delegated authentication and
//!   authorization through the Kubernetes API.
//! * [`backends`]: mesh adapters + Prometheus per backend, namespace routing.
//! * [`cache`]: the coalescing Prometheus result cache; [`response_cache`]: rendered
//!   answers, and the server's own `/metrics`; [`housekeeping`]: their bookkeeping, off
//!   the request path; [`reclaim`]: freeing what they evict.

pub mod api;
pub mod auth;
pub mod authz;
pub mod backends;
pub mod cache;
pub mod cli;
pub mod config;
pub mod custom;
pub mod housekeeping;
pub mod listener;
pub mod pods;
pub mod promapi;
pub mod reclaim;
pub mod reload;
pub mod response_cache;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::AppState;
use crate::auth::Delegated;
use crate::authz::Authorizer;
use crate::backends::Backends;
use crate::config::{AuthorizationMode, Config};

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

    /// The serving certificate (PEM) it started with, for clients that must trust it.
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

/// Starts serving `config`. Fails when the port cannot be bound, a file is
/// unusable, or (Delegated mode) the Kubernetes API cannot be used.
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
    let serving = tls::ServingCert::new(identity)?;
    let backends = Backends::new(
        &config.backends,
        config.evaluation_interval,
        config.cache_max_bytes,
    )?;
    let (tx, rx) = watch::channel(false);
    let (authorizer, client_trust) = match config.authorization_mode {
        AuthorizationMode::AlwaysAllow => (Authorizer::AlwaysAllow, None),
        AuthorizationMode::Delegated => {
            let (delegated, trust) = Delegated::start(&config.auth, rx.clone()).await?;
            (Authorizer::Delegated(Arc::new(delegated)), Some(trust))
        }
    };
    let tls = tls::server_config(serving.clone(), client_trust)?;
    let bind = SocketAddr::new(config.bind_address, config.secure_port);
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        format!(
            "cannot listen on {bind}: {e} (is the port in use? pick another with --secure-port)"
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some((cert, key)) = &config.tls_files {
        serving.reload_from(cert.clone(), key.clone(), rx.clone());
    }
    let custom = custom::CustomMetrics {
        pods: match config.custom_metrics_versions.is_empty() {
            true => None,
            false => match auth::kube::Kube::connect(config.auth.kubeconfig.as_deref()).await {
                Ok(k) => Some(pods::PodStore::start(k.client)),
                Err(e) => {
                    tracing::warn!("custom metrics: pod label selectors are unavailable: {e}");
                    None
                }
            },
        },
        versions: config.custom_metrics_versions.clone(),
    };
    let state = Arc::new(AppState {
        backends,
        custom,
        windows: config.windows,
        evaluation_interval: config.evaluation_interval,
        authorizer,
        ready: AtomicBool::new(true),
    });
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
