//! The seed's chat application on wskit: the routes of SPEC §3, HS256 JWT auth, the demo page.
//!
//! `cargo run --release -p wskit-chat` serves it on http://127.0.0.1:3000.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod backplane;
pub mod jwt;
pub mod messages;
pub mod run;
pub mod web;

pub use app::{build_server, ChatConfig};
pub use jwt::{Jwt, User, DEV_SECRET};
