//! Where a request enters: health probes, then method and authorization checks,
//! then the SMI API (parsed by `apiservice::request`, answered by the backends,
//! shaped by `apiservice::render`). Every error leaves as a Kubernetes `Status`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::model::{StatsQuery, StatsResult, Target, UnixMillis};
use apiservice::render::render;
use apiservice::request::{self, ApiRequest, MetricsRequest, Naming, WindowLimits};
use apiservice::status::ApiError;
use apiservice::{custom_metrics, discovery, openapi, table};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::{Extension, Router};
use http::{header, HeaderValue, Method, StatusCode};

use crate::authz::Authorizer;
use crate::backends::Backends;
use crate::response_cache::{self, Answer, ResponseCache, ResponseKey};

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
    /// The custom metrics API (HPA).
    pub custom: crate::custom::CustomMetrics,
    /// False once shutdown began (`/readyz` then answers 503).
    pub ready: AtomicBool,
}

/// The router: one fallback handler, dispatching on the parsed path, with the response
/// cache (its budget: the shares the backends lend it, its period: the evaluation interval).
/// Starts the caches' bookkeeping task ([`crate::housekeeping`]), so it must be called
/// within the runtime.
pub fn router(state: Arc<AppState>) -> Router {
    let budget = state.backends.iter().map(|b| b.exec.response_share()).sum();
    let responses = Arc::new(ResponseCache::new(state.evaluation_interval, budget));
    crate::housekeeping::spawn(&responses, &state);
    Router::new()
        .fallback(handle)
        .layer(Extension(responses))
        .with_state(state)
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

async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(responses): Extension<Arc<ResponseCache>>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let verbose = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if let Some(resp) = health(&state, &path, verbose) {
        return resp;
    }
    // the Prometheus-compatible API also takes POST (Grafana's default)
    let prom = crate::promapi::strip(&path).map(str::to_string);
    let method = req.method().clone();
    if method != Method::GET
        && method != Method::HEAD
        && !(prom.is_some() && method == Method::POST)
    {
        return error(&ApiError::method_not_allowed(method.as_str()));
    }
    if let Err(e) = state.authorizer.authorize(&req).await {
        return error(&e);
    }
    if path == "/metrics" && method != Method::POST {
        let text = response_cache::exposition(&responses, &state.backends).await;
        return respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text.into_bytes(),
        );
    }
    if let Some(rest) = prom {
        let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
            Ok(b) => b,
            Err(e) => {
                return error(&ApiError::bad_request(format!(
                    "request body: {e} (at most 1 MiB)"
                )))
            }
        };
        let params = crate::promapi::Params::new(query.as_deref(), &body);
        return crate::promapi::handle(&state, &rest, params).await;
    }
    if let Some(parsed) = custom_metrics::parse(&path, query.as_deref(), &state.custom.versions) {
        let answered = match parsed {
            Ok(r) => crate::custom::answer(&state, &state.custom, r).await,
            Err(e) => Err(e),
        };
        return match answered {
            Ok(body) => respond(StatusCode::OK, JSON, body),
            Err(e) => error(&e),
        };
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    answer(&state, &responses, &path, query.as_deref(), &accept).await
}

/// Answers an authorized GET: discovery, OpenAPI, or metrics (JSON or a Table).
async fn answer(
    state: &AppState,
    responses: &ResponseCache,
    path: &str,
    query: Option<&str>,
    accept: &str,
) -> Response {
    match request::parse(path, query, &state.windows) {
        Err(e) => error(&e),
        Ok(ApiRequest::GroupList) if discovery::wants_aggregated(accept) => respond(
            StatusCode::OK,
            discovery::AGGREGATED_V2,
            serde_json::to_vec(&discovery::aggregated(&state.backends.kinds())).unwrap_or_default(),
        ),
        Ok(ApiRequest::GroupList) => json(&discovery::group_list()),
        Ok(ApiRequest::Group) => json(&discovery::api_group()),
        Ok(ApiRequest::ResourceList) => json(&discovery::resource_list(&state.backends.kinds())),
        Ok(ApiRequest::OpenApiV2) => json(&openapi::v2()),
        Ok(ApiRequest::OpenApiV3Index) => json(&openapi::v3_index()),
        Ok(ApiRequest::OpenApiV3Group) => json(&openapi::v3_group()),
        Ok(ApiRequest::Metrics(mut m)) => {
            let at = UnixMillis::now().align_down(state.evaluation_interval);
            let table_version = table::negotiate(accept);
            // a kubectl table of one trafficmetric also shows its edges
            if table_version.is_some() && m.single && m.naming == Naming::Prefixed {
                let edges = match m.target() {
                    Target::One(r) => Some(Target::Edges(r.clone())),
                    _ => None,
                };
                m.targets.extend(edges);
            }
            let table = table_version.map(|v| (v, table::IncludeObject::from_query(query)));
            let key = ResponseKey::new(&m.path, m.window, at, table);
            match responses
                .get_or_render(key, metrics_answer(state, &m, at, table))
                .await
            {
                Ok(answer) => answer.response(),
                Err(e) => {
                    tracing::warn!(path = %path, code = e.code, "{}", e.message);
                    error(&e)
                }
            }
        }
    }
}

/// Asks the backends and renders the answer to a metrics request, as JSON or as a Table.
async fn metrics_answer(
    state: &AppState,
    m: &MetricsRequest,
    at: UnixMillis,
    table: Option<(table::TableVersion, table::IncludeObject)>,
) -> Result<Answer, ApiError> {
    let queries: Vec<StatsQuery> = m
        .targets
        .iter()
        .map(|target| StatsQuery {
            target: target.clone(),
            window: m.window,
            at,
        })
        .collect();
    // a combined answer (several targets) skips kinds a backend's mesh cannot report
    let several = queries.len() > 1;
    let results = futures::future::try_join_all(queries.iter().map(|q| async move {
        if several {
            state.backends.collect_part(q).await
        } else {
            state.backends.collect(q).await
        }
    }))
    .await
    .map_err(ApiError::from)?;
    let rendered = render(m, at, &results);
    Ok(match table {
        None => Answer {
            content_type: JSON,
            body: rendered.to_json().into(),
        },
        Some((v, include)) => {
            let mut items = rendered.items().to_vec();
            if let Some(StatsResult::Edges(_)) = results.get(1) {
                items.extend(render_edges(m, at, &results[1]));
            }
            Answer {
                content_type: v.content_type(),
                body: table::render(&items, v, include).into(),
            }
        }
    })
}

/// The edge objects of a trafficmetric, for the rows under its own row in a Table.
fn render_edges(
    m: &MetricsRequest,
    at: UnixMillis,
    edges: &StatsResult,
) -> Vec<apiservice::wire::TrafficMetrics> {
    let mut edge_req = m.clone();
    edge_req.targets = m.targets[1..].to_vec();
    edge_req.single = false;
    edge_req.path = format!("{}/edges", m.path);
    render(&edge_req, at, std::slice::from_ref(edges))
        .items()
        .to_vec()
}
