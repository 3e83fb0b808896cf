//! Runtime-free futures for async handlers: a gate the test opens, and a single yield. They
//! work on whatever runtime the adapter under test uses.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// A one-way gate: futures from [`wait`](Self::wait) complete once [`open`](Self::open) ran.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    /// Opens the gate and wakes every waiter.
    pub fn open(&self) {
        let wakers = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = true;
            std::mem::take(&mut s.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Completes when the gate is open.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.0 {
                return Poll::Ready(());
            }
            s.1.push(cx.waker().clone());
            Poll::Pending
        })
    }
}

/// Pending once (waking itself), so an async handler really goes through the runtime.
pub fn yield_once() -> impl Future<Output = ()> {
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldOnce(false)
}
