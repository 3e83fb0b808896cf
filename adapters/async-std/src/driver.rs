//! The driver task: applies `ServerHandle` commands (async handlers, other threads), fires the
//! core's timers (pings, idle timeouts, expired authentications).

use async_io::Timer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use wskit_adapter::Shared;

/// Runs forever; the server races it against its stop signal.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    timer: Timer,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Driver {
            shared,
            timer: Timer::never(),
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(next) = self.shared.drive(Instant::now(), cx.waker()) else {
                self.timer.clear();
                return Poll::Pending;
            };
            self.timer.set_at(next);
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
