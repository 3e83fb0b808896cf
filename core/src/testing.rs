//! A deterministic harness for testing routes without sockets, ports, threads or sleeps.
//!
//! [`TestServer`] plays the adapter: it performs upgrades, feeds messages, keeps every client's
//! inbox, runs async handlers and verifiers to completion (they must not wait on real I/O) and
//! moves a virtual clock.
//!
//! ```
//! use wskit::{testing::TestServer, Route, Server, Validate};
//! use serde_json::json;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Join { room: String }
//! impl Validate for Join {}
//!
//! let route = Route::new("/ws/rooms").on("join", |ws, _ctx, j: Join| -> wskit::HandlerResultOf {
//!     ws.subscribe(&j.room)?;
//!     ws.publish(&j.room, &json!({"type": "joined"}))?;
//!     Ok(())
//! });
//! let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
//! let alice = t.connect("/ws/rooms").unwrap();
//! let bob = t.connect("/ws/rooms").unwrap();
//! t.send_json(alice, &json!({"type": "join", "room": "r1"}));
//! t.send_json(bob, &json!({"type": "join", "room": "r1"}));
//! assert_eq!(t.recv_json(alice), Some(json!({"type": "joined"})));
//! assert_eq!(t.recv_json(bob), None); // publish excludes the publisher
//! ```

use crate::handshake::{Decision, Rejection};
use crate::output::{Message, Output};
use crate::params::Params;
use crate::server::Server;
use crate::slab::ConnId;
use crate::BoxFuture;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Builds [`Params`] for doc examples and unit tests of your own parameter types.
pub fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::default();
    for (k, v) in pairs {
        p.push((*k).into(), (*v).to_owned());
    }
    p
}

/// A well-formed upgrade request for `uri`; add headers (Origin, Authorization, Cookie,
/// Sec-WebSocket-Protocol) before `.body(())`.
pub fn upgrade_request(uri: &str) -> http::request::Builder {
    http::Request::get(uri)
        .header("host", "localhost")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
}

/// What one simulated client has received.
#[derive(Debug, Default)]
struct Client {
    inbox: VecDeque<Message>,
    closed: Option<(u16, String)>,
    pings: usize,
}

/// Polls a future that needs no runtime. Returns `None` if it is still pending after many polls.
fn run_to_completion<T>(mut fut: Pin<&mut (dyn Future<Output = T> + Send)>) -> Option<T> {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// The harness. See the [module docs](self).
pub struct TestServer {
    server: Server,
    now: Instant,
    clients: HashMap<ConnId, Client>,
    tasks: Vec<BoxFuture<()>>,
    auto_pong: bool,
    remote_addr: Option<SocketAddr>,
}

impl TestServer {
    /// Wraps a built server; the virtual clock starts now.
    pub fn new(server: Server) -> Self {
        TestServer {
            server,
            now: Instant::now(),
            clients: HashMap::new(),
            tasks: Vec::new(),
            auto_pong: true,
            remote_addr: Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
        }
    }

    /// Whether clients answer pings (default: yes, like browsers). Turn off to test idle timeouts.
    pub fn auto_pong(&mut self, yes: bool) -> &mut Self {
        self.auto_pong = yes;
        self
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The server, for queries (`subscriber_count`, `topics_of`, ...).
    pub fn server(&mut self) -> &mut Server {
        &mut self.server
    }

    /// Opens a connection to `uri` with a well-formed upgrade request.
    pub fn connect(&mut self, uri: &str) -> Result<ConnId, Rejection> {
        self.connect_with(upgrade_request(uri).body(()).expect("valid request"))
    }

    /// Opens a connection with your own request (headers for auth, Origin, subprotocols).
    pub fn connect_with(&mut self, req: http::Request<()>) -> Result<ConnId, Rejection> {
        self.accept(req).map(|(id, _)| id)
    }

    /// Like [`connect_with`](Self::connect_with), also returning the 101 response.
    pub fn accept(
        &mut self,
        req: http::Request<()>,
    ) -> Result<(ConnId, http::Response<()>), Rejection> {
        let mut decision = self.server.handle_upgrade(self.now, &req, self.remote_addr);
        if let Decision::Authenticate(mut pending) = decision {
            let result = run_to_completion(pending.verify.as_mut())
                .expect("verifier did not complete: the harness runs futures that need no runtime");
            decision = self.server.complete_auth(self.now, pending.ticket, result);
        }
        match decision {
            Decision::Reject(r) => Err(r),
            Decision::Authenticate(_) => unreachable!("complete_auth never asks again"),
            Decision::Accept(accepted) => {
                self.clients.insert(accepted.conn, Client::default());
                self.server.handle_open(self.now, accepted.conn);
                self.pump();
                Ok((accepted.conn, accepted.response))
            }
        }
    }

    /// The client sends a text message.
    pub fn send_text(&mut self, conn: ConnId, text: &str) {
        self.server.handle_text(self.now, conn, text);
        self.pump();
    }

    /// The client sends `value` as JSON text.
    pub fn send_json<T: Serialize + ?Sized>(&mut self, conn: ConnId, value: &T) {
        let text = serde_json::to_string(value).expect("serializable");
        self.send_text(conn, &text);
    }

    /// The client sends a binary message.
    pub fn send_binary(&mut self, conn: ConnId, data: impl Into<Bytes>) {
        self.server.handle_binary(self.now, conn, data.into());
        self.pump();
    }

    /// The client goes away with `code` (1000 normal, 1006 vanished).
    pub fn disconnect(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.server.handle_closed(self.now, conn, code, reason);
        if let Some(c) = self.clients.get_mut(&conn) {
            c.closed.get_or_insert((code, reason.to_owned()));
        }
        self.pump();
    }

    /// Moves the virtual clock forward and fires due timers.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.server.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    /// The next message `conn` received, if any.
    pub fn recv(&mut self, conn: ConnId) -> Option<Message> {
        self.clients.get_mut(&conn)?.inbox.pop_front()
    }

    /// The next message `conn` received, parsed as JSON.
    pub fn recv_json(&mut self, conn: ConnId) -> Option<serde_json::Value> {
        let m = self.recv(conn)?;
        Some(serde_json::from_slice(m.payload()).expect("server sent JSON"))
    }

    /// Every message `conn` has received and not yet read, parsed as JSON.
    pub fn drain_json(&mut self, conn: ConnId) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| self.recv_json(conn)).collect()
    }

    /// The close code and reason, once `conn` is closed.
    pub fn closed(&self, conn: ConnId) -> Option<(u16, String)> {
        self.clients.get(&conn)?.closed.clone()
    }

    /// Pings `conn` has received.
    pub fn pings(&self, conn: ConnId) -> usize {
        self.clients.get(&conn).map_or(0, |c| c.pings)
    }

    /// Queues work through the server's handle (like an HTTP endpoint would) and applies it.
    pub fn with_handle(&mut self, f: impl FnOnce(&crate::ServerHandle)) {
        f(&self.server.handle());
        self.pump();
    }

    /// Plays the adapter until nothing more happens: applies commands, delivers outputs, runs tasks.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            if self.server.has_commands() {
                self.server.handle_commands(self.now);
                progressed = true;
            }
            while let Some(output) = self.server.poll_output() {
                progressed = true;
                self.deliver(output);
            }
            let mut cx = Context::from_waker(Waker::noop());
            let before = self.tasks.len();
            self.tasks
                .retain_mut(|t| t.as_mut().poll(&mut cx).is_pending());
            progressed |= self.tasks.len() != before;
            if !progressed {
                break;
            }
        }
    }

    fn deliver(&mut self, output: Output) {
        match output {
            Output::Send { conn, message } => self.inbox(conn, message),
            Output::Broadcast { conns, message } => {
                for conn in conns {
                    self.inbox(conn, message.clone());
                }
            }
            Output::Close { conn, code, reason } => {
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.closed.get_or_insert((code, reason.clone()));
                }
                // The peer answers the close frame; the socket is then gone.
                self.server.handle_closed(self.now, conn, code, &reason);
            }
            Output::Ping { conn } => {
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.pings += 1;
                }
                if self.auto_pong {
                    self.server.handle_activity(self.now, conn);
                }
            }
            Output::Spawn(task) => self.tasks.push(task.into_future()),
            Output::Published { .. }
            | Output::TopicActive { .. }
            | Output::TopicInactive { .. } => {}
        }
    }

    fn inbox(&mut self, conn: ConnId, message: Message) {
        let client = self
            .clients
            .get_mut(&conn)
            .expect("output for a connection the harness never opened");
        assert!(
            client.closed.is_none(),
            "the server sent to {conn:?} after closing it"
        );
        client.inbox.push_back(message);
    }
}
