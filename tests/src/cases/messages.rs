//! Messages in both directions: typed envelopes and their error replies (the connection stays
//! open), raw text and binary, fragmentation, async handlers.

use super::{start, welcome};
use crate::adapter::Adapter;
use crate::client::{connect, recv, recv_json, send_json, sync, RawWs};
use serde_json::json;
use tungstenite::Message;

/// A typed message reaches its handler and the reply comes back.
pub fn typed_echo<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    for i in 0..20 {
        let tag = format!("hello {i} ✓");
        assert!(sync(&mut ws, &tag).is_empty());
    }
}

/// Text that is not JSON (or not an object) gets `invalid_json`; the connection stays open.
pub fn invalid_json_keeps_connection<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    for text in ["not json", "[1,2]", "{\"type\":"] {
        ws.send(Message::text(text)).expect("send");
        let v = recv_json(&mut ws);
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], "invalid_json", "{text}: {v}");
    }
    assert!(sync(&mut ws, "still open").is_empty());
}

/// A missing or unhandled `type` gets `unknown_type`; the connection stays open.
pub fn unknown_type_keeps_connection<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    for value in [json!({"type": "nope"}), json!({"message": "no type"})] {
        send_json(&mut ws, &value);
        let v = recv_json(&mut ws);
        assert_eq!(v["code"], "unknown_type", "{value}: {v}");
    }
    assert!(sync(&mut ws, "still open").is_empty());
}

/// Wrong fields get `validation_failed` with wire-name paths; the handler does not run and
/// the connection stays open.
pub fn validation_failed_keeps_connection<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    send_json(&mut ws, &json!({"type": "echo", "message": ""}));
    let v = recv_json(&mut ws);
    assert_eq!(v["code"], "validation_failed", "{v}");
    assert_eq!(v["issues"][0]["path"], json!(["message"]), "{v}");
    send_json(&mut ws, &json!({"type": "echo", "message": 42}));
    let v = recv_json(&mut ws);
    assert_eq!(v["code"], "validation_failed", "{v}");
    assert!(sync(&mut ws, "still open").is_empty());
}

/// An async handler's reply arrives through the runtime.
pub fn async_handler_replies<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    welcome(&mut ws);
    send_json(&mut ws, &json!({"type": "async_echo", "message": "later"}));
    assert_eq!(
        recv_json(&mut ws),
        json!({"type": "async_echo", "message": "later"})
    );
}

/// Raw text and binary echo, small and large (frames bigger than any buffer of the adapter),
/// in order.
pub fn raw_text_and_binary_echo<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/raw");
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = vec![
        Message::text("plain text, not JSON"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(big),
        Message::text("é".repeat(40_000)),
        Message::text(""),
    ];
    for m in &sent {
        ws.send(m.clone()).expect("send");
    }
    for m in &sent {
        assert_eq!(&recv(&mut ws), m);
    }
}

/// A message split into fragments (with a ping in between) is delivered once, whole.
pub fn fragmented_message_is_reassembled<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = RawWs::connect(server.addr(), "/ws/raw");
    ws.send_frame(0x01, b"hel"); // text, not final
    ws.send_frame(0x89, b"ping"); // control frames may interleave
    ws.send_frame(0x00, b"lo "); // continuation
    ws.send_frame(0x80, "wörld".as_bytes()); // final continuation
    let pong = ws.read_frame().expect("pong");
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"ping"[..]));
    let echo = ws.read_frame().expect("echo");
    assert_eq!(echo.opcode, 0x1);
    assert!(echo.fin);
    assert_eq!(String::from_utf8(echo.payload).unwrap(), "hello wörld");
}
