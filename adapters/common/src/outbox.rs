//! A connection's bounded outbound queue, shared between publishers (any thread, under the core
//! lock) and the connection's writer (its own task or thread, without the core lock).
//!
//! Publishers never block: a push is a lock of this queue's small mutex (once per pump for all
//! the frames this connection gets, see `deliveries`) and, for the small messages chat traffic
//! is made of, a copy of each frame's bytes onto the end of the pending buffer. Copying a hundred bytes is cheaper than sharing them: no reference count to raise on
//! push and drop after the write (two atomic operations on a line every recipient touches), and
//! the writer hands the kernel one contiguous buffer per wake-up instead of one slice per
//! message. Frames over [`COPY_MAX`] are shared by reference count, so a large publish costs
//! each subscriber the same whatever its size.
//! The writer is woken only when its queue goes from idle to non-empty, not once per message.

use crate::frame::PreparedFrame;
use crate::pool::BufferPool;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;
use wskit::Message;

/// Frames up to this many bytes are copied into the pending buffer; larger ones are shared.
pub(crate) const COPY_MAX: usize = 1024;

/// What a push did.
#[derive(Debug)]
#[must_use = "a returned waker must be woken, an overflow reported to the core"]
pub enum Push {
    /// Queued; the writer already knows there is work.
    Queued,
    /// Queued; wake this writer (after releasing any lock you hold).
    Wake(Waker),
    /// The queue passed its byte limit: its frames were dropped and the connection must be
    /// closed as a slow consumer (`Server::handle_slow_consumer`).
    Overflow,
    /// The connection no longer takes data (closing, or already cut off).
    Refused,
}

/// A close the core asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// RFC 6455 close code.
    pub code: u16,
    /// Reason (at most 123 bytes, the core truncates).
    pub reason: String,
}

/// A data frame to queue: already framed (a publish), or a message to frame on the way in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    Frame(&'a PreparedFrame),
    Message(&'a Message),
}

impl Outgoing<'_> {
    fn len(&self) -> usize {
        match self {
            Outgoing::Frame(frame) => frame.len(),
            Outgoing::Message(message) => crate::frame::frame_len(message),
        }
    }
}

/// A run of bytes waiting to be written: copied small frames, or one shared large frame.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Whole frames copied back to back (owned by this connection alone).
    Copied(Vec<u8>),
    /// One frame shared with other recipients.
    Shared(PreparedFrame),
}

impl Chunk {
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Copied(v) => v.len(),
            Chunk::Shared(f) => f.len(),
        }
    }

    /// The bytes from `offset` on, as at most two slices.
    pub(crate) fn parts_from(&self, offset: usize) -> (&[u8], &[u8]) {
        match self {
            Chunk::Copied(v) => (&v[offset..], &[]),
            Chunk::Shared(f) => f.parts_from(offset),
        }
    }
}

/// Appends `frame` to the queue: onto the last copied run when small, else as a shared chunk.
fn append(queue: &mut VecDeque<Chunk>, pool: &BufferPool, frame: &PreparedFrame) {
    if frame.len() > COPY_MAX {
        queue.push_back(Chunk::Shared(frame.clone()));
        return;
    }
    let (head, tail) = frame.parts_from(0);
    let buf = copied_tail(queue, pool, frame.len());
    buf.extend_from_slice(head);
    buf.extend_from_slice(tail);
}

/// The copied run at the back of the queue, started (with a pooled buffer) if the back is not
/// one.
fn copied_tail<'q>(
    queue: &'q mut VecDeque<Chunk>,
    pool: &BufferPool,
    len: usize,
) -> &'q mut Vec<u8> {
    if !matches!(queue.back(), Some(Chunk::Copied(_))) {
        queue.push_back(Chunk::Copied(pool.take(len)));
    }
    match queue.back_mut() {
        Some(Chunk::Copied(buf)) => buf,
        _ => unreachable!("a copied run was just ensured"),
    }
}

/// What the writer found when it took the queue.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) close: Option<CloseRequest>,
    pub(crate) cut: bool,
    pub(crate) abort: bool,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Chunk>,
    /// Bytes queued here or taken by the writer and not yet written.
    bytes: usize,
    waker: Option<Waker>,
    /// The writer has been told there is work and has not taken the queue since.
    notified: bool,
    /// No more data frames: a close was requested or seen.
    data_closed: bool,
    close: Option<CloseRequest>,
    /// Cut off as a slow consumer; the writer drops what it has not started writing.
    cut: bool,
    /// Drop the connection now (forced shutdown).
    abort: bool,
}

impl State {
    /// Whether a data frame of `len` bytes may be queued; cuts the connection off if not.
    fn admit(&mut self, len: usize, limit: usize) -> Result<(), Push> {
        if self.data_closed {
            return Err(Push::Refused);
        }
        if self.bytes > 0 && self.bytes + len > limit {
            let dropped: usize = self.queue.drain(..).map(|c| c.len()).sum();
            self.bytes -= dropped;
            self.data_closed = true;
            self.cut = true;
            // The writer learns of the cut with the close the core sends next.
            return Err(Push::Overflow);
        }
        self.bytes += len;
        Ok(())
    }

    fn wake(&mut self) -> Option<Waker> {
        if self.notified {
            return None;
        }
        self.notified = true;
        self.waker.clone()
    }

    fn queued(&mut self) -> Push {
        self.wake().map_or(Push::Queued, Push::Wake)
    }
}

/// The bounded outbound queue of one connection.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    limit: usize,
    pool: Arc<BufferPool>,
}

impl Outbox {
    /// An empty queue that holds at most `limit` bytes (`Limits::max_outbound_bytes`), with
    /// buffers of its own (connections of a [`Shared`](crate::Shared) share a pool of them).
    pub fn new(limit: usize) -> Self {
        Self::with_pool(limit, Arc::new(BufferPool::new(0)))
    }

    pub(crate) fn with_pool(limit: usize, pool: Arc<BufferPool>) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            limit,
            pool,
        }
    }

    /// Bytes waiting to be written (queued or held by the writer).
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Whether more than the limit is waiting (control replies the peer does not read, e.g.
    /// pongs to a ping flood, count too).
    pub(crate) fn over_limit(&self) -> bool {
        self.queued_bytes() > self.limit
    }

    /// Registers the writer's waker (cheap when it has not changed).
    pub fn set_waker(&self, waker: &Waker) {
        let mut s = self.state.lock();
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.waker = Some(waker.clone());
        }
    }

    /// Queues a data frame shared with other recipients (a publish). An empty queue always
    /// takes one frame, however large, so one big message does not cut off a healthy client.
    pub fn push(&self, frame: &PreparedFrame) -> Push {
        self.push_all([Outgoing::Frame(frame)])
    }

    /// Queues a data message for this connection alone (a reply): small ones are framed
    /// straight into the pending buffer, with no frame of their own.
    pub fn push_message(&self, message: &Message) -> Push {
        self.push_all([Outgoing::Message(message)])
    }

    /// Queues data frames in order under one lock (a pump's deliveries to this connection).
    pub(crate) fn push_all<'a>(&self, frames: impl IntoIterator<Item = Outgoing<'a>>) -> Push {
        let mut s = self.state.lock();
        for frame in frames {
            if let Err(refused) = s.admit(frame.len(), self.limit) {
                return refused;
            }
            match frame {
                Outgoing::Frame(frame) => append(&mut s.queue, &self.pool, frame),
                Outgoing::Message(message) => {
                    let len = crate::frame::frame_len(message);
                    if len > COPY_MAX {
                        s.queue
                            .push_back(Chunk::Shared(PreparedFrame::message(message)));
                    } else {
                        crate::frame::encode_into(
                            copied_tail(&mut s.queue, &self.pool, len),
                            message,
                        );
                    }
                }
            }
        }
        s.queued()
    }

    /// Queues a control frame (a ping): not counted against the limit's cut-off.
    pub fn push_control(&self, frame: PreparedFrame) -> Push {
        let mut s = self.state.lock();
        if s.data_closed {
            return Push::Refused;
        }
        s.bytes += frame.len();
        append(&mut s.queue, &self.pool, &frame);
        s.queued()
    }

    /// Asks the writer to send a close frame after what is queued. The first request wins.
    pub fn request_close(&self, code: u16, reason: &str) -> Option<Waker> {
        let mut s = self.state.lock();
        if s.close.is_some() {
            return None;
        }
        s.data_closed = true;
        s.close = Some(CloseRequest {
            code,
            reason: reason.to_owned(),
        });
        s.wake()
    }

    /// Asks the writer to drop the connection at once (a shutdown past its deadline).
    pub fn abort(&self) -> Option<Waker> {
        let mut s = self.state.lock();
        s.abort = true;
        s.data_closed = true;
        s.notified = true;
        s.waker.clone()
    }

    /// Moves everything queued to the writer's local queue.
    pub(crate) fn take(&self, into: &mut VecDeque<Chunk>) -> Taken {
        let mut s = self.state.lock();
        s.notified = false;
        if into.is_empty() {
            std::mem::swap(into, &mut s.queue);
        } else {
            into.extend(s.queue.drain(..));
        }
        Taken {
            close: s.close.take(),
            cut: std::mem::take(&mut s.cut),
            abort: s.abort,
        }
    }

    /// Refuses further data (the peer closed; our close reply follows what is queued).
    pub(crate) fn close_data(&self) {
        self.state.lock().data_closed = true;
    }

    /// Returns a written chunk's buffer for reuse by any connection of the same server.
    pub(crate) fn recycle(&self, chunk: Chunk) {
        if let Chunk::Copied(buf) = chunk {
            self.pool.give(buf);
        }
    }

    /// Counts bytes the writer added itself (tungstenite's control frames).
    pub(crate) fn added(&self, n: usize) {
        self.state.lock().bytes += n;
    }

    /// Counts bytes written to the socket or dropped by the writer.
    pub(crate) fn removed(&self, n: usize) {
        self.state.lock().bytes -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn frame(n: usize) -> PreparedFrame {
        PreparedFrame::message(&wskit::Message::Binary(vec![0; n].into()))
    }

    #[test]
    fn writer_is_woken_once_per_batch_not_per_message() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let outbox = Outbox::new(1 << 20);
        outbox.set_waker(&waker);
        for _ in 0..10 {
            if let Push::Wake(w) = outbox.push(&frame(10)) {
                w.wake();
            }
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let mut local = VecDeque::new();
        outbox.take(&mut local);
        let taken: usize = local.iter().map(Chunk::len).sum();
        assert_eq!(taken, 10 * 12, "all ten frames of 2 + 10 bytes");
        assert!(matches!(outbox.push(&frame(10)), Push::Wake(_)));
    }

    #[test]
    fn overflow_drops_the_backlog_and_refuses_more() {
        let outbox = Outbox::new(100);
        assert!(matches!(outbox.push(&frame(60)), Push::Queued));
        assert!(matches!(outbox.push(&frame(60)), Push::Overflow));
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(matches!(outbox.push(&frame(1)), Push::Refused));
        let mut local = VecDeque::new();
        let taken = outbox.take(&mut local);
        assert!(taken.cut && local.is_empty());
    }

    #[test]
    fn large_frames_are_shared_between_queues_not_copied() {
        let big = frame(COPY_MAX + 1);
        let (a, b) = (Outbox::new(1 << 20), Outbox::new(1 << 20));
        assert!(matches!(a.push(&frame(10)), Push::Queued));
        assert!(matches!(a.push(&big), Push::Queued));
        assert!(matches!(b.push(&big), Push::Queued));
        let (mut qa, mut qb) = (VecDeque::new(), VecDeque::new());
        a.take(&mut qa);
        b.take(&mut qb);
        assert_eq!(qa.len(), 2, "a copied run, then the shared frame");
        assert!(matches!(qa[0], Chunk::Copied(_)) && matches!(qa[1], Chunk::Shared(_)));
        let (pa, pb) = (qa[1].parts_from(0).0, qb[0].parts_from(0).0);
        assert_eq!(
            pa.as_ptr(),
            pb.as_ptr(),
            "the same bytes, not a copy per subscriber"
        );
        assert_eq!(a.queued_bytes(), 10 + 2 + COPY_MAX + 1 + 4);
    }

    #[test]
    fn a_reply_is_framed_straight_into_the_pending_buffer() {
        let outbox = Outbox::new(1 << 20);
        assert!(matches!(outbox.push(&frame(3)), Push::Queued));
        assert!(matches!(
            outbox.push_message(&wskit::Message::text("hi")),
            Push::Queued
        ));
        let mut q = VecDeque::new();
        outbox.take(&mut q);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].parts_from(0).0, b"\x82\x03\0\0\0\x81\x02hi");
        assert_eq!(outbox.queued_bytes(), 9);
    }

    #[test]
    fn one_large_frame_fits_an_empty_queue() {
        let outbox = Outbox::new(100);
        assert!(matches!(outbox.push(&frame(1000)), Push::Queued));
    }

    #[test]
    fn close_request_stops_data_and_first_one_wins() {
        let outbox = Outbox::new(100);
        let _ = outbox.request_close(1008, "slow");
        assert!(outbox.request_close(1001, "later").is_none());
        assert!(matches!(outbox.push(&frame(1)), Push::Refused));
        let taken = outbox.take(&mut VecDeque::new());
        assert_eq!(taken.close.unwrap().code, 1008);
    }
}
