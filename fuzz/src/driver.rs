//! A model adapter: it plays the sockets for a [`Server`] the way the crate docs' driving loop
//! says an adapter must, and checks the core's side of that contract on every output.
//!
//! Checked on every output: nothing is sent, broadcast or pinged to a connection after its
//! `Close` output or after `handle_closed`, nor to one the adapter never accepted; a connection
//! gets at most one `Close`, with a valid close code and a reason that fits a control frame; a
//! broadcast names each recipient once. [`Driver::check_state`] compares the counts and the topic
//! registry with what the adapter knows.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use wskit::{Accepted, BoxFuture, ConnId, Decision, Message, Output, PendingAuth, Server};

/// What the adapter knows about one accepted connection.
#[derive(Debug)]
pub struct Peer {
    /// `handle_open` was called.
    pub opened: bool,
    /// The server's `Close` output, once seen.
    pub close: Option<(u16, String)>,
    /// Messages delivered to this connection, in order.
    pub inbox: Vec<Message>,
    /// Pings received.
    pub pings: usize,
    /// Last sign of life as the core counts it (see `Server::handle_text`/`handle_activity`).
    pub last_seen: Instant,
    /// The route's idle timeout.
    pub idle: Duration,
}

/// One output, recorded for the target to inspect.
#[derive(Debug, Clone)]
pub enum Seen {
    /// `Output::Send`.
    Send { conn: ConnId, message: Message },
    /// `Output::Broadcast`.
    Broadcast {
        conns: Vec<ConnId>,
        message: Message,
    },
    /// `Output::Close` (its reason is checked by the driver).
    Close { conn: ConnId, code: u16 },
    /// `Output::Ping`.
    Ping { conn: ConnId },
    /// `Output::Published` (backplane).
    Published { topic: String },
    /// `Output::TopicActive` (backplane).
    TopicActive { topic: String },
    /// `Output::TopicInactive` (backplane).
    TopicInactive { topic: String },
}

/// Close codes an endpoint may put in a close frame (RFC 6455 §7.4).
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Polls a future that needs no runtime; `None` if it is still pending after many polls.
pub fn block_on<T>(mut fut: Pin<&mut (dyn Future<Output = T> + Send)>) -> Option<T> {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// The adapter. Fields are public so targets can keep their own models next to it.
pub struct Driver {
    /// The state machine under test.
    pub server: Server,
    /// The virtual clock.
    pub now: Instant,
    /// Accepted connections not yet reported with `handle_closed`.
    pub peers: BTreeMap<ConnId, Peer>,
    /// Connections reported with `handle_closed`; the core must never mention them again.
    pub gone: BTreeSet<ConnId>,
    /// Closed by the server, waiting for `handle_closed` (when `auto_close` is off).
    pub closing: Vec<ConnId>,
    /// Report a `Close` output with `handle_closed` at once (the peer answers immediately).
    pub auto_close: bool,
    /// Answer pings at once.
    pub auto_pong: bool,
    /// Spawned async handlers, polled only when the target says so.
    pub tasks: Vec<BoxFuture<()>>,
    /// Outputs since the target last took them.
    pub seen: Vec<Seen>,
    /// The close code each connection got from the server.
    pub closes: BTreeMap<ConnId, u16>,
}

impl Driver {
    /// Wraps a server; the virtual clock starts now.
    pub fn new(server: Server) -> Self {
        Driver {
            server,
            now: Instant::now(),
            peers: BTreeMap::new(),
            gone: BTreeSet::new(),
            closing: Vec::new(),
            auto_close: true,
            auto_pong: true,
            tasks: Vec::new(),
            seen: Vec::new(),
            closes: BTreeMap::new(),
        }
    }

    /// Runs a verifier and hands its result back.
    pub fn complete(&mut self, mut pending: PendingAuth) -> Decision {
        let result = block_on(pending.verify.as_mut()).expect("test verifiers never wait");
        self.server.complete_auth(self.now, pending.ticket, result)
    }

    /// The adapter wrote the 101: it now owns a socket for this connection.
    pub fn admit(&mut self, accepted: &Accepted) {
        let conn = accepted.conn;
        assert!(
            !self.peers.contains_key(&conn) && !self.gone.contains(&conn),
            "{conn:?} handed out twice"
        );
        assert_eq!(
            accepted.response.status(),
            http::StatusCode::SWITCHING_PROTOCOLS
        );
        self.peers.insert(
            conn,
            Peer {
                opened: false,
                close: None,
                inbox: Vec::new(),
                pings: 0,
                last_seen: self.now,
                idle: accepted.limits.idle_timeout,
            },
        );
    }

    /// `handle_open` (the 101 is written).
    pub fn open(&mut self, conn: ConnId) {
        self.server.handle_open(self.now, conn);
        if let Some(p) = self.peers.get_mut(&conn) {
            if !p.opened && p.close.is_none() {
                p.opened = true;
                p.last_seen = self.now;
            }
        }
        self.drain();
    }

    /// Upgrade, authenticate, admit and open in one go.
    pub fn connect(&mut self, req: &http::Request<()>) -> Result<ConnId, wskit::Rejection> {
        let mut decision = self.server.handle_upgrade(self.now, req, None);
        if let Decision::Authenticate(pending) = decision {
            decision = self.complete(pending);
        }
        match decision {
            Decision::Reject(r) => Err(r),
            Decision::Authenticate(_) => panic!("complete_auth asked to authenticate again"),
            Decision::Accept(accepted) => {
                self.admit(&accepted);
                self.open(accepted.conn);
                Ok(accepted.conn)
            }
        }
    }

    /// Whether the core treats a message on `conn` as activity (open and not closing).
    fn receiving(&self, conn: ConnId) -> bool {
        self.peers
            .get(&conn)
            .is_some_and(|p| p.opened && p.close.is_none())
    }

    /// A text message from the peer.
    pub fn text(&mut self, conn: ConnId, text: &str) {
        if self.receiving(conn) {
            self.peers.get_mut(&conn).expect("known").last_seen = self.now;
        }
        self.server.handle_text(self.now, conn, text);
        self.drain();
    }

    /// A binary message from the peer.
    pub fn binary(&mut self, conn: ConnId, data: Bytes) {
        if self.receiving(conn) {
            self.peers.get_mut(&conn).expect("known").last_seen = self.now;
        }
        self.server.handle_binary(self.now, conn, data);
        self.drain();
    }

    /// A pong or ping from the peer.
    pub fn activity(&mut self, conn: ConnId) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.last_seen = self.now;
        }
        self.server.handle_activity(self.now, conn);
        self.drain();
    }

    /// The socket is gone: `handle_closed`, then forget the connection.
    pub fn closed(&mut self, conn: ConnId, code: u16) {
        self.server
            .handle_closed(self.now, conn, code, "peer went away");
        if self.peers.remove(&conn).is_some() {
            self.gone.insert(conn);
        }
        self.closing.retain(|c| *c != conn);
        self.drain();
    }

    /// Reports every pending server-side close with `handle_closed`.
    pub fn finish_closes(&mut self) {
        while let Some(&conn) = self.closing.first() {
            let code = self.peers[&conn].close.as_ref().map_or(1006, |c| c.0);
            self.closed(conn, code);
        }
    }

    /// Applies queued `ServerHandle` commands.
    pub fn commands(&mut self) {
        self.server.handle_commands(self.now);
        self.drain();
    }

    /// Polls every spawned task once (they run on the adapter's runtime, concurrently with
    /// everything else); finished tasks are dropped.
    pub fn poll_tasks(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        self.tasks
            .retain_mut(|t| t.as_mut().poll(&mut cx).is_pending());
    }

    /// Moves the virtual clock forward, firing due timers at their deadlines.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.server.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            assert!(
                self.server
                    .poll_timeout()
                    .is_none_or(|next| next > self.now),
                "handle_timeout left a due timer behind"
            );
            self.drain();
        }
        self.now = until;
        for (conn, p) in &self.peers {
            assert!(
                p.close.is_some() || p.last_seen + p.idle > self.now,
                "{conn:?} has been quiet for its whole idle timeout but was not closed"
            );
        }
    }

    /// Takes the outputs recorded so far.
    pub fn take_seen(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    fn live_recipient(&self, conn: ConnId, what: &str) -> &Peer {
        assert!(
            !self.gone.contains(&conn),
            "{what} to {conn:?} after handle_closed"
        );
        let peer = self
            .peers
            .get(&conn)
            .unwrap_or_else(|| panic!("{what} to {conn:?}, which was never accepted"));
        assert!(
            peer.close.is_none(),
            "{what} to {conn:?} after its Close output"
        );
        peer
    }

    /// Drains the core's outputs, checking each one.
    pub fn drain(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Send { conn, message } => {
                    assert!(self.live_recipient(conn, "Send").opened, "Send before open");
                    self.peers
                        .get_mut(&conn)
                        .expect("live")
                        .inbox
                        .push(message.clone());
                    self.seen.push(Seen::Send { conn, message });
                }
                Output::Broadcast { conns, message } => {
                    assert!(!conns.is_empty(), "empty Broadcast");
                    let unique: BTreeSet<_> = conns.iter().collect();
                    assert_eq!(
                        unique.len(),
                        conns.len(),
                        "a Broadcast names a connection twice"
                    );
                    for &conn in &conns {
                        assert!(
                            self.live_recipient(conn, "Broadcast").opened,
                            "Broadcast before open"
                        );
                        self.peers
                            .get_mut(&conn)
                            .expect("live")
                            .inbox
                            .push(message.clone());
                    }
                    self.seen.push(Seen::Broadcast { conns, message });
                }
                Output::Ping { conn } => {
                    let peer = self.live_recipient(conn, "Ping");
                    assert!(
                        self.now >= peer.last_seen + peer.idle / 2,
                        "{conn:?} pinged before half its idle timeout"
                    );
                    self.peers.get_mut(&conn).expect("live").pings += 1;
                    self.seen.push(Seen::Ping { conn });
                    if self.auto_pong {
                        self.activity(conn);
                    }
                }
                Output::Close { conn, code, reason } => {
                    let peer = self.live_recipient(conn, "Close");
                    assert!(is_sendable_close_code(code), "close code {code}");
                    assert!(
                        reason.len() <= 123,
                        "close reason too long for a control frame"
                    );
                    if reason == "idle timeout" {
                        assert!(
                            self.now >= peer.last_seen + peer.idle,
                            "{conn:?} closed as idle before its idle timeout"
                        );
                    }
                    self.peers.get_mut(&conn).expect("live").close = Some((code, reason.clone()));
                    self.closes.insert(conn, code);
                    self.seen.push(Seen::Close { conn, code });
                    if self.auto_close {
                        self.server.handle_closed(self.now, conn, code, &reason);
                        self.peers.remove(&conn);
                        self.gone.insert(conn);
                    } else {
                        self.closing.push(conn);
                    }
                }
                Output::Spawn(task) => self.tasks.push(task.into_future()),
                Output::Published { topic, .. } => self.seen.push(Seen::Published {
                    topic: topic.to_string(),
                }),
                Output::TopicActive { topic } => self.seen.push(Seen::TopicActive {
                    topic: topic.to_string(),
                }),
                Output::TopicInactive { topic } => self.seen.push(Seen::TopicInactive {
                    topic: topic.to_string(),
                }),
                other => panic!("unknown output {other:?}"),
            }
        }
    }

    /// Counts and the topic registry agree with what the adapter knows.
    pub fn check_state(&self) {
        assert_eq!(
            self.server.connection_count(),
            self.peers.len(),
            "connection_count"
        );
        for (&conn, p) in &self.peers {
            assert_eq!(
                self.server.is_open(conn),
                p.close.is_none(),
                "is_open({conn:?})"
            );
            assert!(self.server.limits_of(conn).is_some(), "limits_of({conn:?})");
        }
        for &conn in &self.gone {
            assert!(
                !self.server.is_open(conn),
                "is_open({conn:?}) after handle_closed"
            );
            if !super::known::STALE_ID_REACHES_NEW_OCCUPANT {
                assert!(
                    self.server.topics_of(conn).is_empty(),
                    "topics_of({conn:?}) after handle_closed"
                );
            }
            assert!(
                self.server.limits_of(conn).is_none(),
                "limits_of({conn:?}) after handle_closed"
            );
        }
        let topics = self.server.topics();
        assert_eq!(topics.len(), self.server.topic_count(), "topic_count");
        let mut memberships = 0;
        for topic in &topics {
            let subs = self.server.subscribers(topic);
            assert!(!subs.is_empty(), "live topic {topic:?} without subscribers");
            assert_eq!(self.server.subscriber_count(topic), subs.len());
            let unique: BTreeSet<_> = subs.iter().collect();
            assert_eq!(
                unique.len(),
                subs.len(),
                "{topic:?} lists a subscriber twice"
            );
            for &conn in subs {
                let p = self
                    .peers
                    .get(&conn)
                    .unwrap_or_else(|| panic!("{topic:?} is held by {conn:?}, which is gone"));
                assert!(p.close.is_none(), "{topic:?} is held by closing {conn:?}");
                assert!(
                    self.server.topics_of(conn).contains(topic),
                    "{conn:?} subscribes {topic:?} but topics_of disagrees"
                );
            }
            memberships += subs.len();
        }
        let held: usize = self
            .peers
            .keys()
            .map(|&c| self.server.topics_of(c).len())
            .sum();
        assert_eq!(held, memberships, "topics_of and subscribers disagree");
    }

    /// After every connection is gone, nothing is left behind.
    pub fn check_empty(&self) {
        assert!(self.peers.is_empty());
        assert_eq!(self.server.connection_count(), 0, "connections left");
        assert_eq!(self.server.topic_count(), 0, "topics left");
        assert!(self.server.topics().is_empty(), "topics left");
    }
}
