//! Limits and timers. Defaults follow Bun's `websocket` options where Bun has one.

use std::time::Duration;

/// Per-route limits (the server's defaults apply to routes that set none).
///
/// ```
/// use std::time::Duration;
/// let limits = wskit::Limits::default().max_payload(64 * 1024).idle_timeout(Duration::from_secs(60));
/// assert_eq!(limits.max_payload, 64 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message accepted, in bytes (Bun: 16 MiB). Larger ones close the connection with 1009.
    pub max_payload: usize,
    /// A connection that sends nothing (not even a pong) for this long is closed with 1001.
    /// A ping is sent after half of it (Bun: 120 s, `sendPings: true`).
    pub idle_timeout: Duration,
    /// How long the verifier may take before the upgrade is refused with 401.
    pub auth_timeout: Duration,
    /// How long an adapter waits for the full upgrade request (silent or trickling clients).
    pub handshake_timeout: Duration,
    /// Largest upgrade request head an adapter reads; larger ones get 431.
    pub max_handshake_bytes: usize,
    /// Topics one connection may hold at once.
    pub max_topics_per_conn: usize,
    /// Longest topic name, in bytes.
    pub max_topic_len: usize,
    /// Bytes an adapter may queue for one connection before it is cut off as a slow consumer
    /// (Bun's `backpressureLimit`: 16 MiB).
    pub max_outbound_bytes: usize,
    /// Close code for a slow consumer: 1008 (policy) by default, or 1013 (try again later).
    pub slow_consumer_code: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(120),
            auth_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_handshake_bytes: 16 * 1024,
            max_topics_per_conn: 1024,
            max_topic_len: 1024,
            max_outbound_bytes: 16 * 1024 * 1024,
            slow_consumer_code: 1008,
        }
    }
}

macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        impl Limits {$(
            #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*}
    };
}

setters! {
    max_payload: usize, idle_timeout: Duration, auth_timeout: Duration,
    handshake_timeout: Duration, max_handshake_bytes: usize, max_topics_per_conn: usize,
    max_topic_len: usize, max_outbound_bytes: usize, slow_consumer_code: u16,
}
