//! # wskit-redis
//!
//! A Redis pub/sub backplane for wskit: a publish on one node reaches the topic's subscribers
//! on every node, with the same semantics as on one node (the publisher excluded unless it
//! asked otherwise, everyone else exactly once, in order per publisher).
//!
//! ## Wiring it into wskit-tokio
//!
//! ```no_run
//! # async fn run(routes: wskit::ServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
//! let backplane = wskit_redis::Backplane::builder("redis://127.0.0.1:6379")
//!     .prefix("chat:")
//!     .connect()
//!     .await?;
//! let server = routes.backplane_events(true).build()?; // the core reports publishes and topics
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! let running = wskit_tokio::Builder::new(server)
//!     .backplane(backplane.sink())
//!     .listen(listener)?;
//! let task = backplane.spawn(running.handle().clone()); // delivers other nodes' publishes
//! running.wait().await; // until something calls `Handle::shutdown`
//! task.stop().await;
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! - **Topics.** The core reports `TopicActive` when a topic gets its first local subscriber and
//!   `TopicInactive` when the last one leaves (it counts per node). The node SUBSCRIBEs to
//!   `{prefix}{topic}` only while the topic is live locally, so Redis sends a node only what
//!   it has subscribers for. (Events from different threads can arrive out of order, so the
//!   task re-reads the subscriber count before acting on one.)
//! - **Publishes.** Every local publish (`Output::Published`, the message already serialized)
//!   is framed once — version, text/binary kind, the 16-byte [`NodeId`], the payload — and sent
//!   with `PUBLISH`, however many subscribers it has anywhere. Other nodes deliver it with
//!   [`Server::handle_remote_publish`](wskit::Server::handle_remote_publish) to all their
//!   subscribers (the publisher is never on another node, so nobody there is excluded); the
//!   publishing node ignores its own echo, since local subscribers already had it. A
//!   server-wide publish (`ServerHandle::publish`) travels the same way.
//! - **Order.** One connection publishes, in queue order, and Redis delivers each
//!   connection's publishes in order, so messages from one sender arrive in order everywhere.
//!
//! ## Delivery guarantee: at most once
//!
//! Redis pub/sub keeps nothing: a message reaches the nodes subscribed at that moment.
//!
//! - While Redis is unreachable, local delivery goes on as if there were one node, and
//!   publishes meant for other nodes are **dropped** (counted in
//!   [`Stats::dropped_disconnected`]), never replayed. The task reconnects with exponential
//!   backoff (100 ms doubling to 5 s by default, with jitter) and then resubscribes every topic
//!   that has local subscribers.
//! - A node sees another node's publishes only once its SUBSCRIBE for the topic has reached
//!   Redis (about one round trip to Redis after the first local subscriber arrives).
//! - The queue from the server to the publisher task is bounded
//!   ([`BackplaneBuilder::queue_capacity`]): if Redis cannot keep up, publishes to other nodes
//!   are dropped and counted ([`Stats::dropped_queue_full`]) with one warning per episode. The
//!   server never blocks and never buffers without bound. (Inbound, the `redis` crate reads
//!   eagerly and holds what the task has not delivered yet; delivering is one non-blocking
//!   queue push per local subscriber, so that backlog stays short unless the node is starved
//!   of CPU.)
//!
//! Use a durable broker (Redis streams, NATS JetStream) if a message must not be lost; chat
//! presence and typing notices are the kind of traffic this is for.
//!
//! ## Runtimes
//!
//! Feature `tokio` (default): the `redis` crate's tokio support, [`Backplane::spawn`], and
//! [`ServerAccess`] for `wskit_tokio::Handle`. Feature `smol`: the `redis` crate's smol
//! support, async-io timers and [`ServerAccess`] for `wskit_async_std::Handle`; spawn
//! [`Backplane::run`] on your executor (async-std shares async-io's reactor). With both features
//! on, each call picks tokio when a tokio runtime is current and smol otherwise, as the `redis`
//! crate does. Any adapter built on `wskit-adapter` can pass its `Arc<Shared>`, or implement
//! [`ServerAccess`].
//!
//! Feature `blocking`: [`ServerAccess`] for `wskit_blocking::Handle`, and
//! `Backplane::spawn_thread` (feature `smol`, which `blocking` enables) runs the task on a
//! thread of its own.
//!
//! ```no_run
//! # #[cfg(feature = "smol")]
//! # async fn run(server: wskit::Server, backplane: wskit_redis::Backplane) -> std::io::Result<()> {
//! let listener = smol::net::TcpListener::bind("0.0.0.0:3000").await?;
//! let running = wskit_async_std::Builder::new(server)
//!     .spawner(wskit_async_std::Spawner::smol())
//!     .backplane(backplane.sink())
//!     .listen(listener)?;
//! smol::spawn(backplane.run(running.handle().clone())).detach();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod frame;
mod node;
mod rt;
mod shared;
mod task;

pub use error::Error;
pub use frame::NodeId;
pub use node::ServerAccess;
pub use shared::{BackplaneHandle, Stats};

use shared::{Inner, Outgoing};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use task::{Runner, Settings};
use tokio::sync::mpsc;
use wskit::Output;

/// The default channel prefix.
pub const DEFAULT_PREFIX: &str = "wskit:";

/// Configures a [`Backplane`]; from [`Backplane::builder`].
#[derive(Debug, Clone)]
#[must_use = "call .connect().await or .build()"]
pub struct BackplaneBuilder {
    url: String,
    prefix: String,
    queue_capacity: usize,
    connect_timeout: Duration,
    response_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    node_id: Option<NodeId>,
}

impl BackplaneBuilder {
    /// Channel prefix (default [`DEFAULT_PREFIX`]): topic `room:1` travels on channel
    /// `{prefix}room:1`. Nodes that should talk must share it; separate apps on one Redis must
    /// not.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Publishes waiting for the publisher task (default 8192). Beyond it, publishes to other
    /// nodes are dropped and counted rather than buffered: memory stays bounded when Redis is
    /// slow.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Longest wait to (re)connect, and for `connect` (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for Redis to answer a pipeline of publishes before the connection is
    /// considered dead and replaced (default 5 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Reconnection backoff: the first retry after about `min`, doubling up to `max`
    /// (defaults 100 ms and 5 s; each wait is randomized down to half).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
        self
    }

    /// This node's id (default: random). Two live nodes must never share one: each would drop
    /// the other's publishes as its own echo.
    pub fn node_id(mut self, id: NodeId) -> Self {
        self.node_id = Some(id);
        self
    }

    /// Builds the backplane without touching the network: it connects once running, and keeps
    /// retrying if Redis is not up yet. Fails only on a bad URL or an empty prefix.
    pub fn build(self) -> Result<Backplane, Error> {
        if self.prefix.is_empty() {
            return Err(Error::EmptyPrefix);
        }
        let client =
            redis::Client::open(self.url.as_str()).map_err(|source| Error::InvalidUrl {
                url: self.url.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let node_id = self.node_id.unwrap_or_else(NodeId::random);
        Ok(Backplane {
            inner: Arc::new(Inner::new(node_id, self.prefix, tx)),
            rx,
            settings: Settings {
                client,
                connect_timeout: self.connect_timeout,
                response_timeout: self.response_timeout,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
            },
        })
    }

    /// Like [`build`](Self::build), then checks that Redis answers (a PING within the connect
    /// timeout), so a wrong address fails at startup instead of in the logs.
    pub async fn connect(self) -> Result<Backplane, Error> {
        let backplane = self.build()?;
        let settings = &backplane.settings;
        let addr = settings.addr();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.connect_timeout));
        let ping = async {
            let mut conn = settings
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").exec_async(&mut conn).await
        };
        match rt::timeout(settings.connect_timeout, ping).await {
            Some(Ok(())) => Ok(backplane),
            Some(Err(source)) => Err(Error::Connect { addr, source }),
            None => Err(Error::Timeout {
                addr,
                timeout: settings.connect_timeout,
            }),
        }
    }
}

/// A Redis backplane for one node: a [`sink`](Self::sink) for the adapter's backplane events,
/// and a task ([`run`](Self::run) / [`spawn`](Self::spawn)) that talks to Redis.
pub struct Backplane {
    inner: Arc<Inner>,
    rx: mpsc::Receiver<Outgoing>,
    settings: Settings,
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backplane")
            .field("node_id", &self.inner.node_id)
            .field("prefix", &self.inner.prefix)
            .field("redis", &self.settings.addr())
            .finish_non_exhaustive()
    }
}

impl Backplane {
    /// Starts configuring a backplane on the Redis server at `url`
    /// (`redis://[user:password@]host[:port][/db]`).
    pub fn builder(url: impl Into<String>) -> BackplaneBuilder {
        BackplaneBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            queue_capacity: 8192,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            node_id: None,
        }
    }

    /// The function to give the adapter (`wskit_tokio::Builder::backplane`); the server must be
    /// built with `ServerBuilder::backplane_events(true)`. It never blocks: publishes go to a
    /// bounded queue (dropped and counted when it is full or Redis is down), topic changes to a
    /// set bounded by the number of topics.
    pub fn sink(&self) -> impl Fn(Output) + Send + Sync + Clone + 'static {
        let inner = self.inner.clone();
        move |output| inner.on_output(output)
    }

    /// A handle for statistics, connection state and stopping; valid before and after the task
    /// starts.
    pub fn handle(&self) -> BackplaneHandle {
        BackplaneHandle {
            inner: self.inner.clone(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The backplane task, for any executor the enabled runtime feature supports: it connects,
    /// forwards publishes both ways, and reconnects, until [`BackplaneHandle::stop`] or until
    /// the server has shut down ([`ServerAccess::has_stopped`]); it flushes what is queued
    /// before ending. Topic changes the sink received before this starts are handled once
    /// connected; publishes are dropped until then (the backplane is not connected yet).
    pub fn run<N: ServerAccess>(self, node: N) -> impl Future<Output = ()> + Send + 'static {
        Runner {
            inner: self.inner,
            rx: self.rx,
            settings: self.settings,
            node,
        }
        .run()
    }

    /// Spawns [`run`](Self::run) on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub fn spawn<N: ServerAccess>(self, node: N) -> BackplaneTask {
        let handle = self.handle();
        let join = tokio::spawn(self.run(node));
        BackplaneTask { handle, join }
    }

    /// Runs [`run`](Self::run) on a new thread (async-io's `block_on`, the `redis` crate's
    /// smol support): for servers without an async runtime, such as `wskit-blocking`.
    #[cfg(feature = "smol")]
    pub fn spawn_thread<N: ServerAccess>(self, node: N) -> std::io::Result<BackplaneThread> {
        let handle = self.handle();
        let task = self.run(node);
        let join = std::thread::Builder::new()
            .name("wskit-redis".into())
            .spawn(move || async_io::block_on(task))?;
        Ok(BackplaneThread { handle, join })
    }
}

/// The backplane on a thread of its own ([`Backplane::spawn_thread`]).
#[cfg(feature = "smol")]
#[derive(Debug)]
pub struct BackplaneThread {
    handle: BackplaneHandle,
    join: std::thread::JoinHandle<()>,
}

#[cfg(feature = "smol")]
impl BackplaneThread {
    /// Statistics, state, stop.
    pub fn handle(&self) -> &BackplaneHandle {
        &self.handle
    }

    /// Stops the task (after flushing queued publishes, 2 s at most) and joins the thread.
    pub fn stop(self) {
        self.handle.stop();
        let _ = self.join.join();
    }
}

/// The spawned backplane task ([`Backplane::spawn`]). Dropping it leaves the task running
/// until the server has shut down; [`stop`](Self::stop) ends it sooner.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct BackplaneTask {
    handle: BackplaneHandle,
    join: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "tokio")]
impl BackplaneTask {
    /// Statistics, state, stop.
    pub fn handle(&self) -> &BackplaneHandle {
        &self.handle
    }

    /// Stops the task (after flushing queued publishes, 2 s at most) and waits for it to drop
    /// its connections. Call it after the server's graceful shutdown, so the publishes of
    /// closing connections still reach the other nodes.
    pub async fn stop(self) {
        self.handle.stop();
        let _ = self.join.await;
    }
}
