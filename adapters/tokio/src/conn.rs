//! tokio's side of a connection's task (`wskit_adapter::ConnTask`): its stream's poll
//! functions, its timer, and `tokio::task::yield_now`, which resumes a task only after tokio's
//! other ready tasks and an I/O poll (the deferral of writer wake-ups relies on that).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use wskit_adapter::task::{AsyncSocket, AsyncTimer, ConnTask};
use wskit_adapter::Connection;

/// Drives a [`Connection`] over any tokio stream (a `TcpStream`, hyper's `Upgraded`, ...).
/// `leftover`: bytes read past the request head (the client's first frames).
pub(crate) fn connection_task<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    conn: Connection,
    leftover: &[u8],
) -> impl Future<Output = ()> + Send {
    ConnTask::<_, SleepTimer, _, _>::new(
        TokioSocket(stream),
        conn,
        leftover,
        tokio::task::yield_now,
    )
}

/// A tokio stream as `AsyncSocket`.
struct TokioSocket<S>(S);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncSocket for TokioSocket<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
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

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// tokio's `Sleep` as the close-deadline timer.
struct SleepTimer(Pin<Box<Sleep>>);

impl AsyncTimer for SleepTimer {
    fn at(deadline: Instant) -> Self {
        SleepTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn reset(&mut self, deadline: Instant) {
        let at = tokio::time::Instant::from_std(deadline);
        if self.0.deadline() != at {
            self.0.as_mut().reset(at);
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
