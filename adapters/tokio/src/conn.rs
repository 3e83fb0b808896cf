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
use wskit_adapter::Connection;

/// Bytes read from a socket per read call; shared by every connection on a worker thread.
const SCRATCH_SIZE: usize = 64 * 1024;

/// Rounds of read-then-write before yielding to other tasks.
const BUDGET: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Drives a [`Connection`] over any tokio stream (a `TcpStream`, hyper's `Upgraded`, ...).
pub(crate) struct ConnTask<S> {
    stream: S,
    conn: Connection,
    /// Allocated only while a close is in progress.
    sleep: Option<Pin<Box<Sleep>>>,
    _guard: TaskGuard,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ConnTask<S> {
    /// `leftover`: bytes read past the request head (the client's first frames).
    pub(crate) fn new(stream: S, mut conn: Connection, leftover: &[u8], guard: TaskGuard) -> Self {
        conn.receive(Instant::now(), leftover);
        ConnTask {
            stream,
            conn,
            sleep: None,
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

impl<S: AsyncRead + AsyncWrite + Unpin> Future for ConnTask<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let ConnTask {
            stream,
            conn,
            sleep,
            ..
        } = this;
        conn.register_waker(cx.waker());
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
