//! Starting, serving and stopping: the [`Builder`], the cloneable [`Handle`], a listener's
//! accept thread ([`Running`]) and the one-call [`serve`].

use crate::handshake::serve_socket;
use crate::pool::Pool;
use crate::rt::Rt;
use parking_lot::Mutex;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use wskit::{Output, Server, ServerHandle};
pub use wskit_adapter::ShutdownReport;
use wskit_adapter::{Config, Shared, SharedBuilder};

/// Default stack size of connection and pool threads: half of std's default. Handlers run on
/// them, and a stack overflow aborts the process: serde_json's own nesting limit (128) alone
/// takes about 350 KiB in a debug build. It costs address space, not memory: only the pages a
/// thread touches are resident (see the crate docs).
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

/// Configures and starts a server on threads of its own.
///
/// ```no_run
/// # fn run(server: wskit::Server) -> std::io::Result<()> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
/// let running = wskit_blocking::Builder::new(server).listen(listener)?;
/// // ... later, from any thread:
/// let report = running.shutdown();
/// # let _ = report; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Builder {
    shared: SharedBuilder,
    stack_size: usize,
}

impl Builder {
    /// Wraps a built server with the default [`Config`], its handshake bounds taken from the
    /// server's default [`Limits`](wskit::Limits).
    pub fn new(server: Server) -> Self {
        Builder {
            shared: Shared::builder(server),
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    /// Adapter options (buffer sizes, close and shutdown timeouts, handshake limits).
    pub fn config(mut self, config: Config) -> Self {
        self.shared = self.shared.config(config);
        self
    }

    /// Receives backplane events (`Output::Published`, `TopicActive`, `TopicInactive`) when the
    /// server was built with `backplane_events(true)`. It runs on whichever thread published:
    /// keep it quick (hand the event to a channel).
    pub fn backplane(mut self, sink: impl Fn(Output) + Send + Sync + 'static) -> Self {
        self.shared = self.shared.backplane_fn(sink);
        self
    }

    /// Answers plain HTTP requests (not WebSocket upgrades) on the same listener, e.g. a page
    /// or a health check; requests it declines (`None`) get the core's 404 or 426.
    ///
    /// ```no_run
    /// # fn run(server: wskit::Server) -> std::io::Result<()> {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
    /// let running = wskit_blocking::Builder::new(server)
    ///     .http(|req: &http::Request<()>| {
    ///         (req.uri().path() == "/healthz").then(|| http::Response::new(b"ok\n".to_vec()))
    ///     })
    ///     .listen(listener)?;
    /// running.wait();
    /// # Ok(()) }
    /// ```
    pub fn http(
        mut self,
        handler: impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.shared = self.shared.http_fn(handler);
        self
    }

    /// Stack size of every connection and pool thread ([`DEFAULT_STACK_SIZE`] by default).
    /// Message handlers run on connection threads and async handlers on pool threads: raise it
    /// for handlers that recurse deeply or keep large values on the stack.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Starts the driver thread and returns a handle; connections come from
    /// [`Handle::listen`] or [`Handle::accept`].
    pub fn start(self) -> io::Result<Handle> {
        let pool = Pool::new(self.stack_size);
        let tasks = pool.clone();
        let spawner = Box::new(move |task: wskit::Task| tasks.spawn(task.into_future()));
        let shared = self.shared.build(spawner);
        let rt = Rt::new(shared, pool, self.stack_size);
        let driver = rt.start_driver()?;
        Ok(Handle {
            inner: Arc::new(Inner {
                rt,
                driver: Mutex::new(Some(driver)),
                listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts the server and accepts connections from `listener` on a thread of its own.
    pub fn listen(self, listener: TcpListener) -> io::Result<Running> {
        self.start()?.listen(listener)
    }
}

struct Inner {
    rt: Arc<Rt>,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// Addresses of the listeners, to wake their accept threads at shutdown.
    listeners: Mutex<Vec<SocketAddr>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone (accept threads hold one): stop the timers too.
        self.rt.stop_driver();
        self.rt.pool.close();
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
        self.inner.rt.shared.lock().server().handle()
    }

    /// Runs `f` on the server (queries such as `subscriber_count`, or inputs), then delivers
    /// whatever it produced. Keep `f` short: it holds the server's lock.
    pub fn with_server<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        self.inner.rt.shared.with_server(Instant::now(), f)
    }

    /// Connections currently open or closing.
    pub fn connection_count(&self) -> usize {
        self.inner.rt.shared.connection_count()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.rt.is_stopping()
    }

    /// Serves one accepted TCP connection, e.g. from your own listener: the handshake on a
    /// pool thread, then the connection on a thread of its own. Dropped if shutdown has begun.
    pub fn accept(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        if self.is_shutting_down() {
            return;
        }
        if let Err(e) = stream.set_nonblocking(false) {
            tracing::debug!(error = %e, "could not make the socket blocking; dropping it");
            return;
        }
        let rt = self.inner.rt.clone();
        self.inner
            .rt
            .pool
            .execute(move || serve_socket(rt, stream, remote));
    }

    /// Accepts connections from `listener` on a thread of its own until shutdown.
    pub fn listen(&self, listener: TcpListener) -> io::Result<Running> {
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(false)?;
        self.inner.listeners.lock().push(local_addr);
        let handle = self.clone();
        let accept = thread::Builder::new()
            .name("wskit-accept".into())
            .spawn(move || handle.accept_loop(&listener, local_addr))?;
        if self.is_shutting_down() {
            // The shutdown may have looked for listeners before this one was added.
            wake_accept(local_addr);
        }
        Ok(Running {
            handle: self.clone(),
            local_addr,
            accept: Some(accept),
        })
    }

    fn accept_loop(&self, listener: &TcpListener, local_addr: SocketAddr) {
        loop {
            let accepted = listener.accept();
            if self.is_shutting_down() {
                break;
            }
            match accepted {
                Ok((stream, remote)) => self.accept(stream, Some(remote)),
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        tracing::debug!(%local_addr, "stopped accepting");
    }

    /// Graceful shutdown: stop accepting, drop connections still in their handshake, close
    /// every open connection with 1001 after its queued output, wait up to
    /// [`Config::shutdown_timeout`], then drop what is left. Blocks until done; idempotent.
    /// Call it from your own thread, not from a handler (it waits for the handler's own
    /// connection).
    pub fn shutdown(&self) -> ShutdownReport {
        let rt = &self.inner.rt;
        rt.stopping.store(true, Ordering::SeqCst);
        for &addr in self.inner.listeners.lock().iter() {
            wake_accept(addr);
        }
        // First, so that verifiers interrupted below get the core's 503.
        rt.shared.shutdown(Instant::now());
        rt.registry.drop_handshakes();
        let limit = rt.shared.config().shutdown_timeout;
        let drained = rt.registry.wait_empty(Instant::now() + limit);
        let mut aborted = 0;
        if !drained {
            aborted = rt.registry.len();
            tracing::warn!(aborted, "shutdown deadline passed; dropping connections");
            rt.shared.abort_all();
            rt.registry.interrupt_all();
            rt.registry
                .wait_empty(Instant::now() + Duration::from_secs(1));
        }
        rt.stop_driver();
        if let Some(driver) = self.inner.driver.lock().take() {
            let _ = driver.join();
        }
        rt.pool.close();
        ShutdownReport::new(drained, aborted)
    }
}

/// Unblocks an accept thread (it checks for shutdown after each `accept`) by connecting to it.
fn wake_accept(addr: SocketAddr) {
    let target = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    if let Err(e) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
        tracing::debug!(%addr, error = %e, "could not wake the accept thread");
    }
}

/// A server accepting from a listener.
#[derive(Debug)]
pub struct Running {
    handle: Handle,
    local_addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
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

    /// Graceful shutdown (see [`Handle::shutdown`]), then waits for the accept thread.
    pub fn shutdown(mut self) -> ShutdownReport {
        let report = self.handle.shutdown();
        self.join();
        report
    }

    /// Blocks until something calls [`Handle::shutdown`].
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Serves `server` on `listener`, blocking the calling thread: forever, or until the function
/// given to [`Serve::with_graceful_shutdown`] returns.
///
/// ```no_run
/// # fn run(server: wskit::Server) -> std::io::Result<()> {
/// let (stop, stopped) = std::sync::mpsc::channel::<()>();
/// # let _ = stop;
/// let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
/// wskit_blocking::serve(listener, server)
///     .with_graceful_shutdown(move || { let _ = stopped.recv(); })
///     .run()
/// # }
/// ```
pub fn serve(listener: TcpListener, server: Server) -> Serve {
    Serve {
        builder: Builder::new(server),
        listener,
        signal: None,
    }
}

/// What [`serve`] returns; configure it, then [`run`](Self::run) it.
#[must_use = "a server does nothing until run"]
pub struct Serve {
    builder: Builder,
    listener: TcpListener,
    signal: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// Adapter options.
    pub fn config(mut self, config: Config) -> Self {
        self.builder = self.builder.config(config);
        self
    }

    /// Shuts down gracefully when `signal` returns (it runs on the thread that calls
    /// [`run`](Self::run), e.g. waiting on a channel).
    pub fn with_graceful_shutdown(mut self, signal: impl FnOnce() + Send + 'static) -> Self {
        self.signal = Some(Box::new(signal));
        self
    }

    /// Serves until the shutdown signal (if any) returns and the shutdown is done.
    pub fn run(self) -> io::Result<()> {
        let running = self.builder.listen(self.listener)?;
        match self.signal {
            Some(signal) => {
                signal();
                running.shutdown();
            }
            None => running.wait(),
        }
        Ok(())
    }
}
