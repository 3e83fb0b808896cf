//! Starting, serving and stopping: the [`Builder`], the cloneable [`Handle`], a listener's
//! accept loop ([`Running`]) and the one-call [`serve`].

use crate::driver::Driver;
use crate::handshake::serve_socket;
use crate::tracker::Tracker;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wskit::{Output, Server, ServerHandle};
pub use wskit_adapter::ShutdownReport;
use wskit_adapter::{Config, Shared, SharedBuilder};

/// Configures and starts a server on the current tokio runtime.
///
/// ```no_run
/// # async fn run(server: wskit::Server) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let running = wskit_tokio::Builder::new(server).listen(listener)?;
/// // ... later:
/// running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Builder {
    shared: SharedBuilder,
}

impl Builder {
    /// Wraps a built server with the default [`Config`], its handshake bounds taken from the
    /// server's default [`Limits`](wskit::Limits).
    pub fn new(server: Server) -> Self {
        Builder {
            shared: Shared::builder(server),
        }
    }

    /// Adapter options (buffer sizes, close and shutdown timeouts, handshake limits).
    pub fn config(mut self, config: Config) -> Self {
        self.shared = self.shared.config(config);
        self
    }

    /// Receives backplane events (`Output::Published`, `TopicActive`, `TopicInactive`) when the
    /// server was built with `backplane_events(true)`.
    pub fn backplane(mut self, sink: impl Fn(Output) + Send + Sync + 'static) -> Self {
        self.shared = self.shared.backplane_fn(sink);
        self
    }

    /// Answers plain HTTP requests (not WebSocket upgrades) on the same listener, e.g. a page
    /// or a health check; requests it declines (`None`) get the core's 404 or 426. For a full
    /// HTTP stack, mount [`Handle::service`] in axum or hyper instead.
    ///
    /// ```no_run
    /// # async fn run(server: wskit::Server) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// let running = wskit_tokio::Builder::new(server)
    ///     .http(|req: &http::Request<()>| {
    ///         (req.uri().path() == "/healthz").then(|| http::Response::new(b"ok\n".to_vec()))
    ///     })
    ///     .listen(listener)?;
    /// # running.wait().await; Ok(()) }
    /// ```
    pub fn http(
        mut self,
        handler: impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.shared = self.shared.http_fn(handler);
        self
    }

    /// Starts the driver on the current runtime and returns a handle; connections come from
    /// [`Handle::listen`], [`Handle::accept`] or [`Handle::service`] (hyper/axum).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> Handle {
        let rt = tokio::runtime::Handle::current();
        let spawn_rt = rt.clone();
        let spawner = Box::new(move |task: wskit::Task| {
            spawn_rt.spawn(task.into_future());
        });
        let shared = self.shared.build(spawner);
        let driver = rt.spawn(Driver::new(shared.clone()));
        let (stop, _) = watch::channel(false);
        Handle {
            inner: Arc::new(Inner {
                shared,
                tracker: Tracker::default(),
                stop,
                driver,
                rt,
            }),
        }
    }

    /// Starts the server and accepts connections from `listener`.
    pub fn listen(self, listener: TcpListener) -> io::Result<Running> {
        let handle = self.start();
        handle.listen(listener)
    }
}

struct Inner {
    shared: Arc<Shared>,
    tracker: Tracker,
    /// `true` once shutdown began: accept loops stop.
    stop: watch::Sender<bool>,
    driver: JoinHandle<()>,
    rt: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone (listeners and services hold one): stop the timers too.
        self.driver.abort();
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

    #[cfg(feature = "hyper")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    #[cfg(feature = "hyper")]
    pub(crate) fn tracker(&self) -> &Tracker {
        &self.inner.tracker
    }

    #[cfg(feature = "hyper")]
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.rt
    }

    /// Serves one accepted TCP connection (handshake included), e.g. from your own listener.
    pub fn accept(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        if self.is_shutting_down() {
            return;
        }
        let guard = self.inner.tracker.guard();
        let stop = self.inner.stop.subscribe();
        self.inner.rt.spawn(serve_socket(
            self.inner.shared.clone(),
            stream,
            remote,
            guard,
            stop,
        ));
    }

    /// Accepts connections from `listener` until shutdown.
    pub fn listen(&self, listener: TcpListener) -> io::Result<Running> {
        let local_addr = listener.local_addr()?;
        let handle = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let accept = self.inner.rt.spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, remote)) => handle.accept(stream, Some(remote)),
                        Err(e) => {
                            // Out of file descriptors, usually: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
            tracing::debug!(%local_addr, "stopped accepting");
        });
        Ok(Running {
            handle: self.clone(),
            local_addr,
            accept,
        })
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Graceful shutdown: stop accepting, close every connection with 1001 after its queued
    /// output, wait up to [`Config::shutdown_timeout`], then drop what is left. Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.inner.stop.send_replace(true);
        let shared = &self.inner.shared;
        shared.shutdown(Instant::now());
        let limit = shared.config().shutdown_timeout;
        let drained = tokio::time::timeout(limit, self.inner.tracker.wait_idle())
            .await
            .is_ok();
        let mut aborted = 0;
        if !drained {
            aborted = self.inner.tracker.live();
            tracing::warn!(aborted, "shutdown deadline passed; dropping connections");
            shared.abort_all();
            let _ =
                tokio::time::timeout(Duration::from_secs(1), self.inner.tracker.wait_idle()).await;
        }
        self.inner.driver.abort();
        ShutdownReport::new(drained, aborted)
    }
}

/// A server accepting from a listener.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
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
        let _ = self.accept.await;
        report
    }

    /// Runs until something calls [`Handle::shutdown`].
    pub async fn wait(self) {
        let _ = self.accept.await;
    }
}

/// Serves `server` on `listener` until the returned future is dropped, or until the signal given
/// to [`Serve::with_graceful_shutdown`] resolves.
///
/// ```no_run
/// # async fn run(server: wskit::Server) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// wskit_tokio::serve(listener, server)
///     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
///     .await
/// # }
/// ```
pub fn serve(listener: TcpListener, server: Server) -> Serve {
    Serve {
        builder: Builder::new(server),
        listener,
        signal: None,
    }
}

/// The future of [`serve`]; configure it before awaiting.
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    builder: Builder,
    listener: TcpListener,
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve").finish_non_exhaustive()
    }
}

impl Serve {
    /// Adapter options.
    pub fn config(mut self, config: Config) -> Self {
        self.builder = self.builder.config(config);
        self
    }

    /// Shuts down gracefully when `signal` resolves.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.signal = Some(Box::pin(signal));
        self
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let running = self.builder.listen(self.listener)?;
            match self.signal {
                Some(signal) => {
                    signal.await;
                    running.shutdown().await;
                }
                None => running.wait().await,
            }
            Ok(())
        })
    }
}
