//! Serving an accepted TCP connection: the shared upgrade (`wskit_adapter::handshake`) on this
//! runtime's reads, writes and timer, then the connection task.

use crate::conn::connection_task;
use crate::tracker::TaskGuard;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use wskit_adapter::handshake::{handshake, AsyncRuntime};
use wskit_adapter::Shared;

/// Serves one accepted socket for its whole life.
pub(crate) async fn serve_socket(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: Option<SocketAddr>,
    // Held until the connection ends: shutdown waits for it.
    _guard: TaskGuard,
    mut stop: watch::Receiver<bool>,
) {
    // Frames are written whole; small replies must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    // Boxed: the handshake's state (buffers, timers, the decision) is freed before the
    // connection's long life; the task keeps only the small `ConnTask`.
    let handshake = Box::pin(async move {
        tokio::select! {
            done = handshake::<Tokio>(&shared, stream, remote) => done,
            // A shutdown drops connections that have not upgraded yet.
            _ = stop.wait_for(|stopped| *stopped) => None,
        }
    });
    let Some((stream, conn, leftover)) = handshake.await else {
        return;
    };
    connection_task(stream, conn, &leftover).await;
}

/// tokio's reads, writes and timer for the shared handshake.
pub(crate) struct Tokio;

impl AsyncRuntime for Tokio {
    type Stream = TcpStream;

    fn read<'a>(
        stream: &'a mut TcpStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.read(buf)
    }

    fn write_all<'a>(
        stream: &'a mut TcpStream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        stream.write_all(buf)
    }

    fn shutdown_write(stream: &mut TcpStream) -> impl Future<Output = io::Result<()>> + Send {
        stream.shutdown()
    }

    async fn timeout<F: Future + Send>(limit: Duration, future: F) -> Option<F::Output> {
        tokio::time::timeout(limit, future).await.ok()
    }
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
