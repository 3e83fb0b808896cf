//! Fan-out throughput: one room, one publisher, S subscribers, M messages.
//!
//! - `single`: one node, every subscriber on it (in-process pub/sub only);
//! - `cross`: two nodes on one Redis, subscribers split evenly, the publisher on node A (half
//!   the deliveries cross Redis, and node A also gets its own echo back).
//!
//! Reports deliveries per second (messages received by all subscribers together, from the first
//! publish to the last subscriber's last message) and the cross/single ratio.
//!
//! ```text
//! cargo run --release -p wskit-redis --example fanout_bench -- [--subscribers 64]
//!     [--messages 2000] [--payload 100] [--rounds 3] [--redis redis://127.0.0.1:6379]
//! ```
//! Without `--redis` it starts a private `redis-server` (like the tests).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tungstenite::Message;
use wskit::{Route, Server};
use wskit_redis::{Backplane, BackplaneTask};

fn app() -> Server {
    Server::builder()
        .backplane_events(true)
        .route(
            // A raw text protocol, so the numbers measure fan-out, not JSON:
            // "J" joins the room; "P<seq> <padding>" is published to it as is.
            Route::new("/ws").on_text(|ws, _ctx, text| -> Result<(), wskit::SocketError> {
                if text == "J" {
                    ws.subscribe("room")?;
                    ws.send_text("joined")?;
                } else {
                    ws.publish_message("room", wskit::Message::text(text));
                }
                Ok(())
            }),
        )
        .build()
        .expect("routes")
}

struct Node {
    running: wskit_tokio::Running,
    backplane: Option<BackplaneTask>,
}

impl Node {
    async fn start(redis: Option<&str>) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut builder = wskit_tokio::Builder::new(app());
        let backplane = match redis {
            Some(url) => {
                let b = Backplane::builder(url)
                    .prefix("bench:")
                    .connect()
                    .await
                    .expect("redis");
                builder = builder.backplane(b.sink());
                Some(b)
            }
            None => None,
        };
        let running = builder.listen(listener).unwrap();
        let backplane = backplane.map(|b| b.spawn(running.handle().clone()));
        Node { running, backplane }
    }

    fn addr(&self) -> SocketAddr {
        self.running.local_addr()
    }
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn connect(addr: SocketAddr) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    tungstenite::client(format!("ws://{addr}/ws"), stream)
        .unwrap()
        .0
}

fn join(ws: &mut Ws) {
    ws.send(Message::text("J")).unwrap();
    loop {
        if let Message::Text(_) = ws.read().unwrap() {
            return;
        }
    }
}

struct Args {
    subscribers: usize,
    messages: usize,
    payload: usize,
    rounds: usize,
    redis: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        subscribers: 64,
        messages: 2000,
        payload: 100,
        rounds: 3,
        redis: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--subscribers" => a.subscribers = value.parse().expect("number"),
            "--messages" => a.messages = value.parse().expect("number"),
            "--payload" => a.payload = value.parse().expect("number"),
            "--rounds" => a.rounds = value.parse().expect("number"),
            "--redis" => a.redis = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a.subscribers = a.subscribers.max(2);
    a
}

/// One round: subscribers on `sub_nodes` (round robin), the publisher on `pub_node`;
/// `settled` runs after every subscriber joined. Returns (deliveries, elapsed).
fn round(
    args: &Args,
    pub_node: SocketAddr,
    sub_nodes: &[SocketAddr],
    settled: &dyn Fn(),
) -> (u64, Duration) {
    let ready = Arc::new(Barrier::new(args.subscribers + 1));
    let readers: Vec<_> = (0..args.subscribers)
        .map(|i| {
            let mut ws = connect(sub_nodes[i % sub_nodes.len()]);
            join(&mut ws);
            let ready = ready.clone();
            let last = format!("P{} ", args.messages - 1);
            std::thread::spawn(move || {
                ready.wait();
                let mut got = 0u64;
                loop {
                    match ws.read() {
                        Ok(Message::Text(t)) => {
                            got += 1;
                            if t.as_str().starts_with(&last) {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break, // timed out: something was dropped
                    }
                }
                (got, Instant::now())
            })
        })
        .collect();
    settled();
    let mut publisher = connect(pub_node);
    let pad = "x".repeat(args.payload);
    ready.wait();
    let start = Instant::now();
    for seq in 0..args.messages {
        publisher
            .send(Message::text(format!("P{seq} {pad}")))
            .unwrap();
    }
    let mut deliveries = 0;
    let mut end = start;
    for r in readers {
        let (got, at) = r.join().unwrap();
        deliveries += got;
        end = end.max(at);
    }
    (deliveries, end - start)
}

fn wait_subscribed(redis_url: &str, nodes: usize) {
    let mut conn = redis::Client::open(redis_url)
        .unwrap()
        .get_connection()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("bench:room")
            .query(&mut conn)
            .unwrap();
        if n.first().is_some_and(|(_, n)| *n == nodes) {
            return;
        }
        assert!(Instant::now() < deadline, "nodes did not subscribe");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = args();
    let private = match &args.redis {
        Some(_) => None,
        None => Some(redis_server::RedisServer::start().expect("redis-server is needed")),
    };
    let url = args
        .redis
        .clone()
        .unwrap_or_else(|| private.as_ref().unwrap().url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let expected = (args.subscribers * args.messages) as u64;
    println!(
        "fan-out: {} subscribers, {} messages of {} bytes, best of {} rounds",
        args.subscribers, args.messages, args.payload, args.rounds
    );

    let single = rt.block_on(Node::start(None));
    let mut best_single = 0.0f64;
    for _ in 0..args.rounds {
        let (n, t) = round(&args, single.addr(), &[single.addr()], &|| {});
        assert_eq!(n, expected, "single node lost messages");
        best_single = best_single.max(n as f64 / t.as_secs_f64());
    }
    println!("single node : {:>10.0} deliveries/s", best_single);
    rt.block_on(single.running.shutdown());

    let a = rt.block_on(Node::start(Some(&url)));
    let b = rt.block_on(Node::start(Some(&url)));
    let mut best_cross = 0.0f64;
    for _ in 0..args.rounds {
        // Both nodes must have SUBSCRIBEd before the first publish.
        let (n, t) = round(&args, a.addr(), &[a.addr(), b.addr()], &|| {
            wait_subscribed(&url, 2)
        });
        if n != expected {
            println!("  (cross round delivered {n} of {expected}: publishes dropped, see stats)");
        }
        best_cross = best_cross.max(n as f64 / t.as_secs_f64());
    }
    println!(
        "two nodes   : {:>10.0} deliveries/s (half across Redis)",
        best_cross
    );
    println!("ratio       : {:.2}", best_cross / best_single);
    // Node A's echoes can be fewer than its publishes: when its own subscribers finish first
    // it unsubscribes while the tail of its publishes is still on the way to Redis.
    for (name, node) in [("A", &a), ("B", &b)] {
        println!(
            "node {name}: {:?}",
            node.backplane.as_ref().unwrap().handle().stats()
        );
    }
    rt.block_on(async {
        for node in [a, b] {
            if let Some(bp) = node.backplane {
                bp.stop().await;
            }
            node.running.shutdown().await;
        }
    });
}
