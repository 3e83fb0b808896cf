//! The per-connection engine: tungstenite parses the client's frames in sans-IO fashion (it
//! reads from the bytes the adapter got off the socket, and writes its pongs and close replies
//! to a buffer), the core handles the messages, and the connection's queue of prepared frames
//! is written with as few (vectored) writes as the socket allows.

use crate::outbox::{Chunk, CloseRequest, Outbox};
use crate::shared::{Effects, Shared};
use bytes::Bytes;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use wskit::{ConnId, Limits};

/// Most slices handed to one vectored write.
const MAX_IOV: usize = 128;

/// Most messages handled under one lock of the core (a read can hold thousands of small ones).
const MAX_BATCH: usize = 256;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Messages flow.
    Open,
    /// Our close frame is queued; waiting for the peer's reply (`reply`).
    Closing { reply: bool },
    /// The peer closed; our reply is queued behind the remaining output.
    PeerClosed,
    /// After a protocol error, everything is written and the write half shut: input is
    /// discarded until EOF.
    Linger,
    /// Drop the socket.
    Done,
}

/// What one read produced, handled under a single lock of the core.
enum Event {
    Text(Utf8Bytes),
    Binary(Bytes),
    Activity,
    Close(Option<CloseFrame>),
    Fail(u16, &'static str),
}

/// Adapts the bytes read from the socket (input) and the engine's control output to
/// tungstenite's `Read + Write` stream: an empty input is `WouldBlock`, never EOF.
struct Io<'a> {
    input: &'a [u8],
    out: Vec<u8>,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The close code for a frame-level failure (tungstenite detects them, the adapter sends them).
fn close_code(e: &WsError) -> (u16, &'static str) {
    match e {
        WsError::Utf8(_) => (1007, "invalid UTF-8"),
        WsError::Capacity(_) => (1009, "message too big"),
        WsError::Protocol(_) | WsError::AttackAttempt => (1002, "protocol error"),
        _ => (1011, "internal error"),
    }
}

/// One WebSocket connection after its 101.
///
/// The adapter owns the socket and calls, in any order its runtime likes:
/// [`receive`](Self::receive) / [`receive_eof`](Self::receive_eof) with what it read,
/// [`write_with`](Self::write_with) with a function that writes to the socket,
/// [`wants_shutdown`](Self::wants_shutdown) then [`shutdown_done`](Self::shutdown_done),
/// [`deadline`](Self::deadline) / [`on_deadline`](Self::on_deadline), until
/// [`is_done`](Self::is_done). Dropping it reports the connection gone to the core.
pub struct Connection {
    shared: Arc<Shared>,
    id: ConnId,
    ws: WebSocketContext,
    outbox: Arc<Outbox>,
    /// The waker last given to the outbox.
    waker: Option<Waker>,
    /// Chunks taken from the outbox, being written; `offset` bytes of the first are written.
    local: VecDeque<Chunk>,
    offset: usize,
    phase: Phase,
    /// The input can no longer be parsed (a protocol error): discard it.
    broken: bool,
    deadline: Option<Instant>,
    close_timeout: Duration,
    /// The close we sent, reported to the core when the socket is gone.
    sent: Option<CloseRequest>,
    /// `handle_closed` was called.
    reported: bool,
    /// Whether writers' wake-ups after a read wait for [`wake_deferred`](Self::wake_deferred).
    defer_wakes: bool,
    /// Writers to wake once the adapter has let other ready readers run.
    deferred: Vec<Waker>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("phase", &self.phase)
            .field("queued", &self.outbox.queued_bytes())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: ConnId,
        limits: &Limits,
        outbox: Arc<Outbox>,
    ) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(shared.config().read_buffer_size)
            .write_buffer_size(0)
            .max_message_size(Some(limits.max_payload))
            .max_frame_size(Some(limits.max_payload));
        Connection {
            id,
            ws: WebSocketContext::new(Role::Server, Some(config)),
            outbox,
            waker: None,
            local: VecDeque::new(),
            offset: 0,
            phase: Phase::Open,
            broken: false,
            deadline: None,
            close_timeout: shared.config().close_timeout,
            sent: None,
            reported: false,
            defer_wakes: false,
            deferred: Vec::new(),
            shared,
        }
    }

    /// Holds back the wake-ups of the writers a read published to until
    /// [`wake_deferred`](Self::wake_deferred), so that an adapter can let the other readers
    /// that are ready run first: their messages then join the same write to each subscriber.
    /// An adapter that turns this on must call [`write_with`](Self::write_with) after each
    /// [`receive`](Self::receive) (its own writer is not woken) and must call
    /// [`wake_deferred`](Self::wake_deferred) soon after a receive: held-back writers do not
    /// write (dropping the connection wakes them).
    pub fn defer_writer_wakes(&mut self, defer: bool) {
        self.defer_wakes = defer;
        if !defer {
            self.wake_deferred();
        }
    }

    /// Whether writers are waiting for [`wake_deferred`](Self::wake_deferred).
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Wakes the writers held back since the last call.
    pub fn wake_deferred(&mut self) {
        self.deferred.drain(..).for_each(Waker::wake);
        if self.deferred.capacity() > 1024 {
            self.deferred = Vec::new();
        }
    }

    /// The connection's id in the core.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Registers the waker to wake when output is queued for this connection (cheap when it
    /// is the one registered last: no lock).
    pub fn register_waker(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.outbox.set_waker(waker);
            self.waker = Some(waker.clone());
        }
    }

    /// Bytes read from the socket. Complete messages go to the core (one lock for all of them).
    pub fn receive(&mut self, now: Instant, data: &[u8]) {
        let parsing = matches!(self.phase, Phase::Open | Phase::Closing { .. });
        if !parsing || self.broken || data.is_empty() {
            return;
        }
        let mut io = Io {
            input: data,
            out: Vec::new(),
        };
        let mut events: SmallVec<[Event; 4]> = SmallVec::new();
        loop {
            if events.len() == MAX_BATCH {
                self.dispatch(now, std::mem::take(&mut events));
            }
            match self.ws.read(&mut io) {
                Ok(WsMessage::Text(t)) => events.push(Event::Text(t)),
                Ok(WsMessage::Binary(b)) => events.push(Event::Binary(b)),
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {
                    if !matches!(events.last(), Some(Event::Activity)) {
                        events.push(Event::Activity);
                    }
                }
                Ok(WsMessage::Close(frame)) => events.push(Event::Close(frame)),
                Ok(WsMessage::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
                Err(e) => {
                    let (code, reason) = close_code(&e);
                    tracing::debug!(conn = %self.id, error = %e, code, "failing the connection");
                    events.push(Event::Fail(code, reason));
                    break;
                }
            }
        }
        self.dispatch(now, events);
        // Control replies (pongs, the close reply) join the writer's queue: after any frame in
        // progress, ahead of data publishers queued since the last pull (RFC 6455 allows
        // control frames between any two frames). The close reply, though, must follow all data.
        if matches!(self.phase, Phase::Closing { .. }) && self.outbox.over_limit() {
            // Closing a peer that does not read: answer no more of its pings.
            io.out.clear();
        }
        if !io.out.is_empty() {
            if self.phase == Phase::PeerClosed {
                // The close reply goes after everything queued before the peer's close.
                self.pull(now);
            }
            self.push_local(io.out);
            if self.phase == Phase::Open && self.outbox.over_limit() {
                // A peer that sends pings (or anything answered) without reading the answers is
                // a slow consumer like any other: its queue must not grow without bound.
                self.cut_off(now);
            }
        }
    }

    fn cut_off(&mut self, now: Instant) {
        tracing::info!(conn = %self.id, "slow consumer: control replies over the queue limit, closing");
        let mut fx = Effects::default();
        {
            let mut core = self.shared.lock();
            core.server().handle_slow_consumer(now, self.id);
            core.pump(now, &mut fx);
        }
        fx.run(&self.shared);
        // Act on the close now: the peer is not reading, so the writer may never drain.
        self.pull(now);
    }

    fn dispatch(&mut self, now: Instant, events: SmallVec<[Event; 4]>) {
        if events.is_empty() {
            return;
        }
        let mut fx = Effects::default();
        let mut failed = None;
        {
            let mut core = self.shared.lock();
            for event in events {
                let open = self.phase == Phase::Open;
                match event {
                    Event::Text(t) if open => core.server().handle_text(now, self.id, t.as_str()),
                    Event::Binary(b) if open => core.server().handle_binary(now, self.id, b),
                    Event::Activity if open => core.server().handle_activity(now, self.id),
                    Event::Close(frame) => match self.phase {
                        Phase::Open => {
                            let (code, reason) = frame.map_or((1005, Utf8Bytes::default()), |f| {
                                (u16::from(f.code), f.reason)
                            });
                            // Replies to the messages before the close still go out.
                            core.pump(now, &mut fx);
                            core.closed(now, self.id, code, reason.as_str());
                            self.reported = true;
                            self.outbox.close_data();
                            self.phase = Phase::PeerClosed;
                            self.deadline = Some(now + self.close_timeout);
                        }
                        Phase::Closing { .. } => self.phase = Phase::Closing { reply: true },
                        _ => {}
                    },
                    Event::Fail(code, reason) => {
                        self.broken = true;
                        if open {
                            core.server().close(self.id, code, reason);
                            failed = Some((code, reason));
                        }
                    }
                    Event::Text(_) | Event::Binary(_) | Event::Activity => {}
                }
            }
            core.pump(now, &mut fx);
        }
        if self.defer_wakes {
            // This connection's own writer runs right after `receive` (the adapter's contract).
            fx.run_deferring(
                &self.shared,
                Some((&mut self.deferred, self.waker.as_ref())),
            );
        } else {
            fx.run(&self.shared);
        }
        if let Some((code, reason)) = failed {
            // After the pump, so replies to earlier messages go first; a no-op when the core's
            // own close arrived (the first request wins).
            let _ = self.outbox.request_close(code, reason);
        }
    }

    /// The peer closed its side of the TCP stream.
    pub fn receive_eof(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            tracing::debug!(conn = %self.id, "peer vanished without a close frame");
        }
        self.finish(now);
    }

    /// Reading or writing the socket failed: the connection is gone.
    pub fn io_failed(&mut self, now: Instant, error: &io::Error) {
        tracing::debug!(conn = %self.id, %error, "socket error");
        self.finish(now);
    }

    /// Writes queued output through `write` (a vectored write to the socket) until everything
    /// is written (`Ok`) or `write` fails; `WouldBlock` means "try again when writable".
    ///
    /// Takes the outbox once per call: what publishers queue after that wakes the writer again.
    pub fn write_with<F>(&mut self, now: Instant, mut write: F) -> io::Result<()>
    where
        F: FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    {
        let mut pulled = false;
        // Cut-offs, closes and aborts apply even while a frame is stuck in a peer that does
        // not read: otherwise its close (and the close deadline) would wait behind it forever.
        if self.phase != Phase::Done && !self.local.is_empty() {
            self.pull(now);
            pulled = true;
        }
        let mut written_total = 0;
        let result = loop {
            if self.local.is_empty() {
                if self.phase == Phase::Done || pulled {
                    break Ok(());
                }
                self.pull(now);
                pulled = true;
                if self.local.is_empty() {
                    break Ok(());
                }
            }
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                let mut offset = self.offset;
                'chunks: for chunk in &self.local {
                    let (a, b) = chunk.parts_from(offset);
                    offset = 0;
                    for part in [a, b] {
                        if n == MAX_IOV {
                            break 'chunks;
                        }
                        if !part.is_empty() {
                            slices[n] = IoSlice::new(part);
                            n += 1;
                        }
                    }
                }
                write(&slices[..n])
            };
            match written {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written_total += n;
                    self.advance(n);
                }
                Err(e) => break Err(e),
            }
        };
        if written_total > 0 {
            // One update of the queue's byte count per call, not per write.
            self.outbox.removed(written_total);
        }
        result
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.local.front() else {
                break;
            };
            let left = front.len() - self.offset;
            if n >= left {
                n -= left;
                if let Some(written) = self.local.pop_front() {
                    self.outbox.recycle(written);
                }
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
        if self.local.is_empty() && self.local.capacity() > 64 {
            self.local = VecDeque::new();
        }
    }

    /// Takes what publishers queued, and acts on close, cut-off and abort requests.
    fn pull(&mut self, now: Instant) {
        let taken = self.outbox.take(&mut self.local);
        if taken.abort {
            self.drop_local(0);
            self.phase = Phase::Done;
            return;
        }
        if taken.cut {
            // Finish the frame in progress (the stream must stay well-framed), drop the rest.
            let keep = usize::from(self.offset > 0);
            self.drop_local(keep);
        }
        if let Some(request) = taken.close {
            self.begin_close(now, request);
        }
    }

    fn drop_local(&mut self, keep: usize) {
        let keep = keep.min(self.local.len());
        let mut dropped: usize = self.local.drain(keep..).map(|f| f.len()).sum();
        if keep == 0 {
            dropped -= self.offset;
            self.offset = 0;
        }
        self.outbox.removed(dropped);
    }

    fn begin_close(&mut self, now: Instant, request: CloseRequest) {
        if self.phase != Phase::Open {
            return;
        }
        let mut io = Io {
            input: &[],
            out: Vec::new(),
        };
        let frame = CloseFrame {
            code: CloseCode::from(request.code),
            reason: Utf8Bytes::from(request.reason.clone()),
        };
        if let Err(e) = self.ws.close(&mut io, Some(frame)) {
            tracing::debug!(conn = %self.id, error = %e, "could not encode the close frame");
        }
        self.push_local(io.out);
        tracing::debug!(conn = %self.id, code = request.code, reason = %request.reason, "closing");
        self.sent = Some(request);
        self.phase = Phase::Closing { reply: false };
        self.deadline = Some(now + self.close_timeout);
    }

    fn push_local(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() || self.phase == Phase::Done {
            return;
        }
        self.outbox.added(bytes.len());
        self.local.push_back(Chunk::Copied(bytes));
    }

    /// Whether all output is written and the write half should now be shut (`FIN`), after
    /// which call [`shutdown_done`](Self::shutdown_done).
    pub fn wants_shutdown(&self) -> bool {
        self.local.is_empty()
            && match self.phase {
                Phase::PeerClosed => true,
                Phase::Closing { reply } => reply || self.broken,
                _ => false,
            }
    }

    /// The write half is shut. After a complete close handshake the connection is done: the
    /// server closes the TCP connection first (RFC 6455 7.1.1), with nothing left to read. After
    /// a protocol error it lingers, discarding input until the peer's EOF (bounded by the close
    /// deadline), so unread bytes do not turn the close into a reset that destroys our close
    /// frame.
    pub fn shutdown_done(&mut self) {
        self.phase = match self.phase {
            Phase::PeerClosed | Phase::Closing { reply: true } if !self.broken => Phase::Done,
            Phase::Done => Phase::Done,
            _ => Phase::Linger,
        };
    }

    /// Whether the adapter should keep reading the socket.
    pub fn wants_read(&self) -> bool {
        self.phase != Phase::Done
    }

    /// When [`on_deadline`](Self::on_deadline) must be called (closing connections only).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.phase != Phase::Done)
    }

    /// Gives up on a close that did not complete in time.
    pub fn on_deadline(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            tracing::debug!(conn = %self.id, phase = ?self.phase, "close timed out");
            self.finish(now);
        }
    }

    /// Whether the socket should be dropped now.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Ends the connection: the core hears of it (`on_close` runs) unless it already did.
    /// Idempotent; also run on drop.
    pub fn finish(&mut self, now: Instant) {
        self.wake_deferred();
        self.phase = Phase::Done;
        self.drop_local(0);
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let (code, reason) = match self.sent.take() {
            Some(CloseRequest { code, reason }) => (code, reason),
            None => (1006, String::from("connection lost")),
        };
        let mut fx = Effects::default();
        {
            let mut core = self.shared.lock();
            core.closed(now, self.id, code, &reason);
            core.pump(now, &mut fx);
        }
        fx.run(&self.shared);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.finish(Instant::now());
    }
}
