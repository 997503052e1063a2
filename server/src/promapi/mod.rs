//! A Prometheus-compatible read API over virtual SMI series, for Grafana's built-in
//! Prometheus datasource. Served under `/prometheus` (point Grafana at
//! `https://<service>/prometheus`) and, through kube-apiserver, under
//! `/apis/metrics.smi-spec.io/v1alpha1/prometheus`.
//!
//! Endpoints (GET and POST, form-encoded): `api/v1/query`, `api/v1/query_range`,
//! `api/v1/labels`, `api/v1/label/<name>/values`, `api/v1/series`,
//! `api/v1/metadata`, `api/v1/status/buildinfo`, `api/v1/query_exemplars`,
//! `api/v1/rules`. Answers use Prometheus' success/error envelopes. The series
//! are described in [`series`]; the query subset in [`expr`]. Range queries run
//! the mesh's own PromQL as Prometheus range queries (one per metric family),
//! so the same dashboard works on every mesh.

pub mod expr;
pub mod series;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use adapters::engine::CollectError;
use adapters::model::{StatsResult, UnixMillis};
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use promql_parser::label::Matcher;
use serde_json::{json, Value};

use crate::api::AppState;
use expr::{Query, Series};

/// Path prefixes the API is served under.
pub const PREFIXES: [&str; 2] = [
    "/prometheus",
    "/apis/metrics.smi-spec.io/v1alpha1/prometheus",
];

/// Most points a range query may ask for (as Prometheus).
const MAX_POINTS: i64 = 11_000;

/// The part of `path` after one of [`PREFIXES`], if it is ours.
pub fn strip(path: &str) -> Option<&str> {
    PREFIXES.iter().find_map(|p| {
        path.strip_prefix(p)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// A Prometheus API error.
struct PromError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

fn bad_data(message: impl Into<String>) -> PromError {
    PromError {
        status: StatusCode::BAD_REQUEST,
        kind: "bad_data",
        message: message.into(),
    }
}

impl From<CollectError> for PromError {
    fn from(e: CollectError) -> Self {
        let api = apiservice::status::ApiError::from(e);
        let (status, kind) = match api.code {
            504 => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            404 => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
            500 => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        PromError {
            status,
            kind,
            message: api.message,
        }
    }
}

fn envelope(status: StatusCode, body: Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn success(data: Value) -> Response {
    envelope(StatusCode::OK, json!({"status": "success", "data": data}))
}

fn failure(e: PromError) -> Response {
    envelope(
        e.status,
        json!({"status": "error", "errorType": e.kind, "error": e.message}),
    )
}

/// Request parameters: the query string plus a form-encoded body, repeated keys kept.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Reads parameters from a query string and (for POST) a form body.
    pub fn new(query: Option<&str>, body: &[u8]) -> Self {
        let mut v: Vec<(String, String)> = query
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        v.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        Params(v)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A Prometheus timestamp: Unix seconds (float) or RFC3339.
fn time(s: &str) -> Result<f64, PromError> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|_| bad_data(format!("invalid time {s:?}: use Unix seconds or RFC3339")))
}

fn time_or_now(p: &Params, key: &str) -> Result<f64, PromError> {
    match p.get(key) {
        Some(s) => time(s),
        None => Ok(UnixMillis::now().0 as f64 / 1000.0),
    }
}

/// A step: float seconds or a duration (`15s`).
fn step(s: &str) -> Result<f64, PromError> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    adapters::duration::parse(s)
        .map(|d| d.as_secs_f64())
        .map_err(|e| bad_data(format!("invalid step {s:?}: {e}")))
}

fn millis(t: f64) -> UnixMillis {
    UnixMillis((t * 1000.0).round() as i64)
}

fn sample_value(v: f64) -> Value {
    Value::from(if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    })
}

/// A `[time, "value"]` pair; whole-second times print as integers, as Prometheus does.
fn point(t: f64, v: f64) -> Value {
    let time = if t.fract() == 0.0 && t.abs() < 1e15 {
        Value::from(t as i64)
    } else {
        Value::from(t)
    };
    json!([time, sample_value(v)])
}

/// Answers one request under the API's prefix (`rest` is the path after it).
pub async fn handle(state: &AppState, rest: &str, params: Params) -> Response {
    let result = match rest.trim_end_matches('/') {
        "/api/v1/query" => query(state, &params).await,
        "/api/v1/query_range" => query_range(state, &params).await,
        "/api/v1/labels" => labels(state, &params).await,
        "/api/v1/series" => series_endpoint(state, &params).await,
        "/api/v1/metadata" => Ok(metadata()),
        "/api/v1/status/buildinfo" => Ok(json!({
            "version": "2.42.0",
            "revision": concat!("mesh-metrics-", env!("CARGO_PKG_VERSION")),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        })),
        "/api/v1/query_exemplars" => Ok(json!([])),
        "/api/v1/rules" => Ok(json!({"groups": []})),
        other => match other.strip_prefix("/api/v1/label/").and_then(|r| r.strip_suffix("/values")) {
            Some(name) => label_values(state, name, &params).await,
            None => Err(PromError {
                status: StatusCode::NOT_FOUND,
                kind: "not_found",
                message: format!(
                    "{other:?} is not served; endpoints: api/v1/query, query_range, labels, label/<name>/values, series, metadata, status/buildinfo"
                ),
            }),
        },
    };
    match result {
        Ok(data) => success(data),
        Err(e) => failure(e),
    }
}

fn compile(p: &Params) -> Result<Query, PromError> {
    let text = p
        .get("query")
        .ok_or_else(|| bad_data("missing parameter query"))?;
    expr::compile(text).map_err(bad_data)
}

/// Evaluates every selector of `q` at the given instants; returns per-instant samples
/// keyed by selector.
type Selected = BTreeMap<i64, Vec<SelectorSamples>>;

/// One selector's matchers and the samples it selected.
type SelectorSamples = (Vec<Matcher>, expr::Samples);

fn selectors(q: &Query, out: &mut Vec<Vec<Matcher>>) {
    match q {
        Query::Scalar(_) => {}
        Query::Select(m) => out.push(m.clone()),
        Query::Aggregate { expr, .. } | Query::Top { expr, .. } => selectors(expr, out),
        Query::Arith { lhs, rhs, .. } => {
            selectors(lhs, out);
            selectors(rhs, out);
        }
    }
}

/// Runs the SMI questions behind each selector over `[start, end]` every `step_ms`
/// (one instant when start == end).
async fn select(
    state: &AppState,
    q: &Query,
    start: UnixMillis,
    end: UnixMillis,
    step_ms: i64,
) -> Result<Selected, PromError> {
    let mut sels = Vec::new();
    selectors(q, &mut sels);
    let kinds = state.backends.kinds();
    let mut out: Selected = BTreeMap::new();
    for m in sels {
        let need = series::need(&m, &kinds, &state.windows).map_err(bad_data)?;
        let mut per_time: BTreeMap<i64, Vec<StatsResult>> = BTreeMap::new();
        for target in &need.targets {
            let points = state
                .backends
                .collect_range(
                    target,
                    need.window,
                    start,
                    end,
                    Duration::from_millis(step_ms as u64),
                )
                .await?;
            for (t, r) in points {
                per_time.entry(t.0).or_default().push(r);
            }
        }
        let mut t = start.0;
        while t <= end.0 {
            let results = per_time.remove(&t).unwrap_or_default();
            let samples = series::samples(&results, need.window, &m);
            out.entry(t).or_default().push((m.clone(), samples));
            t += step_ms.max(1);
        }
    }
    Ok(out)
}

/// Evaluates `q` with the samples of its selectors, which [`select`] collected in
/// the order [`expr::eval`] visits them.
fn eval_at(q: &Query, selected: &[SelectorSamples]) -> expr::Value {
    let mut next = selected.iter();
    expr::eval(q, &mut |_| {
        next.next().map(|(_, s)| s.clone()).unwrap_or_default()
    })
}

fn metric_json(s: &Series) -> Value {
    Value::Object(
        s.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

async fn query(state: &AppState, p: &Params) -> Result<Value, PromError> {
    let q = compile(p)?;
    let t = time_or_now(p, "time")?;
    let at = millis(t).align_down(state.evaluation_interval);
    let selected = select(state, &q, at, at, 1).await?;
    let at_samples = selected.get(&at.0).map(Vec::as_slice).unwrap_or(&[]);
    Ok(match eval_at(&q, at_samples) {
        expr::Value::Scalar(v) => json!({"resultType": "scalar", "result": point(t, v)}),
        expr::Value::Vector(v) => json!({
            "resultType": "vector",
            "result": v.iter().map(|(s, x)| json!({"metric": metric_json(s), "value": point(t, *x)})).collect::<Vec<_>>(),
        }),
    })
}

async fn query_range(state: &AppState, p: &Params) -> Result<Value, PromError> {
    let q = compile(p)?;
    let start = time(
        p.get("start")
            .ok_or_else(|| bad_data("missing parameter start"))?,
    )?;
    let end = time(
        p.get("end")
            .ok_or_else(|| bad_data("missing parameter end"))?,
    )?;
    let step = step(
        p.get("step")
            .ok_or_else(|| bad_data("missing parameter step"))?,
    )?;
    if end < start {
        return Err(bad_data("end timestamp must not be before start time"));
    }
    if step <= 0.0 {
        return Err(bad_data("zero or negative query resolution step widths are not accepted. Try a positive integer"));
    }
    let step_ms = (step * 1000.0).round() as i64;
    if (end - start) * 1000.0 / step_ms as f64 > MAX_POINTS as f64 {
        return Err(bad_data(format!(
            "exceeded maximum resolution of {MAX_POINTS} points per timeseries. Try decreasing the query resolution (?step=XX)"
        )));
    }
    let (start_ms, end_ms) = (millis(start), millis(end));
    let selected = select(state, &q, start_ms, end_ms, step_ms).await?;
    let mut matrix: BTreeMap<Series, Vec<Value>> = BTreeMap::new();
    let mut t = start_ms.0;
    while t <= end_ms.0 {
        let samples = selected.get(&t).map(Vec::as_slice).unwrap_or(&[]);
        let ts = t as f64 / 1000.0;
        match eval_at(&q, samples) {
            expr::Value::Scalar(v) => matrix.entry(Series::new()).or_default().push(point(ts, v)),
            expr::Value::Vector(v) => {
                for (s, x) in v {
                    matrix.entry(s).or_default().push(point(ts, x));
                }
            }
        }
        t += step_ms;
    }
    Ok(json!({
        "resultType": "matrix",
        "result": matrix.into_iter().map(|(s, values)| json!({"metric": metric_json(&s), "values": values})).collect::<Vec<_>>(),
    }))
}

/// The series matching `match[]` selectors (at `end`, or now).
async fn matching(state: &AppState, p: &Params) -> Result<Vec<Series>, PromError> {
    let at = millis(time_or_now(p, "end")?).align_down(state.evaluation_interval);
    let mut out = BTreeSet::new();
    for m in p.all("match[]") {
        let q = expr::compile(m).map_err(bad_data)?;
        let Query::Select(_) = q else {
            return Err(bad_data(format!("match[] {m:?} must be a series selector")));
        };
        let selected = select(state, &q, at, at, 1).await?;
        for (_, samples) in selected.into_values().flatten() {
            out.extend(samples.into_iter().map(|(s, _)| s));
        }
    }
    Ok(out.into_iter().collect())
}

async fn labels(state: &AppState, p: &Params) -> Result<Value, PromError> {
    if p.all("match[]").is_empty() {
        return Ok(json!(series::LABELS));
    }
    let names: BTreeSet<String> = matching(state, p)
        .await?
        .into_iter()
        .flat_map(|s| s.into_keys())
        .collect();
    Ok(json!(names))
}

async fn label_values(state: &AppState, name: &str, p: &Params) -> Result<Value, PromError> {
    let kinds = state.backends.kinds();
    let fixed: Option<Vec<String>> = match name {
        "__name__" => Some(series::METRICS.iter().map(|(m, _)| m.to_string()).collect()),
        "kind" | "peer_kind" => Some(
            kinds
                .iter()
                .map(|k| series::kind_label(*k).to_string())
                .collect(),
        ),
        "quantile" => Some(vec!["0.5".into(), "0.9".into(), "0.99".into()]),
        "direction" => Some(vec!["from".into(), "to".into()]),
        _ => None,
    };
    if let (Some(v), true) = (&fixed, p.all("match[]").is_empty()) {
        return Ok(json!(v));
    }
    let found: Vec<Series> = if p.all("match[]").is_empty() {
        // every object of every kind, without edges
        let mut q = Params(p.0.clone());
        q.0.push(("match[]".into(), "smi_success_count".into()));
        matching(state, &q).await?
    } else {
        matching(state, p).await?
    };
    let values: BTreeSet<String> = found
        .into_iter()
        .filter_map(|mut s| s.remove(name))
        .collect();
    Ok(json!(values))
}

async fn series_endpoint(state: &AppState, p: &Params) -> Result<Value, PromError> {
    if p.all("match[]").is_empty() {
        return Err(bad_data("no match[] parameter provided"));
    }
    Ok(Value::Array(
        matching(state, p).await?.iter().map(metric_json).collect(),
    ))
}

fn metadata() -> Value {
    Value::Object(
        series::METRICS
            .iter()
            .map(|(m, help)| {
                let unit = if m.ends_with("_ms") {
                    "milliseconds"
                } else {
                    ""
                };
                (
                    m.to_string(),
                    json!([{"type": "gauge", "help": help, "unit": unit}]),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_params() {
        assert_eq!(strip("/prometheus/api/v1/query"), Some("/api/v1/query"));
        assert_eq!(
            strip("/apis/metrics.smi-spec.io/v1alpha1/prometheus/api/v1/labels"),
            Some("/api/v1/labels")
        );
        assert_eq!(strip("/prometheusx/api"), None);
        let p = Params::new(Some("match[]=a&match[]=b"), b"query=1%2B1&time=4");
        assert_eq!(p.get("query"), Some("1+1"));
        assert_eq!(p.all("match[]"), ["a", "b"]);
    }

    #[test]
    fn times_steps_and_values() {
        assert_eq!(time("4").ok(), Some(4.0));
        assert_eq!(time("1970-01-01T00:00:10Z").ok(), Some(10.0));
        assert!(time("soon").is_err());
        assert_eq!(step("15s").ok(), Some(15.0));
        assert_eq!(step("0.5").ok(), Some(0.5));
        assert_eq!(sample_value(f64::NAN), "NaN");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(sample_value(2.0), "2");
        assert_eq!(sample_value(0.25), "0.25");
    }
}
