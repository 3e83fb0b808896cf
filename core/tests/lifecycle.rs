//! Messages, errors, close codes, timers and limits: SPEC §4 rows the core decides.

#[path = "common/chat.rs"]
mod chat;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wskit::testing::{upgrade_request, TestServer};
use wskit::{Decision, HandlerResultOf, Limits, Message, Output, Route, Server, SocketError};

fn open(route: Route<(), Value, ()>) -> (TestServer, wskit::ConnId) {
    let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
    let c = t.connect("/ws").unwrap();
    (t, c)
}

#[test]
fn text_that_is_not_json_or_not_an_object_is_invalid_json_and_stays_open() {
    let mut t = TestServer::new(chat::chat_server());
    let c = t.connect("/ws/echo").unwrap();
    for bad in [
        "not json",
        "{\"type\":\"echo\",",
        "[1,2,3]",
        "42",
        "\"echo\"",
        "null",
        "",
    ] {
        t.send_text(c, bad);
        let err = t.recv_json(c).unwrap();
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some("invalid_json")),
            "{bad:?}"
        );
        assert!(err.get("issues").is_none());
    }
    t.send_json(c, &json!({"type": "echo", "message": "still here"}));
    assert_eq!(t.recv_json(c).unwrap()["content"], "still here");
    assert!(t.closed(c).is_none());
}

#[test]
fn missing_or_unhandled_type_is_unknown_type_and_stays_open() {
    let mut t = TestServer::new(chat::chat_server());
    let c = t.connect("/ws/echo").unwrap();
    for bad in [
        json!({"message": "x"}),
        json!({"type": "nope"}),
        json!({"type": 1}),
        json!({"type": null}),
    ] {
        t.send_json(c, &bad);
        assert_eq!(t.recv_json(c).unwrap()["code"], "unknown_type", "{bad}");
    }
    assert!(t.closed(c).is_none());
}

#[test]
fn type_need_not_come_first_and_unknown_fields_are_ignored() {
    let mut t = TestServer::new(chat::chat_server());
    let c = t.connect("/ws/echo").unwrap();
    t.send_text(
        c,
        r#"{"message":"late type","extra":[1,{"a":2}],"type":"echo"}"#,
    );
    assert_eq!(t.recv_json(c).unwrap()["content"], "late type");
}

#[test]
fn binary_without_handler_closes_1003() {
    let mut t = TestServer::new(chat::chat_server());
    let c = t.connect("/ws/echo").unwrap();
    t.send_binary(c, vec![1u8, 2, 3]);
    assert_eq!(t.closed(c).map(|(code, _)| code), Some(1003));
    assert_eq!(t.server().connection_count(), 0);
}

#[test]
fn binary_and_raw_text_handlers_echo() {
    let (mut t, c) = open(
        Route::new("/ws")
            .on_text(|ws, _ctx, text: &str| ws.send_text(text.to_uppercase()))
            .on_binary(|ws, _ctx, data| ws.send_binary(data)),
    );
    t.send_text(c, "not json at all");
    assert_eq!(t.recv(c), Some(Message::text("NOT JSON AT ALL")));
    t.send_binary(c, vec![0u8, 255]);
    assert_eq!(t.recv(c), Some(Message::Binary(vec![0u8, 255].into())));
}

#[test]
fn oversize_message_closes_1009() {
    let mut t = TestServer::new(chat::chat_server());
    let c = t.connect("/ws/chat?token=tok-a").unwrap();
    let big = json!({"type": "chat_message", "roomId": "r", "message": "x".repeat(64 * 1024)});
    t.send_json(c, &big);
    assert_eq!(t.closed(c).map(|(code, _)| code), Some(1009));
}

#[test]
fn handler_panic_closes_1011_for_that_connection_only() {
    let route = Route::new("/ws")
        .on("boom", |_, _, _: ()| -> () { panic!("handler bug") })
        .on("ping", |ws, _, _: ()| ws.send(&json!({"type": "pong"})));
    let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
    let a = t.connect("/ws").unwrap();
    let b = t.connect("/ws").unwrap();
    t.send_json(a, &json!({"type": "boom"}));
    assert_eq!(t.closed(a).map(|(code, _)| code), Some(1011));
    t.send_json(b, &json!({"type": "ping"}));
    assert_eq!(t.recv_json(b), Some(json!({"type": "pong"})));
    assert!(t.closed(b).is_none());
}

#[test]
fn handler_error_reaches_on_error_and_default_sends_the_envelope() {
    let (mut t, c) = open(
        Route::new("/ws").on("fail", |_, _, _: ()| -> HandlerResultOf {
            Err("room is full".into())
        }),
    );
    t.send_json(c, &json!({"type": "fail"}));
    assert_eq!(
        t.recv_json(c),
        Some(json!({"type": "error", "code": "handler_error", "message": "room is full"}))
    );
    assert!(t.closed(c).is_none());
}

#[test]
fn custom_on_error_replaces_the_default() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let route = Route::new("/ws")
        .on("x", |_, _, _: ()| ())
        .on_error(move |ws, _ctx, e| {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = ws.send(&json!({"oops": e.code.as_str()}));
        });
    let (mut t, c) = open(route);
    t.send_text(c, "garbage");
    t.send_json(c, &json!({"type": "y"}));
    assert_eq!(
        t.drain_json(c),
        vec![
            json!({"oops": "invalid_json"}),
            json!({"oops": "unknown_type"})
        ]
    );
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn close_from_handler_unsubscribes_and_later_sends_fail() {
    let route = Route::new("/ws")
        .on("sub", |ws, _, _: ()| ws.subscribe("t").map(drop))
        .on("quit", |ws, _, _: ()| -> HandlerResultOf {
            ws.close(4000, "bye");
            assert!(!ws.is_open());
            assert_eq!(ws.send(&json!({"late": true})), Err(SocketError::Closed));
            assert!(ws.topics().is_empty());
            Ok(())
        });
    let (mut t, c) = open(route);
    t.send_json(c, &json!({"type": "sub"}));
    assert_eq!(t.server().subscriber_count("t"), 1);
    t.send_json(c, &json!({"type": "quit"}));
    assert_eq!(t.closed(c), Some((4000, "bye".to_owned())));
    assert_eq!(t.server().subscriber_count("t"), 0);
    assert_eq!(t.server().topic_count(), 0);
}

#[test]
fn messages_for_a_closed_or_stale_connection_are_ignored() {
    let mut t = TestServer::new(chat::chat_server());
    let a = t.connect("/ws/echo").unwrap();
    t.disconnect(a, 1000, "");
    let b = t.connect("/ws/echo").unwrap();
    assert_eq!(a.index(), b.index(), "the slot is reused");
    t.send_json(a, &json!({"type": "echo", "message": "ghost"}));
    assert_eq!(t.recv(b), None, "a stale id never reaches the new occupant");
}

#[test]
fn idle_connection_is_pinged_then_closed_1001() {
    let route = Route::new("/ws").limits(Limits::default().idle_timeout(Duration::from_secs(10)));
    let (mut t, c) = open(route);
    t.auto_pong(false);
    t.advance(Duration::from_secs(4));
    assert_eq!(t.pings(c), 0);
    t.advance(Duration::from_secs(2));
    assert_eq!(t.pings(c), 1, "pinged at half the idle timeout");
    assert!(t.closed(c).is_none());
    t.advance(Duration::from_secs(5));
    assert_eq!(t.closed(c).map(|(code, _)| code), Some(1001));
}

#[test]
fn a_connection_that_pongs_or_talks_stays_open() {
    let route = Route::new("/ws")
        .on("x", |_, _, _: ()| ())
        .limits(Limits::default().idle_timeout(Duration::from_secs(10)));
    let (mut t, c) = open(route);
    for _ in 0..10 {
        t.advance(Duration::from_secs(7));
    }
    assert!(t.closed(c).is_none());
    assert!(t.pings(c) >= 5);
    t.auto_pong(false);
    for _ in 0..10 {
        t.advance(Duration::from_secs(3));
        t.send_json(c, &json!({"type": "x"}));
    }
    assert!(t.closed(c).is_none(), "messages count as activity");
}

#[test]
fn topic_limits_are_enforced() {
    let route = Route::new("/ws")
        .limits(Limits::default().max_topics_per_conn(2).max_topic_len(8))
        .on("sub", |ws, _, t: Topic| -> HandlerResultOf {
            ws.subscribe(&t.topic)?;
            Ok(())
        });
    let (mut t, c) = open(route);
    for topic in ["a", "b", "a"] {
        t.send_json(c, &json!({"type": "sub", "topic": topic}));
    }
    assert!(t.drain_json(c).is_empty(), "re-subscribing is not an error");
    t.send_json(c, &json!({"type": "sub", "topic": "c"}));
    assert!(t.recv_json(c).unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("too many topics"));
    t.send_json(c, &json!({"type": "sub", "topic": "way-too-long"}));
    assert!(t.recv_json(c).unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("topic name"));
    assert_eq!(t.server().topics_of(c).len(), 2);
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Topic {
    topic: String,
}
impl wskit::Validate for Topic {}

fn pubsub_route() -> Route<(), Value, ()> {
    Route::new("/ws")
        .on("sub", |ws, _, t: Topic| ws.subscribe(&t.topic).map(drop))
        .on("unsub", |ws, _, t: Topic| {
            ws.unsubscribe(&t.topic);
        })
        .on("pub", |ws, _, t: Topic| {
            ws.publish(&t.topic, &json!({"on": t.topic})).map(drop)
        })
        .on("pub_all", |ws, _, t: Topic| {
            ws.publish_including_self(&t.topic, &json!({"all": t.topic}))
                .map(drop)
        })
}

#[test]
fn publish_excludes_self_publish_including_self_and_handles_reach_everyone() {
    let mut t = TestServer::new(Server::builder().route(pubsub_route()).build().unwrap());
    let a = t.connect("/ws").unwrap();
    let b = t.connect("/ws").unwrap();
    for c in [a, b] {
        t.send_json(c, &json!({"type": "sub", "topic": "t"}));
    }
    t.send_json(a, &json!({"type": "pub", "topic": "t"}));
    assert_eq!((t.drain_json(a).len(), t.drain_json(b).len()), (0, 1));
    t.send_json(a, &json!({"type": "pub_all", "topic": "t"}));
    assert_eq!((t.drain_json(a).len(), t.drain_json(b).len()), (1, 1));
    t.with_handle(|h| h.publish("t", &json!({"from": "http"})).unwrap());
    assert_eq!(t.drain_json(a), vec![json!({"from": "http"})]);
    assert_eq!(t.drain_json(b), vec![json!({"from": "http"})]);
    t.send_json(b, &json!({"type": "unsub", "topic": "t"}));
    t.send_json(a, &json!({"type": "pub_all", "topic": "t"}));
    assert_eq!((t.drain_json(a).len(), t.drain_json(b).len()), (1, 0));
}

#[test]
fn publish_to_self_route_option() {
    let mut t = TestServer::new(
        Server::builder()
            .route(pubsub_route().publish_to_self(true))
            .build()
            .unwrap(),
    );
    let a = t.connect("/ws").unwrap();
    t.send_json(a, &json!({"type": "sub", "topic": "t"}));
    t.send_json(a, &json!({"type": "pub", "topic": "t"}));
    assert_eq!(t.drain_json(a), vec![json!({"on": "t"})]);
}

/// Drives the raw state machine (no harness) to see the outputs an adapter gets.
fn raw_connect(server: &mut Server, now: Instant) -> wskit::ConnId {
    let Decision::Accept(a) =
        server.handle_upgrade(now, &upgrade_request("/ws").body(()).unwrap(), None)
    else {
        panic!("expected accept")
    };
    server.handle_open(now, a.conn);
    a.conn
}

#[test]
fn one_publish_is_one_broadcast_with_one_shared_payload() {
    let mut server = Server::builder().route(pubsub_route()).build().unwrap();
    let now = Instant::now();
    let conns: Vec<_> = (0..100).map(|_| raw_connect(&mut server, now)).collect();
    for &c in &conns {
        server.handle_text(now, c, r#"{"type":"sub","topic":"big"}"#);
    }
    while server.poll_output().is_some() {}
    server.handle_text(now, conns[0], r#"{"type":"pub","topic":"big"}"#);
    let outputs: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let Output::Broadcast { conns: to, message } = &outputs[0] else {
        panic!("{outputs:?}")
    };
    assert_eq!(to.len(), 99);
    assert!(!to.contains(&conns[0]));
    assert_eq!(message.as_text(), Some(r#"{"on":"big"}"#));
}

#[test]
fn slow_consumer_is_closed_and_unsubscribed_everywhere() {
    let mut server = Server::builder().route(pubsub_route()).build().unwrap();
    let now = Instant::now();
    let slow = raw_connect(&mut server, now);
    let ok = raw_connect(&mut server, now);
    for c in [slow, ok] {
        server.handle_text(now, c, r#"{"type":"sub","topic":"a"}"#);
        server.handle_text(now, c, r#"{"type":"sub","topic":"b"}"#);
    }
    while server.poll_output().is_some() {}
    server.handle_slow_consumer(now, slow);
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(out.as_slice(), [Output::Close { code: 1008, conn, .. }] if *conn == slow),
        "{out:?}"
    );
    assert_eq!(server.subscribers("a"), &[ok]);
    assert_eq!(server.subscribers("b"), &[ok]);
    server.handle_text(now, ok, r#"{"type":"pub_all","topic":"a"}"#);
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(out.as_slice(), [Output::Broadcast { conns, .. }] if conns == &vec![ok]),
        "{out:?}"
    );
}

#[test]
fn shutdown_closes_everyone_with_1001() {
    let mut t = TestServer::new(chat::chat_server());
    let a = t.connect("/ws/echo").unwrap();
    let b = t.connect("/ws/chat?token=tok-b").unwrap();
    t.send_json(b, &json!({"type": "join_room", "roomId": "r"}));
    let now = t.now();
    t.server().shutdown(now);
    let closes: Vec<Output> = std::iter::from_fn(|| t.server().poll_output()).collect();
    assert_eq!(closes.len(), 2);
    assert!(closes
        .iter()
        .all(|o| matches!(o, Output::Close { code: 1001, .. })));
    assert_eq!(t.server().topic_count(), 0);
    for c in [a, b] {
        t.server().handle_closed(now, c, 1001, "");
    }
    assert_eq!(t.server().connection_count(), 0);
}

#[test]
fn on_connect_can_send_and_subscribe_and_sees_remote_addr() {
    let route = Route::new("/ws").on_connect(|ws, ctx| -> HandlerResultOf {
        ws.subscribe("lobby")?;
        ws.send(&json!({"welcome": ctx.remote_addr.map(|a| a.to_string())}))?;
        Ok(())
    });
    let (mut t, c) = open(route);
    assert_eq!(t.recv_json(c), Some(json!({"welcome": "127.0.0.1:40000"})));
    assert_eq!(t.server().subscriber_count("lobby"), 1);
}

#[test]
fn backplane_events_report_topic_edges_and_local_publishes() {
    let mut server = Server::builder()
        .backplane_events(true)
        .route(pubsub_route())
        .build()
        .unwrap();
    let now = Instant::now();
    let a = raw_connect(&mut server, now);
    let b = raw_connect(&mut server, now);
    server.handle_text(now, a, r#"{"type":"sub","topic":"t"}"#);
    server.handle_text(now, b, r#"{"type":"sub","topic":"t"}"#);
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(out.as_slice(), [Output::TopicActive { topic }] if &**topic == "t"),
        "only the first subscriber: {out:?}"
    );
    server.handle_text(now, a, r#"{"type":"pub","topic":"t"}"#);
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(
            out.as_slice(),
            [Output::Published { .. }, Output::Broadcast { .. }]
        ),
        "{out:?}"
    );
    // A remote publish is delivered locally and not forwarded again.
    assert_eq!(server.handle_remote_publish("t", Message::text("{}")), 2);
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(out.as_slice(), [Output::Broadcast { .. }]),
        "{out:?}"
    );
    server.handle_closed(now, a, 1000, "");
    server.handle_closed(now, b, 1000, "");
    let out: Vec<Output> = std::iter::from_fn(|| server.poll_output()).collect();
    assert!(
        matches!(out.as_slice(), [Output::TopicInactive { topic }] if &**topic == "t"),
        "{out:?}"
    );
}

#[test]
fn async_handlers_run_off_the_core_and_apply_effects_in_order() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Lookup {
        key: String,
    }
    impl wskit::Validate for Lookup {}
    let route = Route::new("/ws")
        .authenticate(wskit::TokenAuth::new_sync(|t: String| Some(t)))
        .on_async("lookup", |ws, ctx, q: Lookup| async move {
            // Pretend to await a database here.
            std::future::ready(()).await;
            ws.subscribe(&format!("user:{}", ctx.user));
            ws.send(&json!({"key": q.key, "user": ctx.user}))?;
            Ok::<(), SocketError>(())
        })
        .on_async(
            "fail",
            |_ws, _ctx, _: ()| async move { Err::<(), _>("db down") },
        );
    let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
    let c = t.connect("/ws?token=ann").unwrap();
    t.send_json(c, &json!({"type": "lookup", "key": "k1"}));
    assert_eq!(t.recv_json(c), Some(json!({"key": "k1", "user": "ann"})));
    assert_eq!(t.server().subscriber_count("user:ann"), 1);
    t.send_json(c, &json!({"type": "fail"}));
    assert_eq!(
        t.recv_json(c),
        Some(json!({"type": "error", "code": "handler_error", "message": "db down"}))
    );
    t.send_json(c, &json!({"type": "lookup"}));
    assert_eq!(
        t.recv_json(c).unwrap()["code"],
        "validation_failed",
        "validated before spawning"
    );
}

#[test]
fn per_connection_data_persists_across_messages() {
    #[derive(Default)]
    struct Count(u32);
    let route = Route::new("/ws")
        .data::<Count>()
        .on("inc", |ws, ctx, _: ()| {
            ctx.data.0 += 1;
            ws.send(&json!(ctx.data.0))
        });
    let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
    let a = t.connect("/ws").unwrap();
    let b = t.connect("/ws").unwrap();
    for _ in 0..3 {
        t.send_json(a, &json!({"type": "inc"}));
    }
    t.send_json(b, &json!({"type": "inc"}));
    assert_eq!(t.drain_json(a), vec![json!(1), json!(2), json!(3)]);
    assert_eq!(t.drain_json(b), vec![json!(1)]);
}
