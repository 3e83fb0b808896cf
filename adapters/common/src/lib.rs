//! # wskit-adapter
//!
//! What every wskit adapter (tokio, async-std/smol, blocking threads) needs between the sans-IO
//! [`wskit::Server`] and a socket, with no runtime of its own:
//!
//! - [`http`]: the upgrade request head (`httparse`, size limit: 431; malformed: 400) and
//!   response bytes;
//! - [`Shared`]: the server behind one mutex plus the connection table; [`Core::pump`] drains
//!   `poll_output` and routes each output (a publish is framed once, see [`PreparedFrame`]);
//! - [`Outbox`]: each connection's bounded queue; publishers never block, a queue over
//!   `Limits::max_outbound_bytes` is cut off as a slow consumer;
//! - [`Connection`]: tungstenite in sans-IO mode for the client's frames, close codes the
//!   adapter must send itself (1002, 1007, 1009), the close handshake, vectored writes;
//! - for async runtimes, the whole socket life: [`handshake::handshake`] (read the head under
//!   limits, decide, authenticate, answer) over an [`handshake::AsyncRuntime`], then
//!   [`task::ConnTask`] (the connection's future) over an [`task::AsyncSocket`] and
//!   [`task::AsyncTimer`]. An adapter supplies poll functions and a timer, nothing else.
//!
//! ## Driving it (what an adapter does; `handshake` and `task` do this for async runtimes)
//!
//! ```text
//! shared = Shared::new(server, config, spawner)          // spawner runs async handlers
//! driver task: loop { next = shared.drive(now, waker); sleep until next or woken }
//! per accepted socket:
//!     read the head (Config::handshake_timeout, max_handshake_bytes) -> http::parse_request_head
//!     match shared.upgrade(now, &req, peer):
//!         Reject(r)         -> write http::rejection_bytes(&r), close
//!         Respond(res)      -> write http::response_bytes(&res), close (plain HTTP, see HttpHandler)
//!         Authenticate(p)   -> run p.verify (Config::auth_timeout) -> shared.complete_auth(..)
//!         Accept(a)         -> write a.response_bytes(); conn = a.open(now)
//!     conn.receive(now, bytes leftover after the head)
//!     conn.defer_writer_wakes(true)        // optional, with a Deferral around each poll
//!     loop:
//!         conn.register_waker(waker)       // woken when output is queued for it
//!         deferral.poll(conn, cx)          // after a yield: wake the writers held back
//!         readable  -> conn.receive(now, bytes) | conn.receive_eof(now)
//!         conn.write_with(now, |slices| socket.write_vectored(slices))
//!         conn.wants_shutdown()  -> socket.shutdown(Write); conn.shutdown_done()
//!         conn.deadline()        -> at that instant: conn.on_deadline(now)
//!         conn.is_done()         -> drop the socket (and the Connection)
//!         deferral.start(conn, cx)         // before returning Pending
//! shutdown: shared.shutdown(now); wait for connections (Config::shutdown_timeout);
//!           shared.abort_all() for the rest
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod deferral;
mod deliveries;
mod engine;
mod frame;
pub mod handshake;
pub mod http;
mod outbox;
mod pool;
mod shared;
mod table;
pub mod task;
#[cfg(test)]
mod tests;
mod upgrade;

pub use config::Config;
pub use deferral::Deferral;
pub use engine::Connection;
pub use frame::PreparedFrame;
pub use outbox::{CloseRequest, Outbox, Push};
pub use shared::{
    BackplaneSink, Core, Effects, HttpHandler, Shared, SharedBuilder, ShutdownReport, Spawner,
};
pub use table::ConnTable;
pub use upgrade::{Accepted, Upgrade};
