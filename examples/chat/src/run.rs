//! Running the chat server on each adapter: the same [`wskit::Server`] and the same page
//! handler ([`web::respond`](crate::web::respond)) on one port, until the stop signal.

use crate::{web, Jwt};
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;

/// Which adapter serves the app (`--adapter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdapterKind {
    /// `wskit-tokio` on a multi-thread runtime.
    Tokio,
    /// `wskit-async-std` on async-std's global executor.
    AsyncStd,
    /// `wskit-async-std` on smol's global executor.
    Smol,
    /// `wskit-blocking`: std threads and blocking sockets, no async runtime.
    Blocking,
}

/// What every adapter needs to serve the app.
pub struct App {
    /// The chat routes.
    pub server: wskit::Server,
    /// Verifies and mints tokens for the page's `/token`.
    pub jwt: Jwt,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Fires once on Ctrl-C / SIGTERM: shut down gracefully.
    pub stop: Receiver<()>,
    /// `--redis URL`: join the other nodes on this Redis (the server must have been built
    /// with `ChatConfig { backplane: true, .. }`).
    pub redis: Option<String>,
}

impl App {
    /// Connects `--redis` from a thread without a runtime (the async-io and blocking runners);
    /// the backplane's own connection work then runs on a thread of its own (async-io inside).
    fn connect_backplane_blocking(&self) -> std::io::Result<Option<wskit_redis::Backplane>> {
        self.redis
            .as_deref()
            .map(|url| async_io::block_on(crate::backplane::connect(url)))
            .transpose()
    }

    /// Pages and `/token` for plain HTTP requests on the WebSocket port.
    fn pages(
        &self,
    ) -> impl Fn(&http::Request<()>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static
    {
        let jwt = self.jwt.clone();
        move |req| web::respond(req, &jwt)
    }
}

fn announce(addr: SocketAddr, adapter: AdapterKind) {
    tracing::info!(%addr, ?adapter, "chat on http://{addr} (GET /token is a dev-only token mint)");
}

/// Serves `app` on `adapter` until `app.stop` fires, then shuts down gracefully.
pub fn run(adapter: AdapterKind, app: App) -> std::io::Result<()> {
    match adapter {
        AdapterKind::Tokio => run_tokio(app),
        AdapterKind::AsyncStd => run_async_std(app),
        AdapterKind::Smol => run_smol(app),
        AdapterKind::Blocking => run_blocking(app),
    }
}

fn run_tokio(app: App) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.addr).await?;
        let pages = app.pages();
        let backplane = match &app.redis {
            Some(url) => Some(crate::backplane::connect(url).await?),
            None => None,
        };
        let mut builder = wskit_tokio::Builder::new(app.server).http(pages);
        if let Some(backplane) = &backplane {
            builder = builder.backplane(backplane.sink());
        }
        let running = builder.listen(listener)?;
        let backplane = backplane.map(|b| b.spawn(running.handle().clone()));
        announce(running.local_addr(), AdapterKind::Tokio);
        let stop = app.stop;
        let _ = tokio::task::spawn_blocking(move || stop.recv()).await;
        // Shut down first: the "room_left" notices of closing connections still cross nodes.
        let report = running.shutdown().await;
        if let Some(backplane) = backplane {
            backplane.stop().await;
        }
        tracing::info!(?report, "stopped");
        Ok(())
    })
}

fn run_async_std(app: App) -> std::io::Result<()> {
    run_async_io(
        app,
        AdapterKind::AsyncStd,
        wskit_async_std::Spawner::async_std(),
    )
}

fn run_smol(app: App) -> std::io::Result<()> {
    run_async_io(app, AdapterKind::Smol, wskit_async_std::Spawner::smol())
}

/// `wskit-async-std` with the runtime's global executor (`spawner`); the reactor is async-io's
/// own thread, so this thread only waits for the stop signal, like [`run_blocking`].
fn run_async_io(
    app: App,
    adapter: AdapterKind,
    spawner: wskit_async_std::Spawner,
) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(app.addr)?;
    let pages = app.pages();
    let backplane = app.connect_backplane_blocking()?;
    let mut builder = wskit_async_std::Builder::new(app.server)
        .spawner(spawner)
        .http(pages);
    if let Some(backplane) = &backplane {
        builder = builder.backplane(backplane.sink());
    }
    let running = builder.listen(listener)?;
    let backplane = match backplane {
        Some(b) => Some(b.spawn_thread(running.handle().clone())?),
        None => None,
    };
    announce(running.local_addr(), adapter);
    let _ = app.stop.recv();
    // Shut down first: the "room_left" notices of closing connections still cross nodes.
    let report = async_io::block_on(running.shutdown());
    if let Some(backplane) = backplane {
        backplane.stop();
    }
    tracing::info!(?report, "stopped");
    Ok(())
}

fn run_blocking(app: App) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(app.addr)?;
    let pages = app.pages();
    let backplane = app.connect_backplane_blocking()?;
    let mut builder = wskit_blocking::Builder::new(app.server).http(pages);
    if let Some(backplane) = &backplane {
        builder = builder.backplane(backplane.sink());
    }
    let running = builder.listen(listener)?;
    let backplane = match backplane {
        Some(b) => Some(b.spawn_thread(running.handle().clone())?),
        None => None,
    };
    announce(running.local_addr(), AdapterKind::Blocking);
    let _ = app.stop.recv();
    let report = running.shutdown();
    if let Some(backplane) = backplane {
        backplane.stop();
    }
    tracing::info!(?report, "stopped");
    Ok(())
}
