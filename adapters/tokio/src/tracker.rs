//! Counts live connection tasks so a graceful shutdown knows when everything has drained.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    live: AtomicUsize,
    idle: Notify,
}

/// Hands out guards; [`wait_idle`](Self::wait_idle) resolves when none is alive.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracker(Arc<Inner>);

/// Alive while its task runs.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Inner>);

impl Tracker {
    pub(crate) fn guard(&self) -> TaskGuard {
        self.0.live.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.0.clone())
    }

    pub(crate) fn live(&self) -> usize {
        self.0.live.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
