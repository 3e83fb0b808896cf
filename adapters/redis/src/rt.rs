//! The two things the backplane needs from an executor besides the `redis` crate: sleeping and
//! racing futures. Both work on tokio and on smol / async-io, picked by feature (and, with both
//! features on, by whether a tokio runtime is current, the rule the `redis` crate also follows).

use futures_util::future::{select, Either};
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!("wskit-redis needs the `tokio` or the `smol` feature");

/// Sleeps for `d` on the current executor's timer.
pub(crate) async fn sleep(d: Duration) {
    #[cfg(all(feature = "tokio", feature = "smol"))]
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::time::sleep(d).await;
        } else {
            async_io::Timer::after(d).await;
        }
    }
    #[cfg(all(feature = "tokio", not(feature = "smol")))]
    tokio::time::sleep(d).await;
    #[cfg(all(feature = "smol", not(feature = "tokio")))]
    {
        async_io::Timer::after(d).await;
    }
}

/// `Some(output)` if `fut` finishes within `d`.
pub(crate) async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
    match select(pin!(fut), pin!(sleep(d))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// The output of whichever future finishes first; the other is dropped.
pub(crate) async fn race<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    match select(pin!(a), pin!(b)).await {
        Either::Left((out, _)) | Either::Right((out, _)) => out,
    }
}
