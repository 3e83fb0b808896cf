//! Serving an accepted TCP connection: the shared upgrade (`wskit_adapter::handshake`) on this
//! runtime's reads, writes and timer, then the connection task.

use crate::conn::connection_task;
use crate::signal::{timeout, Signal, TaskGuard};
use async_io::Async;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use wskit_adapter::handshake::{handshake, AsyncRuntime};
use wskit_adapter::Shared;

/// Serves one accepted socket for its whole life.
pub(crate) async fn serve_socket(
    shared: Arc<Shared>,
    stream: Async<TcpStream>,
    remote: Option<SocketAddr>,
    // Held until the connection ends: shutdown waits for it.
    _guard: TaskGuard,
    stop: Arc<Signal>,
) {
    // Frames are written whole; small replies must not wait for Nagle.
    let _ = stream.get_ref().set_nodelay(true);
    // Boxed: the handshake's state (buffers, timers, the decision) is freed before the
    // connection's long life; the task keeps only the small `ConnTask`.
    let handshake = Box::pin(async move {
        futures_lite::future::or(handshake::<AsyncIo>(&shared, stream, remote), async {
            // A shutdown drops connections that have not upgraded yet.
            stop.wait().await;
            None
        })
        .await
    });
    let Some((stream, conn, leftover)) = handshake.await else {
        return;
    };
    connection_task(stream, conn, &leftover).await;
}

/// async-io's reads, writes and timer for the shared handshake.
struct AsyncIo;

impl AsyncRuntime for AsyncIo {
    type Stream = Async<TcpStream>;

    fn read<'a>(
        stream: &'a mut Async<TcpStream>,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.read(buf)
    }

    fn write_all<'a>(
        stream: &'a mut Async<TcpStream>,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        stream.write_all(buf)
    }

    fn shutdown_write(
        stream: &mut Async<TcpStream>,
    ) -> impl Future<Output = io::Result<()>> + Send {
        // A real half-close (FIN): futures-io's `close` only flushes a TCP stream.
        std::future::ready(stream.get_ref().shutdown(Shutdown::Write))
    }

    fn timeout<F: Future + Send>(
        limit: Duration,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send {
        timeout(limit, future)
    }
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
