//! A connection's bounded outbound queue, shared between publishers (any thread, under the core
//! lock) and the connection's writer (its own task or thread, without the core lock).
//!
//! Publishers never block: a push is a lock of this queue's small mutex and a refcount clone.
//! The writer is woken only when its queue goes from idle to non-empty, not once per message.

use crate::frame::PreparedFrame;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

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

/// What the writer found when it took the queue.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) close: Option<CloseRequest>,
    pub(crate) cut: bool,
    pub(crate) abort: bool,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<PreparedFrame>,
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

/// The bounded outbound queue of one connection.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Bytes queued here or taken by the writer and not yet written.
    bytes: AtomicUsize,
    limit: usize,
}

impl Outbox {
    /// An empty queue that holds at most `limit` bytes (`Limits::max_outbound_bytes`).
    pub fn new(limit: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes waiting to be written (queued or held by the writer).
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
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

    /// Queues a data frame. An empty queue always takes one frame, however large, so one big
    /// message does not cut off a healthy client.
    pub fn push(&self, frame: &PreparedFrame) -> Push {
        self.push_with(frame.len(), || frame.clone())
    }

    /// Like [`push`](Self::push), taking the frame: a frame's last recipient takes it without
    /// a reference-count round trip (and, for a frame never shared, without allocating the
    /// shared header a first clone of its bytes would need).
    pub fn push_owned(&self, frame: PreparedFrame) -> Push {
        self.push_with(frame.len(), || frame)
    }

    fn push_with(&self, len: usize, frame: impl FnOnce() -> PreparedFrame) -> Push {
        let mut s = self.state.lock();
        if s.data_closed {
            return Push::Refused;
        }
        let queued = self.bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + len > self.limit {
            let dropped: usize = s.frames.drain(..).map(|f| f.len()).sum();
            self.bytes.fetch_sub(dropped, Ordering::Relaxed);
            s.data_closed = true;
            s.cut = true;
            // The writer learns of the cut with the close the core sends next.
            return Push::Overflow;
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        s.frames.push_back(frame());
        Self::wake(&mut s).map_or(Push::Queued, Push::Wake)
    }

    /// Queues a control frame (a ping): not counted against the limit's cut-off.
    pub fn push_control(&self, frame: PreparedFrame) -> Push {
        let mut s = self.state.lock();
        if s.data_closed {
            return Push::Refused;
        }
        self.bytes.fetch_add(frame.len(), Ordering::Relaxed);
        s.frames.push_back(frame);
        Self::wake(&mut s).map_or(Push::Queued, Push::Wake)
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
        Self::wake(&mut s)
    }

    /// Asks the writer to drop the connection at once (a shutdown past its deadline).
    pub fn abort(&self) -> Option<Waker> {
        let mut s = self.state.lock();
        s.abort = true;
        s.data_closed = true;
        s.notified = true;
        s.waker.clone()
    }

    fn wake(s: &mut State) -> Option<Waker> {
        if s.notified {
            return None;
        }
        s.notified = true;
        s.waker.clone()
    }

    /// Moves everything queued to the writer's local queue.
    pub(crate) fn take(&self, into: &mut VecDeque<PreparedFrame>) -> Taken {
        let mut s = self.state.lock();
        s.notified = false;
        if into.is_empty() {
            std::mem::swap(into, &mut s.frames);
        } else {
            into.extend(s.frames.drain(..));
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

    /// Counts bytes the writer added itself (tungstenite's control frames).
    pub(crate) fn added(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes written to the socket or dropped by the writer.
    pub(crate) fn removed(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
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
        assert_eq!(local.len(), 10);
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
