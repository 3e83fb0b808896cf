//! The hostile-input and fault suite: what an attacker, a broken client or a bad network does
//! to a server, over real loopback sockets, written once and run against every adapter by
//! [`hostile_suite!`](crate::hostile_suite).
//!
//! Every case states its expected outcome (SPEC §4, or a decision documented on the case and
//! in the README's security table). Cases that reveal a bug are left failing on purpose.
//!
//! - [`envelope`]: malformed JSON, wrong shapes and types, duplicate keys, 100k-deep nesting;
//! - [`frames`]: lying length fields, oversize messages, fragment floods, split UTF-8, binary
//!   on a text route, forbidden close codes, ping floods;
//! - [`upgrade`]: silent and trickling handshakes, huge heads, bad and expired tokens, tokens
//!   in logs, lookalike Origins, hostile path parameters;
//! - [`topics`]: a million subscribes, huge topic names;
//! - [`faults`]: handler panics, sends after close, clients vanishing mid-publish, a slow
//!   consumer in a 1,000-member room;
//! - [`soak`]: thousands of connections churning while rooms publish (also the `soak` binary).

use crate::adapter::{Adapter, Running};
use crate::client::{connect, recv_json, send_json, Ws};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use wskit_adapter::Config;

pub mod app;
pub mod envelope;
pub mod faults;
pub mod frames;
pub mod gate;
pub mod logs;
pub mod soak;
pub mod swarm;
pub mod topics;
pub mod upgrade;
pub mod wire;

pub use app::{Event, Observer};

/// Adapter options for the suite: short close, shutdown and handshake phases keep failures
/// (and the cases that wait for a timeout) quick.
pub fn config() -> Config {
    Config::default()
        .close_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(3))
        .handshake_timeout(Duration::from_secs(2))
}

/// The hostile app on `A`.
pub fn start<A: Adapter>() -> (Running, Observer) {
    start_with::<A>(config())
}

/// The hostile app on `A` with `config`.
pub fn start_with<A: Adapter>(config: Config) -> (Running, Observer) {
    let (server, observer) = app::app();
    (A::start(server, config), observer)
}

/// Connects to a typed route (`/h/json`, `/h/room`) and reads its welcome; returns the
/// connection's id as the welcome shows it.
pub fn typed_client(addr: SocketAddr, path: &str) -> (Ws, String) {
    let mut ws = connect(addr, path);
    let v = recv_json(&mut ws);
    assert_eq!(v["type"], "welcome", "{v}");
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    (ws, id)
}

/// A typed client that has joined `room`.
pub fn member(addr: SocketAddr, path: &str, room: &str) -> (Ws, String) {
    let (mut ws, id) = typed_client(addr, path);
    send_json(&mut ws, &json!({"type": "join", "room": room}));
    assert_eq!(recv_json(&mut ws), json!({"type": "joined", "room": room}));
    (ws, id)
}

/// Serializes the cases that measure memory or load the machine (the 1,000-member room, the
/// short soak, the floods), so their numbers are their own.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's resident set size in bytes (Linux `VmRSS`; `None` elsewhere). The server
/// under test runs in-process, so this includes it.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
