//! Criterion benches of the core state machine (no sockets): route match and handshake, envelope
//! dispatch against bare serde_json (the floor), publish fan-out per subscriber, topic churn.

#[path = "../../core/tests/common/chat.rs"]
#[allow(dead_code)]
mod chat;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Deserialize;
use std::hint::black_box;
use std::time::Instant;
use wskit::testing::upgrade_request;
use wskit::{ConnId, Decision, Output, Route, Server, Validate};

fn accept(server: &mut Server, uri: &str) -> ConnId {
    let req = upgrade_request(uri).body(()).unwrap();
    let now = Instant::now();
    let conn = match server.handle_upgrade(now, &req, None) {
        Decision::Accept(a) => a.conn,
        Decision::Authenticate(mut p) => {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(user) = p.verify.as_mut().poll(&mut cx) else {
                panic!("sync verifier")
            };
            match server.complete_auth(now, p.ticket, user) {
                Decision::Accept(a) => a.conn,
                other => panic!("{other:?}"),
            }
        }
        Decision::Reject(r) => panic!("{r:?}"),
    };
    server.handle_open(now, conn);
    conn
}

fn drain(server: &mut Server) -> usize {
    let mut n = 0;
    while let Some(o) = server.poll_output() {
        if let Output::Broadcast { conns, .. } = &o {
            n += conns.len();
        }
        black_box(o);
    }
    n
}

fn handshake(c: &mut Criterion) {
    let mut server = chat::chat_server();
    let req = upgrade_request("/ws/chat?token=tok-alice")
        .header("origin", "http://localhost")
        .body(())
        .unwrap();
    c.bench_function("handshake/decision with token extraction", |b| {
        b.iter(|| {
            let now = Instant::now();
            match server.handle_upgrade(now, black_box(&req), None) {
                Decision::Authenticate(p) => black_box(p.ticket),
                other => panic!("{other:?}"),
            };
        })
    });
    let mut server = Server::builder()
        .route(Route::new("/ws/echo"))
        .route(Route::new("/ws/chat"))
        .route(Route::new("/ws/rooms/:roomId"))
        .route(Route::new("/ws/games/:gameId/players/:playerId"))
        .build()
        .unwrap();
    let miss = upgrade_request("/ws/games/g1/players/p1/extra")
        .body(())
        .unwrap();
    c.bench_function("handshake/route miss (404)", |b| {
        b.iter(|| black_box(server.handle_upgrade(Instant::now(), black_box(&miss), None)))
    });
    // A hit that extracts two parameters, then stops at the upgrade check (a plain GET gets
    // 426): the route match alone, with no connection state created.
    let hit = http::Request::get("/ws/games/g1/players/p1")
        .header("host", "localhost")
        .body(())
        .unwrap();
    c.bench_function(
        "handshake/route hit with 2 params (426, not an upgrade)",
        |b| {
            b.iter(|| {
                let d = server.handle_upgrade(Instant::now(), black_box(&hit), None);
                assert!(matches!(&d, Decision::Reject(_)));
                black_box(d)
            })
        },
    );
    // The whole life of a connection in the core, no auth: decide, open, close.
    let open = upgrade_request("/ws/rooms/lobby").body(()).unwrap();
    c.bench_function("handshake/accept + open + close (no auth)", |b| {
        b.iter(|| {
            let now = Instant::now();
            let Decision::Accept(a) = server.handle_upgrade(now, black_box(&open), None) else {
                panic!("no auth on this route")
            };
            server.handle_open(now, a.conn);
            server.handle_closed(now, a.conn, 1000, "");
            drain(&mut server);
        })
    });
}

/// The chat message with its `type`, as a plain serde struct: the floor the core is measured against.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BareChatMessage {
    #[serde(rename = "type")]
    kind: String,
    room_id: String,
    message: String,
}

fn dispatch(c: &mut Criterion) {
    let text = r#"{"type":"chat_message","roomId":"lobby","message":"Hello everyone, how is it going today?"}"#;
    let mut group = c.benchmark_group("dispatch/chat_message");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "bare serde_json::from_slice, struct with a type field",
        |b| {
            b.iter(|| {
                black_box(
                    serde_json::from_slice::<BareChatMessage>(black_box(text.as_bytes())).unwrap(),
                )
            })
        },
    );
    group.bench_function(
        "bare serde_json::from_slice, same struct as the handler",
        |b| {
            b.iter(|| {
                black_box(
                    serde_json::from_slice::<chat::ChatMessage>(black_box(text.as_bytes()))
                        .unwrap(),
                )
            })
        },
    );
    group.bench_function("serde_json + validate", |b| {
        b.iter(|| {
            let m: chat::ChatMessage = serde_json::from_slice(black_box(text.as_bytes())).unwrap();
            black_box(wskit::Validator::run(&m));
            black_box(m)
        })
    });
    let route = Route::new("/ws")
        .on("join_room", |_, _, m: chat::JoinRoom| {
            black_box(m);
        })
        .on("typing", |_, _, m: chat::Typing| {
            black_box(m);
        })
        .on("chat_message", |_, _, m: chat::ChatMessage| {
            black_box(m);
        });
    let mut server = Server::builder().route(route).build().unwrap();
    let conn = accept(&mut server, "/ws");
    let now = Instant::now();
    group.bench_function("wskit handle_text (parse + validate + dispatch)", |b| {
        b.iter(|| server.handle_text(now, conn, black_box(text)))
    });
    group.finish();
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Topic {
    topic: String,
}
impl Validate for Topic {}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    for payload in [64usize, 4096] {
        for subscribers in [1usize, 100, 10_000] {
            let body = "x".repeat(payload);
            let route = Route::new("/ws")
                .on("sub", |ws, _, t: Topic| ws.subscribe(&t.topic).map(drop))
                .on("pub", move |ws, _, t: Topic| {
                    ws.publish(&t.topic, &serde_json::json!({ "b": body }))
                        .map(drop)
                });
            let mut server = Server::builder()
                .route(route)
                .limits(wskit::Limits::default())
                .build()
                .unwrap();
            let now = Instant::now();
            let publisher = accept(&mut server, "/ws");
            for _ in 0..subscribers {
                let c = accept(&mut server, "/ws");
                server.handle_text(now, c, r#"{"type":"sub","topic":"room"}"#);
            }
            drain(&mut server);
            group.throughput(Throughput::Elements(subscribers as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("payload {payload} B"), subscribers),
                &subscribers,
                |b, &n| {
                    b.iter(|| {
                        server.handle_text(now, publisher, r#"{"type":"pub","topic":"room"}"#);
                        assert_eq!(drain(&mut server), n);
                    })
                },
            );
        }
    }
    group.finish();
}

fn churn(c: &mut Criterion) {
    let route = Route::new("/ws")
        .on("sub", |ws, _, t: Topic| ws.subscribe(&t.topic).map(drop))
        .on("unsub", |ws, _, t: Topic| {
            ws.unsubscribe(&t.topic);
        });
    let mut server = Server::builder().route(route).build().unwrap();
    let now = Instant::now();
    let conns: Vec<ConnId> = (0..1000).map(|_| accept(&mut server, "/ws")).collect();
    for (i, &c) in conns.iter().enumerate() {
        let t = format!(r#"{{"type":"sub","topic":"room:{}"}}"#, i % 10);
        server.handle_text(now, c, &t);
    }
    let me = conns[0];
    c.bench_function("topics/subscribe+unsubscribe in a 100-member room", |b| {
        b.iter(|| {
            server.handle_text(now, me, r#"{"type":"sub","topic":"room:5"}"#);
            server.handle_text(now, me, r#"{"type":"unsub","topic":"room:5"}"#);
        })
    });
}

/// The chat example's own `chat_message` handler in one room of 200 (the `wsbench room` setup):
/// envelope, validation, building and serializing the `message` event once, and the recipient
/// list of 199. What the core costs per published chat message, before any socket.
fn chat_room(c: &mut Criterion) {
    let jwt = wskit_chat::Jwt::new(wskit_chat::DEV_SECRET);
    let mut server = wskit_chat::build_server(&wskit_chat::ChatConfig {
        jwt: jwt.clone(),
        allowed_origins: Vec::new(),
        backplane: false,
    })
    .unwrap();
    let now = Instant::now();
    let members: Vec<ConnId> = (0..200)
        .map(|i| {
            let uri = format!("/ws/chat?token={}", jwt.mint(&format!("u{i}"), "u@x", 3600));
            let conn = accept(&mut server, &uri);
            server.handle_text(now, conn, r#"{"type":"join_room","roomId":"bench"}"#);
            conn
        })
        .collect();
    drain(&mut server);
    let text = r#"{"type":"chat_message","roomId":"bench","message":"wsb:0:12345:678901234:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let mut group = c.benchmark_group("chat");
    group.throughput(Throughput::Elements(199));
    group.bench_function("chat_message to a room of 200 (per delivery)", |b| {
        b.iter(|| {
            server.handle_text(now, members[0], black_box(text));
            assert_eq!(drain(&mut server), 199);
        })
    });
    group.finish();
}

criterion_group!(benches, handshake, dispatch, publish, churn, chat_room);
criterion_main!(benches);
