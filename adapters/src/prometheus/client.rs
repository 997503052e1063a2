//! [`PrometheusClient`]: instant and range queries over HTTP(S), with the configured
//! timeout, credentials and TLS, and errors that say what to check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use super::direct::{self, Direct};
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
///
/// `http://` URLs are served by [`Direct`] connections, driven by the task that asks
/// (unless the URL holds credentials or an HTTP proxy is set in the environment); the
/// rest by reqwest.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    /// `…/api/v1/query` and `…/api/v1/query_range`, parsed once.
    query_url: reqwest::Url,
    range_url: reqwest::Url,
    http: reqwest::Client,
    direct: Option<Arc<Direct>>,
    /// Sent with every request: the form's content type and the configured extra headers.
    headers: HeaderMap,
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
        let connect_timeout = cfg.timeout.min(Duration::from_secs(5));
        let mut builder = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout);
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
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("prometheus header {k:?}: {e}"))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| format!("prometheus header {k:?}: {e}"))?;
            headers.insert(name, value);
        }
        let http = builder
            .build()
            .map_err(|e| format!("prometheus client: {e}"))?;
        Ok(PrometheusClient {
            query_url: parse(&format!("{base}/api/v1/query"))?,
            range_url: parse(&format!("{base}/api/v1/query_range"))?,
            direct: Direct::for_url(&parsed, connect_timeout).map(Arc::new),
            base,
            http,
            headers,
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
        let form = self.form(&[("query", promql), ("time", &time)]);
        self.within_timeout(async {
            let mut reply = self.post(&self.query_url, form).await?;
            // decode each piece while Prometheus is still writing the next
            let mut answer = VectorStream::new(reply.content_length().unwrap_or(0) as usize);
            while let Some(piece) = reply.chunk().await.map_err(|e| self.unreachable(e))? {
                answer.feed(piece);
            }
            answer.finish(&self.base, reply.status())
        })
        .await
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
        let form = self.form(&[
            ("query", promql),
            ("start", &secs(start)),
            ("end", &secs(end)),
            ("step", &step),
        ]);
        self.within_timeout(async {
            let mut reply = self.post(&self.range_url, form).await?;
            let mut body = Vec::with_capacity(reply.content_length().unwrap_or(0) as usize);
            while let Some(piece) = reply.chunk().await.map_err(|e| self.unreachable(e))? {
                body.extend_from_slice(&piece);
            }
            decode_matrix(&self.base, reply.status(), &body)
        })
        .await
    }

    /// `fields` and Prometheus' own `timeout` (the client's), form-encoded.
    fn form(&self, fields: &[(&str, &str)]) -> Bytes {
        let timeout = format!("{}ms", self.cfg.timeout.as_millis());
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .append_pair("timeout", &timeout)
            .finish()
            .into()
    }

    /// Runs `query` (sending and reading) within the configured timeout.
    async fn within_timeout<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        tokio::time::timeout(self.cfg.timeout, query)
            .await
            .unwrap_or_else(|_| {
                Err(QueryError::Timeout {
                    url: self.base.clone(),
                    timeout: self.cfg.timeout,
                })
            })
    }

    /// POSTs `form` to `url` with the configured headers and credentials.
    async fn post(&self, url: &reqwest::Url, form: Bytes) -> Result<Reply<'_>, QueryError> {
        let mut headers = self.headers.clone();
        if let Some(auth) = self.authorization()? {
            headers.insert(AUTHORIZATION, auth);
        }
        match &self.direct {
            Some(direct) => direct
                .post(url.path(), headers, form)
                .await
                .map(Reply::Direct)
                .map_err(|e| self.unreachable(e)),
            None => self
                .http
                .post(url.clone())
                .headers(headers)
                .body(form)
                .send()
                .await
                .map(Reply::Reqwest)
                .map_err(|e| self.transport_error(e)),
        }
    }

    /// The `Authorization` header of the configured credentials, read from their files
    /// for every request (rotated credentials work).
    fn authorization(&self) -> Result<Option<HeaderValue>, QueryError> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| QueryError::Unreachable {
                url: self.base.clone(),
                detail: format!("cannot read credentials file {}: {e}", p.display()),
            })
        };
        let value = if let Some(f) = &self.cfg.bearer_token_file {
            format!("Bearer {}", read(f)?.trim())
        } else if let Some(b) = &self.cfg.basic_auth {
            let password = read(&b.password_file)?;
            let pair = format!("{}:{}", b.username, password.trim_end_matches('\n'));
            format!("Basic {}", BASE64_STANDARD.encode(pair))
        } else {
            return Ok(None);
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| QueryError::Unreachable {
            url: self.base.clone(),
            detail: "the credentials file holds characters not allowed in an HTTP header"
                .to_string(),
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    fn unreachable(&self, detail: String) -> QueryError {
        QueryError::Unreachable {
            url: self.base.clone(),
            detail,
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> QueryError {
        if e.is_timeout() {
            QueryError::Timeout {
                url: self.base.clone(),
                timeout: self.cfg.timeout,
            }
        } else {
            self.unreachable(error_chain(&e))
        }
    }
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut detail = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    detail
}

/// An answer being read, from either transport.
// one Reply lives in each query's future for as long as its answer is read; boxing the
// larger variant would only add an allocation per query
#[allow(clippy::large_enum_variant)]
enum Reply<'a> {
    Reqwest(reqwest::Response),
    Direct(direct::Answer<'a>),
}

impl Reply<'_> {
    fn status(&self) -> u16 {
        match self {
            Reply::Reqwest(r) => r.status().as_u16(),
            Reply::Direct(a) => a.status,
        }
    }

    fn content_length(&self) -> Option<u64> {
        match self {
            Reply::Reqwest(r) => r.content_length(),
            Reply::Direct(a) => a.content_length,
        }
    }

    async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Reply::Reqwest(r) => r.chunk().await.map_err(|e| error_chain(&e)),
            Reply::Direct(a) => a.chunk().await,
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
