//! Topics: fan-out once and in order, the publisher excluded, unsubscribe, server-wide
//! publish, and the slow consumer cut off without hurting anyone else.

use super::{start, welcome};
use crate::adapter::Adapter;
use crate::app::AppEvent;
use crate::client::{connect, expect_close, recv_json, send_json, sync, Ws, TIMEOUT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use tungstenite::Message;

fn joined(addr: SocketAddr, path: &str, room: &str) -> (Ws, String) {
    let mut ws = connect(addr, path);
    let id = welcome(&mut ws);
    send_json(&mut ws, &json!({"type": "join", "room": room}));
    assert_eq!(recv_json(&mut ws), json!({"type": "joined", "room": room}));
    (ws, id)
}

/// Many subscribers each receive every message of a publisher exactly once and in order; the
/// publisher (subscribed too) receives none of its own.
pub fn fan_out_once_in_order_excluding_publisher<A: Adapter>() {
    const SUBSCRIBERS: usize = 8;
    const MESSAGES: u64 = 200;
    let (server, _) = start::<A>();
    let addr = server.addr();
    let subscribers: Vec<Ws> = (0..SUBSCRIBERS)
        .map(|_| joined(addr, "/ws/echo", "room").0)
        .collect();
    let (mut publisher, _) = joined(addr, "/ws/echo", "room");
    for seq in 0..MESSAGES {
        send_json(
            &mut publisher,
            &json!({"type": "publish", "room": "room", "seq": seq}),
        );
    }
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut ws| {
            thread::spawn(move || {
                for seq in 0..MESSAGES {
                    let v = recv_json(&mut ws);
                    assert_eq!(v, json!({"type": "published", "room": "room", "seq": seq}));
                }
                // Exactly once: nothing else is waiting before the echo.
                assert_eq!(sync(&mut ws, "done"), Vec::<Value>::new());
            })
        })
        .collect();
    for r in readers {
        r.join()
            .expect("subscriber saw every message once, in order");
    }
    assert_eq!(sync(&mut publisher, "mine?"), Vec::<Value>::new());
}

/// After `leave`, a connection receives nothing more from the topic.
pub fn unsubscribe_stops_delivery<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let (mut stays, _) = joined(addr, "/ws/echo", "r");
    let (mut leaves, _) = joined(addr, "/ws/echo", "r");
    let (mut publisher, _) = joined(addr, "/ws/echo", "other");
    send_json(&mut leaves, &json!({"type": "leave", "room": "r"}));
    assert_eq!(recv_json(&mut leaves), json!({"type": "left", "room": "r"}));
    send_json(
        &mut publisher,
        &json!({"type": "publish", "room": "r", "seq": 1}),
    );
    assert_eq!(recv_json(&mut stays)["seq"], 1);
    // `stays` got it, so the publish is done: `leaves` must have nothing before its echo.
    assert_eq!(sync(&mut leaves, "empty"), Vec::<Value>::new());
}

/// A publish through the `ServerHandle` (an HTTP endpoint, another thread) reaches every
/// subscriber.
pub fn server_wide_publish_reaches_everyone<A: Adapter>() {
    let (server, observer) = start::<A>();
    let addr = server.addr();
    let mut clients: Vec<Ws> = (0..3).map(|_| joined(addr, "/ws/echo", "news").0).collect();
    observer
        .handle
        .publish("news", &json!({"type": "announcement"}))
        .expect("serializable");
    for ws in &mut clients {
        assert_eq!(recv_json(ws), json!({"type": "announcement"}));
    }
}

/// How far the fast readers' progress is tracked: the publisher stays at most `WINDOW` messages
/// ahead of the slowest one, so a busy test machine cannot make them look slow.
struct Progress {
    read: Mutex<Vec<u64>>,
    advanced: Condvar,
}

impl Progress {
    fn set(&self, reader: usize, count: u64) {
        self.read.lock().unwrap()[reader] = count;
        self.advanced.notify_all();
    }

    fn wait_until_within(&self, sent: u64, window: u64) {
        let guard = self.read.lock().unwrap();
        let (_guard, timeout) = self
            .advanced
            .wait_timeout_while(guard, TIMEOUT, |read| {
                sent.saturating_sub(read.iter().copied().min().unwrap_or(0)) > window
            })
            .unwrap();
        assert!(!timeout.timed_out(), "fast subscribers stopped reading");
    }
}

/// A subscriber that never reads is cut off once its queue passes the limit: closed with
/// 1008 and unsubscribed, while the other subscribers receive everything and the publisher
/// is never blocked.
pub fn slow_consumer_is_cut_off<A: Adapter>() {
    const MESSAGES: u64 = 1024;
    const SIZE: usize = 16 * 1024;
    const WINDOW: u64 = 8; // 128 KiB in flight per fast reader, well under the 512 KiB limit
    let (server, observer) = start::<A>();
    let addr = server.addr();
    let (mut slow, slow_id) = joined(addr, "/ws/slow", "firehose");
    let progress = Arc::new(Progress {
        read: Mutex::new(vec![0; 2]),
        advanced: Condvar::new(),
    });
    let fast: Vec<_> = (0..2)
        .map(|reader| {
            let (mut ws, _) = joined(addr, "/ws/slow", "firehose");
            let progress = progress.clone();
            thread::spawn(move || {
                for seq in 0..MESSAGES {
                    let v = recv_json(&mut ws);
                    assert_eq!(v["seq"], seq);
                    progress.set(reader, seq + 1);
                }
                ws
            })
        })
        .collect();
    let mut publisher = connect(addr, "/ws/slow");
    welcome(&mut publisher);
    let pad = "x".repeat(SIZE);
    for seq in 0..MESSAGES {
        progress.wait_until_within(seq, WINDOW);
        send_json(
            &mut publisher,
            &json!({"type": "publish", "room": "firehose", "seq": seq, "pad": pad}),
        );
    }
    // The publisher was never blocked and is still served.
    assert!(sync(&mut publisher, "publisher fine").is_empty());
    for f in fast {
        let mut ws = f.join().expect("fast subscribers got everything in order");
        assert!(sync(&mut ws, "fast fine").is_empty());
    }
    // The slow one now reads: what the kernel buffered, then the close (well framed).
    let closed = expect_close(&mut slow);
    assert_eq!(closed.code, Some(1008));
    let got = closed.messages.len() as u64;
    assert!(
        got < MESSAGES,
        "the slow consumer was not cut off ({got} messages)"
    );
    eprintln!(
        "{}: the slow consumer got {got} of {MESSAGES} messages",
        A::NAME
    );
    for (i, m) in closed.messages.iter().enumerate() {
        let Message::Text(t) = m else {
            panic!("unexpected {m:?}")
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("whole JSON frames");
        assert_eq!(v["seq"], i as u64);
    }
    observer.wait_for(|e| {
        *e == AppEvent::Closed {
            id: slow_id.clone(),
            code: 1008,
        }
    });
}
