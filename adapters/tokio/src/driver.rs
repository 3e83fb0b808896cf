//! The driver task: applies `ServerHandle` commands (async handlers, other threads), fires the
//! core's timers (pings, idle timeouts, expired authentications).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::time::Sleep;
use wskit_adapter::Shared;

/// Runs until aborted (the server's shutdown does that).
pub(crate) struct Driver {
    shared: Arc<Shared>,
    sleep: Pin<Box<Sleep>>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Driver {
            shared,
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(next) = self.shared.drive(Instant::now(), cx.waker()) else {
                return Poll::Pending;
            };
            let at = tokio::time::Instant::from_std(next);
            self.sleep.as_mut().reset(at);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
