//! The ceiling of the hit path: a trivial handler answering every request with one fixed
//! JSON body, served by the server's own HTTPS stack (`mesh_metrics::listener::serve` with
//! `mesh_metrics::tls`), so that the only difference from a cache hit is the server's work.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use axum::body::Body;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue};
use mesh_metrics::{listener, tls};

/// Serves `body` on `127.0.0.1:port` (0: any free port) with the certificate in `cert`/`key`
/// until the process is killed; prints `listening on ADDR` once bound.
pub async fn serve(cert: &Path, key: &Path, body: Bytes, port: u16) -> Result<()> {
    let serving = tls::ServingCert::new(tls::load(cert, key).map_err(|e| anyhow!(e))?)
        .map_err(|e| anyhow!(e))?;
    let config = tls::server_config(serving, None).map_err(|e| anyhow!(e))?;
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    listener::serve(listener, config, app, rx, Duration::from_secs(1)).await;
    Ok(())
}
