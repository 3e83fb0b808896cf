//! Adapter options that the core's per-route [`Limits`](wskit::Limits) do not cover.

use std::time::Duration;

/// Options shared by every adapter. The defaults suit a server with many mostly idle
/// connections: small per-connection buffers, bounded close and shutdown phases.
///
/// ```
/// use std::time::Duration;
/// let config = wskit_adapter::Config::default().close_timeout(Duration::from_secs(2));
/// assert_eq!(config.close_timeout, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Bytes the frame parser keeps allocated per connection and consumes per step (256 B). Small
    /// keeps idle connections cheap (tungstenite's own default is 128 KiB; 1 KiB here cost 700 B
    /// more per idle connection with no throughput gain for chat-sized messages); larger messages
    /// still work, the buffer grows while one is in flight.
    pub read_buffer_size: usize,
    /// How long a closing connection may take to flush its close frame and get the peer's reply
    /// before the socket is dropped.
    pub close_timeout: Duration,
    /// How long a graceful shutdown waits for connections to drain before dropping the rest.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send its upgrade request head (the route, and so its own
    /// `Limits`, is not known yet).
    pub handshake_timeout: Duration,
    /// Largest upgrade request head accepted; larger ones get 431.
    pub max_handshake_bytes: usize,
    /// Upper bound on an authentication verifier's run time. The core also refuses completions
    /// past the route's own `auth_timeout`; this bound frees the adapter's task.
    pub auth_timeout: Duration,
    /// Capacity of written output buffers kept for reuse, across all connections. Reusing them
    /// spares the allocator (glibc's returns freed memory to the kernel and faults it back in
    /// under load); idle connections hold no output buffer either way. 0 disables the pool.
    pub write_buffer_pool_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        let limits = wskit::Limits::default();
        Config {
            read_buffer_size: 256,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            handshake_timeout: limits.handshake_timeout,
            max_handshake_bytes: limits.max_handshake_bytes,
            auth_timeout: limits.auth_timeout,
            write_buffer_pool_bytes: 4 << 20,
        }
    }
}

impl Config {
    /// Takes the handshake-phase values (`handshake_timeout`, `max_handshake_bytes`,
    /// `auth_timeout`) from a [`Limits`](wskit::Limits), typically the server's defaults.
    pub fn handshake_limits(mut self, limits: &wskit::Limits) -> Self {
        self.handshake_timeout = limits.handshake_timeout;
        self.max_handshake_bytes = limits.max_handshake_bytes;
        self.auth_timeout = limits.auth_timeout;
        self
    }
}

macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        impl Config {$(
            #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*}
    };
}

setters! {
    read_buffer_size: usize, close_timeout: Duration, shutdown_timeout: Duration,
    handshake_timeout: Duration, max_handshake_bytes: usize, auth_timeout: Duration,
    write_buffer_pool_bytes: usize,
}
