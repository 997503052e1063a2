//! The least a server can do for a cache miss: a *zero-work proxy* on the server's HTTPS
//! stack ([`crate::https`], as the ceiling) that sends the
//! PromQL mesh-metrics sends for the request's path (its plan, from
//! [`plans::distinct_queries`]) to Prometheus all at once, on the server's own kind of
//! Prometheus connection ([`adapters::prometheus::Direct`]: pooled keep-alive HTTP/1.1,
//! no Nagle delay, driven by the task that asks), reads every answer to its end without
//! decoding it, and answers one fixed body of the server's size.
//!
//! Its latency is the floor plus what the second HTTPS hop costs on the machine (the
//! client's request to a server that then waits on Prometheus, and the wake-ups on both
//! ends): no server that asks Prometheus these queries can answer sooner. mesh-metrics ÷
//! proxy is what the server's own work (cache, decoding, folding, rendering) costs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adapters::prometheus::Direct;
use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use crate::{plans, prom};

/// The Prometheus the proxy asks, and the server settings it imitates.
#[derive(Debug, Clone)]
pub struct ProxyTo {
    /// Prometheus' base URL.
    pub prometheus: String,
    /// The server's `--default-window`.
    pub default_window: Duration,
    /// The server's `--evaluation-interval`.
    pub evaluation_interval: Duration,
    /// The server's `--prometheus-timeout`.
    pub timeout: Duration,
}

/// What the proxy forwards to.
struct Upstream {
    prometheus: Direct,
    default_window: Duration,
    evaluation_interval_ms: i64,
    timeout: Duration,
    body: Bytes,
}

impl Upstream {
    /// Sends the plan of `path_and_query` and reads every answer; the fixed body on success.
    /// The group's discovery path (the load generator's untimed warm-up request) asks
    /// Prometheus nothing, as on the server.
    async fn answer(&self, path_and_query: &str) -> Response {
        let queries = if path_and_query == apiservice::BASE_PATH {
            Vec::new()
        } else {
            match plans::distinct_queries(&[path_and_query.to_string()], self.default_window) {
                Ok(q) => q,
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        let at = now - now.rem_euclid(self.evaluation_interval_ms);
        let time = format!("{}.{:03}", at.div_euclid(1000), at.rem_euclid(1000));
        let timeout = format!("{}ms", self.timeout.as_millis());
        let sent = futures::future::try_join_all(queries.iter().map(|promql| {
            let (headers, form) = prom::query_form(promql, &time, &timeout);
            async move {
                let mut answer = self.prometheus.post("/api/v1/query", headers, form).await?;
                let mut read = 0;
                while let Some(piece) = answer.chunk().await? {
                    read += piece.len();
                }
                Ok::<_, String>((answer.status, read))
            }
        }));
        match tokio::time::timeout(self.timeout, sent).await {
            Ok(Ok(answers)) if answers.iter().all(|(status, _)| *status == 200) => {
                let mut resp = Response::new(Body::from(self.body.clone()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
            Ok(Ok(answers)) => text(
                StatusCode::BAD_GATEWAY,
                format!("Prometheus answered (status, bytes) {answers:?}\n"),
            ),
            Ok(Err(e)) => text(
                StatusCode::BAD_GATEWAY,
                format!("Prometheus unreachable: {e}\n"),
            ),
            Err(_) => text(
                StatusCode::GATEWAY_TIMEOUT,
                format!("Prometheus did not answer within {:?}\n", self.timeout),
            ),
        }
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    let mut resp = Response::new(Body::from(msg));
    *resp.status_mut() = status;
    resp
}

/// Serves the proxy on `listener` until the process is killed. Requests are planned
/// with the server's `--default-window` when they carry no `t`, at evaluation times
/// aligned to its `--evaluation-interval`, with its Prometheus `timeout` (`upstream`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    cert: &Path,
    key: &Path,
    body: Bytes,
    upstream: ProxyTo,
) -> Result<()> {
    let url = reqwest::Url::parse(&upstream.prometheus)?;
    // the server's connections to an http:// Prometheus (adapters/src/prometheus/client.rs)
    let prometheus = Direct::for_url(&url, upstream.timeout.min(Duration::from_secs(5)))
        .with_context(|| {
            format!("the proxy needs an http:// Prometheus URL and no HTTP_PROXY, not {url}")
        })?;
    let upstream = Arc::new(Upstream {
        prometheus,
        default_window: upstream.default_window,
        evaluation_interval_ms: (upstream.evaluation_interval.as_millis() as i64).max(1),
        timeout: upstream.timeout,
        body,
    });
    let app = Router::new().fallback(move |req: Request| {
        let upstream = upstream.clone();
        async move {
            let target = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            upstream.answer(&target).await
        }
    });
    crate::https::serve(listener, cert, key, app).await
}
