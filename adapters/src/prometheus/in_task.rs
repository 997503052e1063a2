//! [`InTask`]: polls a connection and the receivers it feeds, all in the asking task,
//! without that task waking itself.
//!
//! A hyper client connection hands the answer's head and body to their receivers through
//! channels that wake the receiver's waker, and a receiver that wants more wakes the
//! connection's. When one task polls both, every hand-off is a wake-up of the task while it
//! is running: the runtime puts it back in its run queue and, on a multi-thread runtime,
//! wakes an idle worker to look for it (a futex call and, on a VM, an interrupt to a
//! sleeping vCPU) for nothing. [`InTask::poll`] gives the inner futures a waker that, while
//! they are being polled, only notes a wake-up, and then polls them again at once; at any
//! other time (the socket becoming readable) it wakes the task.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Not inside [`InTask::poll`]: a wake-up wakes the task.
const IDLE: u8 = 0;
/// Inside [`InTask::poll`]: a wake-up is only noted.
const POLLING: u8 = 1;
/// Inside [`InTask::poll`], and something woke: poll again.
const WOKEN: u8 = 2;
/// Rounds of one [`InTask::poll`] before it yields to the runtime after all: a future that
/// wakes itself on every poll (as tokio's resources do once the task's cooperative budget
/// is spent) must get back to the scheduler.
const MAX_ROUNDS: usize = 8;

/// The waker of the futures driven by one query.
pub(super) struct InTask {
    shared: Arc<Shared>,
    waker: Waker,
}

struct Shared {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Err(IDLE) = self.state.compare_exchange(POLLING, WOKEN, SeqCst, SeqCst) {
            self.task.wake();
        }
    }
}

impl InTask {
    /// A waker for one query's connection and receivers.
    pub(super) fn new() -> InTask {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        InTask {
            waker: Waker::from(shared.clone()),
            shared,
        }
    }

    /// Polls `f` (which polls the connection, then its receivers) with the inner waker
    /// until nothing it polled woke meanwhile. Wake-ups while it was polled are not passed
    /// on, so the caller must poll again after a `Ready` before waiting on anything that
    /// needs the connection (the connection only moves when it is polled here anyway, and
    /// a readable socket stays readable until it is read).
    pub(super) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.shared.task.register(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..MAX_ROUNDS {
            self.shared.state.store(POLLING, SeqCst);
            let polled = f(&mut inner);
            let woken = self.shared.state.swap(IDLE, SeqCst) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Runs `f` with the inner waker's wake-ups kept from the task, as while polling: for
    /// the connection's last step (dropping its request sender wakes the connection, which
    /// is then finished at once, never waited for).
    pub(super) fn quietly<T>(&self, f: impl FnOnce() -> T) -> T {
        self.shared.state.store(POLLING, SeqCst);
        let done = f();
        self.shared.state.store(IDLE, SeqCst);
        done
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the task's wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn task() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    /// A task's wake-up count, its `InTask` after one pending poll, and the waker that
    /// poll gave the inner futures.
    fn pending_once() -> (Arc<Count>, InTask, Waker) {
        let (count, waker) = task();
        let in_task = InTask::new();
        let mut kept = None;
        let polled: Poll<()> = in_task.poll(&mut Context::from_waker(&waker), |inner| {
            kept = Some(inner.waker().clone());
            Poll::Pending
        });
        assert!(polled.is_pending());
        (count, in_task, kept.unwrap())
    }

    /// One `InTask::poll` of `f` from a fresh task: what it returned, and how often the
    /// task was woken.
    fn poll_once<T>(f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> (Poll<T>, usize) {
        let (count, waker) = task();
        let polled = InTask::new().poll(&mut Context::from_waker(&waker), f);
        (polled, count.0.load(SeqCst))
    }

    #[test]
    fn a_wake_up_while_polled_polls_again_instead_of_waking_the_task() {
        let mut rounds = 0;
        // round 1 hands something over (wakes), round 2 finds it ready
        let (polled, wakes) = poll_once(|inner| {
            rounds += 1;
            if rounds == 1 {
                inner.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(rounds)
            }
        });
        assert_eq!(polled, Poll::Ready(2));
        assert_eq!(wakes, 0);
    }

    #[test]
    fn a_wake_up_after_the_poll_wakes_the_task() {
        let (count, _, kept) = pending_once();
        assert_eq!(count.0.load(SeqCst), 0);
        // the socket becomes readable later, from the I/O driver
        std::thread::spawn(move || kept.wake()).join().unwrap();
        assert_eq!(count.0.load(SeqCst), 1);
    }

    #[test]
    fn what_runs_quietly_does_not_wake_the_task() {
        let (count, in_task, kept) = pending_once();
        in_task.quietly(|| kept.wake_by_ref());
        assert_eq!(count.0.load(SeqCst), 0);
        // and afterwards wake-ups reach the task again
        kept.wake();
        assert_eq!(count.0.load(SeqCst), 1);
    }

    #[test]
    fn a_future_that_always_wakes_itself_still_yields_to_the_runtime() {
        let mut rounds = 0;
        let (polled, wakes) = poll_once(|inner| {
            rounds += 1;
            inner.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        assert!(polled.is_pending());
        assert_eq!(rounds, MAX_ROUNDS);
        assert_eq!(wakes, 1);
    }
}
