//! # wskit-tokio
//!
//! Runs a [`wskit::Server`] on tokio: a TCP listener, or mounted inside a hyper/axum app.
//!
//! The handshake is done here, so the route, the Origin and the (async) authentication are
//! decided before any `101` (unknown path 404, plain GET 426, bad token 401, bad Origin 403).
//! Each connection is one small task: it reads into a per-thread buffer, hands complete
//! messages to the core under a short lock, and writes its whole queue of prepared frames per
//! wake-up. A publish is framed once and shared by every subscriber's queue; publishers never
//! wait on a slow subscriber (it is cut off past `Limits::max_outbound_bytes`).
//!
//! ## Quick start
//!
//! ```no_run
//! use wskit::{Route, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = Route::new("/ws/echo").on_text(|ws, _ctx, text: &str| ws.send_text(text));
//! let server = Server::builder().route(echo).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! wskit_tokio::serve(listener, server)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! With axum (one port for pages and WebSockets), see `examples/axum.rs`:
//!
//! ```ignore
//! let ws = wskit_tokio::Builder::new(server).start();
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(index))
//!     .route_service("/ws/echo", ws.service());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod driver;
mod handshake;
#[cfg(feature = "hyper")]
mod hyper_service;
mod server;
mod tracker;

#[cfg(feature = "hyper")]
pub use hyper_service::WsService;
pub use server::{serve, Builder, Handle, Running, Serve, ShutdownReport};
pub use wskit_adapter::Config;
