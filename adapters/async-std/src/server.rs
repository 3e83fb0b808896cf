//! Starting, serving and stopping: the [`Builder`], the cloneable [`Handle`], a listener's
//! accept loop ([`Running`]) and the one-call [`serve`].

use crate::driver::Driver;
use crate::handshake::serve_socket;
use crate::listener::{IntoListener, Listener};
use crate::signal::{timeout, Signal, Tracker};
use crate::spawn::Spawner;
use async_io::{Async, Timer};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use wskit::{Output, Server, ServerHandle};
pub use wskit_adapter::ShutdownReport;
use wskit_adapter::{Config, Shared, SharedBuilder};

/// Configures and starts a server on async-std (default) or smol.
///
/// ```no_run
/// # #[cfg(feature = "async-std")]
/// # async fn run(server: wskit::Server) -> std::io::Result<()> {
/// let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let running = wskit_async_std::Builder::new(server).listen(listener)?;
/// // ... later:
/// running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Builder {
    shared: SharedBuilder,
    spawner: Spawner,
}

impl Builder {
    /// Wraps a built server with the default [`Config`] (its handshake bounds taken from the
    /// server's default [`Limits`](wskit::Limits)) and the default [`Spawner`].
    pub fn new(server: Server) -> Self {
        Builder {
            shared: Shared::builder(server),
            spawner: Spawner::default(),
        }
    }

    /// Adapter options (buffer sizes, close and shutdown timeouts, handshake limits).
    pub fn config(mut self, config: Config) -> Self {
        self.shared = self.shared.config(config);
        self
    }

    /// Where tasks run: async-std's global executor by default, or smol's, or your own.
    pub fn spawner(mut self, spawner: Spawner) -> Self {
        self.spawner = spawner;
        self
    }

    /// Receives backplane events (`Output::Published`, `TopicActive`, `TopicInactive`) when the
    /// server was built with `backplane_events(true)`.
    pub fn backplane(mut self, sink: impl Fn(Output) + Send + Sync + 'static) -> Self {
        self.shared = self.shared.backplane_fn(sink);
        self
    }

    /// Answers plain HTTP requests (pages, health checks) on the same port: `handler` sees
    /// every request that is not a WebSocket upgrade; `None` lets the core answer (404, or 426
    /// on a WebSocket path). The response is written with `Connection: close`.
    ///
    /// ```
    /// # fn f(server: wskit::Server) {
    /// let builder = wskit_async_std::Builder::new(server).http(|req: &http::Request<()>| {
    ///     (req.uri().path() == "/").then(|| http::Response::new(b"<h1>hi</h1>".to_vec()))
    /// });
    /// # }
    /// ```
    pub fn http(
        mut self,
        handler: impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.shared = self.shared.http_fn(handler);
        self
    }

    /// Starts the driver and returns a handle; connections come from [`Handle::listen`] or
    /// [`Handle::accept`]. Needs no runtime context: tasks go to the [`Spawner`].
    pub fn start(self) -> Handle {
        let spawner = self.spawner;
        let task_spawner = spawner.clone();
        let shared = self.shared.build(Box::new(move |task: wskit::Task| {
            task_spawner.spawn(task.into_future())
        }));
        let driver_stop = Arc::new(Signal::default());
        let stop = driver_stop.clone();
        let driver = Driver::new(shared.clone());
        spawner.spawn(async move { futures_lite::future::or(driver, stop.wait()).await });
        Handle {
            inner: Arc::new(Inner {
                shared,
                tracker: Tracker::default(),
                stop: Arc::new(Signal::default()),
                driver_stop,
                spawner,
            }),
        }
    }

    /// Starts the server and accepts connections from `listener` (std's, async-io's,
    /// async-std's or smol's `TcpListener`).
    pub fn listen(self, listener: impl IntoListener) -> io::Result<Running> {
        let listener = listener.into_listener()?;
        self.start().listen(listener)
    }
}

struct Inner {
    shared: Arc<Shared>,
    tracker: Tracker,
    /// Set once shutdown began: accept loops stop, handshakes in progress are dropped.
    stop: Arc<Signal>,
    /// Ends the driver task.
    driver_stop: Arc<Signal>,
    spawner: Spawner,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone (accept loops hold one): stop the timers too.
        self.driver_stop.set();
    }
}

/// A cloneable handle to a started server.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// A handle for publishing and sending from anywhere (HTTP endpoints, other threads).
    pub fn server_handle(&self) -> ServerHandle {
        self.inner.shared.lock().server().handle()
    }

    /// Runs `f` on the server (queries such as `subscriber_count`, or inputs), then delivers
    /// whatever it produced. Keep `f` short: it holds the server's lock.
    pub fn with_server<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        self.inner.shared.with_server(Instant::now(), f)
    }

    /// Connections currently open or closing.
    pub fn connection_count(&self) -> usize {
        self.inner.shared.connection_count()
    }

    /// Serves one accepted TCP connection (handshake included), e.g. from your own listener.
    /// From async-std's or smol's `TcpStream`, convert with `std::net::TcpStream::try_from`,
    /// then `Async::new`.
    pub fn accept(&self, stream: Async<TcpStream>, remote: Option<SocketAddr>) {
        if self.is_shutting_down() {
            return;
        }
        let guard = self.inner.tracker.guard();
        self.inner.spawner.spawn(serve_socket(
            self.inner.shared.clone(),
            stream,
            remote,
            guard,
            self.inner.stop.clone(),
        ));
    }

    /// Accepts connections from `listener` until shutdown.
    pub fn listen(&self, listener: impl IntoListener) -> io::Result<Running> {
        let listener = listener.into_listener()?;
        let local_addr = listener.local_addr()?;
        let handle = self.clone();
        let finished = Arc::new(Signal::default());
        let done = finished.clone();
        self.inner.spawner.spawn(async move {
            accept_loop(&handle, &listener).await;
            tracing::debug!(%local_addr, "stopped accepting");
            drop(listener);
            drop(handle);
            done.set();
        });
        Ok(Running {
            handle: self.clone(),
            local_addr,
            finished,
        })
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.stop.is_set()
    }

    /// Graceful shutdown: stop accepting, close every connection with 1001 after its queued
    /// output, wait up to [`Config::shutdown_timeout`], then drop what is left. Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.begin_shutdown();
        let shared = &self.inner.shared;
        let limit = shared.config().shutdown_timeout;
        let tracker = &self.inner.tracker;
        let drained = timeout(limit, tracker.wait_idle()).await.is_some();
        let mut aborted = 0;
        if !drained {
            aborted = tracker.live();
            tracing::warn!(aborted, "shutdown deadline passed; dropping connections");
            shared.abort_all();
            let _ = timeout(Duration::from_secs(1), tracker.wait_idle()).await;
        }
        self.inner.driver_stop.set();
        ShutdownReport::new(drained, aborted)
    }

    /// The part of a shutdown that needs no waiting: stop accepting, queue a 1001 close on
    /// every connection (each then ends on its own, bounded by `Config::close_timeout`).
    fn begin_shutdown(&self) {
        self.inner.stop.set();
        self.inner.shared.shutdown(Instant::now());
    }
}

/// Begins a shutdown when the [`Serve`] future is dropped before it finished.
struct ShutdownOnDrop(Option<Handle>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.begin_shutdown();
        }
    }
}

async fn accept_loop(handle: &Handle, listener: &Listener) {
    let stop = &handle.inner.stop;
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stop.wait().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok((stream, remote))) => handle.accept(stream, Some(remote)),
            Some(Err(e)) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A server accepting from a listener.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    local_addr: SocketAddr,
    finished: Arc<Signal>,
}

impl Running {
    /// The server's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Graceful shutdown (see [`Handle::shutdown`]), then waits for the accept loop.
    pub async fn shutdown(self) -> ShutdownReport {
        let report = self.handle.shutdown().await;
        self.finished.wait().await;
        report
    }

    /// Runs until something calls [`Handle::shutdown`].
    pub async fn wait(self) {
        self.finished.wait().await;
    }
}

/// Serves `server` on `listener` (std's, async-io's, async-std's or smol's `TcpListener`) with
/// the default [`Spawner`], until the signal given to [`Serve::with_graceful_shutdown`]
/// resolves (then a graceful shutdown runs to its end). Dropping the future early stops
/// accepting and closes every connection with 1001 without waiting for them.
///
/// ```no_run
/// # #[cfg(feature = "async-std")]
/// # async fn run(server: wskit::Server) -> std::io::Result<()> {
/// let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let (stop_tx, stop_rx) = async_std::channel::bounded::<()>(1);
/// wskit_async_std::serve(listener, server)
///     .with_graceful_shutdown(async move { let _ = stop_rx.recv().await; })
///     .await
/// # }
/// ```
pub fn serve(listener: impl IntoListener, server: Server) -> Serve {
    Serve {
        state: State::Configuring(Box::new(Setup {
            builder: Builder::new(server),
            listener: listener.into_listener(),
            signal: None,
        })),
    }
}

/// The future of [`serve`]; configure it before awaiting (or `block_on`). The server starts
/// on the first poll.
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    state: State,
}

/// What [`serve`] was given; boxed, it is small next to the running future.
struct Setup {
    builder: Builder,
    listener: io::Result<Listener>,
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

enum State {
    Configuring(Box<Setup>),
    Serving(Pin<Box<dyn Future<Output = io::Result<()>> + Send>>),
    Done,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Configuring(_) => "configuring",
            State::Serving(_) => "serving",
            State::Done => "done",
        };
        f.debug_struct("Serve")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl Serve {
    fn map_builder(mut self, f: impl FnOnce(Builder) -> Builder) -> Self {
        self.state = match self.state {
            State::Configuring(mut setup) => {
                setup.builder = f(setup.builder);
                State::Configuring(setup)
            }
            started => started,
        };
        self
    }

    /// Adapter options.
    pub fn config(self, config: Config) -> Self {
        self.map_builder(|b| b.config(config))
    }

    /// Where tasks run (see [`Spawner`]).
    pub fn spawner(self, spawner: Spawner) -> Self {
        self.map_builder(|b| b.spawner(spawner))
    }

    /// Answers plain HTTP requests on the same port (see [`Builder::http`]).
    pub fn http(
        self,
        handler: impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.map_builder(|b| b.http(handler))
    }

    /// Shuts down gracefully when `signal` resolves.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        if let State::Configuring(setup) = &mut self.state {
            setup.signal = Some(Box::pin(signal));
        }
        self
    }
}

async fn run(setup: Setup) -> io::Result<()> {
    let Setup {
        builder,
        listener,
        signal,
    } = setup;
    let running = builder.listen(listener?)?;
    let mut guard = ShutdownOnDrop(Some(running.handle().clone()));
    match signal {
        Some(signal) => {
            signal.await;
            guard.0 = None;
            running.shutdown().await;
        }
        None => running.wait().await,
    }
    guard.0 = None;
    Ok(())
}

impl Future for Serve {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Configuring(_) = self.state {
            let State::Configuring(setup) = std::mem::replace(&mut self.state, State::Done) else {
                unreachable!("checked above")
            };
            self.state = State::Serving(Box::pin(run(*setup)));
        }
        let State::Serving(future) = &mut self.state else {
            panic!("Serve polled after completion");
        };
        let done = ready!(future.as_mut().poll(cx));
        self.state = State::Done;
        Poll::Ready(done)
    }
}
