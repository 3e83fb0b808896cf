//! Nodes (a wskit-tokio server + a Redis backplane each, on one shared runtime) and blocking
//! tungstenite clients over loopback.

#![allow(dead_code)]

pub mod redis_server;

use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wskit::{Route, Server, Validate};
use wskit_redis::{Backplane, BackplaneHandle, BackplaneTask};

pub use redis_server::RedisServer;

/// Upper bound on any wait for a message.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);
/// The topic of the binary publishes.
pub const BINARY_TOPIC: &str = "bin";

#[derive(Deserialize, schemars::JsonSchema)]
struct Room {
    room: String,
}
impl Validate for Room {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Publish {
    room: String,
    from: String,
    seq: u64,
}
impl Validate for Publish {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Echo {
    message: String,
}
impl Validate for Echo {}

/// `/ws`: join/leave rooms, publish `{type:"msg",room,from,seq}` to a room (publisher
/// excluded), echo (a barrier), and binary frames published to [`BINARY_TOPIC`].
pub fn app() -> Server {
    let route = Route::new("/ws")
        .on("join", |ws, _ctx, m: Room| -> wskit::HandlerResultOf {
            ws.subscribe(&m.room)?;
            ws.send(&json!({"type": "joined", "room": m.room}))?;
            Ok(())
        })
        .on("leave", |ws, _ctx, m: Room| {
            ws.unsubscribe(&m.room);
            ws.send(&json!({"type": "left", "room": m.room}))
        })
        .on("publish", |ws, _ctx, m: Publish| {
            ws.publish(
                &m.room,
                &json!({"type": "msg", "room": m.room, "from": m.from, "seq": m.seq}),
            )
            .map(|_| ())
        })
        .on("echo", |ws, _ctx, m: Echo| {
            ws.send(&json!({"type": "echo", "message": m.message}))
        })
        .on_binary(|ws, _ctx, data| {
            ws.publish_message(BINARY_TOPIC, wskit::Message::Binary(data));
        });
    Server::builder()
        .backplane_events(true)
        .route(route)
        .build()
        .expect("valid routes")
}

/// One node: a server on its own loopback listener, with its own backplane.
pub struct Node {
    pub addr: SocketAddr,
    pub running: wskit_tokio::Running,
    pub backplane: BackplaneTask,
}

impl Node {
    /// Starts a node (call inside the runtime: `rt.block_on(Node::start(..))`).
    pub async fn start(url: &str, prefix: &str) -> Node {
        Self::start_with(url, prefix, |b| b).await
    }

    /// Starts a node with more backplane settings.
    pub async fn start_with(
        url: &str,
        prefix: &str,
        configure: impl FnOnce(wskit_redis::BackplaneBuilder) -> wskit_redis::BackplaneBuilder,
    ) -> Node {
        let builder = Backplane::builder(url)
            .prefix(prefix)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
        let backplane = configure(builder)
            .connect()
            .await
            .expect("backplane connects");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = wskit_tokio::Builder::new(app())
            .backplane(backplane.sink())
            .listen(listener)
            .expect("listen");
        let backplane = backplane.spawn(running.handle().clone());
        Node {
            addr: running.local_addr(),
            running,
            backplane,
        }
    }

    pub fn stats(&self) -> wskit_redis::Stats {
        self.backplane.handle().stats()
    }

    pub fn handle(&self) -> &BackplaneHandle {
        self.backplane.handle()
    }

    /// Waits until the backplane is connected (after a Redis restart).
    pub fn wait_connected(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.handle().is_connected() {
            assert!(Instant::now() < deadline, "backplane did not reconnect");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub async fn stop(self) {
        self.backplane.stop().await;
        self.running.shutdown().await;
    }
}

/// A tokio runtime for the nodes; the test thread stays free for blocking clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Logs to the test output with `RUST_LOG=wskit_redis=debug`.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wskit_redis=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A blocking client.
pub struct Client {
    ws: WebSocket<TcpStream>,
    barrier: u64,
}

impl Client {
    pub fn connect(node: &Node) -> Client {
        Self::connect_to(node.addr)
    }

    pub fn connect_to(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream)
            .unwrap_or_else(|e| panic!("upgrade failed: {e}"));
        Client { ws, barrier: 0 }
    }

    pub fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .expect("send");
    }

    pub fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::binary(data.to_vec()))
            .expect("send binary");
    }

    /// The next data message.
    pub fn recv(&mut self) -> Message {
        loop {
            match self.ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => return m,
                Ok(Message::Close(f)) => panic!("closed while waiting: {f:?}"),
                Ok(_) => {}
                Err(e) => panic!("no message: {e}"),
            }
        }
    }

    pub fn recv_json(&mut self) -> Value {
        match self.recv() {
            Message::Text(t) => serde_json::from_str(t.as_str()).expect("JSON"),
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Joins `room` and waits for the confirmation (the local subscription exists then).
    pub fn join(&mut self, room: &str) {
        self.send(json!({"type": "join", "room": room}));
        assert_eq!(self.recv_json(), json!({"type": "joined", "room": room}));
    }

    pub fn leave(&mut self, room: &str) {
        self.send(json!({"type": "leave", "room": room}));
        assert_eq!(self.recv_json(), json!({"type": "left", "room": room}));
    }

    pub fn publish(&mut self, room: &str, from: &str, seq: u64) {
        self.send(json!({"type": "publish", "room": room, "from": from, "seq": seq}));
    }

    /// Everything that arrives before an echo barrier, after waiting [`QUIET`] for stragglers
    /// from other nodes.
    pub fn drain(&mut self) -> Vec<Value> {
        std::thread::sleep(QUIET);
        self.barrier += 1;
        let tag = format!("barrier-{}", self.barrier);
        self.send(json!({"type": "echo", "message": tag}));
        let mut before = Vec::new();
        loop {
            let v = self.recv_json();
            if v == json!({"type": "echo", "message": tag}) {
                return before;
            }
            before.push(v);
        }
    }

    /// Reads exactly `n` messages of type `msg`, failing on anything else.
    pub fn recv_msgs(&mut self, n: usize) -> Vec<Value> {
        (0..n)
            .map(|_| {
                let v = self.recv_json();
                assert_eq!(v["type"], "msg", "unexpected message {v}");
                v
            })
            .collect()
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// `(from, seq)` pairs, in arrival order.
pub fn senders(msgs: &[Value]) -> Vec<(String, u64)> {
    msgs.iter()
        .map(|v| {
            (
                v["from"].as_str().expect("from").to_owned(),
                v["seq"].as_u64().expect("seq"),
            )
        })
        .collect()
}

/// The sequence numbers from `from`, in arrival order.
pub fn seqs_from(msgs: &[Value], from: &str) -> Vec<u64> {
    senders(msgs)
        .into_iter()
        .filter(|(f, _)| f == from)
        .map(|(_, s)| s)
        .collect()
}
