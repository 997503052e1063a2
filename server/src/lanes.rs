//! Lanes: one single-threaded tokio runtime per CPU, each on a thread of its own
//! (`mesh-metrics-lane-N`). The listener deals accepted connections out to them in turn,
//! and [`LaneExecutor`] deals out the HTTP/2 streams of a connection, so a request and
//! the Prometheus queries it causes (each lane has its own connection pool:
//! [`adapters::prometheus::set_lane`]) run on one thread. On a shared multi-threaded
//! runtime every hand-off between a request and its Prometheus connections woke another
//! worker, which took CPU from Prometheus while it evaluated the queries (BENCHMARKS.md).
//! The threads end when [`Lanes`] is dropped, and the tasks still on them with them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The lanes of one server.
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

/// One lane: its runtime's handle, and the sender whose drop ends it.
struct Lane {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl Lanes {
    /// Starts [`adapters::prometheus::lane_count`] lanes. A lane that cannot start is
    /// logged and left out; with none, tasks run on the caller's runtime.
    pub fn start() -> Arc<Lanes> {
        let lanes = (0..adapters::prometheus::lane_count())
            .filter_map(|i| match Lane::start(i) {
                Ok(lane) => Some(lane),
                Err(e) => {
                    tracing::warn!("cannot start lane {i}: {e}; serving with fewer threads");
                    None
                }
            })
            .collect();
        Arc::new(Lanes {
            lanes,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `task` on the next lane in turn.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.lanes.is_empty() {
            drop(tokio::spawn(task));
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        drop(self.lanes[i].handle.spawn(task));
    }
}

impl Lane {
    /// Starts lane `i` on a thread of its own; returns once its runtime runs.
    fn start(i: usize) -> std::io::Result<Lane> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("mesh-metrics-lane-{i}"))
            .spawn(move || {
                adapters::prometheus::set_lane(i);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                // runs the lane's tasks until the stop sender is dropped
                let _ = runtime.block_on(stopped);
            })?;
        let handle = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("its thread ended before it started"))??;
        Ok(Lane {
            handle,
            _stop: stop,
        })
    }
}

/// A hyper executor that runs what it is given (HTTP/2 streams) on the lanes, in turn. It
/// does not keep the lanes alive (connections run on them): once they are gone it runs
/// tasks where it is called.
#[derive(Clone)]
pub struct LaneExecutor(Weak<Lanes>);

impl LaneExecutor {
    /// An executor for `lanes`.
    pub fn new(lanes: &Arc<Lanes>) -> Self {
        LaneExecutor(Arc::downgrade(lanes))
    }
}

impl<F> hyper::rt::Executor<F> for LaneExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let task = async move {
            fut.await;
        };
        match self.0.upgrade() {
            Some(lanes) => lanes.spawn(task),
            None => drop(tokio::spawn(task)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The name of the thread that ran each of `n` tasks, in the order they were spawned.
    async fn ran_on(lanes: &Lanes, n: usize) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..n {
            let (tx, rx) = oneshot::channel();
            lanes.spawn(async move {
                let _ = tx.send(std::thread::current().name().unwrap_or("?").to_string());
            });
            names.push(rx.await.unwrap());
        }
        names
    }

    #[tokio::test]
    async fn tasks_are_dealt_to_the_lanes_in_turn() {
        let lanes = Lanes::start();
        let n = adapters::prometheus::lane_count();
        let names = ran_on(&lanes, 2 * n).await;
        for (k, name) in names.iter().enumerate() {
            assert_eq!(name, &format!("mesh-metrics-lane-{}", k % n), "{names:?}");
        }
    }

    #[tokio::test]
    async fn dropping_the_lanes_ends_their_tasks() {
        let lanes = Lanes::start();
        /// Reports when it is dropped.
        struct Guard(Option<oneshot::Sender<()>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (tx, dropped) = oneshot::channel();
        let guard = Guard(Some(tx));
        lanes.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        drop(lanes);
        tokio::time::timeout(Duration::from_secs(5), dropped)
            .await
            .expect("the pending task was dropped with its lane")
            .unwrap();
    }
}
