//! One connection after its 101, as a hand-written future: small (no buffers of its own while
//! idle), reading into a per-thread scratch buffer and writing the whole queue per wake-up.

use crate::signal::TaskGuard;
use async_io::{Async, Timer};
use futures_lite::io::{AsyncRead, AsyncWrite};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use wskit_adapter::{Connection, Deferral};

/// Bytes read from a socket per read call; shared by every connection on an executor thread.
const SCRATCH_SIZE: usize = 64 * 1024;

/// Rounds of read-then-write before yielding to other tasks.
const BUDGET: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Drives a [`Connection`] over an async-io TCP stream.
pub(crate) struct ConnTask {
    stream: Async<TcpStream>,
    conn: Connection,
    /// Allocated only while a close is in progress.
    timer: Option<Box<(Timer, Instant)>>,
    /// After a read that published, the writers it queued to are woken only once the executor
    /// has run the tasks already queued (the other readers of a burst).
    deferral: Deferral<fn() -> YieldNow, YieldNow>,
    _guard: TaskGuard,
}

type YieldNow = futures_lite::future::YieldNow;

impl ConnTask {
    /// `leftover`: bytes read past the request head (the client's first frames).
    pub(crate) fn new(
        stream: Async<TcpStream>,
        mut conn: Connection,
        leftover: &[u8],
        guard: TaskGuard,
    ) -> Self {
        conn.defer_writer_wakes(true);
        conn.receive(Instant::now(), leftover);
        ConnTask {
            stream,
            conn,
            timer: None,
            deferral: Deferral::new(futures_lite::future::yield_now),
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

impl Future for ConnTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let (stream, timer) = (&mut this.stream, &mut this.timer);
        this.deferral.around(&mut this.conn, cx, |conn, cx| {
            Self::poll_io(stream, conn, timer, cx)
        })
    }
}

impl ConnTask {
    /// Reads, hands what was read to the connection, writes its queue, until nothing moves.
    fn poll_io(
        stream: &mut Async<TcpStream>,
        conn: &mut Connection,
        timer: &mut Option<Box<(Timer, Instant)>>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        for _ in 0..BUDGET {
            let now = Instant::now();
            let mut progress = false;
            if conn.wants_read() {
                let read = SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
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
                // A real half-close (FIN): futures-io's `poll_close` only flushes a TCP stream.
                // The peer sees our close frame, then EOF; its EOF ends the linger.
                if let Err(e) = stream.get_ref().shutdown(Shutdown::Write) {
                    tracing::trace!(conn = %conn.id(), error = %e, "shutdown(Write) failed");
                }
                conn.shutdown_done();
                progress = true;
            }
            if let Some(deadline) = conn.deadline() {
                let slot = timer.get_or_insert_with(|| Box::new((Timer::at(deadline), deadline)));
                if slot.1 != deadline {
                    slot.0.set_at(deadline);
                    slot.1 = deadline;
                }
                if Pin::new(&mut slot.0).poll(cx).is_ready() {
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
