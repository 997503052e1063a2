//! The ceiling of the hit path: a trivial handler answering every request with one fixed
//! JSON body, served by the server's own HTTPS stack ([`crate::https`]), so that the only
//! difference from a cache hit is the server's work.

use std::path::Path;

use anyhow::Result;
use axum::body::Body;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue};

/// Serves `body` on `listener` with the certificate in `cert`/`key` until the process is
/// killed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cert: &Path,
    key: &Path,
    body: Bytes,
) -> Result<()> {
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
    crate::https::serve(listener, cert, key, app).await
}
