//! The backplane on smol: two wskit-async-std nodes on smol's executor, the `redis` crate's
//! smol support, async-io timers. No tokio runtime anywhere in this test.

mod support;

use std::time::Duration;
use support::{app, init_tracing, seqs_from, Client, RedisServer};
use wskit_redis::Backplane;

struct SmolNode {
    running: wskit_async_std::Running,
    backplane: wskit_redis::BackplaneHandle,
}

async fn start(url: &str) -> SmolNode {
    let backplane = Backplane::builder(url)
        .prefix("smol:")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .expect("backplane connects");
    let listener = smol::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = wskit_async_std::Builder::new(app())
        .spawner(wskit_async_std::Spawner::smol())
        .backplane(backplane.sink())
        .listen(listener)
        .expect("listen");
    let handle = backplane.handle();
    smol::spawn(backplane.run(running.handle().clone())).detach();
    SmolNode {
        running,
        backplane: handle,
    }
}

#[test]
fn two_smol_nodes_share_a_room_and_survive_a_restart() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    init_tracing();
    let a = smol::block_on(start(&redis.url()));
    let b = smol::block_on(start(&redis.url()));
    assert!(tokio::runtime::Handle::try_current().is_err());

    let mut a1 = Client::connect_to(a.running.local_addr());
    let mut b1 = Client::connect_to(b.running.local_addr());
    a1.join("room");
    b1.join("room");
    redis.wait_numsub("smol:room", 2);
    for seq in 0..50 {
        a1.publish("room", "a1", seq);
    }
    let mut msgs = b1.recv_msgs(50);
    msgs.extend(b1.drain());
    assert_eq!(seqs_from(&msgs, "a1"), (0..50).collect::<Vec<_>>());
    assert!(
        a1.drain().is_empty(),
        "publisher excluded, own echo dropped"
    );

    // Reconnection uses async-io timers and smol connections.
    redis.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.backplane.is_connected() || b.backplane.is_connected() {
        assert!(std::time::Instant::now() < deadline, "outage not noticed");
        std::thread::sleep(Duration::from_millis(10));
    }
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(a.backplane.is_connected() && b.backplane.is_connected()) {
        assert!(std::time::Instant::now() < deadline, "no reconnection");
        std::thread::sleep(Duration::from_millis(10));
    }
    redis.wait_numsub("smol:room", 2);
    b1.publish("room", "b1", 7);
    assert_eq!(seqs_from(&a1.recv_msgs(1), "b1"), vec![7]);

    drop((a1, b1));
    for node in [a, b] {
        node.backplane.stop();
        smol::block_on(node.running.shutdown());
    }
}
