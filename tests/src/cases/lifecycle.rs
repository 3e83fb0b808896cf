//! Timers and shutdown: pings and the idle timeout, graceful shutdown with 1001.

use super::{start, start_with, welcome};
use crate::adapter::Adapter;
use crate::app::{AppEvent, IDLE_TIMEOUT};
use crate::client::{connect, expect_close, send_json, sync, RawWs, TIMEOUT};
use serde_json::json;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A client that never answers pings is pinged at half the idle timeout, then closed with 1001.
pub fn idle_client_is_pinged_then_closed<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = RawWs::connect(server.addr(), "/ws/idle");
    let started = Instant::now();
    let first = ws.read_frame().expect("a ping");
    assert_eq!(first.opcode, 0x9, "{first:?}");
    let close = ws.read_frame().expect("a close");
    assert_eq!(close.close_code(), Some(1001), "{close:?}");
    assert!(
        started.elapsed() >= IDLE_TIMEOUT / 2,
        "closed before the idle timeout"
    );
}

/// A client that answers pings stays connected past the idle timeout.
pub fn ponging_client_stays_open<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/idle");
    ws.get_mut()
        .set_read_timeout(Some(IDLE_TIMEOUT / 4))
        .expect("timeout");
    let until = Instant::now() + IDLE_TIMEOUT * 2;
    let mut pings = 0;
    while Instant::now() < until {
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1, // tungstenite queues the pong
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection lost: {e}"),
        }
    }
    assert!(pings >= 1, "no ping within twice the idle timeout");
    ws.get_mut()
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    assert!(sync(&mut ws, "alive").is_empty());
}

/// Graceful shutdown: output queued before it is delivered, then a 1001 close; new
/// connections are refused.
pub fn graceful_shutdown_drains_then_closes_1001<A: Adapter>() {
    const BURST: u64 = 50;
    let (server, observer) = start_with::<A>(super::config().shutdown_timeout(TIMEOUT));
    let addr = server.addr();
    let mut idle = connect(addr, "/ws/echo");
    welcome(&mut idle);
    let mut busy = connect(addr, "/ws/echo");
    welcome(&mut busy);
    // 50 x 64 KiB queued for `busy` (more than the socket buffers take while it is not reading).
    send_json(
        &mut busy,
        &json!({"type": "burst", "count": BURST, "size": 64 * 1024}),
    );
    observer.wait_for(|e| *e == AppEvent::BurstQueued);
    let clients = std::thread::spawn(move || (expect_close(&mut busy), expect_close(&mut idle)));
    let drained = server.shutdown();
    let (busy, idle) = clients.join().expect("clients saw the close");
    assert_eq!(busy.code, Some(1001));
    assert_eq!(
        busy.messages.len() as u64,
        BURST,
        "queued output was not drained"
    );
    for (i, m) in busy.messages.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(&m.clone().into_data()).expect("json");
        assert_eq!(v["seq"], i as u64);
    }
    assert_eq!(idle.code, Some(1001));
    assert!(idle.messages.is_empty());
    assert!(
        drained,
        "connections did not drain within the shutdown timeout"
    );
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
            || crate::client::handshake(addr, crate::client::request(addr, "/ws/echo")).is_err(),
        "a new connection was accepted after shutdown"
    );
}

/// Shutdown does not wait forever for a client that never answers the close.
pub fn shutdown_is_bounded<A: Adapter>() {
    let config = super::config()
        .close_timeout(Duration::from_millis(300))
        .shutdown_timeout(Duration::from_millis(600));
    let (server, _) = start_with::<A>(config);
    let mut deaf = RawWs::connect(server.addr(), "/ws/echo");
    let welcome_frame = deaf.read_frame().expect("welcome");
    assert_eq!(welcome_frame.opcode, 0x1);
    // A connection still in its handshake (it never sends its request) is dropped too.
    let _silent = std::net::TcpStream::connect(server.addr()).expect("connect");
    let started = Instant::now();
    let drained = server.shutdown();
    assert!(
        started.elapsed() < TIMEOUT,
        "shutdown hung on a deaf client"
    );
    assert!(drained, "the deaf client outlived its close timeout");
    // The deaf client got the 1001 anyway.
    assert_eq!(deaf.read_until_close(), Some(1001));
}
