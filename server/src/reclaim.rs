//! Frees what the Prometheus result cache evicts on a thread of its own. A cached answer of
//! a large list holds tens of thousands of samples (two allocations each), and moka evicts
//! expired entries inside whichever request next touches the cache: freeing the answers of
//! six namespace lists of a 5,000-workload mesh (312,000 samples) takes 12 ms here, which
//! that request would wait for.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;

/// How long an evicted value is held before it is freed: moka drops its own reference
/// right after the listener returns, so by then the reclaim thread holds the last one.
const HOLD: Duration = Duration::from_millis(100);

/// An eviction listener that hands every evicted value to a reclaim thread, which ends
/// with the cache. If the thread cannot start, values are freed where they are evicted.
pub fn listener<K, V: Send + 'static>() -> impl Fn(Arc<K>, V, RemovalCause) + Send + Sync + 'static
{
    let (tx, rx) = mpsc::channel::<(Instant, V)>();
    let started = std::thread::Builder::new()
        .name("mesh-metrics-reclaim".into())
        .spawn(move || reclaim(rx))
        .is_ok();
    let tx = started.then_some(tx);
    move |_key, value, _cause| {
        if let Some(tx) = &tx {
            // a send fails only once the thread is gone: the value is then freed here
            let _ = tx.send((Instant::now() + HOLD, value));
        }
    }
}

/// Holds each value until it is due, then drops it; returns when the cache is dropped.
fn reclaim<V>(rx: mpsc::Receiver<(Instant, V)>) {
    let mut held: VecDeque<(Instant, V)> = VecDeque::new();
    loop {
        let next = match held.front() {
            Some((due, _)) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(item) => held.push_back(item),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            held.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the name of the thread that drops it.
    struct Traced(Arc<Mutex<Option<String>>>);

    impl Drop for Traced {
        fn drop(&mut self) {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            *self.0.lock().unwrap() = Some(name);
        }
    }

    /// The thread that freed the traced value, waiting up to 2 s for it.
    fn freed_by(seen: &Mutex<Option<String>>) -> Option<String> {
        for _ in 0..200 {
            if let Some(name) = seen.lock().unwrap().clone() {
                return Some(name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn evicted_values_are_freed_on_the_reclaim_thread() {
        let seen = Arc::new(Mutex::new(None));
        let listen = listener::<u32, Arc<Traced>>();
        let value = Arc::new(Traced(seen.clone()));
        // as moka does: the listener gets a clone, the cache drops its own right after
        listen(Arc::new(1), value.clone(), RemovalCause::Expired);
        drop(value);
        assert_eq!(freed_by(&seen).as_deref(), Some("mesh-metrics-reclaim"));
    }

    #[test]
    fn held_values_are_freed_when_the_cache_goes() {
        let seen = Arc::new(Mutex::new(None));
        let listen = listener::<u32, Traced>();
        listen(Arc::new(2), Traced(seen.clone()), RemovalCause::Size);
        drop(listen);
        assert_eq!(freed_by(&seen).as_deref(), Some("mesh-metrics-reclaim"));
    }
}
