//! # wskit-async-std
//!
//! Runs a [`wskit::Server`] on async-std or smol. Both runtimes sit on the same pieces:
//! `async-io` (the reactor: non-blocking sockets and timers) and `futures-io` (the
//! `AsyncRead`/`AsyncWrite` traits). This crate uses only those for I/O, so one code path serves
//! both; the runtimes differ only in where tasks are spawned, which a [`Spawner`] decides.
//!
//! | Cargo features | default [`Spawner`] | also available |
//! |---|---|---|
//! | `async-std` (default) | `async_std::task::spawn` | [`Spawner::new`] (any executor) |
//! | `smol` | `smol::spawn` when `async-std` is off | [`Spawner::smol`], [`Spawner::executor`] (your own `smol::Executor`) |
//!
//! async-std is discontinued upstream in favour of smol; a smol application turns the default
//! feature off: `wskit-async-std = { version = "0.1", default-features = false, features =
//! ["smol"] }`. Listeners of either runtime (and std's, and async-io's) are accepted as they are
//! ([`IntoListener`]).
//!
//! The handshake is done here, so the route, the Origin and the (async) authentication are
//! decided before any `101` (unknown path 404, plain GET 426, bad token 401, bad Origin 403).
//! Plain HTTP requests can be answered on the same port with [`Builder::http`] (the chat
//! example serves its page that way). Each connection is one small task: it reads into a
//! per-thread buffer, hands complete messages to the core under a short lock, and writes its
//! whole queue of prepared frames per wake-up with vectored writes. A publish is framed once
//! and shared by every subscriber's queue; publishers never wait on a slow subscriber (it is
//! cut off past `Limits::max_outbound_bytes`).
//!
//! ## Quick start (async-std)
//!
//! ```no_run
//! use wskit::{Route, Server};
//!
//! # #[cfg(feature = "async-std")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = Route::new("/ws/echo").on_text(|ws, _ctx, text: &str| ws.send_text(text));
//! let server = Server::builder().route(echo).build()?;
//! let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
//! wskit_async_std::serve(listener, server).await?;
//! # Ok(()) }
//! ```
//!
//! ## smol, with a graceful shutdown
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use wskit::{Route, Server};
//! use wskit_async_std::{Builder, Spawner};
//!
//! smol::block_on(async {
//!     let echo = Route::new("/ws/echo").on_text(|ws, _ctx, text: &str| ws.send_text(text));
//!     let server = Server::builder().route(echo).build().unwrap();
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let running = Builder::new(server)
//!         .spawner(Spawner::smol())
//!         .listen(listener)
//!         .unwrap();
//!     println!("listening on {}", running.local_addr());
//!     // ... serve until told to stop, then close every connection with 1001:
//!     let report = running.shutdown().await;
//!     assert!(report.drained);
//! });
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod driver;
mod handshake;
mod listener;
mod server;
mod signal;
mod spawn;

pub use listener::{IntoListener, Listener};
pub use server::{serve, Builder, Handle, Running, Serve, ShutdownReport};
pub use spawn::{BoxTask, Spawner};
pub use wskit_adapter::Config;
