//! The least a server can do for a cache miss: a *zero-work proxy* on the server's HTTPS
//! stack ([`crate::https`], as the ceiling) that sends the
//! PromQL mesh-metrics sends for the request's path (its plan, from
//! [`plans::distinct_queries`]) to Prometheus all at once, with the server's client
//! settings (pooled keep-alive connections, no Nagle delay), reads every answer to its
//! end without decoding it, and answers one fixed body of the server's size.
//!
//! Its latency is the floor plus what the second HTTPS hop costs on the machine (the
//! client's request to a server that then waits on Prometheus, and the wake-ups on both
//! ends): no server that asks Prometheus these queries can answer sooner. mesh-metrics ÷
//! proxy is what the server's own work (cache, decoding, folding, rendering) costs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use crate::plans;

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
    http: reqwest::Client,
    query_url: reqwest::Url,
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
            let req = self
                .http
                .post(self.query_url.clone())
                .timeout(self.timeout)
                .form(&[
                    ("query", promql.as_str()),
                    ("time", &time),
                    ("timeout", &timeout),
                ]);
            async move {
                let resp = req.send().await?;
                let status = resp.status();
                let answer = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, answer.len()))
            }
        }))
        .await;
        match sent {
            Ok(answers) if answers.iter().all(|(status, _)| status.is_success()) => {
                let mut resp = Response::new(Body::from(self.body.clone()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
            Ok(answers) => text(
                StatusCode::BAD_GATEWAY,
                format!("Prometheus answered {answers:?}\n"),
            ),
            Err(e) => text(
                StatusCode::BAD_GATEWAY,
                format!("Prometheus unreachable: {e}\n"),
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
    // the server's Prometheus client settings (adapters/src/prometheus/client.rs)
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()?;
    let upstream = Arc::new(Upstream {
        http,
        query_url: reqwest::Url::parse(&format!(
            "{}/api/v1/query",
            upstream.prometheus.trim_end_matches('/')
        ))?,
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
