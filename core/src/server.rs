//! The server state machine: inputs are `handle_*` calls with the current time, outputs are
//! drained with [`Server::poll_output`]. It never blocks, sleeps, reads a clock or touches a socket.

use crate::auth::{AuthRejection, AuthedUser};
use crate::config::Limits;
use crate::error::{BuildError, MessageError};
use crate::handshake::{
    self, Accepted, AuthTicket, Decision, OriginPolicy, PendingAuth, Rejection,
};
use crate::output::{Message, Output};
use crate::params::Params;
use crate::route::{ErasedRoute, Failure, NewConn, Route, RouteSpec};
use crate::router::{MatchFailure, Router};
use crate::slab::{ConnId, Slab};
use crate::socket::{Ctx, Hub, Socket, Status};
use crate::task::{Command, ServerHandle};
use crate::topics::Topics;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use serde::Serialize;
use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

/// Builds a [`Server`] from routes.
pub struct ServerBuilder {
    routes: Vec<Box<dyn ErasedRoute>>,
    limits: Limits,
    origins: OriginPolicy,
    backplane_events: bool,
}

impl ServerBuilder {
    /// Adds a route.
    pub fn route<U, S, D>(mut self, route: Route<U, S, D>) -> Self
    where
        U: Send + 'static,
        S: Serialize + 'static,
        D: Default + Send + 'static,
    {
        self.routes.push(Box::new(route));
        self
    }

    /// Default limits for routes that set none.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Default Origin policy for routes that set none.
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Emit [`Output::Published`], [`Output::TopicActive`] and [`Output::TopicInactive`] for a
    /// backplane that carries publishes between nodes.
    pub fn backplane_events(mut self, yes: bool) -> Self {
        self.backplane_events = yes;
        self
    }

    /// Checks the routes (conflicting paths, misuse of the builder) and builds the server.
    pub fn build(self) -> Result<Server, BuildError> {
        let mut router = Router::new();
        let mut names = Vec::new();
        let mut limits = Vec::with_capacity(self.routes.len());
        for (i, route) in self.routes.iter().enumerate() {
            let spec = route.spec();
            if let Some(misuse) = &spec.misuse {
                return Err(misuse.clone());
            }
            router.insert(&spec.path, i)?;
            let name = spec.name();
            if names.contains(&name) {
                return Err(BuildError::DuplicateName { name });
            }
            names.push(name);
            limits.push(spec.limits.clone().unwrap_or_else(|| self.limits.clone()));
        }
        Ok(Server {
            routes: self.routes,
            default_limits: self.limits,
            route_limits: limits,
            router,
            origins: self.origins,
            conns: Slab::new(),
            pending: Slab::new(),
            timers: BinaryHeap::new(),
            hub: Hub {
                topics: Topics::default(),
                outputs: VecDeque::new(),
                handle: ServerHandle::default(),
                backplane_events: self.backplane_events,
            },
        })
    }
}

/// An accepted connection.
struct Conn {
    route: usize,
    ctx: Box<dyn Any + Send>,
    status: Status,
    last_seen: Instant,
    pinged: bool,
}

/// An upgrade waiting for its verifier.
struct Pending {
    route: usize,
    params: Params,
    remote_addr: Option<SocketAddr>,
    accept: HeaderValue,
    protocol: Option<String>,
    deadline: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Idle(ConnId),
    Auth(ConnId),
}

/// The sans-IO WebSocket server. See the crate docs for the driving loop.
pub struct Server {
    routes: Vec<Box<dyn ErasedRoute>>,
    /// The builder's limits: they also bound the handshake, before a route is known.
    default_limits: Limits,
    route_limits: Vec<Limits>,
    router: Router,
    origins: OriginPolicy,
    conns: Slab<Conn>,
    pending: Slab<Pending>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    hub: Hub,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| r.spec().path())
                    .collect::<Vec<_>>(),
            )
            .field("connections", &self.conns.len())
            .field("topics", &self.hub.topics.len())
            .finish()
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            routes: Vec::new(),
            limits: Limits::default(),
            origins: OriginPolicy::any(),
            backplane_events: false,
        }
    }

    /// The server-wide default [`Limits`] (from [`ServerBuilder::limits`]). Adapters take their
    /// handshake bounds from it (`handshake_timeout`, `max_handshake_bytes`), since no route is
    /// known before the request head is read.
    pub fn limits(&self) -> &Limits {
        &self.default_limits
    }

    // ----- handshake -----

    /// Decides an upgrade request: 404 for an unknown path, 426 for a request that is not a
    /// WebSocket upgrade, 403 for a refused Origin, 401 without a token; otherwise accept, or
    /// authenticate first.
    pub fn handle_upgrade(
        &mut self,
        now: Instant,
        req: &Request<()>,
        remote_addr: Option<SocketAddr>,
    ) -> Decision {
        let (route_index, params) = match self.router.at(req.uri().path()) {
            Ok(found) => found,
            Err(MatchFailure::NotFound) => {
                return Decision::Reject(Rejection::new(StatusCode::NOT_FOUND, "no such route"))
            }
            Err(MatchFailure::BadEncoding) => {
                return Decision::Reject(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "path parameter is not valid UTF-8",
                ))
            }
        };
        let accept = match handshake::check_upgrade(req) {
            Ok(accept) => accept,
            Err(rejection) => return Decision::Reject(rejection),
        };
        let route = &self.routes[route_index];
        let spec = route.spec();
        if !spec.origins.as_ref().unwrap_or(&self.origins).permits(req) {
            return Decision::Reject(Rejection::new(StatusCode::FORBIDDEN, "origin not allowed"));
        }
        let mut protocol = handshake::select_protocol(req, &spec.protocols).map(str::to_owned);
        let Some((sources, verify)) = route.token_auth() else {
            let new = Pending {
                route: route_index,
                params,
                remote_addr,
                accept,
                protocol,
                deadline: now,
            };
            return self.accept(now, new, None);
        };
        let Some((source, token)) = sources.iter().find_map(|s| s.extract(req).map(|t| (s, t)))
        else {
            return Decision::Reject(Rejection::new(StatusCode::UNAUTHORIZED, "missing token"));
        };
        if matches!(source, crate::auth::TokenSource::Subprotocol) && protocol.is_none() {
            protocol = Some(crate::auth::TOKEN_SUBPROTOCOL.to_owned());
        }
        let verify = verify(token);
        let deadline = now + self.route_limits[route_index].auth_timeout;
        let ticket = self.pending.insert(Pending {
            route: route_index,
            params,
            remote_addr,
            accept,
            protocol,
            deadline,
        });
        self.timers.push(Reverse((deadline, Timer::Auth(ticket))));
        Decision::Authenticate(PendingAuth {
            ticket: AuthTicket(ticket),
            verify,
            deadline,
        })
    }

    /// Takes the verifier's result for a [`PendingAuth`]. Late (past the auth timeout) or stale
    /// tickets are refused with 401.
    pub fn complete_auth(
        &mut self,
        now: Instant,
        ticket: AuthTicket,
        result: Result<AuthedUser, AuthRejection>,
    ) -> Decision {
        let Some(pending) = self.pending.remove(ticket.0) else {
            return Decision::Reject(Rejection::new(
                StatusCode::UNAUTHORIZED,
                "authentication timed out",
            ));
        };
        if now > pending.deadline {
            return Decision::Reject(Rejection::new(
                StatusCode::UNAUTHORIZED,
                "authentication timed out",
            ));
        }
        match result {
            Ok(user) => self.accept(now, pending, Some(user)),
            Err(rejection) => Decision::Reject(rejection.into()),
        }
    }

    fn accept(&mut self, now: Instant, p: Pending, user: Option<AuthedUser>) -> Decision {
        let route = &self.routes[p.route];
        let limits = self.route_limits[p.route].clone();
        let placeholder: Box<dyn Any + Send> = Box::new(());
        let id = self.conns.insert(Conn {
            route: p.route,
            ctx: placeholder,
            status: Status::Accepted,
            last_seen: now,
            pinged: false,
        });
        let new = NewConn {
            user,
            params: p.params,
            remote_addr: p.remote_addr,
            id,
        };
        let Some(ctx) = route.new_ctx(new) else {
            self.conns.remove(id);
            tracing::error!(
                path = route.spec().path(),
                "verifier returned a user of another type"
            );
            return Decision::Reject(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "authentication misconfigured",
            ));
        };
        self.conns.get_mut(id).expect("just inserted").ctx = ctx;
        self.timers
            .push(Reverse((now + limits.idle_timeout / 2, Timer::Idle(id))));
        let response = handshake::switching_protocols(p.accept, p.protocol.as_deref());
        Decision::Accept(Accepted {
            conn: id,
            response,
            limits,
        })
    }

    // ----- connection events -----

    /// The 101 was written: the connection is open and `on_connect` runs.
    pub fn handle_open(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.status != Status::Accepted {
            return;
        }
        c.status = Status::Open;
        c.last_seen = now;
        self.dispatch(conn, |route, ws, ctx| route.connect(ws, ctx));
    }

    /// A text message arrived (the adapter has checked UTF-8 and the size limit; a message over
    /// the route's `max_payload` is still refused here with 1009).
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        if !self.touch(now, conn, text.len()) {
            return;
        }
        self.dispatch(conn, |route, ws, ctx| route.text(ws, ctx, text));
    }

    /// A binary message arrived. Without an `on_binary` handler the connection is closed with 1003.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        if !self.touch(now, conn, data.len()) {
            return;
        }
        self.dispatch(conn, |route, ws, ctx| route.binary(ws, ctx, data));
    }

    /// Any other sign of life (a pong, a ping): resets the idle timer.
    pub fn handle_activity(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.last_seen = now;
            c.pinged = false;
        }
    }

    /// Records activity; refuses messages on closing connections or over the size limit.
    fn touch(&mut self, now: Instant, conn: ConnId, len: usize) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        if c.status != Status::Open {
            return false;
        }
        c.last_seen = now;
        c.pinged = false;
        if len > self.route_limits[c.route].max_payload {
            self.hub.close(conn, &mut c.status, 1009, "message too big");
            return false;
        }
        true
    }

    /// The adapter's outbound queue for `conn` passed [`Limits::max_outbound_bytes`]: the
    /// connection is closed (1008 by default) and unsubscribed from everything at once.
    pub fn handle_slow_consumer(&mut self, _now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            let code = self.route_limits[c.route].slow_consumer_code;
            self.hub.close(
                conn,
                &mut c.status,
                code,
                "slow consumer: outbound queue over limit",
            );
        }
    }

    /// Asks the server to close `conn` (e.g. a protocol error the adapter detected: 1002, 1007,
    /// 1009). The connection is unsubscribed at once.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if let Some(c) = self.conns.get_mut(conn) {
            self.hub.close(conn, &mut c.status, code, reason);
        }
    }

    /// The socket is gone (close handshake done, or the peer vanished; use 1006 then).
    /// `on_close` runs and the connection's state is dropped.
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId, code: u16, reason: &str) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let was_open = c.status != Status::Accepted;
        c.status = Status::Closing;
        self.hub.leave_all(conn);
        if was_open {
            self.dispatch_any(conn, |route, ws, ctx| {
                route.close(ws, ctx, code, reason);
                Ok(())
            });
        }
        self.conns.remove(conn);
    }

    /// Closes every connection with 1001 (server going away). The adapter flushes queued output,
    /// sends the close frames, and reports each with `handle_closed`.
    pub fn shutdown(&mut self, _now: Instant) {
        let ids: Vec<ConnId> = self.conns.ids().collect();
        for id in ids {
            self.close(id, 1001, "server shutting down");
        }
        // Remove entries one by one so slot generations keep counting: a ticket issued before
        // the shutdown must never match an upgrade made after it.
        let tickets: Vec<ConnId> = self.pending.ids().collect();
        for ticket in tickets {
            self.pending.remove(ticket);
        }
    }

    /// Runs a route callback for an open connection, turning errors and panics into the
    /// outcomes of SPEC §4.
    fn dispatch<F>(&mut self, conn: ConnId, f: F)
    where
        F: FnOnce(&dyn ErasedRoute, Socket<'_, ()>, &mut (dyn Any + Send)) -> Result<(), Failure>,
    {
        if self
            .conns
            .get(conn)
            .is_some_and(|c| c.status == Status::Open)
        {
            self.dispatch_any(conn, f);
        }
    }

    fn dispatch_any<F>(&mut self, conn: ConnId, f: F)
    where
        F: FnOnce(&dyn ErasedRoute, Socket<'_, ()>, &mut (dyn Any + Send)) -> Result<(), Failure>,
    {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let route = &*self.routes[c.route];
        let limits = &self.route_limits[c.route];
        let publish_to_self = route.spec().publish_to_self;
        fn socket<'a>(
            conn: ConnId,
            status: &'a mut Status,
            hub: &'a mut Hub,
            limits: &'a Limits,
            publish_to_self: bool,
        ) -> Socket<'a, ()> {
            Socket {
                conn,
                status,
                hub,
                limits,
                publish_to_self,
                _messages: PhantomData,
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            f(
                route,
                socket(conn, &mut c.status, &mut self.hub, limits, publish_to_self),
                &mut *c.ctx,
            )
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Message(error))) => {
                let reported = catch_unwind(AssertUnwindSafe(|| {
                    route.error(
                        socket(conn, &mut c.status, &mut self.hub, limits, publish_to_self),
                        &mut *c.ctx,
                        &error,
                    )
                }));
                if reported.is_err() {
                    self.hub.close(conn, &mut c.status, 1011, "internal error");
                }
            }
            Ok(Err(Failure::BinaryUnsupported)) => {
                self.hub.close(
                    conn,
                    &mut c.status,
                    1003,
                    "binary messages are not accepted",
                );
            }
            Err(_) => {
                tracing::error!(%conn, path = route.spec().path(), "handler panicked; closing with 1011");
                self.hub.close(conn, &mut c.status, 1011, "internal error");
            }
        }
    }

    // ----- time -----

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires due timers: pings at half the idle timeout, closes (1001) at the idle timeout, and
    /// expires authentications past their deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Auth(ticket) => {
                    if self.pending.get(ticket).is_some_and(|p| p.deadline <= now) {
                        self.pending.remove(ticket);
                    }
                }
                Timer::Idle(conn) => self.check_idle(now, conn),
            }
        }
    }

    fn check_idle(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.status == Status::Closing {
            return;
        }
        let idle = self.route_limits[c.route].idle_timeout;
        let next = if now >= c.last_seen + idle {
            self.hub.close(conn, &mut c.status, 1001, "idle timeout");
            return;
        } else if now >= c.last_seen + idle / 2 && !c.pinged {
            c.pinged = true;
            self.hub.outputs.push_back(Output::Ping { conn });
            c.last_seen + idle
        } else if c.pinged {
            c.last_seen + idle
        } else {
            c.last_seen + idle / 2
        };
        self.timers.push(Reverse((next, Timer::Idle(conn))));
    }

    // ----- outputs and commands -----

    /// The next thing for the adapter to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.hub.outputs.pop_front()
    }

    /// A handle for async handlers, other threads and HTTP endpoints.
    pub fn handle(&self) -> ServerHandle {
        self.hub.handle.clone()
    }

    /// Registers the waker to wake when a [`ServerHandle`] queues a command.
    pub fn register_waker(&self, waker: &Waker) {
        self.hub.handle.set_waker(waker);
    }

    /// Whether commands are waiting for [`handle_commands`](Self::handle_commands).
    pub fn has_commands(&self) -> bool {
        !self.hub.handle.is_empty()
    }

    /// Applies the commands queued by handles and async handlers, in order.
    pub fn handle_commands(&mut self, _now: Instant) {
        for command in self.hub.handle.take() {
            match command {
                Command::Send { conn, message } => {
                    if self
                        .conns
                        .get(conn)
                        .is_some_and(|c| c.status == Status::Open)
                    {
                        self.hub.outputs.push_back(Output::Send { conn, message });
                    }
                }
                Command::Publish {
                    topic,
                    message,
                    exclude,
                } => {
                    self.hub.publish(&topic, message, exclude, true);
                }
                Command::Subscribe { conn, topic } => {
                    let Some(c) = self.conns.get(conn).filter(|c| c.status == Status::Open) else {
                        continue;
                    };
                    if let Err(e) = self
                        .hub
                        .subscribe(conn, &topic, &self.route_limits[c.route])
                    {
                        let error =
                            MessageError::new(crate::ErrorCode::HandlerError, e.to_string());
                        self.dispatch(conn, |_, _, _| Err(Failure::Message(error)));
                    }
                }
                Command::Unsubscribe { conn, topic } => {
                    // Topic memberships are indexed by slot: a stale id must not reach the
                    // connection that reuses its slot.
                    if self.conns.get(conn).is_some() {
                        self.hub.unsubscribe(conn, &topic);
                    }
                }
                Command::Close { conn, code, reason } => self.close(conn, code, &reason),
                Command::Failed { conn, error } => {
                    self.dispatch(conn, |_, _, _| Err(Failure::Message(error)));
                }
            }
        }
    }

    /// A publish that arrived from another node: delivered to local subscribers only (not
    /// forwarded again).
    pub fn handle_remote_publish(&mut self, topic: &str, message: Message) -> usize {
        self.hub.publish(topic, message, None, false)
    }

    // ----- queries -----

    /// Open (and accepted, not yet closed) connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Live topics on this node.
    pub fn topic_count(&self) -> usize {
        self.hub.topics.len()
    }

    /// Subscribers of `topic` on this node.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.hub.topics.subscribers(topic).len()
    }

    /// Subscribers of `topic` on this node.
    pub fn subscribers(&self, topic: &str) -> &[ConnId] {
        self.hub.topics.subscribers(topic)
    }

    /// Topics `conn` holds.
    pub fn topics_of(&self, conn: ConnId) -> Vec<Arc<str>> {
        if self.conns.get(conn).is_none() {
            return Vec::new();
        }
        self.hub.topics.topics_of(conn)
    }

    /// All live topics on this node.
    pub fn topics(&self) -> Vec<Arc<str>> {
        self.hub.topics.names().cloned().collect()
    }

    /// Whether `conn` is known and not closing.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns
            .get(conn)
            .is_some_and(|c| c.status != Status::Closing)
    }

    /// Limits that apply to `conn`.
    pub fn limits_of(&self, conn: ConnId) -> Option<&Limits> {
        self.conns.get(conn).map(|c| &self.route_limits[c.route])
    }

    /// The registered routes, for type export.
    pub fn routes(&self) -> impl Iterator<Item = &RouteSpec> {
        self.routes.iter().map(|r| r.spec())
    }

    /// Reads a connection's context when its types are known (tests, admin endpoints).
    pub fn ctx<U: 'static, D: 'static>(&self, conn: ConnId) -> Option<&Ctx<U, D>> {
        self.conns.get(conn)?.ctx.downcast_ref()
    }

    /// Authentications in progress.
    pub fn pending_auth_count(&self) -> usize {
        self.pending.len()
    }
}
