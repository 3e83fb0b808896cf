//! async-io's side of a connection's task (`wskit_adapter::ConnTask`): the stream's poll
//! functions, a timer, and futures-lite's `yield_now` (behind the tasks already queued).

use async_io::{Async, Timer};
use futures_lite::io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use wskit_adapter::task::{AsyncSocket, AsyncTimer, ConnTask};
use wskit_adapter::Connection;

/// Drives a [`Connection`] over an async-io TCP stream. `leftover`: bytes read past the request
/// head (the client's first frames).
pub(crate) fn connection_task(
    stream: Async<TcpStream>,
    conn: Connection,
    leftover: &[u8],
) -> impl Future<Output = ()> + Send {
    ConnTask::<_, DeadlineTimer, _, _>::new(
        AsyncIoSocket(stream),
        conn,
        leftover,
        futures_lite::future::yield_now,
    )
}

/// An async-io TCP stream as `AsyncSocket`.
struct AsyncIoSocket(Async<TcpStream>);

impl AsyncSocket for AsyncIoSocket {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, slices)
    }

    fn poll_shutdown_write(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A real half-close (FIN): futures-io's `poll_close` only flushes a TCP stream.
        Poll::Ready(self.0.get_ref().shutdown(Shutdown::Write))
    }
}

/// async-io's `Timer` with the deadline it was set to (allocated only while a close is in
/// progress).
struct DeadlineTimer(Box<(Timer, Instant)>);

impl AsyncTimer for DeadlineTimer {
    fn at(deadline: Instant) -> Self {
        DeadlineTimer(Box::new((Timer::at(deadline), deadline)))
    }

    fn reset(&mut self, deadline: Instant) {
        let (timer, at) = &mut *self.0;
        if *at != deadline {
            timer.set_at(deadline);
            *at = deadline;
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0 .0).poll(cx).map(drop)
    }
}
