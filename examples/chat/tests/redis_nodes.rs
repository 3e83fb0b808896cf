//! Two `wskit-chat --redis` processes on one private redis-server: a room spans both nodes.
//! Skipped with a loud message when redis-server is missing, except in CI (`CI=true`) where
//! that fails (`scripts/install-redis.sh` installs it).

#[path = "../../../adapters/redis/tests/support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wskit_chat::Jwt;

const SECRET: &str = "redis-test-secret";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A chat process, killed when dropped.
struct ChatNode {
    child: Child,
    addr: SocketAddr,
}

impl ChatNode {
    fn spawn(redis_url: &str, adapter: &str) -> ChatNode {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = chat(&[
            "--addr",
            &addr.to_string(),
            "--redis",
            redis_url,
            "--adapter",
            adapter,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wskit-chat");
        let node = ChatNode { child, addr };
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "wskit-chat did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }
}

impl Drop for ChatNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wskit-chat"));
    cmd.args(args)
        .args(["--jwt-secret", SECRET])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

type Ws = WebSocket<TcpStream>;

fn connect(node: &ChatNode, user: &str) -> Ws {
    let token = Jwt::new(SECRET).mint(user, &format!("{user}@example.com"), 300);
    let stream = TcpStream::connect(node.addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let url = format!("ws://{}/ws/chat?token={token}", node.addr);
    tungstenite::client(url, stream)
        .unwrap_or_else(|e| panic!("upgrade failed: {e}"))
        .0
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}

/// The next server message of type `kind` (others, like presence notices, are skipped).
fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                if v["type"] == kind {
                    return v;
                }
            }
            Ok(Message::Close(f)) => panic!("closed while waiting for {kind}: {f:?}"),
            Ok(_) => {}
            Err(e) => panic!("no {kind} message: {e}"),
        }
    }
}

#[test]
fn two_chat_processes_share_a_room_through_redis() {
    share_a_room("tokio", "tokio");
}

#[test]
fn a_tokio_node_and_a_smol_node_share_a_room() {
    share_a_room("tokio", "smol");
}

#[test]
fn two_async_std_nodes_share_a_room() {
    share_a_room("async-std", "async-std");
}

fn share_a_room(adapter_one: &str, adapter_two: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let one = ChatNode::spawn(&redis.url(), adapter_one);
    let two = ChatNode::spawn(&redis.url(), adapter_two);

    let mut alice = connect(&one, "alice");
    let mut bob = connect(&two, "bob");
    send(&mut alice, json!({"type": "join_room", "roomId": "lobby"}));
    redis.wait_numsub("wskit:room:lobby", 1);
    send(&mut bob, json!({"type": "join_room", "roomId": "lobby"}));
    // Bob's join notice crosses to alice's node.
    let joined = next_of(&mut alice, "room_joined");
    assert_eq!(joined["userId"], "bob");
    redis.wait_numsub("wskit:room:lobby", 2);

    send(
        &mut alice,
        json!({"type": "chat_message", "roomId": "lobby", "message": "hello from node one"}),
    );
    let m = next_of(&mut bob, "message");
    assert_eq!(
        (&m["userId"], &m["message"]),
        (&json!("alice"), &json!("hello from node one"))
    );
    send(
        &mut bob,
        json!({"type": "chat_message", "roomId": "lobby", "message": "hi from two"}),
    );
    let m = next_of(&mut alice, "message");
    assert_eq!(
        (&m["userId"], &m["message"]),
        (&json!("bob"), &json!("hi from two"))
    );

    // Alice disconnects: her node publishes room_left, bob sees it on the other node, and
    // node one no longer subscribes to the room.
    let _ = alice.close(None);
    drop(alice);
    let left = next_of(&mut bob, "room_left");
    assert_eq!(left["userId"], "alice");
    redis.wait_numsub("wskit:room:lobby", 1);
}

#[test]
fn unreachable_redis_is_a_clear_startup_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let out = chat(&[
        "--addr",
        &addr.to_string(),
        "--redis",
        &format!("redis://127.0.0.1:{port}"),
    ])
    .output()
    .expect("run wskit-chat");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("cannot reach Redis") || stdout.contains("cannot reach Redis"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}
