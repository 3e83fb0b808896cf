//! The upgrade on a raw TCP connection: read the head (bounded in size and time), let the core
//! decide (route, Origin, credentials: all before any 101), run the verifier, answer.

use crate::conn::ConnTask;
use crate::tracker::TaskGuard;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wskit::{AuthRejection, PendingAuth};
use wskit_adapter::http::{parse_request_head, rejection_bytes, HeadError};
use wskit_adapter::{Shared, Upgrade};

/// How long a refused client gets to read the refusal before the socket is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

enum HeadFailure {
    Io(io::Error),
    Head(HeadError),
}

/// Serves one accepted socket for its whole life.
pub(crate) async fn serve_socket(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    remote: Option<SocketAddr>,
    guard: TaskGuard,
) {
    let _ = stream.set_nodelay(true);
    let config = shared.config().clone();
    // Boxed so the connection task does not carry the handshake's state for its whole life.
    let head = Box::pin(timeout(
        config.handshake_timeout,
        read_head(&mut stream, config.max_handshake_bytes),
    ))
    .await;
    let (req, leftover) = match head {
        Err(_) => {
            tracing::debug!(?remote, "handshake timed out; dropping the connection");
            return;
        }
        Ok(Err(HeadFailure::Io(e))) => {
            tracing::debug!(?remote, error = %e, "connection lost during the handshake");
            return;
        }
        Ok(Err(HeadFailure::Head(e))) => {
            tracing::debug!(?remote, error = %e, "bad request head");
            refuse(stream, &e.to_bytes()).await;
            return;
        }
        Ok(Ok(found)) => found,
    };
    let upgrade = match shared.upgrade(Instant::now(), &req, remote) {
        Upgrade::Authenticate(pending) => {
            Box::pin(authenticate(&shared, pending, config.auth_timeout)).await
        }
        other => other,
    };
    drop(req);
    match upgrade {
        Upgrade::Reject(r) => refuse(stream, &rejection_bytes(&r)).await,
        Upgrade::Authenticate(_) => {
            tracing::error!("the core asked to authenticate twice; dropping the connection");
        }
        Upgrade::Accept(accepted) => {
            let response = accepted.response_bytes();
            let write = timeout(config.handshake_timeout, stream.write_all(&response)).await;
            if !matches!(write, Ok(Ok(()))) {
                tracing::debug!(?remote, "could not write the 101");
                return; // dropping `accepted` tells the core
            }
            let conn = accepted.open(Instant::now());
            ConnTask::new(stream, conn, &leftover, guard).await;
        }
    }
}

/// Runs the verifier on this task, bounded by the adapter's auth timeout (the core refuses
/// completions past the route's own one).
pub(crate) async fn authenticate(
    shared: &Arc<Shared>,
    pending: PendingAuth,
    limit: Duration,
) -> Upgrade {
    let result = match timeout(limit, pending.verify).await {
        Ok(result) => result,
        Err(_) => Err(AuthRejection::unauthorized("authentication timed out")),
    };
    shared.complete_auth(Instant::now(), pending.ticket, result)
}

async fn read_head(
    stream: &mut TcpStream,
    max: usize,
) -> Result<(http::Request<()>, Vec<u8>), HeadFailure> {
    let mut buf = Vec::new();
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // Grow geometrically up to one byte past the limit, so "too large" is detectable.
            let size = (buf.len() * 2).clamp(1024, max + 1);
            if size == buf.len() {
                return Err(HeadFailure::Head(HeadError::TooLarge { limit: max }));
            }
            buf.resize(size, 0);
        }
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(HeadFailure::Io)?;
        if n == 0 {
            return Err(HeadFailure::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        filled += n;
        if let Some((req, len)) = parse_request_head(&buf[..filled], max).map_err(HeadFailure::Head)?
        {
            return Ok((req, buf[len..filled].to_vec()));
        }
    }
}

/// Writes a refusal, then closes politely: shut the write half and drain briefly, so unread
/// request bytes do not turn the close into a reset that could destroy the response.
async fn refuse(mut stream: TcpStream, response: &[u8]) {
    let _ = timeout(REFUSAL_LINGER, async {
        stream.write_all(response).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}
