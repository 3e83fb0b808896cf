//! The upgrade on a raw TCP connection: read the head (bounded in size and time), let the core
//! decide (route, Origin, credentials: all before any 101), run the verifier, answer.

use crate::conn::ConnTask;
use crate::signal::{timeout, Signal, TaskGuard};
use async_io::Async;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    stream: Async<TcpStream>,
    remote: Option<SocketAddr>,
    guard: TaskGuard,
    stop: Arc<Signal>,
) {
    // Boxed: the handshake's state (buffers, timers, the decision) is freed before the
    // connection's long life; the task keeps only the small `ConnTask`.
    let handshake = Box::pin(async move {
        futures_lite::future::or(handshake(shared, stream, remote), async {
            // A shutdown drops connections that have not upgraded yet.
            stop.wait().await;
            None
        })
        .await
    });
    let Some((stream, conn, leftover)) = handshake.await else {
        return;
    };
    ConnTask::new(stream, conn, &leftover, guard).await;
}

/// Reads the head, decides (and authenticates), answers. Returns the open connection and any
/// bytes the client sent after its head.
async fn handshake(
    shared: Arc<Shared>,
    mut stream: Async<TcpStream>,
    remote: Option<SocketAddr>,
) -> Option<(Async<TcpStream>, Connection, Vec<u8>)> {
    // Frames are written whole; small replies must not wait for Nagle.
    let _ = stream.get_ref().set_nodelay(true);
    let config = shared.config();
    let head = timeout(
        config.handshake_timeout,
        read_head(&mut stream, config.max_handshake_bytes),
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
            refuse(stream, &e.to_bytes()).await;
            return None;
        }
        Some(Ok(found)) => found,
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
            if !matches!(write, Some(Ok(()))) {
                tracing::debug!(?remote, "could not write the 101");
                return None; // dropping `accepted` tells the core
            }
            Some((stream, accepted.open(Instant::now()), leftover))
        }
    }
}

/// Runs the verifier on this task, bounded by the adapter's auth timeout (the core refuses
/// completions past the route's own one).
async fn authenticate(shared: &Arc<Shared>, pending: PendingAuth, limit: Duration) -> Upgrade {
    let result = match timeout(limit, pending.verify).await {
        Some(result) => result,
        None => Err(AuthRejection::unauthorized("authentication timed out")),
    };
    shared.complete_auth(Instant::now(), pending.ticket, result)
}

async fn read_head(
    stream: &mut Async<TcpStream>,
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

/// Writes a response and closes politely: shut the write half and drain briefly, so unread
/// request bytes do not turn the close into a reset that could destroy the response.
async fn refuse(mut stream: Async<TcpStream>, response: &[u8]) {
    let _ = timeout(REFUSAL_LINGER, async {
        stream.write_all(response).await?;
        stream.get_ref().shutdown(Shutdown::Write)?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle connection keeps its task's future allocated: the handshake's state must not
    /// stay in it.
    #[test]
    fn connection_task_stays_small() {
        fn size_of_future<F>(_: &F) -> usize {
            std::mem::size_of::<F>()
        }
        let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let stream = Async::<TcpStream>::new(TcpStream::connect(addr).unwrap()).unwrap();
        let server = wskit::Server::builder()
            .route(wskit::Route::new("/"))
            .build()
            .unwrap();
        let shared = Shared::new(server, Default::default(), Box::new(drop));
        let tracker = crate::signal::Tracker::default();
        let task = serve_socket(
            shared,
            stream,
            None,
            tracker.guard(),
            Arc::new(Signal::default()),
        );
        assert!(
            size_of_future(&task) <= 640,
            "{} bytes",
            size_of_future(&task)
        );
    }
}
