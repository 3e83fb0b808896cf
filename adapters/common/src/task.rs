//! One connection after its 101 as a hand-written future, for async runtimes: small (no
//! buffers of its own while idle), reading into a per-thread scratch buffer and writing the
//! whole queue per wake-up. The runtime supplies its socket's poll functions ([`AsyncSocket`]),
//! a timer ([`AsyncTimer`]) and a yield (see [`Deferral`]).

use crate::{Connection, Deferral};
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Bytes read from a socket per read call; shared by every connection on a thread.
const SCRATCH_SIZE: usize = 64 * 1024;

/// Rounds of read-then-write before yielding to other tasks.
const BUDGET: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A connected stream as poll functions (tokio's `AsyncRead`/`AsyncWrite`, futures-io's, ...).
pub trait AsyncSocket {
    /// Reads into `buf`; `Ok(0)` is end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf` (the usual case: a burst is one buffer; `send(2)` is cheaper in the
    /// kernel than `writev(2)`).
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from several slices (a copied run and shared large frames).
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Shuts the write half: the peer sees our close frame, then a FIN.
    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A timer for the close deadline, allocated only while a close is in progress.
pub trait AsyncTimer {
    /// A timer that fires at `deadline`.
    fn at(deadline: Instant) -> Self;

    /// Moves the timer to `deadline` (cheap when it is already there).
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Drives a [`Connection`] over an [`AsyncSocket`] until it is done: reads feed
/// [`Connection::receive`], the queue is written after each read, the close handshake and its
/// deadline are honoured, and writer wake-ups are held back until the task has yielded once
/// with `F` (see [`Deferral`]).
pub struct ConnTask<S, T, F, Y> {
    stream: S,
    conn: Connection,
    timer: Option<T>,
    deferral: Deferral<F, Y>,
}

impl<S, T, F, Y> std::fmt::Debug for ConnTask<S, T, F, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTask")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<S, T, F, Y> ConnTask<S, T, F, Y>
where
    S: AsyncSocket,
    T: AsyncTimer,
    F: Fn() -> Y,
    Y: Future<Output = ()>,
{
    /// The task of an upgraded connection. `leftover`: bytes read past the request head (the
    /// client's first frames). `yield_now` makes the runtime's yield future.
    pub fn new(stream: S, mut conn: Connection, leftover: &[u8], yield_now: F) -> Self {
        conn.defer_writer_wakes(true);
        conn.receive(Instant::now(), leftover);
        ConnTask {
            stream,
            conn,
            timer: None,
            deferral: Deferral::new(yield_now),
        }
    }
}

enum Read {
    Data,
    Eof,
    Failed(io::Error),
    Pending,
}

impl<S, T, F, Y> Future for ConnTask<S, T, F, Y>
where
    S: AsyncSocket + Unpin,
    T: AsyncTimer + Unpin,
    F: Fn() -> Y + Unpin,
    Y: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let (stream, timer) = (&mut this.stream, &mut this.timer);
        this.deferral.around(&mut this.conn, cx, |conn, cx| {
            poll_io(stream, conn, timer, cx)
        })
    }
}

/// Reads, hands what was read to the connection, writes its queue, until nothing moves.
fn poll_io<S: AsyncSocket, T: AsyncTimer>(
    stream: &mut S,
    conn: &mut Connection,
    timer: &mut Option<T>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    for _ in 0..BUDGET {
        let now = Instant::now();
        let mut progress = false;
        if conn.wants_read() {
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                match stream.poll_read(cx, &mut scratch[..]) {
                    Poll::Ready(Ok(0)) => Read::Eof,
                    Poll::Ready(Ok(n)) => {
                        conn.receive(now, &scratch[..n]);
                        Read::Data
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Read::Data,
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
            if let Poll::Ready(result) = stream.poll_shutdown_write(cx) {
                if let Err(e) = result {
                    tracing::trace!(conn = %conn.id(), error = %e, "shutdown(Write) failed");
                }
                // Done after a complete close handshake; else the peer's EOF (or the close
                // deadline) ends the linger.
                conn.shutdown_done();
                progress = true;
            }
        }
        if let Some(deadline) = conn.deadline() {
            let timer = match timer {
                Some(timer) => {
                    timer.reset(deadline);
                    timer
                }
                None => timer.insert(T::at(deadline)),
            };
            if timer.poll_elapsed(cx).is_ready() {
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
