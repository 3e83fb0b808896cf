//! How the suite starts a server on each adapter: one [`Adapter`] impl per adapter, each a few
//! lines. The suite talks to it only over loopback sockets.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use wskit::Server;
use wskit_adapter::{Config, HttpHandler};

/// A way to run a [`Server`] on real sockets.
pub trait Adapter {
    /// Name for messages.
    const NAME: &'static str;
    /// Whether the adapter itself parses the HTTP request head (and so enforces
    /// `handshake_timeout` and `max_handshake_bytes`); false when an HTTP server in front of
    /// it (hyper/axum) does.
    const OWNS_HANDSHAKE: bool;

    /// Serves `server` on an ephemeral loopback port.
    fn start(server: Server, config: Config) -> Running {
        Self::start_with(server, config, None)
    }

    /// Like [`start`](Self::start), with a handler for plain HTTP requests on the same port
    /// (the adapter's `Builder::http`).
    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running;
}

/// A started server; dropping it shuts it down gracefully.
pub struct Running {
    addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() -> bool + Send>>,
}

impl Running {
    /// `stop` shuts the server down and says whether every connection drained in time.
    pub fn new(addr: SocketAddr, stop: impl FnOnce() -> bool + Send + 'static) -> Self {
        Running {
            addr,
            stop: Some(Box::new(stop)),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful shutdown; returns whether every connection closed within the deadline.
    pub fn shutdown(mut self) -> bool {
        self.stop.take().map(|stop| stop()).unwrap_or(true)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            if !std::thread::panicking() {
                stop();
            }
        }
    }
}

/// Runs `serve` on a fresh two-worker tokio runtime in its own thread; `serve` gets the stop
/// signal and returns whether the shutdown drained.
fn tokio_thread<F, Fut>(serve: F) -> Running
where
    F: FnOnce(mpsc::Sender<SocketAddr>, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool>,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread: JoinHandle<bool> = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(serve(addr_tx, stop_rx))
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server did not start");
    Running::new(addr, move || {
        let _ = stop_tx.send(());
        thread.join().expect("server thread panicked")
    })
}

/// `wskit-tokio` on its own TCP listener.
pub struct Tokio;

impl Adapter for Tokio {
    const NAME: &'static str = "tokio";
    const OWNS_HANDSHAKE: bool = true;

    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running {
        tokio_thread(move |addr_tx, stop| async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let running = wskit_tokio::Builder::new(server)
                .config(config)
                .http(move |req: &http::Request<()>| http.as_ref().and_then(|h| h(req)))
                .listen(listener)
                .expect("listen");
            addr_tx.send(running.local_addr()).expect("test alive");
            let _ = stop.await;
            running.shutdown().await.drained
        })
    }
}

/// `wskit-tokio` mounted as the fallback service of an axum 0.8 app (hyper does HTTP).
pub struct TokioAxum;

impl Adapter for TokioAxum {
    const NAME: &'static str = "tokio+axum";
    const OWNS_HANDSHAKE: bool = false;

    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running {
        tokio_thread(move |addr_tx, stop| async move {
            let ws = wskit_tokio::Builder::new(server)
                .config(config)
                .http(move |req: &http::Request<()>| http.as_ref().and_then(|h| h(req)))
                .start();
            let app = axum::Router::new()
                .route("/healthz", axum::routing::get(|| async { "ok" }))
                .fallback_service(ws.service());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("bound"))
                .expect("test alive");
            let http = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop.await;
            });
            let _ = http.await;
            ws.shutdown().await.drained
        })
    }
}

/// Runs `serve` on its own thread under `block_on`; `serve` gets the stop signal and returns
/// whether the shutdown drained. For the runtimes built on async-io (async-std, smol).
fn async_io_thread<F, Fut>(block_on: fn(Fut) -> bool, serve: F) -> Running
where
    F: FnOnce(mpsc::Sender<SocketAddr>, smol::channel::Receiver<()>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = smol::channel::bounded(1);
    let thread: JoinHandle<bool> = std::thread::spawn(move || block_on(serve(addr_tx, stop_rx)));
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server did not start");
    Running::new(addr, move || {
        let _ = stop_tx.try_send(());
        thread.join().expect("server thread panicked")
    })
}

/// `wskit-async-std` on async-std: its listener, its global executor (the crate's default
/// spawner), its `block_on`.
pub struct AsyncStd;

impl Adapter for AsyncStd {
    const NAME: &'static str = "async-std";
    const OWNS_HANDSHAKE: bool = true;

    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running {
        async_io_thread(async_std::task::block_on, move |addr_tx, stop| async move {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let running = wskit_async_std::Builder::new(server)
                .config(config)
                .http(move |req: &http::Request<()>| http.as_ref().and_then(|h| h(req)))
                .spawner(wskit_async_std::Spawner::async_std())
                .listen(listener)
                .expect("listen");
            addr_tx.send(running.local_addr()).expect("test alive");
            let _ = stop.recv().await;
            running.shutdown().await.drained
        })
    }
}

/// `wskit-async-std` on smol: smol's listener and an application-owned `smol::Executor` run by
/// two worker threads (smol's usual multi-threaded setup).
pub struct Smol;

impl Adapter for Smol {
    const NAME: &'static str = "smol";
    const OWNS_HANDSHAKE: bool = true;

    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running {
        async_io_thread(smol::block_on, move |addr_tx, stop| async move {
            let ex = std::sync::Arc::new(smol::Executor::new());
            let (quit, quit_rx) = smol::channel::unbounded::<()>();
            let workers: Vec<JoinHandle<()>> = (0..2)
                .map(|_| {
                    let (ex, quit_rx) = (ex.clone(), quit_rx.clone());
                    std::thread::spawn(move || {
                        let _ = smol::block_on(ex.run(quit_rx.recv()));
                    })
                })
                .collect();
            let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let running = wskit_async_std::Builder::new(server)
                .config(config)
                .http(move |req: &http::Request<()>| http.as_ref().and_then(|h| h(req)))
                .spawner(wskit_async_std::Spawner::executor(ex.clone()))
                .listen(listener)
                .expect("listen");
            addr_tx.send(running.local_addr()).expect("test alive");
            let _ = stop.recv().await;
            let drained = running.shutdown().await.drained;
            drop(quit);
            workers.into_iter().for_each(|w| w.join().expect("worker"));
            drained
        })
    }
}

/// `wskit-blocking`: std threads and blocking sockets, no runtime.
pub struct Blocking;

impl Adapter for Blocking {
    const NAME: &'static str = "blocking";
    const OWNS_HANDSHAKE: bool = true;

    fn start_with(server: Server, config: Config, http: Option<HttpHandler>) -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let running = wskit_blocking::Builder::new(server)
            .config(config)
            .http(move |req: &http::Request<()>| http.as_ref().and_then(|h| h(req)))
            .listen(listener)
            .expect("listen");
        let addr = running.local_addr();
        Running::new(addr, move || running.shutdown().drained)
    }
}
