//! The seed's complete chat example, end to end through the core with the test harness.

#[path = "common/chat.rs"]
mod chat;

use chat::chat_server;
use serde_json::{json, Value};
use wskit::testing::TestServer;
use wskit::ConnId;

fn connect(t: &mut TestServer, name: &str) -> ConnId {
    t.connect(&format!("/ws/chat?token=tok-{name}"))
        .expect("valid token accepted")
}

fn only(t: &mut TestServer, conn: ConnId) -> Value {
    let mut all = t.drain_json(conn);
    assert_eq!(all.len(), 1, "expected exactly one message, got {all:?}");
    all.remove(0)
}

#[test]
fn join_fans_out_to_others_in_the_room_but_not_the_joiner() {
    let mut t = TestServer::new(chat_server());
    let alice = connect(&mut t, "alice");
    let bob = connect(&mut t, "bob");
    t.send_json(alice, &json!({"type": "join_room", "roomId": "lobby"}));
    assert!(
        t.drain_json(alice).is_empty(),
        "publish excludes the publisher"
    );
    t.send_json(bob, &json!({"type": "join_room", "roomId": "lobby"}));
    let joined = only(&mut t, alice);
    assert_eq!(joined["type"], "room_joined");
    assert_eq!(joined["roomId"], "lobby");
    assert_eq!(joined["userId"], "bob");
    assert_eq!(joined["userEmail"], "bob@example.com");
    assert!(joined["timestamp"].as_u64().unwrap() > 0);
    assert!(t.drain_json(bob).is_empty());
    assert_eq!(t.server().subscriber_count("room:lobby"), 2);
}

#[test]
fn chat_message_reaches_every_other_member_once_in_order() {
    let mut t = TestServer::new(chat_server());
    let members: Vec<ConnId> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| connect(&mut t, n))
        .collect();
    let outsider = connect(&mut t, "eve");
    for &m in &members {
        t.send_json(m, &json!({"type": "join_room", "roomId": "r1"}));
    }
    for &m in &members {
        t.drain_json(m);
    }
    for i in 0..5 {
        t.send_json(
            members[0],
            &json!({"type": "chat_message", "roomId": "r1", "message": format!("m{i}")}),
        );
    }
    for &m in &members[1..] {
        let got: Vec<String> = t
            .drain_json(m)
            .iter()
            .map(|v| v["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    }
    assert!(t.drain_json(members[0]).is_empty());
    assert!(t.drain_json(outsider).is_empty());
    let msg_from = |t: &mut TestServer| {
        t.send_json(
            members[1],
            &json!({"type": "chat_message", "roomId": "r1", "message": "hi"}),
        );
        t.drain_json(members[0]).remove(0)
    };
    let m = msg_from(&mut t);
    assert_eq!(
        (
            m["type"].as_str(),
            m["userId"].as_str(),
            m["userEmail"].as_str()
        ),
        (Some("message"), Some("bob"), Some("bob@example.com"))
    );
}

#[test]
fn typing_indicator_is_published() {
    let mut t = TestServer::new(chat_server());
    let alice = connect(&mut t, "alice");
    let bob = connect(&mut t, "bob");
    for c in [alice, bob] {
        t.send_json(c, &json!({"type": "join_room", "roomId": "r"}));
    }
    t.drain_json(alice);
    t.send_json(
        bob,
        &json!({"type": "typing", "roomId": "r", "isTyping": true}),
    );
    assert_eq!(
        only(&mut t, alice),
        json!({"type": "typing", "roomId": "r", "userId": "bob", "isTyping": true})
    );
    t.send_json(
        bob,
        &json!({"type": "typing", "roomId": "r", "isTyping": false}),
    );
    assert_eq!(only(&mut t, alice)["isTyping"], false);
}

#[test]
fn leave_publishes_room_left_and_stops_delivery() {
    let mut t = TestServer::new(chat_server());
    let alice = connect(&mut t, "alice");
    let bob = connect(&mut t, "bob");
    for c in [alice, bob] {
        t.send_json(c, &json!({"type": "join_room", "roomId": "r"}));
    }
    t.drain_json(alice);
    t.send_json(bob, &json!({"type": "leave_room", "roomId": "r"}));
    let left = only(&mut t, alice);
    assert_eq!(
        (left["type"].as_str(), left["userId"].as_str()),
        (Some("room_left"), Some("bob"))
    );
    t.send_json(
        alice,
        &json!({"type": "chat_message", "roomId": "r", "message": "anyone?"}),
    );
    assert!(t.drain_json(bob).is_empty());
    assert_eq!(t.server().subscriber_count("room:r"), 1);
}

#[test]
fn close_publishes_room_left_for_every_joined_room() {
    let mut t = TestServer::new(chat_server());
    let alice = connect(&mut t, "alice");
    let bob = connect(&mut t, "bob");
    let carol = connect(&mut t, "carol");
    for room in ["a", "b", "c"] {
        t.send_json(alice, &json!({"type": "join_room", "roomId": room}));
    }
    t.send_json(bob, &json!({"type": "join_room", "roomId": "a"}));
    t.send_json(bob, &json!({"type": "join_room", "roomId": "b"}));
    t.send_json(carol, &json!({"type": "join_room", "roomId": "c"}));
    t.drain_json(bob);
    t.drain_json(carol);
    t.send_json(alice, &json!({"type": "leave_room", "roomId": "c"}));
    t.drain_json(carol);
    t.disconnect(alice, 1000, "bye");
    let mut bob_rooms: Vec<String> = t
        .drain_json(bob)
        .iter()
        .map(|v| {
            assert_eq!(
                (v["type"].as_str(), v["userId"].as_str()),
                (Some("room_left"), Some("alice"))
            );
            v["roomId"].as_str().unwrap().to_owned()
        })
        .collect();
    bob_rooms.sort();
    assert_eq!(bob_rooms, ["a", "b"]);
    assert!(t.drain_json(carol).is_empty(), "alice had already left c");
    assert_eq!(t.server().topics_of(alice).len(), 0);
    assert_eq!(t.server().subscriber_count("room:a"), 1);
    assert_eq!(t.server().connection_count(), 2);
}

#[test]
fn echo_route_replies_to_the_sender() {
    let mut t = TestServer::new(chat_server());
    let c = t.connect("/ws/echo").unwrap();
    t.send_json(c, &json!({"type": "echo", "message": "héllo"}));
    let reply = only(&mut t, c);
    assert_eq!(
        (reply["type"].as_str(), reply["content"].as_str()),
        (Some("message"), Some("héllo"))
    );
    assert!(reply["timestamp"].is_u64());
}

fn issue_paths(error: &Value) -> Vec<Value> {
    error["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].clone())
        .collect()
}

#[test]
fn every_chat_message_type_reports_validation_errors_with_wire_names() {
    let mut t = TestServer::new(chat_server());
    let c = connect(&mut t, "alice");
    let cases = [
        (
            json!({"type": "join_room", "roomId": ""}),
            vec![json!(["roomId"])],
            "too_small",
        ),
        (
            json!({"type": "join_room"}),
            vec![json!(["roomId"])],
            "invalid_type",
        ),
        (
            json!({"type": "leave_room", "roomId": "x".repeat(51)}),
            vec![json!(["roomId"])],
            "too_big",
        ),
        (
            json!({"type": "leave_room", "roomId": 3}),
            vec![json!(["roomId"])],
            "invalid_type",
        ),
        (
            json!({"type": "chat_message", "roomId": "r", "message": "é".repeat(1001)}),
            vec![json!(["message"])],
            "too_big",
        ),
        (
            json!({"type": "chat_message", "roomId": "", "message": ""}),
            vec![json!(["roomId"]), json!(["message"])],
            "too_small",
        ),
        (
            json!({"type": "typing", "roomId": "r", "isTyping": "yes"}),
            vec![json!(["isTyping"])],
            "invalid_type",
        ),
        (
            json!({"type": "typing", "roomId": "r"}),
            vec![json!(["isTyping"])],
            "invalid_type",
        ),
    ];
    for (input, paths, code) in cases {
        t.send_json(c, &input);
        let err = only(&mut t, c);
        assert_eq!(err["type"], "error", "{input}");
        assert_eq!(err["code"], "validation_failed", "{input}");
        assert_eq!(issue_paths(&err), paths, "{input}");
        assert_eq!(err["issues"][0]["code"], code, "{input}");
        assert!(t.closed(c).is_none(), "the connection stays open");
    }
    // Exactly at the limits is fine: 50 and 1000 code points, multi-byte.
    t.send_json(c, &json!({"type": "join_room", "roomId": "é".repeat(50)}));
    t.send_json(
        c,
        &json!({"type": "chat_message", "roomId": "r", "message": "😀".repeat(1000)}),
    );
    assert!(t.drain_json(c).is_empty());
}
