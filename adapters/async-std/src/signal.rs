//! Runtime-free synchronisation the adapter needs: a one-way flag tasks can await (shutdown
//! began, the accept loop ended, the driver must stop), a count of live connection tasks, and
//! a timeout on async-io's timer.

use event_listener::Event;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A flag set once; [`wait`](Self::wait) resolves when it is set.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    event: Event,
}

impl Signal {
    /// Sets the flag and wakes every waiter. Idempotent.
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            self.event.notify(usize::MAX);
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
        while !self.is_set() {
            let listener = self.event.listen();
            // Checked again after registering: a `set` in between is not missed.
            if self.is_set() {
                return;
            }
            listener.await;
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    count: AtomicUsize,
    idle: Event,
}

/// Hands out guards; [`wait_idle`](Self::wait_idle) resolves when none is alive.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracker(Arc<Live>);

/// Alive while its connection task runs.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Live>);

impl Tracker {
    pub(crate) fn guard(&self) -> TaskGuard {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.0.clone())
    }

    pub(crate) fn live(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait_idle(&self) {
        while self.live() > 0 {
            let listener = self.0.idle.listen();
            if self.live() == 0 {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify(usize::MAX);
        }
    }
}

/// `future`'s output, or `None` if `limit` passes first (async-io's timer, so it works under
/// any executor).
pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn signal_wakes_a_waiter_set_from_another_thread() {
        let signal = Arc::new(Signal::default());
        let setter = signal.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            setter.set();
        });
        let waited = block_on(timeout(Duration::from_secs(5), signal.wait()));
        assert_eq!(waited, Some(()));
        thread.join().unwrap();
    }

    #[test]
    fn tracker_is_idle_when_the_last_guard_drops() {
        let tracker = Tracker::default();
        let guards = vec![tracker.guard(), tracker.guard()];
        assert_eq!(tracker.live(), 2);
        let pending = block_on(timeout(Duration::from_millis(20), tracker.wait_idle()));
        assert_eq!(pending, None);
        let thread = std::thread::spawn(move || drop(guards));
        let idle = block_on(timeout(Duration::from_secs(5), tracker.wait_idle()));
        assert_eq!(idle, Some(()));
        thread.join().unwrap();
    }
}
