//! The chat routes through the core's test harness: SPEC §3 and §4 without sockets.

use serde_json::{json, Value};
use wskit::testing::{upgrade_request, TestServer};
use wskit_chat::{build_server, ChatConfig, Jwt};

fn server() -> (TestServer, Jwt) {
    let jwt = Jwt::new("test-secret");
    let config = ChatConfig {
        jwt: jwt.clone(),
        allowed_origins: vec![],
        backplane: false,
    };
    (TestServer::new(build_server(&config).unwrap()), jwt)
}

fn connect(t: &mut TestServer, jwt: &Jwt, name: &str) -> wskit::ConnId {
    let token = jwt.mint(name, &format!("{name}@example.com"), 60);
    t.connect(&format!("/ws/chat?token={token}")).unwrap()
}

#[test]
fn chat_round_trip_with_real_jwts() {
    let (mut t, jwt) = server();
    let a = connect(&mut t, &jwt, "alice");
    let b = connect(&mut t, &jwt, "bob");
    for c in [a, b] {
        t.send_json(c, &json!({"type": "join_room", "roomId": "lobby"}));
    }
    let joined = t.recv_json(a).unwrap();
    assert_eq!(
        (joined["type"].as_str(), joined["userEmail"].as_str()),
        (Some("room_joined"), Some("bob@example.com"))
    );
    t.send_json(
        a,
        &json!({"type": "chat_message", "roomId": "lobby", "message": "hi"}),
    );
    let m = t.recv_json(b).unwrap();
    assert_eq!(
        (
            m["type"].as_str(),
            m["userId"].as_str(),
            m["message"].as_str()
        ),
        (Some("message"), Some("alice"), Some("hi"))
    );
    t.disconnect(a, 1000, "");
    let left = t.recv_json(b).unwrap();
    assert_eq!(
        (left["type"].as_str(), left["userId"].as_str()),
        (Some("room_left"), Some("alice"))
    );
}

#[test]
fn bad_expired_or_foreign_tokens_get_401() {
    let (mut t, jwt) = server();
    let foreign = Jwt::new("other-secret").mint("mallory", "m@example.com", 60);
    for uri in [
        "/ws/chat".to_owned(),
        "/ws/chat?token=garbage".to_owned(),
        format!("/ws/chat?token={foreign}"),
    ] {
        assert_eq!(t.connect(&uri).unwrap_err().status, 401, "{uri}");
    }
    let token = jwt.mint("ann", "ann@example.com", 60);
    let req = upgrade_request("/ws/chat")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    assert!(t.connect_with(req).is_ok());
}

#[test]
fn over_long_message_is_a_typed_validation_error() {
    let (mut t, jwt) = server();
    let a = connect(&mut t, &jwt, "alice");
    t.send_json(
        a,
        &json!({"type": "chat_message", "roomId": "lobby", "message": "x".repeat(1001)}),
    );
    let err: Value = t.recv_json(a).unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "validation_failed");
    assert_eq!(err["issues"][0]["path"], json!(["message"]));
    assert!(t.closed(a).is_none());
}

#[test]
fn echo_needs_no_token() {
    let (mut t, _) = server();
    let c = t.connect("/ws/echo").unwrap();
    t.send_json(c, &json!({"type": "echo", "message": "ping"}));
    let m = t.recv_json(c).unwrap();
    assert_eq!(
        (m["type"].as_str(), m["content"].as_str()),
        (Some("message"), Some("ping"))
    );
}
