//! One connection after its 101: its own thread reads, the pool writes what others queue.
//!
//! The connection thread blocks in `peek` on the socket (no timeout, no buffer held), reads
//! into a lent buffer, feeds that to the [`Connection`] under the cell's mutex, then writes the
//! output that produced itself (an echo, a pong) before waiting again. Output queued by other
//! threads (a publish, the driver's ping or close) cannot be written by this thread, which may
//! be blocked for hours; the connection's waker hands it to a pool thread instead. Exactly one thread, the *owner*,
//! writes at a time ([`OWNED`]): the reader while it handles its input, otherwise a pool job.
//! A wake-up that arrives while someone owns the connection only leaves a note ([`NOTIFY`]);
//! the owner checks for notes before giving ownership up, so none is lost.
//!
//! Writes block (the socket is in blocking mode) for at most [`WRITE_SLICE`] per call: a
//! client that does not read keeps its owner in a loop of write attempts that lets the reader
//! in between them. A reader whose own write would block hands the rest to the pool and goes
//! back to reading, so it never waits on its peer's receive window for long.
//!
//! Close deadlines are enforced without the mutex (a write may hold it): the driver shuts the
//! socket down at the deadline, which fails the owner's write and ends the reader's wait.

use crate::pool::Job;
use crate::rt::Rt;
use parking_lot::{Mutex, MutexGuard};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};
use wskit_adapter::Connection;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// Read buffers kept for reuse (more are allocated when needed, and freed when returned).
const SPARE_BUFFERS: usize = 64;

/// Read buffers lent to readers for one `read` each. A reader blocks in `peek` without one, so
/// an idle connection holds no buffer: a buffer on its own stack would stay resident (stack
/// pages, once touched, are never given back), one in its thread's heap likewise.
static SPARE: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

fn lend_buffer() -> Box<[u8]> {
    SPARE
        .lock()
        .pop()
        .unwrap_or_else(|| vec![0; READ_CHUNK].into_boxed_slice())
}

fn return_buffer(buf: Box<[u8]>) {
    let mut spare = SPARE.lock();
    if spare.len() < SPARE_BUFFERS {
        spare.push(buf);
    }
}

/// Longest a single socket write blocks before its caller looks around (deadlines, the reader).
pub(crate) const WRITE_SLICE: Duration = Duration::from_millis(250);

/// Someone is responsible for writing this connection's output and will check [`NOTIFY`].
const OWNED: u8 = 1;
/// Output was queued while the connection was owned.
const NOTIFY: u8 = 2;

/// What the reader got from the socket.
enum Input<'a> {
    Data(&'a [u8]),
    Eof,
    Failed(io::Error),
}

/// The connection as its reader, its waker, the pool and the driver share it.
pub(crate) struct ConnCell {
    rt: Arc<Rt>,
    stream: Arc<TcpStream>,
    /// `None` once the reader has dropped the connection.
    slot: Mutex<Option<Slot>>,
    /// [`OWNED`] and [`NOTIFY`].
    sched: AtomicU8,
}

struct Slot {
    conn: Connection,
    /// The close deadline the driver knows about.
    timer: Option<Instant>,
}

enum Pumped {
    /// Everything queued is written (or the connection is done).
    Flushed,
    /// A write did not finish within [`WRITE_SLICE`].
    Blocked,
}

impl ConnCell {
    /// Serves an open connection on the calling thread until it is done. `leftover`: bytes the
    /// client sent right after its request head.
    pub(crate) fn run(
        rt: Arc<Rt>,
        stream: Arc<TcpStream>,
        mut conn: Connection,
        leftover: Vec<u8>,
    ) {
        let _ = stream.set_read_timeout(None);
        if let Err(e) = stream.set_write_timeout(Some(WRITE_SLICE)) {
            tracing::debug!(error = %e, "could not set the write timeout");
        }
        let cell = Arc::new(ConnCell {
            rt,
            stream,
            slot: Mutex::new(None),
            // The reader owns the first step: `on_connect`'s output was queued before the
            // waker existed, so nobody else was told about it.
            sched: AtomicU8::new(OWNED),
        });
        conn.register_waker(&Waker::from(cell.clone()));
        *cell.slot.lock() = Some(Slot { conn, timer: None });
        if cell.step(true, Input::Data(&leftover)) {
            drop(leftover);
            cell.read_loop();
        }
        // Wakes a pool job that may still be writing, and closes the socket for the peer even
        // if a stray reference to the cell outlives this thread for a moment.
        let _ = cell.stream.shutdown(Shutdown::Both);
    }

    fn read_loop(self: &Arc<Self>) {
        loop {
            let mut lent = None;
            // Wait for input without holding a buffer; then the `read` does not block.
            let input = match self.stream.peek(&mut [0u8; 1]) {
                Ok(0) => Input::Eof,
                Ok(_) => {
                    let buf = lent.insert(lend_buffer());
                    match (&*self.stream).read(buf) {
                        Ok(0) => Input::Eof,
                        Ok(n) => Input::Data(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Input::Failed(e),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Input::Failed(e),
            };
            let owned = self.try_own();
            let keep_reading = self.step(owned, input);
            if let Some(buf) = lent {
                return_buffer(buf);
            }
            if !keep_reading {
                return;
            }
        }
    }

    /// Handles one input, then writes (as the owner) or tells the owner. Returns whether to
    /// keep reading.
    fn step(self: &Arc<Self>, owned: bool, input: Input<'_>) -> bool {
        let now = Instant::now();
        let mut guard = self.slot.lock();
        let Some(slot) = guard.as_mut() else {
            if owned {
                self.release_all();
            }
            return false;
        };
        match input {
            Input::Data(data) => slot.conn.receive(now, data),
            Input::Eof => slot.conn.receive_eof(now),
            Input::Failed(e) => slot.conn.io_failed(now, &e),
        }
        if owned {
            loop {
                self.sched.fetch_and(!NOTIFY, Ordering::SeqCst);
                match self.pump(slot) {
                    Pumped::Blocked => {
                        // The pool inherits ownership; this thread goes back to reading.
                        self.rt.pool.submit(self.clone());
                        break;
                    }
                    Pumped::Flushed if self.release() => break,
                    Pumped::Flushed => {} // output was queued meanwhile
                }
            }
        } else {
            // Pongs and close replies join the queue without a wake-up: tell the owner.
            self.notify();
        }
        if slot.conn.is_done() {
            let conn = guard.take();
            drop(guard);
            // Already reported to the core (`finish`); dropping it frees the queue.
            drop(conn);
            return false;
        }
        true
    }

    /// Writes what is queued, shuts the write half when the engine says so, and tells the
    /// driver about a close deadline.
    fn pump(self: &Arc<Self>, slot: &mut Slot) -> Pumped {
        let now = Instant::now();
        let conn = &mut slot.conn;
        if conn.deadline().is_some_and(|at| now >= at) {
            conn.on_deadline(now);
        }
        let stream = &*self.stream;
        let mut blocked = false;
        // One slice (the usual case) goes through send(2), cheaper in the kernel than writev(2).
        let write = |slices: &[io::IoSlice<'_>]| match slices {
            [one] => (&*stream).write(one),
            _ => (&*stream).write_vectored(slices),
        };
        match conn.write_with(now, write) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                blocked = true;
            }
            Err(e) => conn.io_failed(now, &e),
        }
        if conn.wants_shutdown() {
            let _ = stream.shutdown(Shutdown::Write);
            conn.shutdown_done();
        }
        if conn.is_done() {
            // Ends the reader's `read` (it may be waiting for a peer that is gone).
            let _ = stream.shutdown(Shutdown::Both);
            return Pumped::Flushed;
        }
        if let Some(at) = conn.deadline() {
            if slot.timer != Some(at) {
                slot.timer = Some(at);
                self.rt.timers.add(at, Arc::downgrade(self));
            }
        }
        if blocked {
            Pumped::Blocked
        } else {
            Pumped::Flushed
        }
    }

    /// The close deadline passed (called by the driver): give up on the peer. Whoever is
    /// blocked on the socket wakes with an error or end-of-file and finishes the connection.
    pub(crate) fn expire(&self) {
        tracing::trace!("close deadline passed; shutting the socket");
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Takes ownership if nobody has it.
    fn try_own(&self) -> bool {
        let mut s = self.sched.load(Ordering::SeqCst);
        loop {
            if s & OWNED != 0 {
                return false;
            }
            match self
                .sched
                .compare_exchange_weak(s, OWNED, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// Gives ownership up unless a note arrived since the owner last cleared it.
    fn release(&self) -> bool {
        self.sched
            .compare_exchange(OWNED, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Gives ownership up for good (the connection is gone).
    fn release_all(&self) {
        self.sched.store(0, Ordering::SeqCst);
    }

    /// Output is waiting: the owner takes note, or a pool job becomes the owner.
    fn notify(self: &Arc<Self>) {
        let mut s = self.sched.load(Ordering::SeqCst);
        loop {
            let (next, submit) = if s & OWNED != 0 {
                (s | NOTIFY, false)
            } else {
                (OWNED, true)
            };
            if next == s {
                return;
            }
            match self
                .sched
                .compare_exchange_weak(s, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    if submit {
                        self.rt.pool.submit(self.clone());
                    }
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }
}

impl Wake for ConnCell {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

/// A pool job owning the connection: writes until everything is out.
impl Job for ConnCell {
    fn run(self: Arc<Self>) {
        loop {
            self.sched.fetch_and(!NOTIFY, Ordering::SeqCst);
            let mut guard = self.slot.lock();
            let pumped = match guard.as_mut() {
                Some(slot) => self.pump(slot),
                None => {
                    drop(guard);
                    self.release_all();
                    return;
                }
            };
            match pumped {
                // Hand the mutex to a waiting reader between two write attempts.
                Pumped::Blocked => MutexGuard::unlock_fair(guard),
                Pumped::Flushed => {
                    drop(guard);
                    if self.release() {
                        return;
                    }
                }
            }
        }
    }
}
