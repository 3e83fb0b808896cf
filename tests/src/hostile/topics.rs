//! Topic abuse: subscribing to everything, and topic names of any size. The core bounds both
//! per connection (`Limits::max_topics_per_conn`, `Limits::max_topic_len`): a refused
//! subscribe is an `Err` from `ws.subscribe`, which a handler that uses `?` turns into the
//! `handler_error` envelope; the connection stays open.

use super::app::{MAX_TOPICS, MAX_TOPIC_LEN};
use super::{heavy, start, typed_client};
use crate::adapter::Adapter;
use crate::client::{recv_json, send_json, sync};
use serde_json::{json, Value};
use std::time::Instant;
use tungstenite::Message;

/// A million subscribes are bounded by `max_topics_per_conn`: one handler trying a million
/// topics holds exactly the limit (every further attempt refused, cheaply), and a client
/// sending 20,000 `join`s gets `joined` for the first ones and `handler_error` ("too many
/// topics") for the rest, stays open, and can join again after leaving one.
pub fn a_million_subscribes_are_bounded<A: Adapter>() {
    const WIRE_JOINS: usize = 20_000;
    let _heavy = heavy();
    let (server, _) = start::<A>();
    let addr = server.addr();
    let (mut ws, _) = typed_client(addr, "/h/json");
    let started = Instant::now();
    send_json(
        &mut ws,
        &json!({"type": "subscribe_many", "prefix": "m", "count": 1_000_000}),
    );
    let v = recv_json(&mut ws);
    let took = started.elapsed();
    assert_eq!(v["ok"], MAX_TOPICS as u64, "{v}");
    assert_eq!(v["refused"], 1_000_000 - MAX_TOPICS as u64, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("too many topics"),
        "{v}"
    );
    eprintln!("{}: a million subscribes in one handler: {took:?}", A::NAME);

    let (mut flooder, _) = typed_client(addr, "/h/json");
    let mut writer = flooder.get_ref().try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let mut out = Vec::new();
        for i in 0..WIRE_JOINS {
            let text = json!({"type": "join", "room": format!("w{i}")}).to_string();
            out.extend(super::wire::frame(0x81, text.as_bytes()));
        }
        std::io::Write::write_all(&mut writer, &out).expect("joins");
    });
    let (mut joined, mut refused) = (0usize, 0usize);
    for _ in 0..WIRE_JOINS {
        let v = recv_json(&mut flooder);
        match v["type"].as_str() {
            Some("joined") => joined += 1,
            Some("error") => {
                assert_eq!(v["code"], "handler_error", "{v}");
                assert!(v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("too many topics"));
                refused += 1;
            }
            _ => panic!("unexpected {v}"),
        }
    }
    sender.join().expect("sent");
    assert_eq!((joined, refused), (MAX_TOPICS, WIRE_JOINS - MAX_TOPICS));
    send_json(&mut flooder, &json!({"type": "topics"}));
    assert_eq!(recv_json(&mut flooder)["count"], MAX_TOPICS);
    send_json(&mut flooder, &json!({"type": "leave", "room": "w0"}));
    assert_eq!(recv_json(&mut flooder)["type"], "left");
    send_json(&mut flooder, &json!({"type": "join", "room": "again"}));
    assert_eq!(recv_json(&mut flooder)["type"], "joined");
    eprintln!(
        "{}: {WIRE_JOINS} joins on the wire: {:?}",
        A::NAME,
        started.elapsed()
    );
}

/// Topic names are limited in bytes (`max_topic_len`), not characters: a name at the limit is
/// accepted, one byte more (or a multi-byte character over it) is refused with
/// `handler_error` whose message does not echo the name; an empty name is refused; a publish
/// to a huge name nobody holds is harmless.
pub fn huge_topic_names_are_refused<A: Adapter>() {
    let (server, _) = start::<A>();
    let (mut ws, _) = typed_client(server.addr(), "/h/json");
    let join = |ws: &mut crate::client::Ws, room: &str| -> Value {
        ws.send(Message::text(
            json!({"type": "join", "room": room}).to_string(),
        ))
        .expect("send");
        recv_json(ws)
    };
    for ok in ["t".repeat(MAX_TOPIC_LEN), "é".repeat(MAX_TOPIC_LEN / 2)] {
        assert_eq!(join(&mut ws, &ok)["type"], "joined");
    }
    for bad in [
        "t".repeat(MAX_TOPIC_LEN + 1),
        "é".repeat(MAX_TOPIC_LEN / 2 + 1),
        "x".repeat(900 * 1024),
        String::new(),
    ] {
        let v = join(&mut ws, &bad);
        assert_eq!(v["code"], "handler_error", "{v:.200}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.len() < 128, "{} bytes", message.len());
    }
    let huge = "p".repeat(900 * 1024);
    send_json(
        &mut ws,
        &json!({"type": "publish", "room": huge, "from": "me", "seq": 0}),
    );
    assert!(sync(&mut ws, "still open").is_empty());
}
