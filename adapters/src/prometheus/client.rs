//! [`PrometheusClient`]: instant and range queries over HTTP(S), with the configured
//! timeout, credentials and TLS, and errors that say what to check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{decode_matrix, Executor, Matrix, QueryError, Vector, VectorStream};
use crate::model::UnixMillis;

/// How to reach one Prometheus-compatible API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.linkerd-viz.svc.cluster.local:9090`.
    pub url: String,
    /// Per-query timeout (also sent to Prometheus as `timeout`).
    #[serde(default = "default_timeout", with = "crate::duration::serde_duration")]
    pub timeout: Duration,
    /// A file holding a bearer token, re-read for every request (rotated tokens work).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// PEM CA bundle to verify the server's certificate (in addition to the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Extra headers sent with every request (e.g. `X-Scope-OrgID` for Mimir).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Basic-auth credentials; the password is read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the password.
    pub password_file: PathBuf,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl PrometheusConfig {
    /// A configuration with only a URL and the default timeout.
    pub fn with_url(url: impl Into<String>) -> Self {
        PrometheusConfig {
            url: url.into(),
            timeout: default_timeout(),
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            headers: BTreeMap::new(),
        }
    }
}

/// A Prometheus HTTP API client with pooled connections.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    /// `…/api/v1/query` and `…/api/v1/query_range`, parsed once.
    query_url: reqwest::Url,
    range_url: reqwest::Url,
    http: reqwest::Client,
    cfg: PrometheusConfig,
}

impl PrometheusClient {
    /// Builds a client; fails when the URL or a TLS/auth file is unusable.
    pub fn new(cfg: PrometheusConfig) -> Result<Self, String> {
        let base = cfg.url.trim_end_matches('/').to_string();
        let parse = |url: &str| {
            reqwest::Url::parse(url).map_err(|e| format!("prometheus url {:?}: {e}", cfg.url))
        };
        let parsed = parse(&base)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "prometheus url {:?}: scheme must be http or https",
                cfg.url
            ));
        }
        let mut builder = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("prometheus caFile {}: {e}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("prometheus caFile {}: {e}", ca.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&cfg.cert_file, &cfg.key_file) {
            (Some(c), Some(k)) => {
                let mut pem = std::fs::read(c)
                    .map_err(|e| format!("prometheus certFile {}: {e}", c.display()))?;
                pem.extend(
                    std::fs::read(k)
                        .map_err(|e| format!("prometheus keyFile {}: {e}", k.display()))?,
                );
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| format!("prometheus client certificate: {e}"))?;
                builder = builder.identity(id);
            }
            (None, None) => {}
            _ => return Err("prometheus certFile and keyFile must be given together".into()),
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("prometheus header {k:?}: {e}"))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| format!("prometheus header {k:?}: {e}"))?;
            headers.insert(name, value);
        }
        builder = builder.default_headers(headers);
        let http = builder
            .build()
            .map_err(|e| format!("prometheus client: {e}"))?;
        Ok(PrometheusClient {
            query_url: parse(&format!("{base}/api/v1/query"))?,
            range_url: parse(&format!("{base}/api/v1/query_range"))?,
            base,
            http,
            cfg,
        })
    }

    /// The base URL this client talks to.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Runs one instant query.
    pub async fn query(&self, promql: &str, at: UnixMillis) -> Result<Vector, QueryError> {
        let time = format!("{}.{:03}", at.0.div_euclid(1000), at.0.rem_euclid(1000));
        let timeout = format!("{}ms", self.cfg.timeout.as_millis());
        let mut req = self
            .http
            .post(self.query_url.clone())
            .timeout(self.cfg.timeout)
            .form(&[("query", promql), ("time", &time), ("timeout", &timeout)]);
        req = self.authorize(req).await?;
        let mut resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        // decode each piece while Prometheus is still writing the next
        let mut answer = VectorStream::new(resp.content_length().unwrap_or(0) as usize);
        while let Some(piece) = resp.chunk().await.map_err(|e| self.transport_error(e))? {
            answer.feed(&piece);
        }
        answer.finish(&self.base, status)
    }

    /// Runs one range query: `promql` at every `step` from `start` to `end`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: UnixMillis,
        end: UnixMillis,
        step: Duration,
    ) -> Result<Matrix, QueryError> {
        let secs = |t: UnixMillis| format!("{}.{:03}", t.0.div_euclid(1000), t.0.rem_euclid(1000));
        let step = format!("{}ms", step.as_millis().max(1));
        let timeout = format!("{}ms", self.cfg.timeout.as_millis());
        let mut req = self
            .http
            .post(self.range_url.clone())
            .timeout(self.cfg.timeout)
            .form(&[
                ("query", promql),
                ("start", &secs(start)),
                ("end", &secs(end)),
                ("step", &step),
                ("timeout", &timeout),
            ]);
        req = self.authorize(req).await?;
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        decode_matrix(&self.base, status, &body)
    }

    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, QueryError> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| QueryError::Unreachable {
                url: self.base.clone(),
                detail: format!("cannot read credentials file {}: {e}", p.display()),
            })
        };
        if let Some(f) = &self.cfg.bearer_token_file {
            return Ok(req.bearer_auth(read(f)?.trim()));
        }
        if let Some(b) = &self.cfg.basic_auth {
            return Ok(req.basic_auth(
                &b.username,
                Some(read(&b.password_file)?.trim_end_matches('\n')),
            ));
        }
        Ok(req)
    }

    fn transport_error(&self, e: reqwest::Error) -> QueryError {
        if e.is_timeout() {
            QueryError::Timeout {
                url: self.base.clone(),
                timeout: self.cfg.timeout,
            }
        } else {
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = format!("{detail}: {s}");
                src = s.source();
            }
            QueryError::Unreachable {
                url: self.base.clone(),
                detail,
            }
        }
    }
}

impl Executor for PrometheusClient {
    fn instant<'a>(
        &'a self,
        promql: &'a str,
        at: UnixMillis,
    ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>> {
        Box::pin(async move { self.query(promql, at).await.map(Arc::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_urls() {
        assert!(PrometheusClient::new(PrometheusConfig::with_url("ftp://x")).is_err());
        assert!(PrometheusClient::new(PrometheusConfig::with_url("not a url")).is_err());
        assert!(
            PrometheusClient::new(PrometheusConfig::with_url("http://127.0.0.1:9090/")).is_ok()
        );
    }
}
