//! # wskit
//!
//! Type-safe WebSocket routes for Rust: the Rust rendering of BunKit's
//! `createWebSocketRoute(path).authenticate(..).serverMessages(..).on(type, schema, handler)`.
//!
//! This crate is the **sans-IO core**: routing (matchit), the upgrade decision (Origin, token
//! extraction, async verification), envelope parsing, validation, topics and lifecycle, as a
//! pure state machine. It never reads a clock, never blocks and owns no socket. Adapters bind it
//! to a runtime: `wskit-tokio`, `wskit-async-std` (also smol) and `wskit-blocking`.
//!
//! ## Quick start (app authors)
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use wskit::{Route, Server, TokenAuth, Validate, Validator};
//!
//! #[derive(Clone)]
//! struct User { id: String }
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct JoinRoom { room_id: String }
//!
//! impl Validate for JoinRoom {
//!     fn validate(&self, v: &mut Validator) { v.length("roomId", &self.room_id, 1, 50); }
//! }
//!
//! #[derive(Serialize, schemars::JsonSchema)]
//! #[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
//! enum ServerMessage { RoomJoined { room_id: String, user_id: String } }
//!
//! let auth = TokenAuth::new(|token: String| async move {
//!     // verify a JWT, hit a database...
//!     token.strip_prefix("user-").map(|id| User { id: id.to_owned() })
//! });
//!
//! let rooms = Route::new("/ws/rooms")
//!     .authenticate(auth)
//!     .server_messages::<ServerMessage>()
//!     .on("join_room", |ws, ctx, data: JoinRoom| -> wskit::HandlerResultOf {
//!         let topic = format!("room:{}", data.room_id);
//!         ws.subscribe(&topic)?;
//!         ws.publish(&topic, &ServerMessage::RoomJoined { room_id: data.room_id, user_id: ctx.user.id.clone() })?;
//!         Ok(())
//!     });
//!
//! let server = Server::builder().route(rooms).build()?;
//! # let _ = server;
//! # Ok::<(), wskit::BuildError>(())
//! ```
//!
//! Then serve it with an adapter, e.g. `wskit_tokio::serve(listener, server)`. Invalid input never
//! reaches a handler: it is answered with the error envelope of SPEC §4
//! (`{"type":"error","code":"validation_failed","issues":[{"path":["roomId"],..}]}`). The
//! [`guide`] walks every feature; [`testing`] tests routes without sockets.
//!
//! ## The driving loop (adapter authors)
//!
//! Inputs are `handle_*` calls carrying the current time; outputs are drained with
//! [`Server::poll_output`]; timers come from [`Server::poll_timeout`]. A whole adapter, minus the
//! sockets:
//!
//! ```
//! use std::time::Instant;
//! use wskit::{testing::upgrade_request, Decision, Output, Route, Server};
//!
//! let echo = Route::new("/ws").on_text(|ws, _ctx, text: &str| ws.send_text(text));
//! let mut server = Server::builder().route(echo).build().unwrap();
//!
//! // 1. An HTTP request arrives: decide before answering (404/426/403/401 or 101).
//! let request = upgrade_request("/ws").body(()).unwrap();
//! let conn = match server.handle_upgrade(Instant::now(), &request, None) {
//!     Decision::Accept(accepted) => {
//!         // write accepted.response (the 101), configure the framer with accepted.limits
//!         accepted.conn
//!     }
//!     Decision::Authenticate(pending) => {
//!         // spawn pending.verify on your runtime (bounded by Limits::auth_timeout), then
//!         // server.complete_auth(now, pending.ticket, result) gives Accept or Reject.
//!         unreachable!("this route has no authentication")
//!     }
//!     Decision::Reject(rejection) => {
//!         // write rejection.to_response() and close
//!         unreachable!("{rejection:?}")
//!     }
//! };
//! server.handle_open(Instant::now(), conn); // runs on_connect
//!
//! // 2. Frames arrive: text, binary, pongs (handle_activity), closes (handle_closed).
//! server.handle_text(Instant::now(), conn, "hello");
//!
//! // 3. Drain outputs after every input.
//! while let Some(output) = server.poll_output() {
//!     match output {
//!         Output::Send { conn, message } => { /* queue on conn */ }
//!         Output::Broadcast { conns, message } => { /* frame once, queue on each */ }
//!         Output::Close { conn, code, reason } => { /* flush, close frame, then handle_closed */ }
//!         Output::Ping { conn } => { /* send a ping */ }
//!         Output::Spawn(task) => { /* spawn task.into_future() */ }
//!         _ => {} // backplane events, when enabled
//!     }
//! }
//!
//! // 4. Timers and async work: sleep until poll_timeout(), then handle_timeout(now);
//! //    register_waker() + handle_commands(now) when a ServerHandle queued commands.
//! if let Some(deadline) = server.poll_timeout() {
//!     server.handle_timeout(deadline);
//! }
//! server.handle_commands(Instant::now());
//! ```
//!
//! Adapters must also send the close codes the framer detects (1002 protocol error, 1007 invalid
//! UTF-8, 1009 too big) via [`Server::close`], bound each connection's outbound queue
//! ([`Limits::max_outbound_bytes`], then [`Server::handle_slow_consumer`]) and never log tokens
//! ([`redact_uri`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod config;
mod envelope;
mod error;
pub mod export;
mod handshake;
mod output;
mod params;
mod route;
mod router;
mod server;
mod slab;
mod socket;
mod task;
pub mod testing;

#[doc = include_str!("../docs/guide.md")]
pub mod guide {}

/// The README's snippets are compiled and run too.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
mod topics;
mod validate;

pub use auth::{
    AuthRejection, AuthRejectionSource, AuthedUser, BoxFuture, IntoAuthResult, TokenAuth,
    TokenSource, TOKEN_SUBPROTOCOL,
};
pub use bytes::Bytes;
pub use config::Limits;
pub use error::{BuildError, ErrorCode, Issue, MessageError, PathSegment, SocketError};
pub use handshake::{
    accept_key, redact_uri, Accepted, AuthTicket, Decision, OriginPolicy, PendingAuth, Rejection,
};
pub use output::{Message, Output, Task};
pub use params::{Params, ParamsError};
pub use route::{
    HandlerError, HandlerResult, HandlerResultOf, MessageSpec, Route, RouteSpec, SchemaFn,
};
pub use schemars;
pub use server::{Server, ServerBuilder};
pub use slab::ConnId;
pub use socket::{Ctx, Socket};
pub use task::{AsyncCtx, AsyncSocket, ServerHandle};
pub use validate::{Validate, Validator};
