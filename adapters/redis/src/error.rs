//! Errors of building and connecting a backplane.

/// Why a [`Backplane`](crate::Backplane) could not be created.
///
/// Once running, the backplane never fails: it logs, counts and reconnects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be parsed (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` needs a TLS feature of the `redis` crate, `unix:///path`).
    #[error("invalid Redis URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given (passwords included, so keep it out of logs).
        url: String,
        /// The parser's complaint.
        #[source]
        source: redis::RedisError,
    },
    /// The channel prefix is empty: every channel on the Redis server would be ours.
    #[error("the channel prefix must not be empty")]
    EmptyPrefix,
    /// [`BackplaneBuilder::connect`](crate::BackplaneBuilder::connect) could not reach Redis.
    #[error("cannot reach Redis at {addr}: {source}")]
    Connect {
        /// Where we tried (host and port, no credentials).
        addr: String,
        /// What went wrong.
        #[source]
        source: redis::RedisError,
    },
    /// [`BackplaneBuilder::connect`](crate::BackplaneBuilder::connect) gave up waiting.
    #[error("cannot reach Redis at {addr}: no answer within {timeout:?}")]
    Timeout {
        /// Where we tried.
        addr: String,
        /// The connect timeout.
        timeout: std::time::Duration,
    },
}
