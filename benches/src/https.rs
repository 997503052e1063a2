//! Serving a router the way the server does: `mesh_metrics::listener` with a
//! `mesh_metrics::tls` certificate, for the ceiling and the proxy.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use axum::Router;
use mesh_metrics::{listener, tls};

/// Serves `app` on `listener` over the server's HTTPS stack with the certificate in
/// `cert`/`key`, until the process is killed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cert: &Path,
    key: &Path,
    app: Router,
) -> Result<()> {
    let serving = tls::ServingCert::new(tls::load(cert, key).map_err(|e| anyhow!(e))?)
        .map_err(|e| anyhow!(e))?;
    let config = tls::server_config(serving, None).map_err(|e| anyhow!(e))?;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    listener::serve(listener, config, app, rx, Duration::from_secs(1)).await;
    Ok(())
}
