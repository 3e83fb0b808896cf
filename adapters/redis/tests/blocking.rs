//! The backplane next to the blocking (std threads) adapter: no async runtime in the server;
//! the backplane runs on a thread of its own (`Backplane::spawn_thread`).

mod support;

use std::time::Duration;
use support::{app, init_tracing, seqs_from, Client, RedisServer};
use wskit_redis::Backplane;

fn start(url: &str) -> (wskit_blocking::Running, wskit_redis::BackplaneThread) {
    // `connect` is async; any executor will do for that one call.
    let backplane = smol::block_on(Backplane::builder(url).prefix("blk:").connect())
        .expect("backplane connects");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = wskit_blocking::Builder::new(app())
        .backplane(backplane.sink())
        .listen(listener)
        .expect("listen");
    let thread = backplane
        .spawn_thread(running.handle().clone())
        .expect("thread");
    (running, thread)
}

#[test]
fn two_blocking_nodes_share_a_room() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let (a, a_bp) = start(&redis.url());
    let (b, b_bp) = start(&redis.url());
    let mut a1 = Client::connect_to(a.local_addr());
    let mut b1 = Client::connect_to(b.local_addr());
    let mut b2 = Client::connect_to(b.local_addr());
    for c in [&mut a1, &mut b1, &mut b2] {
        c.join("room");
    }
    redis.wait_numsub("blk:room", 2);
    for seq in 0..50 {
        b1.publish("room", "b1", seq);
    }
    for c in [&mut a1, &mut b2] {
        let mut msgs = c.recv_msgs(50);
        msgs.extend(c.drain());
        assert_eq!(seqs_from(&msgs, "b1"), (0..50).collect::<Vec<_>>());
        assert_eq!(msgs.len(), 50);
    }
    assert!(b1.drain().is_empty());
    assert_eq!(a_bp.handle().stats().received, 50);
    assert_eq!(b_bp.handle().stats().echoes, 50);

    drop((a1, b1, b2));
    a.shutdown();
    b.shutdown();
    // The server has shut down: the threads end by themselves too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a_bp.handle().is_connected() || b_bp.handle().is_connected() {
        assert!(
            std::time::Instant::now() < deadline,
            "backplane outlived its server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a_bp.stop();
    b_bp.stop();
}
