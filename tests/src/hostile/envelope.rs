//! Malformed envelopes (SPEC §4): every one gets the error envelope with the right `code`, no
//! handler runs, and the connection stays open (proved by an echo afterwards).

use super::{start, typed_client};
use crate::adapter::Adapter;
use crate::client::{recv_json, sync, Ws};
use serde_json::{json, Value};
use tungstenite::Message;

/// Sends `text` and expects the error envelope with `code`; returns it.
fn expect_error(ws: &mut Ws, text: &str, code: &str) -> Value {
    ws.send(Message::text(text)).expect("send");
    let v = recv_json(ws);
    let shown: String = text.chars().take(80).collect();
    assert_eq!(v["type"], "error", "{shown:?} -> {v}");
    assert_eq!(v["code"], code, "{shown:?} -> {v}");
    v
}

fn open_json<A: Adapter>() -> (crate::adapter::Running, super::Observer, Ws) {
    let (server, observer) = start::<A>();
    let (ws, _) = typed_client(server.addr(), "/h/json");
    (server, observer, ws)
}

/// Truncated or trailing-garbage JSON is `invalid_json`, even when the `type` prefix is
/// intact (the fast `type` scan must not let a broken document reach a handler).
pub fn truncated_json_is_invalid_json<A: Adapter>() {
    let (_server, _, mut ws) = open_json::<A>();
    for text in [
        "",
        "   ",
        "{",
        "{\"type\"",
        "{\"type\":\"ec",
        "{\"type\":\"echo\"",
        "{\"type\":\"echo\",\"message\":\"hi",
        "{\"type\":\"echo\",\"message\":\"hi\"",
        "{\"type\":\"echo\",\"message\":\"hi\"}}",
        "{\"type\":\"echo\",\"message\":\"hi\"} trailing",
        "{\"type\":\"echo\",\"message\":'hi'}",
        "{\"type\":\"echo\",,\"message\":\"hi\"}",
    ] {
        expect_error(&mut ws, text, "invalid_json");
    }
    assert!(sync(&mut ws, "still open").is_empty());
}

/// Arrays and scalars are valid JSON but not envelopes: `invalid_json` ("expected a JSON
/// object"), the connection stays open.
pub fn arrays_and_scalars_are_invalid_json<A: Adapter>() {
    let (_server, _, mut ws) = open_json::<A>();
    for text in [
        "[]",
        "[{\"type\":\"echo\",\"message\":\"x\"}]",
        "42",
        "-0.5e-7",
        "1e999",
        "\"echo\"",
        "null",
        "true",
        "false",
    ] {
        expect_error(&mut ws, text, "invalid_json");
    }
    assert!(sync(&mut ws, "still open").is_empty());
}

/// No string `type`, or one the route does not handle (matching is exact and
/// case-sensitive): `unknown_type`. A huge type name is not echoed back in full (the error
/// message stays short).
pub fn unknown_type_keeps_connection<A: Adapter>() {
    let (_server, _, mut ws) = open_json::<A>();
    for text in [
        "{}",
        "{\"message\":\"x\"}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"ECHO\",\"message\":\"x\"}",
        "{\"type\":\"echo \",\"message\":\"x\"}",
        "{\"type\":\"echo\\u0000\",\"message\":\"x\"}",
        "{\"type\":\"__proto__\"}",
        "{\"type\":\"\"}",
        "{\"type\":42}",
        "{\"type\":null}",
        "{\"type\":[\"echo\"]}",
        "{\"type\":{\"type\":\"echo\"}}",
    ] {
        expect_error(&mut ws, text, "unknown_type");
    }
    let huge = format!("{{\"type\":\"{}\"}}", "x".repeat(200_000));
    let v = expect_error(&mut ws, &huge, "unknown_type");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.len() < 256, "{} bytes", message.len());
    assert!(sync(&mut ws, "still open").is_empty());
}

/// Decision: duplicate keys make a message ambiguous and it is refused
/// (`validation_failed`), never "last one wins": a second `type` cannot smuggle in another
/// handler (here `panic`, which would close the connection with 1011 if it ran), and a
/// repeated field is refused by serde.
pub fn duplicate_keys_are_refused<A: Adapter>() {
    let (_server, _, mut ws) = open_json::<A>();
    for text in [
        "{\"type\":\"echo\",\"message\":\"a\",\"type\":\"panic\"}",
        "{\"type\":\"panic\",\"type\":\"echo\",\"message\":\"a\"}",
        "{\"message\":\"a\",\"type\":\"panic\",\"type\":\"echo\"}",
        "{\"type\":\"echo\",\"message\":\"a\",\"message\":\"b\"}",
    ] {
        expect_error(&mut ws, text, "validation_failed");
    }
    assert!(sync(&mut ws, "no handler ran").is_empty());
}

/// Wrong field types, missing fields and broken constraints are `validation_failed` with an
/// issue at the wire path `["message"]`; the handler never runs. Decisions: a lone UTF-16
/// surrogate escape (`"\ud800"`, valid JSON grammar but no Unicode string) is a wrong value
/// for a string field, so `validation_failed` too; unknown extra fields are ignored (as Zod
/// strips them), so that message is answered.
pub fn wrong_field_types_are_validation_failed<A: Adapter>() {
    let (_server, _, mut ws) = open_json::<A>();
    for text in [
        "{\"type\":\"echo\"}",
        "{\"type\":\"echo\",\"message\":42}",
        "{\"type\":\"echo\",\"message\":null}",
        "{\"type\":\"echo\",\"message\":true}",
        "{\"type\":\"echo\",\"message\":[\"x\"]}",
        "{\"type\":\"echo\",\"message\":{\"x\":1}}",
        "{\"type\":\"echo\",\"message\":\"\"}",
        "{\"type\":\"echo\",\"message\":\"\\ud800\"}",
        &format!("{{\"type\":\"echo\",\"message\":\"{}\"}}", "é".repeat(101)),
    ] {
        let v = expect_error(&mut ws, text, "validation_failed");
        assert_eq!(v["issues"][0]["path"], json!(["message"]), "{text} -> {v}");
    }
    // Exactly 100 code points (200 bytes) is inside the limit: Zod counts code points.
    let hundred = "é".repeat(100);
    ws.send(Message::text(
        json!({"type": "echo", "message": hundred, "extra": {"ignored": [1, 2]}}).to_string(),
    ))
    .expect("send");
    assert_eq!(
        recv_json(&mut ws),
        json!({"type": "echo", "message": hundred})
    );
}

/// 100,000 levels of nesting must not overflow any stack (the server would abort). Decision:
/// the reply follows SPEC §4 on what the document is. serde_json skips values it does not
/// need without recursion and builds the ones it needs with a depth limit of 128, so: deep
/// arrays are `invalid_json` (not an object); a deep object without `type` is
/// `unknown_type`; a handler field nested past the limit is `validation_failed` (issue
/// "recursion limit exceeded" at that field); a deep field the handler ignores is skipped and
/// the message is answered; a truncated deep document is `invalid_json`. The connection stays
/// open throughout, and a document 100 deep reaches its handler.
pub fn deep_nesting_is_refused_without_overflow<A: Adapter>() {
    const DEPTH: usize = 100_000;
    let (_server, _, mut ws) = open_json::<A>();
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    expect_error(&mut ws, &arrays(DEPTH), "invalid_json");
    expect_error(&mut ws, &objects(DEPTH), "unknown_type");
    let in_field = format!("{{\"type\":\"deep\",\"data\":{}}}", arrays(DEPTH));
    let v = expect_error(&mut ws, &in_field, "validation_failed");
    assert_eq!(v["issues"][0]["path"][0], "data", "{v:.200}");
    let unclosed = format!("{{\"type\":\"deep\",\"data\":{}", "[".repeat(DEPTH));
    expect_error(&mut ws, &unclosed, "invalid_json");
    let ignored = format!(
        "{{\"skip\":{},\"type\":\"echo\",\"message\":\"x\",\"extra\":{}}}",
        arrays(DEPTH),
        objects(DEPTH)
    );
    ws.send(Message::text(ignored)).expect("send");
    assert_eq!(recv_json(&mut ws), json!({"type": "echo", "message": "x"}));
    let hundred = format!(
        "{{\"type\":\"deep\",\"data\":{}{{}}{}}}",
        "{\"a\":".repeat(100),
        "}".repeat(100)
    );
    ws.send(Message::text(hundred)).expect("send");
    assert_eq!(recv_json(&mut ws), json!({"type": "deep", "object": true}));
    assert!(sync(&mut ws, "still open").is_empty());
}
