//! The Prometheus result cache: an [`Executor`] wrapper keyed by (backend, PromQL,
//! evaluation time). Evaluation times are aligned to the evaluation interval, so
//! the time is the cache's time bucket. Concurrent identical queries are coalesced
//! into one Prometheus request; errors are not cached. Memory is bounded by a
//! byte budget (entries weighed by their decoded size): half of the budget a backend is
//! given holds its Prometheus results, the other half is lent to the response cache
//! ([`crate::response_cache`], see [`CachedExecutor::response_share`]). Evicted results are
//! freed off the request path ([`crate::reclaim`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::model::UnixMillis;
use adapters::prometheus::{Executor, QueryError, Vector};
use futures::future::BoxFuture;
use moka::future::Cache;

type Key = (Arc<str>, UnixMillis);

/// Counters of cache activity.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Queries answered (hits + misses).
    pub requests: AtomicU64,
    /// Queries sent to Prometheus.
    pub misses: AtomicU64,
}

/// An executor that caches another one.
pub struct CachedExecutor<E> {
    inner: Arc<E>,
    cache: Option<Cache<Key, Arc<Vector>>>,
    stats: Arc<CacheStats>,
    /// The part of the budget lent to the response cache.
    response_share: u64,
}

impl<E: Executor + 'static> CachedExecutor<E> {
    /// Wraps `inner`; entries live for `ttl`; `max_bytes == 0` disables caching. Half of
    /// `max_bytes` holds results, the rest is [`CachedExecutor::response_share`].
    pub fn new(inner: E, ttl: Duration, max_bytes: u64) -> Self {
        let own = max_bytes.div_ceil(2);
        let cache = (own > 0).then(|| {
            Cache::builder()
                .max_capacity(own)
                .weigher(|k: &Key, v: &Arc<Vector>| {
                    u32::try_from(k.0.len() + v.approx_bytes()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .eviction_listener(crate::reclaim::listener())
                .build()
        });
        CachedExecutor {
            inner: Arc::new(inner),
            cache,
            stats: Arc::new(CacheStats::default()),
            response_share: max_bytes - own,
        }
    }

    /// The part of this backend's budget that the response cache may use.
    pub fn response_share(&self) -> u64 {
        self.response_share
    }

    /// Applies the cache's pending bookkeeping (moka batches it into later requests), so
    /// that [`CachedExecutor::bytes`] is current.
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

    /// Activity counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The wrapped executor.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

impl<E: Executor + 'static> Executor for CachedExecutor<E> {
    fn instant<'a>(
        &'a self,
        promql: &'a str,
        at: UnixMillis,
    ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>> {
        Box::pin(async move {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let Some(cache) = &self.cache else {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return self.inner.instant(promql, at).await;
            };
            // one lookup: `try_get_with` answers a hit itself, and on a miss a separate
            // `get` first would only repeat the lookup it starts with
            let key: Key = (Arc::from(promql), at);
            let inner = self.inner.clone();
            let stats = self.stats.clone();
            let owned = key.0.clone();
            cache
                .try_get_with(key, async move {
                    stats.misses.fetch_add(1, Ordering::Relaxed);
                    inner.instant(&owned, at).await
                })
                .await
                .map_err(|e: Arc<QueryError>| (*e).clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts calls; answers after a short delay so concurrent callers overlap.
    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    impl Executor for Counting {
        fn instant<'a>(
            &'a self,
            _q: &'a str,
            _at: UnixMillis,
        ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.fail {
                    Err(QueryError::Unreachable {
                        url: "u".into(),
                        detail: "d".into(),
                    })
                } else {
                    Ok(Arc::new(Vector::default()))
                }
            })
        }
    }

    fn exec(fail: bool, max_bytes: u64) -> CachedExecutor<Counting> {
        CachedExecutor::new(
            Counting {
                calls: AtomicUsize::new(0),
                fail,
            },
            Duration::from_secs(60),
            max_bytes,
        )
    }

    #[tokio::test]
    async fn concurrent_identical_queries_are_coalesced() {
        let c = exec(false, 1 << 20);
        let at = UnixMillis(10_000);
        let futs = (0..50).map(|_| c.instant("q", at));
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        assert_eq!(c.inner().calls.load(Ordering::SeqCst), 1);
        c.instant("q", at).await.unwrap();
        assert_eq!(c.inner().calls.load(Ordering::SeqCst), 1, "cached");
        c.instant("q", UnixMillis(20_000)).await.unwrap();
        c.instant("other", at).await.unwrap();
        assert_eq!(
            c.inner().calls.load(Ordering::SeqCst),
            3,
            "time bucket and query are part of the key"
        );
        assert_eq!(c.stats().requests.load(Ordering::Relaxed), 53);
        assert_eq!(c.stats().misses.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let c = exec(true, 1 << 20);
        assert!(c.instant("q", UnixMillis(0)).await.is_err());
        assert!(c.instant("q", UnixMillis(0)).await.is_err());
        assert_eq!(c.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn zero_bytes_disables_the_cache() {
        let c = exec(false, 0);
        c.instant("q", UnixMillis(0)).await.unwrap();
        c.instant("q", UnixMillis(0)).await.unwrap();
        assert_eq!(c.inner().calls.load(Ordering::SeqCst), 2);
    }
}
