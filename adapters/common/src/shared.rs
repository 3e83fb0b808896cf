//! The state every task of an adapter shares: the core behind one mutex, the connection table,
//! and the routing of the core's outputs to connections.
//!
//! The lock is held only for pure state transitions and queue pushes: never across an await,
//! a socket write, a spawn or a wake-up (those are collected in [`Effects`] and run after).

use crate::config::Config;
use crate::deliveries::Deliveries;
use crate::frame::PreparedFrame;
use crate::outbox::{Outbox, Push};
use crate::pool::BufferPool;
use crate::table::ConnTable;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;
use wskit::{AuthRejection, AuthTicket, AuthedUser, ConnId, Decision, Output, Server, Task};

/// Runs an async handler's future on the adapter's runtime.
pub type Spawner = Box<dyn Fn(Task) + Send + Sync>;

/// Receives [`Output::Published`], [`Output::TopicActive`] and [`Output::TopicInactive`] for a
/// backplane (only emitted when the server was built with `backplane_events(true)`).
pub type BackplaneSink = Box<dyn Fn(Output) + Send + Sync>;

/// Answers plain HTTP requests (pages, health checks) on the WebSocket port. Consulted only for
/// requests that are not WebSocket upgrades; `None` lets the core answer (404, or 426 on a
/// WebSocket path). Runs on the connection's task without the server's lock: keep it quick.
pub type HttpHandler =
    Arc<dyn Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync>;

/// The core and the adapter's view of its connections, guarded together.
pub struct Core {
    server: Server,
    table: ConnTable,
    /// When the driver will next call `handle_timeout` (`None`: it sleeps until woken).
    driver_deadline: Option<Instant>,
    /// Data frames of the pump in progress, grouped by recipient.
    deliveries: Deliveries,
}

impl Core {
    /// The sans-IO server.
    pub fn server(&mut self) -> &mut Server {
        &mut self.server
    }

    /// The connection table.
    pub fn table(&self) -> &ConnTable {
        &self.table
    }

    /// The connection is gone: `on_close` runs, and its queue leaves the table.
    pub fn closed(&mut self, now: Instant, conn: ConnId, code: u16, reason: &str) {
        self.server.handle_closed(now, conn, code, reason);
        self.table.remove(conn);
    }

    /// Drains the core's outputs and routes each one. A `Broadcast` is framed once, and each
    /// recipient's queue takes a copy of a small frame or a reference to a large one; data for
    /// one recipient is pushed under one lock of its queue per pump (`Deliveries`).
    pub fn pump(&mut self, now: Instant, fx: &mut Effects) {
        let mut slow: SmallVec<[ConnId; 4]> = SmallVec::new();
        loop {
            while let Some(output) = self.server.poll_output() {
                match output {
                    Output::Send { conn, message } => self.deliveries.send(conn, message),
                    Output::Broadcast { conns, message } => {
                        self.deliveries.broadcast(&conns, &message);
                    }
                    other => {
                        // What was grouped before this output goes first.
                        self.deliveries.flush(&self.table, fx, &mut slow);
                        self.route(other, fx);
                    }
                }
            }
            self.deliveries.flush(&self.table, fx, &mut slow);
            if slow.is_empty() {
                break;
            }
            for conn in slow.drain(..) {
                tracing::info!(%conn, "slow consumer: outbound queue over its limit, closing");
                self.server.handle_slow_consumer(now, conn);
            }
        }
        let next = self.server.poll_timeout();
        let earlier = match (next, self.driver_deadline) {
            (Some(next), Some(planned)) => next < planned,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            // Avoid waking the driver again for the same timer.
            self.driver_deadline = next;
            fx.wake_driver = true;
        }
    }

    /// Routes an output that is not data for a connection.
    fn route(&mut self, output: Output, fx: &mut Effects) {
        match output {
            Output::Close { conn, code, reason } => {
                if let Some(outbox) = self.table.get(conn) {
                    fx.wakers.extend(outbox.request_close(code, &reason));
                }
            }
            Output::Ping { conn } => {
                if let Some(outbox) = self.table.get(conn) {
                    if let Push::Wake(w) = outbox.push_control(PreparedFrame::ping()) {
                        fx.wakers.push(w);
                    }
                }
            }
            Output::Spawn(task) => fx.tasks.push(task),
            other @ (Output::Published { .. }
            | Output::TopicActive { .. }
            | Output::TopicInactive { .. }) => fx.backplane.push(other),
            other => tracing::debug!(?other, "output this adapter does not handle"),
        }
    }
}

/// Work collected under the lock, run after it is released.
#[derive(Default)]
#[must_use = "call Effects::run after releasing the lock"]
pub struct Effects {
    wakers: Vec<Waker>,
    tasks: Vec<Task>,
    backplane: Vec<Output>,
    wake_driver: bool,
}

impl Effects {
    /// Acts on what a push did: a writer to wake, or a slow consumer to cut off.
    pub(crate) fn outcome(&mut self, conn: ConnId, push: Push, slow: &mut SmallVec<[ConnId; 4]>) {
        match push {
            Push::Queued | Push::Refused => {}
            Push::Wake(w) => self.wakers.push(w),
            Push::Overflow => slow.push(conn),
        }
    }

    /// Wakes writers and the driver, spawns async handlers, feeds the backplane.
    pub fn run(self, shared: &Shared) {
        self.run_deferring(shared, None);
    }

    /// Like [`run`](Self::run), but writers' wake-ups move to `deferred.0` when given, for the
    /// caller to wake later (see [`Connection::defer_writer_wakes`](crate::Connection)),
    /// leaving out the caller's own writer (`deferred.1`), which runs next anyway.
    pub(crate) fn run_deferring(
        mut self,
        shared: &Shared,
        deferred: Option<(&mut Vec<Waker>, Option<&Waker>)>,
    ) {
        match deferred {
            Some((stash, own)) => stash.extend(
                self.wakers
                    .drain(..)
                    .filter(|w| !own.is_some_and(|own| w.will_wake(own))),
            ),
            None => self.wakers.drain(..).for_each(Waker::wake),
        }
        if self.wake_driver {
            shared.wake_driver();
        }
        for task in self.tasks {
            (shared.spawner)(task);
        }
        if !self.backplane.is_empty() {
            match &shared.backplane {
                Some(sink) => self.backplane.into_iter().for_each(sink),
                None => tracing::trace!("backplane events without a sink"),
            }
        }
    }
}

/// How a graceful shutdown ended (every adapter's `shutdown` returns one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Every connection closed within [`Config::shutdown_timeout`].
    pub drained: bool,
    /// Connections dropped without finishing their close.
    pub aborted: usize,
}

impl ShutdownReport {
    /// A report: whether the connections drained in time, and how many were dropped.
    pub fn new(drained: bool, aborted: usize) -> Self {
        ShutdownReport { drained, aborted }
    }
}

/// Everything an adapter's tasks share. Create one per server with [`Shared::new`].
pub struct Shared {
    core: Mutex<Core>,
    config: Config,
    spawner: Spawner,
    backplane: Option<BackplaneSink>,
    http: Option<HttpHandler>,
    driver: Mutex<Option<Waker>>,
    shutting_down: AtomicBool,
    /// Output buffers every connection's queue draws from and its writer returns to.
    pool: Arc<BufferPool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Wraps a built server. `spawner` runs async handlers on the adapter's runtime.
    pub fn new(server: Server, config: Config, spawner: Spawner) -> Arc<Self> {
        Self::with_backplane(server, config, spawner, None)
    }

    /// Like [`new`](Self::new), with a sink for backplane events.
    pub fn with_backplane(
        server: Server,
        config: Config,
        spawner: Spawner,
        backplane: Option<BackplaneSink>,
    ) -> Arc<Self> {
        Self::builder(server)
            .config(config)
            .backplane(backplane)
            .build(spawner)
    }

    /// All options: [`Config`], a backplane sink, an HTTP handler for non-upgrade requests.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let server = wskit::Server::builder().route(wskit::Route::new("/ws")).build().unwrap();
    /// let health: wskit_adapter::HttpHandler = Arc::new(|req: &http::Request<()>| {
    ///     (req.uri().path() == "/healthz").then(|| http::Response::new(b"ok".to_vec()))
    /// });
    /// let shared = wskit_adapter::Shared::builder(server)
    ///     .http(Some(health))
    ///     .build(Box::new(drop));
    /// # let _ = shared;
    /// ```
    ///
    /// An adapter's own `Builder` wraps one: the [`Config`] starts with handshake bounds taken
    /// from the server's default [`Limits`](wskit::Limits).
    pub fn builder(server: Server) -> SharedBuilder {
        SharedBuilder {
            config: Config::default().handshake_limits(server.limits()),
            server,
            backplane: None,
            http: None,
        }
    }

    /// The adapter options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Locks the core. Keep it short; run the [`Effects`] of a [`Core::pump`] after dropping it.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock()
    }

    /// Runs `f` on the server (queries, or inputs from outside a connection), then routes what
    /// it produced.
    pub fn with_server<R>(&self, now: Instant, f: impl FnOnce(&mut Server) -> R) -> R {
        let mut fx = Effects::default();
        let r = {
            let mut core = self.core.lock();
            let r = f(&mut core.server);
            core.pump(now, &mut fx);
            r
        };
        fx.run(self);
        r
    }

    /// One step of the driver task: applies commands from `ServerHandle`s and async handlers,
    /// fires due timers, and returns when to run again (`None`: only when woken). `waker` is
    /// woken for new commands and for timers earlier than the returned instant.
    pub fn drive(&self, now: Instant, waker: &Waker) -> Option<Instant> {
        {
            let mut slot = self.driver.lock();
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        let mut fx = Effects::default();
        let next = {
            let mut core = self.core.lock();
            core.server.register_waker(waker);
            if core.server.has_commands() {
                core.server.handle_commands(now);
            }
            if core.server.poll_timeout().is_some_and(|at| at <= now) {
                core.server.handle_timeout(now);
            }
            core.pump(now, &mut fx);
            let next = core.server.poll_timeout();
            core.driver_deadline = next;
            next
        };
        fx.wake_driver = false;
        fx.run(self);
        next
    }

    fn wake_driver(&self) {
        if let Some(w) = self.driver.lock().as_ref() {
            w.wake_by_ref();
        }
    }

    /// Starts a graceful shutdown: new upgrades get 503, every connection is closed with 1001
    /// after its queued output.
    pub fn shutdown(&self, now: Instant) {
        let mut fx = Effects::default();
        {
            let mut core = self.core.lock();
            // Set under the lock: an upgrade decided after this point sees it.
            self.shutting_down.store(true, Ordering::SeqCst);
            core.server.shutdown(now);
            core.pump(now, &mut fx);
        }
        fx.run(self);
    }

    /// Drops every connection at once (a shutdown past its deadline).
    pub fn abort_all(&self) {
        let wakers: Vec<Waker> = {
            let core = self.core.lock();
            core.table.iter().filter_map(|(_, o)| o.abort()).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Connections the adapter still has (accepted and not yet reported closed).
    pub fn connection_count(&self) -> usize {
        self.core.lock().table.len()
    }

    /// Decides an upgrade request (route, Origin, credentials). See [`Upgrade`](crate::Upgrade).
    /// A request that is not a WebSocket upgrade goes to the [`HttpHandler`] first, if any.
    pub fn upgrade(
        self: &Arc<Self>,
        now: Instant,
        req: &http::Request<()>,
        remote_addr: Option<SocketAddr>,
    ) -> crate::Upgrade {
        if let Some(handler) = &self.http {
            if !crate::http::is_websocket_upgrade(req) {
                if let Some(res) = handler(req) {
                    tracing::debug!(uri = %wskit::redact_uri(req.uri()), status = res.status().as_u16(), "plain HTTP request answered");
                    return crate::Upgrade::Respond(res);
                }
            }
        }
        let mut fx = Effects::default();
        let upgrade = {
            let mut core = self.core.lock();
            if self.is_shutting_down() {
                return crate::Upgrade::Reject(crate::upgrade::unavailable());
            }
            let decision = core.server.handle_upgrade(now, req, remote_addr);
            let upgrade = self.register(&mut core, decision);
            core.pump(now, &mut fx);
            upgrade
        };
        fx.run(self);
        crate::upgrade::log_decision(req, remote_addr, &upgrade);
        upgrade
    }

    /// Hands a verifier's result back to the core.
    pub fn complete_auth(
        self: &Arc<Self>,
        now: Instant,
        ticket: AuthTicket,
        result: Result<AuthedUser, AuthRejection>,
    ) -> crate::Upgrade {
        let mut fx = Effects::default();
        let upgrade = {
            let mut core = self.core.lock();
            let decision = core.server.complete_auth(now, ticket, result);
            let upgrade = match decision {
                // The core dropped pending authentications at shutdown: say why.
                Decision::Reject(_) if self.is_shutting_down() => {
                    crate::Upgrade::Reject(crate::upgrade::unavailable())
                }
                decision => self.register(&mut core, decision),
            };
            core.pump(now, &mut fx);
            upgrade
        };
        fx.run(self);
        upgrade
    }

    /// Gives an accepted connection its queue before anything can be sent to it.
    fn register(self: &Arc<Self>, core: &mut Core, decision: Decision) -> crate::Upgrade {
        match decision {
            Decision::Reject(r) => crate::Upgrade::Reject(r),
            Decision::Authenticate(p) => crate::Upgrade::Authenticate(p),
            Decision::Accept(a) => {
                let limit = a.limits.max_outbound_bytes;
                let outbox = Arc::new(Outbox::with_pool(limit, self.pool.clone()));
                core.table.insert(a.conn, outbox.clone());
                crate::Upgrade::Accept(crate::Accepted::new(self.clone(), a, outbox))
            }
        }
    }
}

/// Options of a [`Shared`]; from [`Shared::builder`].
#[must_use = "call build()"]
pub struct SharedBuilder {
    server: Server,
    config: Config,
    backplane: Option<BackplaneSink>,
    http: Option<HttpHandler>,
}

impl std::fmt::Debug for SharedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuilder")
            .field("config", &self.config)
            .field("backplane", &self.backplane.is_some())
            .field("http", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl SharedBuilder {
    /// Adapter options.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where backplane events go (see [`BackplaneSink`]).
    pub fn backplane(mut self, sink: Option<BackplaneSink>) -> Self {
        self.backplane = sink;
        self
    }

    /// Who answers plain HTTP requests (see [`HttpHandler`]).
    pub fn http(mut self, handler: Option<HttpHandler>) -> Self {
        self.http = handler;
        self
    }

    /// Where backplane events go, as a closure.
    pub fn backplane_fn(self, sink: impl Fn(Output) + Send + Sync + 'static) -> Self {
        self.backplane(Some(Box::new(sink)))
    }

    /// Who answers plain HTTP requests, as a closure.
    pub fn http_fn(
        self,
        handler: impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.http(Some(Arc::new(handler)))
    }

    /// The shared state, ready for the adapter's tasks; `spawner` runs async handlers on the
    /// adapter's runtime.
    pub fn build(self, spawner: Spawner) -> Arc<Shared> {
        Arc::new(Shared {
            core: Mutex::new(Core {
                server: self.server,
                table: ConnTable::default(),
                driver_deadline: None,
                deliveries: Deliveries::default(),
            }),
            pool: Arc::new(BufferPool::new(self.config.write_buffer_pool_bytes)),
            config: self.config,
            spawner,
            backplane: self.backplane,
            http: self.http,
            driver: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
        })
    }
}
