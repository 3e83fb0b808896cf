//! What is particular to this adapter (the shared behaviour is the conformance suite's, in
//! `tests/`): output from other threads reaching a reader blocked in `read`, a shutdown that
//! interrupts a verifier, many connections at once.

use crate::{Builder, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message as WsMessage;
use wskit::{Route, Server, TokenAuth};

const TIMEOUT: Duration = Duration::from_secs(5);

type Ws = tungstenite::WebSocket<TcpStream>;

fn start(server: Server) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Builder::new(server).listen(listener).unwrap()
}

fn connect(running: &Running, path: &str) -> Ws {
    let stream = TcpStream::connect(running.local_addr()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let url = format!("ws://{}{path}", running.local_addr());
    tungstenite::client(url, stream).expect("handshake").0
}

fn text(ws: &mut Ws) -> String {
    match ws.read().expect("a message") {
        WsMessage::Text(t) => t.to_string(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Subscribes every connection to `news` and says so.
fn news_server() -> Server {
    let route = Route::new("/ws")
        .on_connect(|ws, _ctx| {
            ws.subscribe("news")?;
            ws.send_text("ready")
        })
        .on_text(|ws, _ctx, text: &str| ws.send_text(text));
    Server::builder().route(route).build().unwrap()
}

#[test]
fn publish_from_another_thread_reaches_readers_blocked_in_read() {
    let running = start(news_server());
    let mut clients: Vec<Ws> = (0..20).map(|_| connect(&running, "/ws")).collect();
    for ws in &mut clients {
        assert_eq!(text(ws), "ready");
    }
    let handle = running.handle().server_handle();
    let publisher = std::thread::spawn(move || {
        for i in 0..10 {
            handle.publish_message("news", wskit::Message::text(format!("n{i}")));
        }
    });
    publisher.join().unwrap();
    for ws in &mut clients {
        for i in 0..10 {
            assert_eq!(text(ws), format!("n{i}"));
        }
        // The reader still answers its own input in order after the publishes.
        ws.send(WsMessage::text("echo")).unwrap();
        assert_eq!(text(ws), "echo");
    }
    assert_eq!(running.handle().connection_count(), 20);
    // Reading the close answers it (tungstenite), which lets the shutdown drain.
    let closes = std::thread::spawn(move || {
        for ws in &mut clients {
            match ws.read() {
                Ok(WsMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
                other => panic!("expected a 1001 close, got {other:?}"),
            }
        }
    });
    let started = Instant::now();
    let report = running.shutdown();
    assert!(report.drained, "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closes were not answered"
    );
    closes.join().unwrap();
}

#[test]
fn shutdown_interrupts_a_verifier_that_never_finishes() {
    let auth = TokenAuth::new(|_token: String| std::future::pending::<Option<()>>());
    let route = Route::new("/ws").authenticate(auth);
    let server = Server::builder().route(route).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = crate::Config::default().auth_timeout(Duration::from_secs(60));
    let running = Builder::new(server)
        .config(config)
        .listen(listener)
        .unwrap();
    let mut client = TcpStream::connect(running.local_addr()).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client
        .write_all(
            b"GET /ws?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    // Let the verifier start.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let report = running.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited"
    );
    assert!(report.drained, "{report:?}");
    let mut response = String::new();
    let _ = client.read_to_string(&mut response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 503"),
        "{response}"
    );
}

#[test]
fn many_connections_each_echo() {
    let running = start(news_server());
    let mut clients: Vec<Ws> = (0..200).map(|_| connect(&running, "/ws")).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(text(ws), "ready");
        ws.send(WsMessage::text(format!("m{i}"))).unwrap();
    }
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(text(ws), format!("m{i}"));
    }
    drop(clients);
    let until = Instant::now() + TIMEOUT;
    while running.handle().connection_count() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        running.handle().connection_count(),
        0,
        "vanished peers reaped"
    );
    assert!(running.shutdown().drained);
}
