//! Holding back the writer wake-ups of a read until the runtime has let other tasks run.
//!
//! A burst of publishes from several senders arrives over tens of microseconds. Waking every
//! subscriber's writer after the first one makes each writer run once per publish; waiting
//! until the runtime has run its other ready tasks (and, on tokio, polled its I/O driver) lets
//! the rest of the burst join the same queues, so each subscriber gets one write per burst.

use crate::Connection;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The yield of a connection task with held-back wake-ups (see
/// [`Connection::defer_writer_wakes`]). `F` makes the runtime's yield future (for tokio,
/// `tokio::task::yield_now`, which resumes only after the I/O driver ran); its box is allocated
/// on first use and then reused.
pub struct Deferral<F, Y> {
    yield_now: F,
    pending: Option<Pin<Box<Y>>>,
    yielding: bool,
}

impl<F, Y> std::fmt::Debug for Deferral<F, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferral")
            .field("yielding", &self.yielding)
            .finish_non_exhaustive()
    }
}

impl<F: Fn() -> Y, Y: Future<Output = ()>> Deferral<F, Y> {
    /// A deferral that yields with `yield_now`.
    pub fn new(yield_now: F) -> Self {
        Deferral {
            yield_now,
            pending: None,
            yielding: false,
        }
    }

    /// A connection task's `poll`: registers the task's waker, wakes the writers held back by
    /// the previous poll once the yield has run its course, runs `io` (reads, writes, timers),
    /// then starts a yield if `io` held back wake-ups. A finished task wakes them at once.
    pub fn around(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
        io: impl FnOnce(&mut Connection, &mut Context<'_>) -> Poll<()>,
    ) -> Poll<()> {
        conn.register_waker(cx.waker());
        self.poll(conn, cx);
        let poll = io(conn, cx);
        if poll.is_ready() {
            conn.wake_deferred();
        } else {
            self.start(conn, cx);
        }
        poll
    }

    /// Wakes the held-back writers once the yield has run its course ([`around`](Self::around)
    /// calls it first).
    pub fn poll(&mut self, conn: &mut Connection, cx: &mut Context<'_>) {
        if !self.yielding {
            return;
        }
        if let Some(pending) = &mut self.pending {
            if pending.as_mut().poll(cx).is_pending() {
                return;
            }
        }
        self.yielding = false;
        conn.wake_deferred();
    }

    /// Starts a yield if writers wait to be woken ([`around`](Self::around) calls it last when
    /// the task returns `Pending`).
    pub fn start(&mut self, conn: &mut Connection, cx: &mut Context<'_>) {
        if self.yielding || !conn.has_deferred() {
            return;
        }
        let yield_now = (self.yield_now)();
        match &mut self.pending {
            Some(pending) => pending.set(yield_now),
            None => self.pending = Some(Box::pin(yield_now)),
        }
        self.yielding = true;
        self.poll(conn, cx);
    }
}
