//! A small client for the Prometheus HTTP API (works with Prometheus, Thanos, Mimir,
//! VictoriaMetrics): instant queries, decoded into compact [`Vector`]s, with
//! timeouts and errors that say what to check.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::model::UnixMillis;

mod stream;
pub use stream::VectorStream;

/// The label set of one sample, sorted by name. Names and values share one buffer, so a
/// decoded sample costs two allocations however many labels it has.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Every name and value, concatenated in name order.
    text: String,
    /// Where each name and each value ends in `text` (two entries per label).
    ends: Vec<u32>,
}

impl Labels {
    /// Builds a label set from pairs (sorted on construction).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        v.sort_by(|a, b| (a.0.as_ref(), a.1.as_ref()).cmp(&(b.0.as_ref(), b.1.as_ref())));
        let mut labels = Labels::default();
        for (k, v) in &v {
            labels.text.push_str(k.as_ref());
            labels.mark_end();
            labels.text.push_str(v.as_ref());
            labels.mark_end();
        }
        labels
    }

    /// Builds a label set from decoded pairs with one allocation for the text and one for
    /// the ends (sorted here only if Prometheus did not send them in order).
    fn from_decoded(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> Self {
        if !pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
            return Labels::from_pairs(pairs.iter().map(|(k, v)| (k, v)));
        }
        let mut labels = Labels {
            text: String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len()).sum()),
            ends: Vec::with_capacity(2 * pairs.len()),
        };
        for (k, v) in pairs {
            labels.text.push_str(k);
            labels.mark_end();
            labels.text.push_str(v);
            labels.mark_end();
        }
        labels
    }

    /// Records that a name or value ends here.
    fn mark_end(&mut self) {
        // a label set is far below 4 GiB; saturating keeps a corrupt one harmless
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// The `i`-th name or value.
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.part(2 * mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.part(2 * mid + 1)),
            }
        }
        None
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).map(|i| (self.part(2 * i), self.part(2 * i + 1)))
    }

    /// Whether the names are in order (Prometheus sends them so).
    fn is_sorted(&self) -> bool {
        (1..self.len()).all(|i| self.part(2 * (i - 1)) <= self.part(2 * i))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Appends a JSON string to a buffer without an intermediate allocation.
struct AppendStr<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Labels, A::Error> {
                let mut labels = Labels {
                    text: String::with_capacity(96),
                    ends: Vec::with_capacity(2 * m.size_hint().unwrap_or(6)),
                };
                while m.next_key_seed(AppendStr(&mut labels.text))?.is_some() {
                    labels.mark_end();
                    m.next_value_seed(AppendStr(&mut labels.text))?;
                    labels.mark_end();
                }
                if labels.is_sorted() {
                    Ok(labels)
                } else {
                    Ok(Labels::from_pairs(labels.iter()))
                }
            }
        }
        d.deserialize_map(V)
    }
}

/// A sample value as Prometheus prints it (a string), parsed while decoding.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sample value such as \"1.5\", \"NaN\" or \"+Inf\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                parse_value(v)
                    .map(Value)
                    .ok_or_else(|| E::custom(format!("sample value {v:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series labels.
    pub labels: Labels,
    /// The value (may be NaN or infinite).
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector(pub Vec<Sample>);

impl Vector {
    /// A rough size in bytes, for cache weighing.
    pub fn approx_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|s| 96 + s.labels.text.len() + 4 * s.labels.ends.len())
            .sum::<usize>()
            + 32
    }
}

/// The result of a range query: series with their `(Unix ms, value)` points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix(pub Vec<(Labels, Vec<(i64, f64)>)>);

/// Why a query produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The connection failed (DNS, refused, TLS).
    #[error("cannot reach Prometheus at {url}: {detail}; check the backend's prometheus URL and that Prometheus is running")]
    Unreachable {
        /// The Prometheus base URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer within the configured timeout.
    #[error("Prometheus at {url} did not answer within {timeout:?}; it may be overloaded, or raise the backend timeout")]
    Timeout {
        /// The Prometheus base URL.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Prometheus answered with an error envelope or an error status.
    #[error("Prometheus at {url} answered HTTP {status} ({error_type}): {message}")]
    Rejected {
        /// The Prometheus base URL.
        url: String,
        /// HTTP status of the answer.
        status: u16,
        /// Prometheus' `errorType` (`bad_data`, `timeout`, `unavailable`, ...).
        error_type: String,
        /// Prometheus' error message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from Prometheus at {url}: {detail}")]
    BadResponse {
        /// The Prometheus base URL.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Runs instant queries. Implemented by [`PrometheusClient`] and by caching layers.
pub trait Executor: Send + Sync {
    /// Evaluates `promql` at time `at`.
    fn instant<'a>(
        &'a self,
        promql: &'a str,
        at: UnixMillis,
    ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>>;
}

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

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<RawSample>),
    Scalar((f64, Value)),
    Matrix(Vec<RawSeries>),
}

#[derive(Deserialize)]
struct RawSeries {
    metric: Labels,
    values: Vec<(f64, Value)>,
}

#[derive(Deserialize)]
struct RawSample {
    metric: Labels,
    value: (f64, Value),
}

/// Parses a sample value as Prometheus prints it (`"1.5"`, `"NaN"`, `"+Inf"`).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Checks the envelope of an answer and returns its data.
fn decode_data(url: &str, status: u16, body: &[u8]) -> Result<Data, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(env) => env,
        Err(e) => {
            let snippet: String =
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            if status >= 400 {
                return Err(QueryError::Rejected {
                    url: url.to_string(),
                    status,
                    error_type: "http".into(),
                    message: snippet,
                });
            }
            return Err(bad(format!(
                "HTTP {status}, not Prometheus JSON ({e}): {snippet:?}"
            )));
        }
    };
    if env.status != "success" {
        return Err(QueryError::Rejected {
            url: url.to_string(),
            status,
            error_type: env.error_type.unwrap_or_else(|| "unknown".into()),
            message: env.error.unwrap_or_default(),
        });
    }
    env.data.ok_or_else(|| bad("success without data".into()))
}

/// Decodes an `/api/v1/query` answer into a vector (a scalar becomes one unlabelled sample).
pub fn decode_vector(url: &str, status: u16, body: &[u8]) -> Result<Vector, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    match decode_data(url, status, body)? {
        Data::Vector(raw) => Ok(Vector(
            raw.into_iter()
                .map(|s| Sample {
                    labels: s.metric,
                    value: s.value.1 .0,
                })
                .collect(),
        )),
        Data::Scalar((_, v)) => Ok(Vector(vec![Sample {
            labels: Labels::default(),
            value: v.0,
        }])),
        Data::Matrix(_) => Err(bad("a matrix answered an instant query".into())),
    }
}

/// Decodes an `/api/v1/query_range` answer.
pub fn decode_matrix(url: &str, status: u16, body: &[u8]) -> Result<Matrix, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    match decode_data(url, status, body)? {
        Data::Matrix(raw) => Ok(Matrix(
            raw.into_iter()
                .map(|s| {
                    let points = s
                        .values
                        .into_iter()
                        .map(|(t, v)| ((t * 1000.0).round() as i64, v.0))
                        .collect();
                    (s.metric, points)
                })
                .collect(),
        )),
        _ => Err(bad("a range query did not answer with a matrix".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_vector_with_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"b":"2","a":"1"},"value":[1700000000.5,"12.5"]},
            {"metric":{},"value":[1700000000.5,"NaN"]},
            {"metric":{"le":"+Inf"},"value":[1700000000.5,"+Inf"]}]}}"#;
        let v = decode_vector("http://p", 200, body).unwrap();
        assert_eq!(v.0.len(), 3);
        assert_eq!(v.0[0].labels.get("a"), Some("1"));
        assert_eq!(v.0[0].labels.get("b"), Some("2"));
        assert_eq!(v.0[0].labels.get("c"), None);
        assert_eq!(v.0[0].value, 12.5);
        assert!(v.0[1].value.is_nan());
        assert_eq!(v.0[2].value, f64::INFINITY);
    }

    #[test]
    fn labels_are_sorted_unescaped_and_compact() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"z":"last","a":"q\"u\u00e9","m":""},"value":[1,"1"]}]}}"#;
        let v = decode_vector("http://p", 200, body).unwrap();
        let l = &v.0[0].labels;
        let pairs: Vec<(&str, &str)> = l.iter().collect();
        assert_eq!(pairs, [("a", "q\"u\u{e9}"), ("m", ""), ("z", "last")]);
        let built = Labels::from_pairs([("z", "last"), ("m", ""), ("a", "q\"u\u{e9}")]);
        assert_eq!(l, &built);
        assert_eq!(l.get("m"), Some(""));
        assert_eq!(l.get("z"), Some("last"));
        assert_eq!(l.get("b"), None);
        assert_eq!(l.len(), 3);
        assert!(Labels::default().is_empty());
        assert_eq!(Labels::default().get("a"), None);
        assert_eq!(format!("{l:?}"), r#"{"a": "q\"ué", "m": "", "z": "last"}"#);
    }

    #[test]
    fn bad_sample_values_are_rejected() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"twelve"]}]}}"#;
        match decode_vector("http://p", 200, body) {
            Err(QueryError::BadResponse { detail, .. }) => {
                assert!(detail.contains(r#"sample value "twelve""#), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_matrix() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"1"},"values":[[1700000000,"1"],[1700000010.5,"NaN"]]}]}}"#;
        let m = decode_matrix("http://p", 200, body).unwrap();
        assert_eq!(m.0[0].0.get("a"), Some("1"));
        assert_eq!(m.0[0].1[0], (1_700_000_000_000, 1.0));
        assert_eq!(m.0[0].1[1].0, 1_700_000_010_500);
        assert!(decode_vector("http://p", 200, body).is_err());
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_matrix("http://p", 200, v).is_err());
    }

    #[test]
    fn error_envelope_becomes_rejected() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        match decode_vector("http://p", 400, body) {
            Err(QueryError::Rejected {
                status,
                error_type,
                message,
                ..
            }) => {
                assert_eq!(
                    (status, error_type.as_str(), message.as_str()),
                    (400, "bad_data", "parse error")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_json_answers_are_explained() {
        assert!(matches!(
            decode_vector("http://p", 502, b"<html>bad gateway</html>"),
            Err(QueryError::Rejected { status: 502, .. })
        ));
        assert!(matches!(
            decode_vector("http://p", 200, b"hello"),
            Err(QueryError::BadResponse { .. })
        ));
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(PrometheusClient::new(PrometheusConfig::with_url("ftp://x")).is_err());
        assert!(PrometheusClient::new(PrometheusConfig::with_url("not a url")).is_err());
        assert!(
            PrometheusClient::new(PrometheusConfig::with_url("http://127.0.0.1:9090/")).is_ok()
        );
    }
}
