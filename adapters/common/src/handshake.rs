//! The upgrade on a raw stream, for async adapters: read the head (bounded in size and time),
//! let the core decide (route, Origin, credentials: all before any 101), run the verifier,
//! answer. The adapter supplies its runtime's reads, writes and timer through [`AsyncRuntime`].

use crate::http::{rejection_bytes, response_bytes, HeadError, HeadReader};
use crate::{Connection, Shared, Upgrade};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wskit::{AuthRejection, PendingAuth};

/// How long a refused client gets to read the refusal before the socket is dropped.
pub const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// What the handshake needs from an async runtime: its stream's reads and writes, and a timer.
pub trait AsyncRuntime {
    /// The accepted connection.
    type Stream: Send;

    /// Reads into `buf`; `Ok(0)` is end of stream.
    fn read<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Writes all of `buf`.
    fn write_all<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Shuts the write half (a FIN), so the peer sees the end of a refusal.
    fn shutdown_write(stream: &mut Self::Stream) -> impl Future<Output = io::Result<()>> + Send;

    /// `future`'s output, or `None` when `limit` passes first.
    fn timeout<F: Future + Send>(
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send;
}

enum HeadFailure {
    Io(io::Error),
    Head(HeadError),
}

/// Reads the head, decides (and authenticates), answers. Returns the open connection and any
/// bytes the client sent after its head; `None` when the socket was refused or lost.
pub async fn handshake<R: AsyncRuntime>(
    shared: &Arc<Shared>,
    mut stream: R::Stream,
    remote: Option<SocketAddr>,
) -> Option<(R::Stream, Connection, Vec<u8>)> {
    let config = shared.config();
    let head = R::timeout(
        config.handshake_timeout,
        read_head::<R>(&mut stream, config.max_handshake_bytes),
    )
    .await;
    let (req, leftover) = match head {
        None => {
            tracing::debug!(?remote, "handshake timed out; dropping the connection");
            return None;
        }
        Some(Err(HeadFailure::Io(e))) => {
            tracing::debug!(?remote, error = %e, "connection lost during the handshake");
            return None;
        }
        Some(Err(HeadFailure::Head(e))) => {
            tracing::debug!(?remote, error = %e, "bad request head");
            refuse::<R>(stream, &e.to_bytes()).await;
            return None;
        }
        Some(Ok(found)) => found,
    };
    let upgrade = match shared.upgrade(Instant::now(), &req, remote) {
        Upgrade::Authenticate(pending) => {
            authenticate::<R>(shared, pending, config.auth_timeout).await
        }
        other => other,
    };
    drop(req);
    match upgrade {
        Upgrade::Reject(r) => {
            refuse::<R>(stream, &rejection_bytes(&r)).await;
            None
        }
        Upgrade::Respond(res) => {
            refuse::<R>(stream, &response_bytes(&res)).await;
            None
        }
        Upgrade::Authenticate(_) => {
            tracing::error!("the core asked to authenticate twice; dropping the connection");
            None
        }
        Upgrade::Accept(accepted) => {
            let response = accepted.response_bytes();
            let write = R::timeout(
                config.handshake_timeout,
                R::write_all(&mut stream, &response),
            )
            .await;
            if !matches!(write, Some(Ok(()))) {
                tracing::debug!(?remote, "could not write the 101");
                return None; // dropping `accepted` tells the core
            }
            Some((stream, accepted.open(Instant::now()), leftover))
        }
    }
}

/// Runs the verifier on the calling task, bounded by `limit` (the adapter's auth timeout) and
/// by the route's own deadline, past which the core refuses the result anyway.
pub async fn authenticate<R: AsyncRuntime>(
    shared: &Arc<Shared>,
    pending: PendingAuth,
    limit: Duration,
) -> Upgrade {
    let limit = limit.min(pending.deadline.saturating_duration_since(Instant::now()));
    let result = match R::timeout(limit, pending.verify).await {
        Some(result) => result,
        None => Err(AuthRejection::unauthorized("authentication timed out")),
    };
    shared.complete_auth(Instant::now(), pending.ticket, result)
}

async fn read_head<R: AsyncRuntime>(
    stream: &mut R::Stream,
    max: usize,
) -> Result<(http::Request<()>, Vec<u8>), HeadFailure> {
    let mut reader = HeadReader::new(max);
    loop {
        let spare = reader.spare().map_err(HeadFailure::Head)?;
        let n = R::read(stream, spare).await.map_err(HeadFailure::Io)?;
        if n == 0 {
            return Err(HeadFailure::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some(done) = reader.filled(n).map_err(HeadFailure::Head)? {
            return Ok(done);
        }
    }
}

/// Writes a refusal, then closes politely: shut the write half and drain briefly, so unread
/// request bytes do not turn the close into a reset that could destroy the response.
async fn refuse<R: AsyncRuntime>(mut stream: R::Stream, response: &[u8]) {
    let _ = R::timeout(REFUSAL_LINGER, async {
        R::write_all(&mut stream, response).await?;
        R::shutdown_write(&mut stream).await?;
        let mut sink = [0u8; 512];
        while R::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}
