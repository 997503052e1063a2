//! Where a request enters: health probes, then method and authorization checks,
//! then the SMI API (parsed by `apiservice::request`, answered by the backends,
//! shaped by `apiservice::render`). Every error leaves as a Kubernetes `Status`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::model::{StatsQuery, UnixMillis};
use apiservice::discovery;
use apiservice::render::render;
use apiservice::request::{self, ApiRequest, WindowLimits};
use apiservice::status::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode};

use crate::authz::Authorizer;
use crate::backends::Backends;

/// Everything a request handler needs.
pub struct AppState {
    /// The mesh backends.
    pub backends: Backends,
    /// Limits for `?t=`.
    pub windows: WindowLimits,
    /// Evaluation-time alignment.
    pub evaluation_interval: Duration,
    /// Authorization.
    pub authorizer: Authorizer,
    /// False once shutdown began (`/readyz` then answers 503).
    pub ready: AtomicBool,
}

/// The router: one fallback handler, dispatching on the parsed path.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

const JSON: &str = "application/json";

fn respond(code: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    respond(
        StatusCode::OK,
        JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// Renders an error as a `Status` response.
pub fn error(e: &ApiError) -> Response {
    let mut resp = respond(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        JSON,
        e.to_json(),
    );
    if e.code == 405 {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    if let Some(s) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// `/healthz`, `/livez`, `/readyz` and their `/ping` sub-checks: static, never
/// waiting on Prometheus.
fn health(state: &AppState, path: &str, verbose: bool) -> Option<Response> {
    let (probe, sub) = match path
        .trim_end_matches('/')
        .split_once('/')
        .map(|(_, p)| p.split_once('/'))
    {
        Some(Some((probe, sub))) => (probe, Some(sub)),
        _ => (path.trim_matches('/'), None),
    };
    if !matches!(probe, "healthz" | "livez" | "readyz") {
        return None;
    }
    let ready = probe != "readyz" || state.ready.load(Ordering::Relaxed);
    let mut checks = vec![("ping", true)];
    if probe == "readyz" {
        checks.push(("shutdown", ready));
    }
    if let Some(sub) = sub {
        return Some(match checks.iter().find(|(n, _)| *n == sub) {
            Some((_, true)) => respond(StatusCode::OK, "text/plain; charset=utf-8", b"ok".to_vec()),
            Some((_, false)) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                b"shutting down".to_vec(),
            ),
            None => error(&ApiError::not_found(format!(
                "no health check {sub:?} under /{probe}"
            ))),
        });
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if verbose {
        let mut s: String = checks
            .iter()
            .map(|(n, ok)| {
                format!(
                    "[{}]{n} {}\n",
                    if *ok { "+" } else { "-" },
                    if *ok { "ok" } else { "failed" }
                )
            })
            .collect();
        s.push_str(&format!(
            "{probe} check {}\n",
            if ready { "passed" } else { "failed" }
        ));
        s
    } else if ready {
        "ok".into()
    } else {
        "shutting down".into()
    };
    Some(respond(
        code,
        "text/plain; charset=utf-8",
        body.into_bytes(),
    ))
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let verbose = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if let Some(resp) = health(&state, &path, verbose) {
        return resp;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(&ApiError::method_not_allowed(req.method().as_str()));
    }
    if let Err(e) = state.authorizer.authorize(&req) {
        return error(&e);
    }
    match request::parse(&path, query.as_deref(), &state.windows) {
        Err(e) => error(&e),
        Ok(ApiRequest::GroupList) => json(&discovery::group_list()),
        Ok(ApiRequest::Group) => json(&discovery::api_group()),
        Ok(ApiRequest::ResourceList) => json(&discovery::resource_list(&state.backends.kinds())),
        Ok(ApiRequest::Metrics(m)) => {
            let at = UnixMillis::now().align_down(state.evaluation_interval);
            let q = StatsQuery {
                target: m.target.clone(),
                window: m.window,
                at,
            };
            match state.backends.collect(&q).await {
                Ok(result) => respond(StatusCode::OK, JSON, render(&m, at, &result).to_json()),
                Err(e) => {
                    let e = ApiError::from(e);
                    tracing::warn!(path = %path, code = e.code, "{}", e.message);
                    error(&e)
                }
            }
        }
    }
}
