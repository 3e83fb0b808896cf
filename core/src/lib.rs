//! # wskit
//!
//! Type-safe WebSocket routes for Rust, as a sans-IO state machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod config;
mod envelope;
mod error;
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
