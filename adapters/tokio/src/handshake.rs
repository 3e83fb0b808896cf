//! The upgrade on a raw TCP connection: read the head (bounded in size and time), let the core
//! decide (route, Origin, credentials: all before any 101), run the verifier, answer.

use crate::conn::connection_task;
use crate::tracker::TaskGuard;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use wskit::{AuthRejection, PendingAuth};
use wskit_adapter::http::{rejection_bytes, response_bytes, HeadError, HeadReader};
use wskit_adapter::{Connection, Shared, Upgrade};

/// How long a refused client gets to read the refusal before the socket is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

enum HeadFailure {
    Io(io::Error),
    Head(HeadError),
}

/// Serves one accepted socket for its whole life.
pub(crate) async fn serve_socket(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: Option<SocketAddr>,
    guard: TaskGuard,
    mut stop: watch::Receiver<bool>,
) {
    // Boxed: the handshake's state (buffers, timers, the decision) is freed before the
    // connection's long life; the task keeps only the small `ConnTask`.
    let handshake = Box::pin(async move {
        tokio::select! {
            done = handshake(shared, stream, remote) => done,
            // A shutdown drops connections that have not upgraded yet.
            _ = stop.wait_for(|stopped| *stopped) => None,
        }
    });
    let Some((stream, conn, leftover)) = handshake.await else {
        return;
    };
    connection_task(stream, conn, &leftover, guard).await;
}

/// Reads the head, decides (and authenticates), answers. Returns the open connection and any
/// bytes the client sent after its head.
async fn handshake(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    remote: Option<SocketAddr>,
) -> Option<(TcpStream, Connection, Vec<u8>)> {
    let _ = stream.set_nodelay(true);
    let config = shared.config();
    let head = timeout(
        config.handshake_timeout,
        read_head(&mut stream, config.max_handshake_bytes),
    )
    .await;
    let (req, leftover) = match head {
        Err(_) => {
            tracing::debug!(?remote, "handshake timed out; dropping the connection");
            return None;
        }
        Ok(Err(HeadFailure::Io(e))) => {
            tracing::debug!(?remote, error = %e, "connection lost during the handshake");
            return None;
        }
        Ok(Err(HeadFailure::Head(e))) => {
            tracing::debug!(?remote, error = %e, "bad request head");
            refuse(stream, &e.to_bytes()).await;
            return None;
        }
        Ok(Ok(found)) => found,
    };
    let upgrade = match shared.upgrade(Instant::now(), &req, remote) {
        Upgrade::Authenticate(pending) => authenticate(&shared, pending, config.auth_timeout).await,
        other => other,
    };
    drop(req);
    match upgrade {
        Upgrade::Reject(r) => {
            refuse(stream, &rejection_bytes(&r)).await;
            None
        }
        Upgrade::Respond(res) => {
            refuse(stream, &response_bytes(&res)).await;
            None
        }
        Upgrade::Authenticate(_) => {
            tracing::error!("the core asked to authenticate twice; dropping the connection");
            None
        }
        Upgrade::Accept(accepted) => {
            let response = accepted.response_bytes();
            let write = timeout(config.handshake_timeout, stream.write_all(&response)).await;
            if !matches!(write, Ok(Ok(()))) {
                tracing::debug!(?remote, "could not write the 101");
                return None; // dropping `accepted` tells the core
            }
            Some((stream, accepted.open(Instant::now()), leftover))
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
    // Past the route's own deadline the core refuses the result anyway: stop waiting there.
    let limit = limit.min(pending.deadline.saturating_duration_since(Instant::now()));
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
    let mut reader = HeadReader::new(max);
    loop {
        let spare = reader.spare().map_err(HeadFailure::Head)?;
        let n = stream.read(spare).await.map_err(HeadFailure::Io)?;
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

#[cfg(test)]
mod tests {
    /// Every idle connection keeps its task's future allocated: the handshake's state must not
    /// stay in it (it once did, and cost 2 KiB per connection).
    #[tokio::test]
    async fn connection_task_stays_small() {
        fn size_of_future<F>(_: &F) -> usize {
            std::mem::size_of::<F>()
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let server = wskit::Server::builder()
            .route(wskit::Route::new("/"))
            .build()
            .unwrap();
        let shared = wskit_adapter::Shared::new(server, Default::default(), Box::new(drop));
        let tracker = crate::tracker::Tracker::default();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let task = super::serve_socket(shared, stream, None, tracker.guard(), stopped);
        assert!(
            size_of_future(&task) <= 768,
            "{} bytes",
            size_of_future(&task)
        );
    }
}
