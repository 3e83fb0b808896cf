//! One connection after its 101, as a hand-written future: small (no buffers of its own while
//! idle), reading into a per-thread scratch buffer and writing the whole queue per wake-up.

use crate::tracker::TaskGuard;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use wskit_adapter::{Connection, Deferral};

/// Bytes read from a socket per read call; shared by every connection on a worker thread.
const SCRATCH_SIZE: usize = 64 * 1024;

/// Rounds of read-then-write before yielding to other tasks.
const BUDGET: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Drives a [`Connection`] over any tokio stream (a `TcpStream`, hyper's `Upgraded`, ...).
/// `leftover`: bytes read past the request head (the client's first frames).
pub(crate) fn connection_task<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    conn: Connection,
    leftover: &[u8],
    guard: TaskGuard,
) -> impl Future<Output = ()> + Send {
    ConnTask::new(stream, conn, leftover, guard, tokio::task::yield_now)
}

/// The future of one connection. `F` is `tokio::task::yield_now` (a zero-sized function item)
/// and `Y` its future.
struct ConnTask<S, F, Y> {
    stream: S,
    conn: Connection,
    /// Allocated only while a close is in progress.
    sleep: Option<Pin<Box<Sleep>>>,
    /// After a read that published, the writers it queued to are woken only once tokio has run
    /// its other ready tasks and polled its I/O driver (`yield_now` resumes us only then): the
    /// readers ready by then add their messages to the same writes.
    deferral: Deferral<F, Y>,
    _guard: TaskGuard,
}

impl<S, F, Y> ConnTask<S, F, Y>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Y,
    Y: Future<Output = ()>,
{
    fn new(
        stream: S,
        mut conn: Connection,
        leftover: &[u8],
        guard: TaskGuard,
        yield_now: F,
    ) -> Self {
        conn.defer_writer_wakes(true);
        conn.receive(Instant::now(), leftover);
        ConnTask {
            stream,
            conn,
            sleep: None,
            deferral: Deferral::new(yield_now),
            _guard: guard,
        }
    }
}

enum Read {
    Data,
    Eof,
    Failed(io::Error),
    Pending,
}

impl<S, F, Y> Future for ConnTask<S, F, Y>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Y + Unpin,
    Y: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let (stream, sleep) = (&mut this.stream, &mut this.sleep);
        this.deferral.around(&mut this.conn, cx, |conn, cx| {
            Self::poll_io(stream, conn, sleep, cx)
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin, F, Y> ConnTask<S, F, Y> {
    /// Reads, hands what was read to the connection, writes its queue, until nothing moves.
    fn poll_io(
        stream: &mut S,
        conn: &mut Connection,
        sleep: &mut Option<Pin<Box<Sleep>>>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        for _ in 0..BUDGET {
            let now = Instant::now();
            let mut progress = false;
            if conn.wants_read() {
                let read = SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    let mut buf = ReadBuf::new(&mut scratch[..]);
                    match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => Read::Eof,
                        Poll::Ready(Ok(())) => {
                            conn.receive(now, buf.filled());
                            Read::Data
                        }
                        Poll::Ready(Err(e)) => Read::Failed(e),
                        Poll::Pending => Read::Pending,
                    }
                });
                match read {
                    Read::Data => progress = true,
                    Read::Eof => conn.receive_eof(now),
                    Read::Failed(e) => conn.io_failed(now, &e),
                    Read::Pending => {}
                }
            }
            let written = conn.write_with(now, |slices| {
                // One slice (the usual case: a burst is one buffer) goes through send(2),
                // which is cheaper in the kernel than writev(2).
                let stream = Pin::new(&mut *stream);
                let poll = match slices {
                    [one] => stream.poll_write(cx, one),
                    _ => stream.poll_write_vectored(cx, slices),
                };
                match poll {
                    Poll::Ready(r) => r,
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            });
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => conn.io_failed(now, &e),
            }
            if conn.wants_shutdown() {
                match Pin::new(&mut *stream).poll_shutdown(cx) {
                    Poll::Ready(_) => {
                        conn.shutdown_done();
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(deadline) = conn.deadline() {
                let at = tokio::time::Instant::from_std(deadline);
                let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    conn.on_deadline(Instant::now().max(deadline));
                }
            }
            if conn.is_done() {
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
