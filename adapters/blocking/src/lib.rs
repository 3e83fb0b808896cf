//! # wskit-blocking
//!
//! Runs a [`wskit::Server`] on std threads and blocking sockets: no async runtime, no reactor,
//! no dependency beyond the engine the other adapters share (`wskit-adapter`). For programs
//! that are not async, or that want the plainest possible stack to reason about.
//!
//! The handshake is done here, so the route, the Origin and the (async) authentication are
//! decided before any `101` (unknown path 404, plain GET 426, bad token 401, bad Origin 403).
//! Plain HTTP requests can be answered on the same port with [`Builder::http`].
//!
//! ## Quick start
//!
//! ```
//! use std::io::{Read, Write};
//! use wskit::{Route, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = Route::new("/ws/echo").on_text(|ws, _ctx, text: &str| ws.send_text(text));
//! let server = Server::builder().route(echo).build()?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let running = wskit_blocking::Builder::new(server)
//!     .http(|req: &http::Request<()>| {
//!         (req.uri().path() == "/healthz").then(|| http::Response::new(b"ok".to_vec()))
//!     })
//!     .listen(listener)?;
//!
//! let mut client = std::net::TcpStream::connect(running.local_addr())?;
//! client.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?;
//! let mut response = String::new();
//! client.read_to_string(&mut response)?;
//! assert!(response.starts_with("HTTP/1.1 200 OK") && response.ends_with("ok"));
//!
//! let report = running.shutdown(); // or `running.wait()` to serve until shut down elsewhere
//! assert!(report.drained);
//! # Ok(()) }
//! ```
//!
//! ## Threading model
//!
//! | thread | how many | does |
//! |---|---|---|
//! | accept | one per listener | blocking `accept`; hands each socket to the pool |
//! | connection | one per open connection | blocking reads; runs the message handlers |
//! | pool | as many as concurrent work | handshakes, output queued by other threads, async handlers |
//! | driver | one | `ServerHandle` commands, pings and idle timeouts, close deadlines |
//!
//! **Handshake.** A pool thread reads the request head under `Config::handshake_timeout` and
//! `max_handshake_bytes` (every read waits only for what is left of the timeout, so a client
//! trickling bytes is dropped on time), lets the core decide, runs an authentication verifier
//! (below), writes the 101, and starts the connection's thread. Doing it there, not on the
//! connection's thread, keeps the long-lived thread small: its stack has touched only what the
//! read loop needs, and what the handshake allocated and freed stays in the pool thread's
//! allocator cache.
//!
//! **Connections.** Each open connection gets one thread with a small stack
//! ([`DEFAULT_STACK_SIZE`], see [`Builder::stack_size`]). It loops: a blocking `peek` without a
//! timeout (no buffer is held while idle), a `read` into a buffer lent for the call, the bytes
//! to the engine (which runs the handlers), and the output this produced (an echo, a pong)
//! written before waiting again.
//!
//! **Output from elsewhere.** A publish from another connection, or the driver's ping or close,
//! is queued on the connection by the engine, which then wakes the connection's
//! [`Waker`](std::task::Waker). The connection's own thread may be blocked in `peek` for hours,
//! and std offers no way to interrupt a blocking read short of shutting the socket. So the
//! waker hands the write to the pool instead: one pool job writes everything queued and
//! returns. This keeps one thread per idle connection (a dedicated writer thread per
//! connection would double the threads, and Linux counts every thread against `pid_max` and
//! every stack against `vm.max_map_count`), and a poll-based design would be a reactor, which
//! is what the async adapters are for. One thread at a time owns a connection's writing (the
//! reader while it handles its input, otherwise a pool job); a wake-up during ownership leaves a
//! note the owner reads before letting go, so none is lost. Writes block for at most 250 ms per
//! call, so a pool thread writing to a client that stopped reading lets the reader in between
//! attempts; such a client is cut off as a slow consumer (`Limits::max_outbound_bytes`).
//!
//! **Deadlines.** Close deadlines (the peer's close reply, its end-of-stream) are fired by the
//! driver, which shuts the socket down: whoever is blocked on it wakes with end-of-file or an
//! error and finishes the connection. The driver also sleeps until the core's next timer, and is
//! unparked when a `ServerHandle` command or an earlier timer arrives.
//!
//! **Async handlers and verifiers.** The core hands out `wskit::Task` futures for async
//! handlers; they run on the pool under a tiny executor of this crate (a task is its future
//! behind a mutex, and its waker submits it to the pool again). A verifier's future runs on the
//! handshake's pool thread, parked between polls, bounded by `Config::auth_timeout` and the
//! route's own deadline, and interrupted by a shutdown. The futures must not need a runtime of
//! their own: a verifier that awaits a tokio timer or socket does not belong here.
//!
//! **Memory.** A thread costs the pages of its stack it has touched (the rest is reserved
//! address space, [`DEFAULT_STACK_SIZE`] per thread) plus kernel structures outside the
//! process's RSS. At 10,000 idle authenticated connections the server's RSS grows by about
//! 16 KiB per connection (12 KiB of it the thread's stack) and its virtual size by the 1 MiB
//! stack reservation (see BENCHMARKS.md); the async adapters need under 3 KiB. Choose this
//! adapter for simplicity and for thousands of connections, not for hundreds of thousands
//! (Linux's default `pid_max` of 32,768 bounds the threads of the whole machine).
//!
//! **Shutdown** ([`Handle::shutdown`]): the accept threads stop, connections still in their
//! handshake are dropped, open ones are closed with 1001 after their queued output; after
//! `Config::shutdown_timeout` every remaining socket is shut down.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod handshake;
mod pool;
mod registry;
mod rt;
mod server;
#[cfg(test)]
mod tests;

pub use server::{serve, Builder, Handle, Running, Serve, ShutdownReport, DEFAULT_STACK_SIZE};
pub use wskit_adapter::Config;
