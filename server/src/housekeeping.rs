//! Runs the caches' bookkeeping on a task of its own. moka applies its pending reads and
//! writes, expires entries and hands evictions to their listener in batches, inside
//! whichever request next touches a cache once 300 ms have passed since the last batch (or
//! 64 operations are queued): that request then waits for the whole batch. Running the
//! batches here every [`PERIOD`] while the caches hold entries keeps the time-based ones off
//! the request path; a burst of more than 64 operations between two runs is still applied by
//! the request that queues them. With both caches empty (an idle server, once its last
//! answers expired) the task only looks again every [`IDLE_PERIOD`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::response_cache::ResponseCache;

/// How often the bookkeeping runs while a cache holds entries: inside moka's own 300 ms,
/// so that this task is the one that finds a time-based batch due, and no more often (each
/// run wakes a worker thread).
pub const PERIOD: Duration = Duration::from_millis(200);

/// How often it runs while both caches are empty: the first requests after a pause may then
/// apply a batch themselves, of an empty cache.
pub const IDLE_PERIOD: Duration = Duration::from_secs(1);

/// Spawns the task that settles the response cache and every backend's result cache. It
/// holds neither: it ends once they are dropped.
pub fn spawn(responses: &Arc<ResponseCache>, state: &Arc<AppState>) -> JoinHandle<()> {
    let (responses, state) = (Arc::downgrade(responses), Arc::downgrade(state));
    run(move || {
        let (responses, state) = (responses.upgrade()?, state.upgrade()?);
        Some(async move {
            responses.settle().await;
            let mut held = responses.entries();
            for b in state.backends.iter() {
                b.exec.settle().await;
                held += b.exec.entries();
            }
            held
        })
    })
}

/// The wait before the next run, after one that left `held` entries in the caches.
fn period_after(held: u64) -> Duration {
    if held > 0 {
        PERIOD
    } else {
        IDLE_PERIOD
    }
}

/// Spawns a task that awaits what `settle` returns (the entries the caches still hold)
/// every [`period_after`] them, until it returns `None`.
fn run<F, Fut>(mut settle: F) -> JoinHandle<()>
where
    F: FnMut() -> Option<Fut> + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    tokio::spawn(async move {
        let mut period = PERIOD;
        loop {
            tokio::time::sleep(period).await;
            match settle() {
                Some(run) => period = period_after(run.await),
                None => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response_cache::{Answer, ResponseKey};
    use adapters::model::UnixMillis;
    use bytes::Bytes;

    /// A response cache settled by [`run`], as [`spawn`] settles the server's.
    fn settled_cache() -> (Arc<ResponseCache>, JoinHandle<()>) {
        let cache = Arc::new(ResponseCache::new(Duration::from_secs(60), 1 << 20));
        let weak = Arc::downgrade(&cache);
        let task = run(move || {
            let cache = weak.upgrade()?;
            Some(async move {
                cache.settle().await;
                cache.entries()
            })
        });
        (cache, task)
    }

    #[tokio::test]
    async fn bookkeeping_runs_without_a_request() {
        let (cache, _task) = settled_cache();
        let key = ResponseKey::new("/p", Duration::from_secs(30), UnixMillis(0), None);
        let answer = Answer {
            content_type: "application/json",
            body: Bytes::from_static(b"{}"),
        };
        cache
            .get_or_render(key, async { Ok(answer) })
            .await
            .unwrap();
        // no request touches the cache again: only the task can apply the insertion (within
        // an idle period, as it may have just found the cache empty)
        for _ in 0..50 {
            if cache.entries() == 1 {
                return;
            }
            tokio::time::sleep(PERIOD / 2).await;
        }
        panic!("the insertion was not applied within 50 half-periods");
    }

    #[test]
    fn an_idle_server_is_looked_at_less_often() {
        assert_eq!(period_after(3), PERIOD);
        assert_eq!(period_after(0), IDLE_PERIOD);
        assert!(
            PERIOD < Duration::from_millis(300),
            "inside moka's own period"
        );
    }

    #[tokio::test]
    async fn the_task_ends_with_the_cache() {
        let (cache, task) = settled_cache();
        drop(cache);
        tokio::time::timeout(IDLE_PERIOD * 3, task)
            .await
            .expect("the task outlived its cache")
            .unwrap();
    }
}
