//! The backplane task: connect, resubscribe, then forward publishes both ways until the
//! connection breaks; back off and start again. It owns the Redis connections; the sink only
//! touches [`Inner`].

use crate::frame::{self, Decoded};
use crate::node::{query, ServerAccess};
use crate::rt;
use crate::shared::{Inner, Outgoing};
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most publishes sent to Redis in one pipeline (one round trip).
const MAX_BATCH: usize = 256;
/// Most bytes in one pipeline.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Channels per SUBSCRIBE when resubscribing many topics.
const SUBSCRIBE_CHUNK: usize = 512;
/// How often the task checks whether the server has shut down.
const SHUTDOWN_POLL: Duration = Duration::from_millis(250);
/// Longest wait for the last publishes when stopping.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection settings, fixed at build time.
pub(crate) struct Settings {
    pub(crate) client: redis::Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

impl Settings {
    /// Host and port (or socket path) for logs: never the credentials.
    pub(crate) fn addr(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }
}

/// Why a session with Redis ended.
enum End {
    Redis(redis::RedisError),
    /// The server closed the subscriber connection (restart, `CLIENT KILL`, network).
    SubscriberClosed,
    /// The queue's sender is gone: nothing more will ever be published.
    QueueClosed,
    /// Stopped by the handle, or the server has shut down.
    Stopped,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Redis(e) => write!(f, "{e}"),
            End::SubscriberClosed => f.write_str("subscriber connection closed"),
            End::QueueClosed => f.write_str("publish queue closed"),
            End::Stopped => f.write_str("stopped"),
        }
    }
}

/// The two connections of a session: one multiplexed for PUBLISH, one in subscriber mode.
struct Session {
    publish: MultiplexedConnection,
    sub: PubSubSink,
    messages: PubSubStream,
}

pub(crate) struct Runner<N> {
    pub(crate) inner: Arc<Inner>,
    pub(crate) rx: mpsc::Receiver<Outgoing>,
    pub(crate) settings: Settings,
    pub(crate) node: N,
}

impl<N: ServerAccess> Runner<N> {
    /// Runs until stopped or until the server has shut down.
    pub(crate) async fn run(self) {
        let Runner {
            inner,
            mut rx,
            settings,
            node,
        } = self;
        connect_loop(&inner, &mut rx, &settings, &node).await;
        inner.connected.store(false, Ordering::Release);
        inner.counters.subscribed.store(0, Ordering::Relaxed);
        discard(&inner, &mut rx);
        tracing::info!(node = %inner.node_id, "Redis backplane stopped");
    }
}

/// Resolves once [`BackplaneHandle::stop`](crate::BackplaneHandle::stop) was called or the
/// server has shut down ([`ServerAccess::has_stopped`], polled).
async fn stopped<N: ServerAccess>(inner: &Inner, node: &N) {
    let mut stop = inner.stop.subscribe();
    loop {
        if *stop.borrow_and_update() || node.has_stopped() {
            return;
        }
        let changed = async {
            let _ = stop.changed().await;
        };
        rt::race(changed, rt::sleep(SHUTDOWN_POLL)).await;
    }
}

/// Connects, serves, and on failure backs off exponentially (with jitter, so nodes that lost
/// Redis together do not reconnect in lockstep), until stopped.
async fn connect_loop<N: ServerAccess>(
    inner: &Inner,
    rx: &mut mpsc::Receiver<Outgoing>,
    settings: &Settings,
    node: &N,
) {
    let addr = settings.addr();
    let mut failures: u32 = 0;
    let mut subscribed: HashSet<Arc<str>> = HashSet::new();
    loop {
        // Whatever is queued was published before this session: at-most-once, not replayed.
        discard(inner, rx);
        let opened = rt::race(async { Some(open(settings).await) }, async {
            stopped(inner, node).await;
            None
        });
        let Some(opened) = opened.await else { return };
        match opened {
            Ok(session) => {
                let end = serve(inner, rx, node, session, &mut subscribed, failures).await;
                inner.connected.store(false, Ordering::Release);
                inner.counters.subscribed.store(0, Ordering::Relaxed);
                if matches!(end, End::QueueClosed | End::Stopped) {
                    return;
                }
                tracing::warn!(
                    %addr, error = %end,
                    "lost the Redis backplane: local delivery continues, publishes to other nodes are dropped until it is back"
                );
                failures = 1;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                // 1st, 2nd, 4th, 8th... failure of an outage at warn; the rest at debug.
                if failures.is_power_of_two() {
                    tracing::warn!(%addr, error = %e, failures, "cannot reach Redis; retrying");
                } else {
                    tracing::debug!(%addr, error = %e, failures, "cannot reach Redis; retrying");
                }
            }
        }
        let wait = async {
            rt::sleep(backoff(settings, failures)).await;
            false
        };
        let stop = async {
            stopped(inner, node).await;
            true
        };
        if rt::race(wait, stop).await {
            return;
        }
    }
}

/// `min * 2^(failures-1)`, capped at `max`, then scaled by a random factor in [0.5, 1].
fn backoff(settings: &Settings, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let wait = settings
        .backoff_min
        .saturating_mul(1u32 << exp)
        .min(settings.backoff_max);
    let random = RandomState::new().hash_one(failures) as f64 / u64::MAX as f64;
    wait.mul_f64(0.5 + 0.5 * random)
}

/// Drops what is queued, counting it as published while disconnected.
fn discard(inner: &Inner, rx: &mut mpsc::Receiver<Outgoing>) {
    let mut n = 0u64;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    if n > 0 {
        inner
            .counters
            .dropped_disconnected
            .fetch_add(n, Ordering::Relaxed);
    }
    inner.relieved();
}

async fn open(settings: &Settings) -> Result<Session, redis::RedisError> {
    let connect = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout));
        let publish = settings
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let (sub, messages) = settings.client.get_async_pubsub().await?.split();
        Ok(Session {
            publish,
            sub,
            messages,
        })
    };
    match rt::timeout(settings.connect_timeout, connect).await {
        Some(result) => result,
        None => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to Redis timed out",
        )
        .into()),
    }
}

/// One connected session: resubscribe every live topic, open the gate for publishes, then run
/// the publisher, the receiver and the subscription reconciler until one of them fails, or
/// until stopped (then what is queued is flushed first: the server's last publishes, such as
/// "user left" notices during its shutdown, still reach the other nodes).
async fn serve<N: ServerAccess>(
    inner: &Inner,
    rx: &mut mpsc::Receiver<Outgoing>,
    node: &N,
    mut session: Session,
    subscribed: &mut HashSet<Arc<str>>,
    failures: u32,
) -> End {
    // A fresh connection holds no subscriptions. Read the server's topics after taking the
    // pending edges: any change after this read marks its topic dirty again.
    subscribed.clear();
    drop(inner.take_dirty());
    let live = query(node, |s| s.topics()).unwrap_or_default();
    for chunk in live.chunks(SUBSCRIBE_CHUNK) {
        let channels: Vec<String> = chunk.iter().map(|t| inner.channel(t)).collect();
        if let Err(e) = session.sub.subscribe(&channels).await {
            return End::Redis(e);
        }
        subscribed.extend(chunk.iter().cloned());
    }
    inner
        .counters
        .subscribed
        .store(subscribed.len(), Ordering::Relaxed);
    inner.counters.connects.fetch_add(1, Ordering::Relaxed);
    inner.connected.store(true, Ordering::Release);
    if failures > 0 {
        tracing::info!(node = %inner.node_id, topics = subscribed.len(), "Redis backplane reconnected and resubscribed");
    } else {
        tracing::info!(node = %inner.node_id, topics = subscribed.len(), "Redis backplane connected");
    }

    let Session {
        mut publish,
        sub,
        messages,
    } = session;
    let end = rt::race(
        rt::race(
            publish_loop(inner, rx, &mut publish),
            receive_loop(inner, node, messages),
        ),
        rt::race(reconcile_loop(inner, node, sub, subscribed), async {
            stopped(inner, node).await;
            End::Stopped
        }),
    )
    .await;
    if matches!(end, End::Stopped) {
        inner.connected.store(false, Ordering::Release);
        let flush = async {
            while !rx.is_empty() {
                if let Err(e) = publish_batch(inner, rx, &mut publish).await {
                    tracing::debug!(error = %e, "final flush failed");
                    return;
                }
            }
        };
        let _ = rt::timeout(FLUSH_TIMEOUT, flush).await;
    }
    end
}

/// Sends queued publishes in order, pipelined: whatever is queued goes in one round trip.
async fn publish_loop(
    inner: &Inner,
    rx: &mut mpsc::Receiver<Outgoing>,
    conn: &mut MultiplexedConnection,
) -> End {
    loop {
        if let Err(end) = publish_batch(inner, rx, conn).await {
            return end;
        }
    }
}

/// Waits for at least one queued publish, then sends everything queued (up to a batch).
/// `Err` when the connection is no longer usable.
async fn publish_batch(
    inner: &Inner,
    rx: &mut mpsc::Receiver<Outgoing>,
    conn: &mut MultiplexedConnection,
) -> Result<(), End> {
    let Some(first) = rx.recv().await else {
        return Err(End::QueueClosed);
    };
    let mut pipe = redis::pipe();
    let mut count = 1usize;
    let mut bytes = first.len;
    pipe.add_command(first.cmd).ignore();
    while count < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        let Ok(next) = rx.try_recv() else { break };
        count += 1;
        bytes += next.len;
        pipe.add_command(next.cmd).ignore();
    }
    if rx.is_empty() {
        inner.relieved();
    }
    match pipe.exec_async(conn).await {
        Ok(()) => {
            inner
                .counters
                .published
                .fetch_add(count as u64, Ordering::Relaxed);
        }
        Err(e) => {
            inner
                .counters
                .dropped_failed
                .fetch_add(count as u64, Ordering::Relaxed);
            if !matches!(e.kind(), redis::ErrorKind::Server(_)) {
                return Err(End::Redis(e));
            }
            // An error reply (ACL, OOM...): the connection itself is fine.
            tracing::warn!(error = %e, count, "Redis refused publishes; dropped");
        }
    }
    Ok(())
}

/// Delivers other nodes' publishes to local subscribers, in the order Redis sends them.
async fn receive_loop<N: ServerAccess>(inner: &Inner, node: &N, mut messages: PubSubStream) -> End {
    let counters = &inner.counters;
    while let Some(msg) = messages.next().await {
        let Some(topic) = msg.get_channel_name().strip_prefix(inner.prefix.as_str()) else {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match frame::decode(msg.get_payload_bytes(), inner.node_id) {
            Ok(Decoded::Echo) => {
                counters.echoes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Decoded::Remote(message)) => {
                query(node, |s| s.handle_remote_publish(topic, message));
                counters.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    topic,
                    ?why,
                    "ignored a message that is not a wskit-redis frame"
                );
            }
        }
    }
    End::SubscriberClosed
}

/// Keeps the Redis subscriptions equal to the set of topics with local subscribers: SUBSCRIBE
/// on the first local subscriber, UNSUBSCRIBE when the last one leaves.
async fn reconcile_loop<N: ServerAccess>(
    inner: &Inner,
    node: &N,
    mut sub: PubSubSink,
    subscribed: &mut HashSet<Arc<str>>,
) -> End {
    loop {
        inner.dirty_notify.notified().await;
        let topics = inner.take_dirty();
        if topics.is_empty() {
            continue;
        }
        let Some(live) = query(node, |s| {
            topics
                .iter()
                .map(|t| s.subscriber_count(t) > 0)
                .collect::<Vec<_>>()
        }) else {
            continue;
        };
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for (topic, live) in topics.into_iter().zip(live) {
            match (live, subscribed.contains(&topic)) {
                (true, false) => add.push(topic),
                (false, true) => remove.push(topic),
                _ => {}
            }
        }
        if !add.is_empty() {
            let channels: Vec<String> = add.iter().map(|t| inner.channel(t)).collect();
            if let Err(e) = sub.subscribe(&channels).await {
                return End::Redis(e);
            }
            tracing::debug!(topics = ?add, "subscribed");
            subscribed.extend(add);
        }
        if !remove.is_empty() {
            let channels: Vec<String> = remove.iter().map(|t| inner.channel(t)).collect();
            if let Err(e) = sub.unsubscribe(&channels).await {
                return End::Redis(e);
            }
            tracing::debug!(topics = ?remove, "unsubscribed");
            for topic in &remove {
                subscribed.remove(topic);
            }
        }
        inner
            .counters
            .subscribed
            .store(subscribed.len(), Ordering::Relaxed);
    }
}
