//! The behavioural cases, each a function generic over the [`Adapter`]. They are instantiated
//! as `#[test]`s per adapter by [`conformance_suite!`](crate::conformance_suite).

use crate::adapter::{Adapter, Running};
use crate::app::{app, Observer};
use crate::client::{recv_json, Ws};
use std::time::Duration;
use wskit_adapter::Config;

pub mod auth;
pub mod close;
pub mod handshake;
pub mod lifecycle;
pub mod messages;
pub mod pubsub;

/// Adapter options for the suite: short close and handshake phases keep failures quick.
pub fn config() -> Config {
    Config::default()
        .close_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_secs(5))
        .handshake_timeout(Duration::from_secs(2))
}

/// The test app, started on `A`.
pub fn start<A: Adapter>() -> (Running, Observer) {
    start_with::<A>(config())
}

/// The test app, started on `A` with `config`.
pub fn start_with<A: Adapter>(config: Config) -> (Running, Observer) {
    let (server, observer) = app();
    (A::start(server, config), observer)
}

/// Reads the `welcome` message a route sends on connect; returns the connection's id.
pub fn welcome(ws: &mut Ws) -> String {
    let v = recv_json(ws);
    assert_eq!(v["type"], "welcome", "{v}");
    v["id"].as_str().unwrap_or_default().to_owned()
}
