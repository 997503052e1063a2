//! The response cache: whole answers to TrafficMetrics requests (the rendered JSON or Table
//! bytes), keyed by what determines them: the canonical path, the window, the evaluation
//! time (aligned to the evaluation interval, so it is the cache's time bucket) and the
//! format. A hit costs a lookup and a reference-counted copy of the body; concurrent
//! identical requests are coalesced into one rendering; errors are not cached.
//!
//! It sits in front of the Prometheus result cache ([`crate::cache`]), which still shares
//! queries between different requests (a `trafficmetrics` list and a `deployments` list
//! ask the same PromQL). Both are bounded by `--cache-max-bytes`: each backend lends half of
//! its share to this cache ([`crate::cache::CachedExecutor::response_share`]).

use std::fmt::Write;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::model::UnixMillis;
use apiservice::status::ApiError;
use apiservice::table::{IncludeObject, TableVersion};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue};
use moka::future::Cache;

use crate::backends::Backends;

/// What identifies an answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseKey {
    path: Box<str>,
    window: Duration,
    at: UnixMillis,
    /// 0: JSON; else the Table version and what each row carries.
    format: u8,
}

impl ResponseKey {
    /// The key of the answer to `path` (canonical, as parsed) over `window` at `at`, as JSON
    /// (`table: None`) or as a Table.
    pub fn new(
        path: &str,
        window: Duration,
        at: UnixMillis,
        table: Option<(TableVersion, IncludeObject)>,
    ) -> Self {
        let format = match table {
            None => 0,
            Some((v, include)) => {
                let v = match v {
                    TableVersion::V1 => 1,
                    TableVersion::V1Beta1 => 2,
                };
                let include = match include {
                    IncludeObject::None => 0,
                    IncludeObject::Metadata => 4,
                    IncludeObject::Object => 8,
                };
                v | include
            }
        };
        ResponseKey {
            path: path.into(),
            window,
            at,
            format,
        }
    }
}

/// A rendered answer (200 OK).
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its body.
    pub body: Bytes,
}

impl Answer {
    /// The HTTP response (the body is shared, not copied).
    pub fn response(&self) -> Response {
        let mut resp = Response::new(Body::from(self.body.clone()));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        resp
    }
}

/// Counters of the response cache.
#[derive(Debug, Default)]
pub struct ResponseStats {
    /// Requests answered through the cache (hits + renderings).
    pub requests: AtomicU64,
    /// Answers rendered (misses).
    pub renders: AtomicU64,
}

/// The cache of rendered answers.
pub struct ResponseCache {
    cache: Option<Cache<ResponseKey, Answer>>,
    stats: ResponseStats,
}

impl ResponseCache {
    /// A cache whose entries live for `ttl` (the evaluation interval) within `max_bytes`
    /// (0 disables it: every request renders its answer).
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &ResponseKey, v: &Answer| {
                    u32::try_from(k.path.len() + v.body.len() + 96).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build()
        });
        ResponseCache {
            cache,
            stats: ResponseStats::default(),
        }
    }

    /// The answer for `key`: cached, or rendered by `render` (once, however many requests
    /// ask at the same time). Errors are returned to every waiting request, never cached.
    pub async fn get_or_render<F>(&self, key: ResponseKey, render: F) -> Result<Answer, ApiError>
    where
        F: Future<Output = Result<Answer, ApiError>>,
    {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let Some(cache) = &self.cache else {
            self.stats.renders.fetch_add(1, Ordering::Relaxed);
            return render.await;
        };
        cache
            .try_get_with(key, async {
                self.stats.renders.fetch_add(1, Ordering::Relaxed);
                render.await
            })
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    /// Activity counters.
    pub fn stats(&self) -> &ResponseStats {
        &self.stats
    }

    /// Applies the cache's pending bookkeeping (moka batches it into later requests), so
    /// that [`ResponseCache::bytes`] and [`ResponseCache::entries`] are current.
    pub async fn settle(&self) {
        if let Some(c) = &self.cache {
            c.run_pending_tasks().await;
        }
    }

    /// Bytes held (as weighed against the budget), as of the last bookkeeping.
    pub fn bytes(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weighted_size())
    }

    /// Entries held, as of the last bookkeeping.
    pub fn entries(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.entry_count())
    }
}

/// The server's own metrics in the Prometheus text format (`/metrics`): requests answered
/// through the response cache, answers rendered, PromQL queries asked and sent to each
/// backend's Prometheus, and what each cache holds (settled first: moka applies its
/// bookkeeping in batches, on later requests).
pub async fn exposition(responses: &ResponseCache, backends: &Backends) -> String {
    responses.settle().await;
    for b in backends.iter() {
        b.exec.settle().await;
    }
    let mut s = String::new();
    let stats = responses.stats();
    let counter = |s: &mut String, name: &str, help: &str, lines: &[(String, u64)]| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in lines {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    };
    counter(
        &mut s,
        "mesh_metrics_responses_total",
        "TrafficMetrics requests answered through the response cache.",
        &[(String::new(), stats.requests.load(Ordering::Relaxed))],
    );
    counter(
        &mut s,
        "mesh_metrics_response_renders_total",
        "TrafficMetrics answers rendered (response cache misses).",
        &[(String::new(), stats.renders.load(Ordering::Relaxed))],
    );
    let per_backend = |f: &dyn Fn(&crate::cache::CacheStats) -> u64| -> Vec<(String, u64)> {
        backends
            .iter()
            .map(|b| (format!("{{backend=\"{}\"}}", b.name), f(b.exec.stats())))
            .collect()
    };
    counter(
        &mut s,
        "mesh_metrics_promql_requests_total",
        "PromQL queries asked of the Prometheus result cache.",
        &per_backend(&|c| c.requests.load(Ordering::Relaxed)),
    );
    counter(
        &mut s,
        "mesh_metrics_prometheus_queries_total",
        "PromQL queries sent to Prometheus (result cache misses).",
        &per_backend(&|c| c.misses.load(Ordering::Relaxed)),
    );
    let _ = writeln!(
        s,
        "# HELP mesh_metrics_cache_bytes Bytes held by a cache, as weighed against --cache-max-bytes.\n# TYPE mesh_metrics_cache_bytes gauge"
    );
    let _ = writeln!(
        s,
        "mesh_metrics_cache_bytes{{cache=\"responses\"}} {}",
        responses.bytes()
    );
    for b in backends.iter() {
        let _ = writeln!(
            s,
            "mesh_metrics_cache_bytes{{cache=\"prometheus\",backend=\"{}\"}} {}",
            b.name,
            b.exec.bytes()
        );
    }
    let _ = writeln!(
        s,
        "# HELP mesh_metrics_cache_entries Entries held by a cache.\n# TYPE mesh_metrics_cache_entries gauge\nmesh_metrics_cache_entries{{cache=\"responses\"}} {}",
        responses.entries()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key(at: i64) -> ResponseKey {
        ResponseKey::new("/p", Duration::from_secs(30), UnixMillis(at), None)
    }

    async fn slow(calls: &AtomicUsize, ok: bool) -> Result<Answer, ApiError> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        if ok {
            Ok(Answer {
                content_type: "application/json",
                body: Bytes::from_static(b"{}"),
            })
        } else {
            Err(ApiError::bad_request("no"))
        }
    }

    #[tokio::test]
    async fn renders_once_per_key_and_coalesces() {
        let c = ResponseCache::new(Duration::from_secs(60), 1 << 20);
        let calls = AtomicUsize::new(0);
        let all =
            futures::future::join_all((0..20).map(|_| c.get_or_render(key(0), slow(&calls, true))))
                .await;
        assert!(all.iter().all(|a| a.as_ref().unwrap().body == "{}"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        c.get_or_render(key(0), slow(&calls, true)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "hit");
        c.get_or_render(key(10_000), slow(&calls, true))
            .await
            .unwrap();
        let table = ResponseKey::new(
            "/p",
            Duration::from_secs(30),
            UnixMillis(0),
            Some((TableVersion::V1, IncludeObject::Metadata)),
        );
        c.get_or_render(table, slow(&calls, true)).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "time and format are in the key"
        );
        assert_eq!(c.stats().requests.load(Ordering::Relaxed), 23);
        assert_eq!(c.stats().renders.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_zero_disables() {
        let c = ResponseCache::new(Duration::from_secs(60), 1 << 20);
        let calls = AtomicUsize::new(0);
        assert!(c.get_or_render(key(0), slow(&calls, false)).await.is_err());
        assert!(c.get_or_render(key(0), slow(&calls, false)).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let off = ResponseCache::new(Duration::from_secs(60), 0);
        off.get_or_render(key(0), slow(&calls, true)).await.unwrap();
        off.get_or_render(key(0), slow(&calls, true)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(off.bytes(), 0);
    }

    #[tokio::test]
    async fn settled_sizes_count_what_was_just_rendered() {
        let c = ResponseCache::new(Duration::from_secs(60), 1 << 20);
        let calls = AtomicUsize::new(0);
        c.get_or_render(key(0), slow(&calls, true)).await.unwrap();
        c.settle().await;
        assert_eq!(c.entries(), 1);
        assert!(c.bytes() > 0, "{}", c.bytes());
    }
}
