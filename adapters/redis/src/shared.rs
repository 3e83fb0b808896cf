//! State shared by the sink (called on the server's threads), the backplane task and the
//! [`BackplaneHandle`]s.

use crate::frame::{self, NodeId, HEADER_LEN};
use redis::{RedisWrite, ToRedisArgs};
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, Notify};
use wskit::{Message, Output};

/// One publish on its way to Redis: `PUBLISH channel frame`, built on the publishing thread.
pub(crate) struct Outgoing {
    pub(crate) cmd: redis::Cmd,
    pub(crate) len: usize,
}

/// Writes the frame straight into the command's buffer (header, then the payload): the only
/// copy of the payload on the publishing side.
struct FrameArg<'a> {
    node: NodeId,
    message: &'a Message,
}

impl ToRedisArgs for FrameArg<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut w = out.writer_for_next_arg();
        // Writes into a Vec cannot fail.
        let _ = w.write_all(&frame::encode_header(self.node, self.message));
        let _ = w.write_all(self.message.payload());
    }
}

/// Counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) dropped_disconnected: AtomicU64,
    pub(crate) dropped_failed: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) echoes: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) subscribed: AtomicUsize,
}

/// What a backplane has done so far (a snapshot; every field only grows, except
/// `subscribed_topics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Local publishes sent to Redis.
    pub published: u64,
    /// Local publishes dropped because the queue to the publisher task was full (Redis slower
    /// than the publish rate).
    pub dropped_queue_full: u64,
    /// Local publishes dropped because Redis was unreachable (at-most-once: they are not
    /// replayed later).
    pub dropped_disconnected: u64,
    /// Local publishes Redis refused or that were in flight when the connection broke.
    pub dropped_failed: u64,
    /// Publishes from other nodes delivered to local subscribers.
    pub received: u64,
    /// This node's own publishes coming back from Redis, ignored (local subscribers already
    /// had them).
    pub echoes: u64,
    /// Frames on our channels that were not ours to read (foreign or broken), ignored.
    pub rejected: u64,
    /// Successful connections to Redis (1 plus the reconnections).
    pub connects: u64,
    /// Redis channels this node is subscribed to now.
    pub subscribed_topics: usize,
}

pub(crate) struct Inner {
    pub(crate) node_id: NodeId,
    pub(crate) prefix: String,
    pub(crate) tx: mpsc::Sender<Outgoing>,
    /// The publisher task has a live connection: publishes are queued, not dropped.
    pub(crate) connected: AtomicBool,
    /// A full queue was reported; cleared when the publisher drains it (one warning per episode).
    congested: AtomicBool,
    /// Topics whose local subscriber count crossed zero since the task last looked.
    dirty: Mutex<HashSet<Arc<str>>>,
    pub(crate) dirty_notify: Notify,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) counters: Counters,
}

impl Inner {
    pub(crate) fn new(node_id: NodeId, prefix: String, tx: mpsc::Sender<Outgoing>) -> Self {
        Inner {
            node_id,
            prefix,
            tx,
            connected: AtomicBool::new(false),
            congested: AtomicBool::new(false),
            dirty: Mutex::new(HashSet::new()),
            dirty_notify: Notify::new(),
            stop: watch::channel(false).0,
            counters: Counters::default(),
        }
    }

    /// The Redis channel of `topic`.
    pub(crate) fn channel(&self, topic: &str) -> String {
        let mut c = String::with_capacity(self.prefix.len() + topic.len());
        c.push_str(&self.prefix);
        c.push_str(topic);
        c
    }

    /// The sink: what the adapter calls, after releasing its lock, for every backplane event.
    /// Never blocks and never allocates more than one frame.
    pub(crate) fn on_output(&self, output: Output) {
        match output {
            Output::Published { topic, message } => self.forward(&topic, &message),
            Output::TopicActive { topic } | Output::TopicInactive { topic } => {
                // Order between threads is not guaranteed (each runs its effects after unlocking),
                // so the task re-reads the subscriber count instead of trusting the edge.
                self.dirty
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(topic);
                self.dirty_notify.notify_one();
            }
            _ => {}
        }
    }

    fn forward(&self, topic: &str, message: &Message) {
        if !self.connected.load(Ordering::Acquire) {
            self.counters
                .dropped_disconnected
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_reserve() {
            Ok(permit) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(self.channel(topic)).arg(FrameArg {
                    node: self.node_id,
                    message,
                });
                permit.send(Outgoing {
                    cmd,
                    len: HEADER_LEN + message.len(),
                });
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                if !self.congested.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        capacity = self.tx.max_capacity(),
                        "Redis backplane queue full: dropping publishes to other nodes (local delivery unaffected)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                // The task has ended (stopped, or the server shut down).
                self.counters
                    .dropped_disconnected
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The publisher caught up: the next full queue is a new episode worth a warning.
    pub(crate) fn relieved(&self) {
        self.congested.store(false, Ordering::Relaxed);
    }

    /// Takes the topics to reconcile.
    pub(crate) fn take_dirty(&self) -> Vec<Arc<str>> {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect()
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            published: get(&c.published),
            dropped_queue_full: get(&c.dropped_full),
            dropped_disconnected: get(&c.dropped_disconnected),
            dropped_failed: get(&c.dropped_failed),
            received: get(&c.received),
            echoes: get(&c.echoes),
            rejected: get(&c.rejected),
            connects: get(&c.connects),
            subscribed_topics: c.subscribed.load(Ordering::Relaxed),
        }
    }
}

/// A cloneable handle to a backplane: statistics, connection state, stop.
#[derive(Clone)]
pub struct BackplaneHandle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BackplaneHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackplaneHandle")
            .field("node_id", &self.inner.node_id)
            .field("prefix", &self.inner.prefix)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl BackplaneHandle {
    /// This node's id (what it stamps on its frames).
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis channel that carries `topic`.
    pub fn channel(&self, topic: &str) -> String {
        self.inner.channel(topic)
    }

    /// Whether the backplane is connected to Redis now (publishes cross nodes only then).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Stops the backplane task: it drops its Redis connections (Redis forgets the node's
    /// subscriptions) and later publishes stay local. Idempotent.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }
}
