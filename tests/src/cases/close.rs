//! Close codes of SPEC §4, each observed by the client, and the close handshake.

use super::{start, welcome};
use crate::adapter::Adapter;
use crate::app::{AppEvent, ECHO_MAX_PAYLOAD};
use crate::client::{connect, expect_close, send_json, sync, RawWs};
use serde_json::json;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// A message over the route's payload limit closes with 1009.
pub fn oversize_message_closes_1009<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    let text = format!(
        "{{\"type\":\"echo\",\"message\":\"{}\"}}",
        "x".repeat(ECHO_MAX_PAYLOAD)
    );
    ws.send(Message::text(text)).expect("send");
    assert_eq!(expect_close(&mut ws).code, Some(1009));
}

/// Invalid UTF-8 in a text message closes with 1007.
pub fn invalid_utf8_closes_1007<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = RawWs::connect(server.addr(), "/ws/raw");
    ws.send_frame(0x81, &[b'o', b'k', 0xC3, 0x28]);
    assert_eq!(ws.read_until_close(), Some(1007));
}

/// A binary message on a route without a binary handler closes with 1003.
pub fn binary_without_handler_closes_1003<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    ws.send(Message::binary(vec![1, 2, 3])).expect("send");
    assert_eq!(expect_close(&mut ws).code, Some(1003));
}

/// Protocol violations close with 1002: reserved bits, an unmasked client frame, an unknown
/// opcode, a continuation with nothing to continue.
pub fn protocol_violation_closes_1002<A: Adapter>() {
    let (server, _) = start::<A>();
    type Violation<'a> = (&'a str, &'a dyn Fn(&mut RawWs));
    let violations: [Violation; 4] = [
        ("rsv1", &|ws| ws.send_frame(0xC1, b"hi")),
        ("unmasked", &|ws| ws.send_raw(&[0x81, 0x02, b'h', b'i'])),
        ("opcode 3", &|ws| ws.send_frame(0x83, b"hi")),
        ("orphan continuation", &|ws| ws.send_frame(0x80, b"hi")),
    ];
    for (name, violate) in violations {
        let mut ws = RawWs::connect(server.addr(), "/ws/raw");
        violate(&mut ws);
        assert_eq!(ws.read_until_close(), Some(1002), "{name}");
    }
}

/// A handler panic closes that connection with 1011; another connection is unaffected.
pub fn handler_panic_closes_1011_only_that_connection<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut bystander = connect(server.addr(), "/ws/echo");
    welcome(&mut bystander);
    let mut victim = connect(server.addr(), "/ws/echo");
    welcome(&mut victim);
    send_json(&mut victim, &json!({"type": "panic"}));
    assert_eq!(expect_close(&mut victim).code, Some(1011));
    assert!(sync(&mut bystander, "unaffected").is_empty());
    let mut fresh = connect(server.addr(), "/ws/echo");
    welcome(&mut fresh);
    assert!(sync(&mut fresh, "server still serves").is_empty());
}

/// A panic inside an async handler's body (on the adapter's runtime) also closes only that
/// connection with 1011.
pub fn async_handler_panic_closes_1011_only_that_connection<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut bystander = connect(server.addr(), "/ws/echo");
    welcome(&mut bystander);
    let mut victim = connect(server.addr(), "/ws/echo");
    welcome(&mut victim);
    send_json(&mut victim, &json!({"type": "async_panic"}));
    assert_eq!(expect_close(&mut victim).code, Some(1011));
    assert!(sync(&mut bystander, "unaffected").is_empty());
}

/// A client's close is answered with the same code, and `on_close` sees it.
pub fn client_close_is_answered<A: Adapter>() {
    let (server, observer) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    let id = welcome(&mut ws);
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .expect("close");
    let closed = expect_close(&mut ws);
    assert_eq!(closed.code, Some(1001));
    observer.wait_for(|e| {
        *e == AppEvent::Closed {
            id: id.clone(),
            code: 1001,
        }
    });
}

/// A client that vanishes without a close frame is reported to `on_close` as 1006.
pub fn vanished_peer_is_1006<A: Adapter>() {
    let (server, observer) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    let id = welcome(&mut ws);
    drop(ws);
    observer.wait_for(|e| {
        *e == AppEvent::Closed {
            id: id.clone(),
            code: 1006,
        }
    });
}
