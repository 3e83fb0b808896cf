//! Two and three nodes in one process, each a wskit-tokio server with its own Redis backplane,
//! against a private redis-server; clients are blocking tungstenite over loopback.

mod support;

use serde_json::json;
use std::time::Duration;
use support::{init_tracing, runtime, senders, seqs_from, Client, Node, RedisServer, BINARY_TOPIC};
use tungstenite::Message;

const N: u64 = 100;

#[test]
fn two_nodes_fan_out_exactly_once_in_order_publisher_excluded() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "t1:";
    let a = rt.block_on(Node::start(&redis.url(), prefix));
    let b = rt.block_on(Node::start(&redis.url(), prefix));

    let mut a1 = Client::connect(&a);
    let mut a2 = Client::connect(&a);
    let mut b1 = Client::connect(&b);
    let mut b2 = Client::connect(&b);
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        c.join("room");
    }
    redis.wait_numsub("t1:room", 2);

    // Two senders on different nodes, interleaved.
    for seq in 0..N {
        a1.publish("room", "a1", seq);
        b1.publish("room", "b1", seq);
    }
    let in_order: Vec<u64> = (0..N).collect();
    for (name, client, expect_a1, expect_b1) in [
        ("a1", &mut a1, false, true),
        ("a2", &mut a2, true, true),
        ("b1", &mut b1, true, false),
        ("b2", &mut b2, true, true),
    ] {
        let n = (expect_a1 as usize + expect_b1 as usize) * N as usize;
        let mut msgs = client.recv_msgs(n);
        msgs.extend(client.drain());
        assert_eq!(msgs.len(), n, "{name}: exactly once, nothing extra");
        let from_a1 = seqs_from(&msgs, "a1");
        let from_b1 = seqs_from(&msgs, "b1");
        assert_eq!(
            from_a1,
            if expect_a1 { in_order.clone() } else { vec![] },
            "{name} from a1"
        );
        assert_eq!(
            from_b1,
            if expect_b1 { in_order.clone() } else { vec![] },
            "{name} from b1"
        );
    }

    // Each node published N frames, got the other's N, and dropped its own N echoes.
    for node in [&a, &b] {
        let s = node.stats();
        assert_eq!(s.published, N, "{s:?}");
        assert_eq!(s.received, N, "{s:?}");
        assert_eq!(s.echoes, N, "{s:?}");
        assert_eq!(
            (s.dropped_queue_full, s.dropped_disconnected),
            (0, 0),
            "{s:?}"
        );
    }
    drop((a1, a2, b1, b2)); // closed sockets let the shutdown drain at once
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn three_nodes_only_subscribed_nodes_receive_and_binary_crosses() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "t3:";
    let nodes: Vec<Node> = (0..3)
        .map(|_| rt.block_on(Node::start(&redis.url(), prefix)))
        .collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    let mut publisher = Client::connect(a);
    let mut on_b = Client::connect(b);
    let mut on_c = Client::connect(c);
    let mut bystander = Client::connect(c); // on a subscribed node, not in the room
    on_b.join("room");
    on_c.join("room");
    bystander.join("elsewhere");
    redis.wait_numsub("t3:room", 2); // b and c; a has no local subscriber
    redis.wait_numsub("t3:elsewhere", 1);

    for seq in 0..N {
        publisher.publish("room", "p", seq);
    }
    let in_order: Vec<u64> = (0..N).collect();
    for client in [&mut on_b, &mut on_c] {
        let mut msgs = client.recv_msgs(N as usize);
        msgs.extend(client.drain());
        assert_eq!(seqs_from(&msgs, "p"), in_order);
        assert_eq!(msgs.len(), N as usize);
    }
    assert!(bystander.drain().is_empty());
    assert!(publisher.drain().is_empty(), "the publisher is excluded");
    // Node a is not subscribed to the room: Redis never sent it anything.
    assert_eq!(a.stats().echoes, 0);
    assert_eq!(a.stats().received, 0);

    // Binary frames keep their kind and bytes across nodes.
    let mut bin_b = Client::connect(b);
    let mut bin_a = Client::connect(a);
    bin_b.join(BINARY_TOPIC);
    bin_a.join(BINARY_TOPIC);
    redis.wait_numsub(&format!("{prefix}{BINARY_TOPIC}"), 2);
    let payload = [0u8, 1, 2, 0xff, 0xfe, b'x'];
    publisher.send_binary(&payload);
    for client in [&mut bin_a, &mut bin_b] {
        match client.recv() {
            Message::Binary(data) => assert_eq!(&data[..], &payload),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    drop((publisher, on_b, on_c, bystander, bin_a, bin_b));
    rt.block_on(async {
        for node in nodes {
            node.stop().await;
        }
    });
}

#[test]
fn server_wide_publish_reaches_every_node_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "sw:";
    let nodes: Vec<Node> = (0..3)
        .map(|_| rt.block_on(Node::start(&redis.url(), prefix)))
        .collect();
    let mut clients: Vec<Client> = nodes
        .iter()
        .flat_map(|n| [Client::connect(n), Client::connect(n)])
        .collect();
    for c in &mut clients {
        c.join("news");
    }
    redis.wait_numsub("sw:news", 3);

    // Like an HTTP endpoint on node 0: nobody is excluded, on any node.
    let handle = nodes[0].running.handle().server_handle();
    for seq in 0..10u64 {
        handle
            .publish(
                "news",
                &json!({"type": "msg", "from": "server", "seq": seq}),
            )
            .unwrap();
    }
    for c in &mut clients {
        let mut msgs = c.recv_msgs(10);
        msgs.extend(c.drain());
        assert_eq!(seqs_from(&msgs, "server"), (0..10).collect::<Vec<_>>());
        assert_eq!(msgs.len(), 10);
    }
    drop(clients);
    rt.block_on(async {
        for node in nodes {
            node.stop().await;
        }
    });
}

#[test]
fn redis_subscriptions_follow_local_subscribers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "rc:";
    let a = rt.block_on(Node::start(&redis.url(), prefix));
    let b = rt.block_on(Node::start(&redis.url(), prefix));
    assert!(redis.channels("rc:*").is_empty());

    let mut x = Client::connect(&a);
    let mut y = Client::connect(&a);
    x.join("r1");
    redis.wait_numsub("rc:r1", 1);
    assert_eq!(redis.channels("rc:*"), vec!["rc:r1"]);
    y.join("r1"); // second local subscriber: still one Redis subscription for the node
    y.join("r2");
    redis.wait_numsub("rc:r2", 1);
    assert_eq!(redis.numsub("rc:r1"), 1);
    assert_eq!(redis.channels("rc:*"), vec!["rc:r1", "rc:r2"]);

    let mut z = Client::connect(&b);
    z.join("r1");
    redis.wait_numsub("rc:r1", 2); // one per node

    x.leave("r1"); // y still holds r1 on node a
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(redis.numsub("rc:r1"), 2);

    y.close(); // the last local subscriber of r1 and r2 on a goes away
    redis.wait_numsub("rc:r1", 1);
    redis.wait_numsub("rc:r2", 0);
    assert_eq!(redis.channels("rc:*"), vec!["rc:r1"]);
    assert_eq!(a.stats().subscribed_topics, 0);

    z.leave("r1");
    redis.wait_numsub("rc:r1", 0);
    assert!(redis.channels("rc:*").is_empty());

    // Many join/leave flips from two threads' worth of connections end consistent.
    let mut flip: Vec<Client> = (0..4).map(|_| Client::connect(&b)).collect();
    for round in 0..20 {
        for c in &mut flip {
            if round % 2 == 0 {
                c.join("flip");
            } else {
                c.leave("flip");
            }
        }
    }
    redis.wait_numsub("rc:flip", 0);
    flip[0].join("flip");
    redis.wait_numsub("rc:flip", 1);
    drop((x, z, flip));
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn redis_restart_local_delivery_continues_and_cross_node_resumes() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "rs:";
    let a = rt.block_on(Node::start(&redis.url(), prefix));
    let b = rt.block_on(Node::start(&redis.url(), prefix));
    let mut a1 = Client::connect(&a);
    let mut a2 = Client::connect(&a);
    let mut b1 = Client::connect(&b);
    for c in [&mut a1, &mut a2, &mut b1] {
        c.join("room");
    }
    redis.wait_numsub("rs:room", 2);
    a1.publish("room", "a1", 0);
    assert_eq!(senders(&a2.recv_msgs(1)), [("a1".to_owned(), 0)]);
    assert_eq!(senders(&b1.recv_msgs(1)), [("a1".to_owned(), 0)]);

    redis.kill();
    // The outage: local delivery goes on; nothing crosses, nothing is queued for later.
    for seq in 1..=5 {
        a1.publish("room", "a1", seq);
    }
    let local = a2.recv_msgs(5);
    assert_eq!(seqs_from(&local, "a1"), vec![1, 2, 3, 4, 5]);
    // Joining during the outage: the topic is subscribed on reconnect.
    let mut b2 = Client::connect(&b);
    b2.join("late");
    assert!(b1.drain().is_empty(), "nothing crosses while Redis is down");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.handle().is_connected() || b.handle().is_connected() {
        assert!(std::time::Instant::now() < deadline, "outage not noticed");
        std::thread::sleep(Duration::from_millis(10));
    }

    redis.restart();
    a.wait_connected();
    b.wait_connected();
    redis.wait_numsub("rs:room", 2);
    redis.wait_numsub("rs:late", 1);
    for seq in 6..=8 {
        a1.publish("room", "a1", seq);
    }
    b1.publish("room", "b1", 0);
    let mut msgs = b1.recv_msgs(3);
    msgs.extend(b1.drain());
    assert_eq!(
        seqs_from(&msgs, "a1"),
        vec![6, 7, 8],
        "resubscribed, nothing replayed"
    );
    assert_eq!(msgs.len(), 3);
    let mut msgs = a2.recv_msgs(4);
    msgs.extend(a2.drain());
    assert_eq!(seqs_from(&msgs, "a1"), vec![6, 7, 8]);
    assert_eq!(seqs_from(&msgs, "b1"), vec![0]);
    let mut late_on_a = Client::connect(&a);
    late_on_a.join("late");
    redis.wait_numsub("rs:late", 2);
    b2.publish("late", "b2", 1);
    assert_eq!(senders(&late_on_a.recv_msgs(1)), [("b2".to_owned(), 1)]);

    let s = a.stats();
    assert!(s.connects >= 2, "{s:?}");
    assert!(s.dropped_disconnected + s.dropped_failed >= 5, "{s:?}");
    drop((a1, a2, b1, b2, late_on_a));
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn a_node_starts_before_redis_and_connects_later() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let url = redis.url();
    redis.kill();
    let rt = runtime();
    // `connect` fails fast with a clear error; `build` starts anyway and retries.
    let err = rt
        .block_on(wskit_redis::Backplane::builder(&url).connect())
        .unwrap_err();
    assert!(matches!(err, wskit_redis::Error::Connect { .. }), "{err}");
    let bad = wskit_redis::Backplane::builder("http://nope")
        .build()
        .unwrap_err();
    assert!(
        matches!(bad, wskit_redis::Error::InvalidUrl { .. }),
        "{bad}"
    );

    let backplane = wskit_redis::Backplane::builder(&url)
        .prefix("late:")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .unwrap();
    let handle = backplane.handle();
    let server = wskit::Server::builder()
        .backplane_events(true)
        .build()
        .unwrap();
    let node = rt.block_on(async {
        let h = wskit_tokio::Builder::new(server)
            .backplane(backplane.sink())
            .start();
        backplane.spawn(h.clone());
        h
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!handle.is_connected());
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !handle.is_connected() {
        assert!(std::time::Instant::now() < deadline, "never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The server shutting down ends the task.
    rt.block_on(node.shutdown());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handle.is_connected() {
        assert!(
            std::time::Instant::now() < deadline,
            "task did not stop with the server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stalled_redis_drops_publishes_instead_of_buffering_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let rt = runtime();
    let prefix = "st:";
    let small = |b: wskit_redis::BackplaneBuilder| {
        b.queue_capacity(4)
            .response_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(500))
    };
    let a = rt.block_on(Node::start_with(&redis.url(), prefix, small));
    let b = rt.block_on(Node::start(&redis.url(), prefix));
    let mut a1 = Client::connect(&a);
    let mut a2 = Client::connect(&a);
    let mut b1 = Client::connect(&b);
    for c in [&mut a1, &mut a2, &mut b1] {
        c.join("room");
    }
    redis.wait_numsub("st:room", 2);

    redis.pause();
    for seq in 0..200 {
        a1.publish("room", "a1", seq);
    }
    // Local subscribers get everything, in order, while Redis is frozen.
    let local = a2.recv_msgs(200);
    assert_eq!(seqs_from(&local, "a1"), (0..200).collect::<Vec<_>>());
    let s = a.stats();
    assert!(
        s.dropped_queue_full > 0,
        "the bounded queue overflowed: {s:?}"
    );
    assert!(
        s.published + s.dropped_queue_full + s.dropped_failed <= 200,
        "{s:?}"
    );

    redis.resume();
    a.wait_connected();
    redis.wait_numsub("st:room", 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Publish until one crosses (the node may be mid-reconnect), then check the order of
    // whatever of the frozen batch made it: increasing, no duplicates.
    let mut seen = Vec::new();
    let mut seq = 1000;
    'outer: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "cross-node delivery did not resume"
        );
        a1.publish("room", "a1", seq);
        for v in b1.drain() {
            let got = v["seq"].as_u64().unwrap();
            seen.push(got);
            if got >= 1000 {
                break 'outer;
            }
        }
        seq += 1;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {seen:?}"
    );
    drop((a1, a2, b1));
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}
