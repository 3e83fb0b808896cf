//! Authentication happens before the 101: each token transport, async verifiers, refusals.

use super::start;
use crate::adapter::Adapter;
use crate::app::{GOOD_TOKEN, STUCK_AUTH_TIMEOUT};
use crate::client::{handshake, recv_json, refusal_status, request};
use base64::Engine;
use tungstenite::client::ClientRequestBuilder;

fn hello(req: ClientRequestBuilder, addr: std::net::SocketAddr) -> serde_json::Value {
    let (mut ws, _) = handshake(addr, req).expect("authenticated upgrade");
    recv_json(&mut ws)
}

/// `?token=` on a query-token route: a good token opens, a bad or missing one is 401.
pub fn query_token<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let ok = request(addr, &format!("/ws/auth/query?token={GOOD_TOKEN}"));
    assert_eq!(hello(ok, addr)["user"], "alice");
    assert_eq!(
        refusal_status(addr, request(addr, "/ws/auth/query?token=bad")),
        401
    );
    assert_eq!(refusal_status(addr, request(addr, "/ws/auth/query")), 401);
}

/// `Authorization: Bearer`.
pub fn bearer_header<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let ok = request(addr, "/ws/auth/bearer")
        .with_header("Authorization", format!("Bearer {GOOD_TOKEN}"));
    assert_eq!(hello(ok, addr)["user"], "alice");
    let bad = request(addr, "/ws/auth/bearer").with_header("Authorization", "Bearer nope");
    assert_eq!(refusal_status(addr, bad), 401);
    // A token in the wrong place does not count.
    let misplaced = request(addr, &format!("/ws/auth/bearer?token={GOOD_TOKEN}"));
    assert_eq!(refusal_status(addr, misplaced), 401);
}

/// A cookie.
pub fn cookie<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let ok = request(addr, "/ws/auth/cookie")
        .with_header("Cookie", format!("theme=dark; session={GOOD_TOKEN}"));
    assert_eq!(hello(ok, addr)["user"], "alice");
    let bad = request(addr, "/ws/auth/cookie").with_header("Cookie", "session=nope");
    assert_eq!(refusal_status(addr, bad), 401);
}

/// SPEC §6: the client offers `wskit` and `base64url.bearer.<token>`; the server selects
/// `wskit` and never echoes the token.
pub fn subprotocol_token<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(GOOD_TOKEN);
    let req = request(addr, "/ws/auth/subprotocol")
        .with_sub_protocol("wskit")
        .with_sub_protocol(format!("base64url.bearer.{encoded}"));
    let (mut ws, response) = handshake(addr, req).expect("authenticated upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "wskit");
    for (name, value) in response.headers() {
        let value = value.to_str().unwrap_or_default();
        assert!(
            !value.contains(&encoded) && !value.contains(GOOD_TOKEN),
            "token echoed in {name}"
        );
    }
    assert_eq!(recv_json(&mut ws)["user"], "alice");
    let bad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("nope");
    let req = request(addr, "/ws/auth/subprotocol")
        .with_sub_protocol("wskit")
        .with_sub_protocol(format!("base64url.bearer.{bad}"));
    assert_eq!(refusal_status(addr, req), 401);
}

/// A custom extractor (an `X-Api-Key` header).
pub fn custom_source<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let ok = request(addr, "/ws/auth/custom").with_header("X-Api-Key", GOOD_TOKEN);
    assert_eq!(hello(ok, addr)["user"], "alice");
    assert_eq!(refusal_status(addr, request(addr, "/ws/auth/custom")), 401);
}

/// A verifier that really is asynchronous (it yields to the runtime before answering).
pub fn async_verifier<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let ok = request(addr, &format!("/ws/auth/async?token={GOOD_TOKEN}"));
    assert_eq!(hello(ok, addr)["user"], "alice");
    assert_eq!(
        refusal_status(addr, request(addr, "/ws/auth/async?token=x")),
        401
    );
}

/// A verifier that never answers is refused with 401 at the route's own authentication
/// deadline, not after the adapter's longer default bound.
pub fn verifier_past_the_routes_deadline<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let started = std::time::Instant::now();
    let status = refusal_status(
        addr,
        request(addr, &format!("/ws/auth/stuck?token={GOOD_TOKEN}")),
    );
    let waited = started.elapsed();
    assert_eq!(status, 401);
    assert!(
        waited >= STUCK_AUTH_TIMEOUT && waited < STUCK_AUTH_TIMEOUT * 10,
        "refused after {waited:?}, the route's deadline is {STUCK_AUTH_TIMEOUT:?}"
    );
}
