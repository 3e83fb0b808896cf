//! Upgrade outcomes: the route, the request's shape, the Origin and the head's size and timing
//! are decided before any 101 (SPEC §4).

use super::{start, start_with, welcome};
use crate::adapter::Adapter;
use crate::client::{connect, raw_http, refusal_status, request, status_of, TIMEOUT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An unknown path is a 404, not an upgrade.
pub fn unknown_path_is_404<A: Adapter>() {
    let (server, _) = start::<A>();
    assert_eq!(
        refusal_status(server.addr(), request(server.addr(), "/nope")),
        404
    );
}

/// A plain GET (no upgrade headers) on a WebSocket path is a 426 that names the protocol,
/// even on an authenticated route (before any auth check).
pub fn plain_get_is_426<A: Adapter>() {
    let (server, _) = start::<A>();
    for path in ["/ws/echo", "/ws/auth/query"] {
        let head = raw_http(
            server.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&head), 426, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("upgrade: websocket"),
            "{head}"
        );
    }
}

/// A well-formed upgrade gets a 101 with the right accept key, and the route runs.
pub fn upgrade_is_101<A: Adapter>() {
    let (server, _) = start::<A>();
    let mut ws = connect(server.addr(), "/ws/echo");
    assert!(!welcome(&mut ws).is_empty());
}

/// Origin allow-list: a foreign Origin is 403; the listed one and a non-browser client (no
/// Origin) are accepted.
pub fn origin_allow_list_is_enforced<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let evil = request(addr, "/ws/origin").with_header("Origin", "https://evil.example");
    assert_eq!(refusal_status(addr, evil), 403);
    let lookalike = request(addr, "/ws/origin").with_header("Origin", "https://good.example.evil");
    assert_eq!(refusal_status(addr, lookalike), 403);
    let good = request(addr, "/ws/origin").with_header("Origin", "https://good.example");
    let (mut ws, _) = crate::client::handshake(addr, good).expect("allowed origin");
    assert_eq!(crate::client::recv_json(&mut ws)["type"], "welcome");
    let mut ws = connect(addr, "/ws/origin");
    assert_eq!(crate::client::recv_json(&mut ws)["type"], "welcome");
}

/// A request head over `max_handshake_bytes` gets 431.
pub fn oversized_head_is_431<A: Adapter>() {
    if !A::OWNS_HANDSHAKE {
        eprintln!("{}: the HTTP server in front owns header limits", A::NAME);
        return;
    }
    let (server, _) = start::<A>();
    let big = "a".repeat(20 * 1024);
    let head = raw_http(
        server.addr(),
        format!(
            "GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             X-Big: {big}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&head), 431, "{head}");
}

/// Bytes that are not HTTP get a 400.
pub fn garbage_head_is_400<A: Adapter>() {
    let (server, _) = start::<A>();
    let head = raw_http(server.addr(), b"\x16\x03\x01\x02\x00 not http\r\n\r\n");
    assert_eq!(status_of(&head), 400, "{head}");
}

/// A client that connects and says nothing (or trickles) is dropped after the handshake
/// timeout, without a response.
pub fn silent_client_is_dropped<A: Adapter>() {
    if !A::OWNS_HANDSHAKE {
        eprintln!(
            "{}: the HTTP server in front owns the handshake timeout",
            A::NAME
        );
        return;
    }
    let config = super::config().handshake_timeout(Duration::from_millis(300));
    let (server, _) = start_with::<A>(config);
    let mut silent = TcpStream::connect(server.addr()).expect("connect");
    silent.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut trickle = TcpStream::connect(server.addr()).expect("connect");
    trickle.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    trickle
        .write_all(b"GET /ws/echo HTTP/1.1\r\n")
        .expect("write");
    for stream in [&mut silent, &mut trickle] {
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf);
        // Dropped: EOF, or a reset; a timeout (the server kept it) fails the test.
        match n {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected no response, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server kept a silent client: {e}"
            ),
        }
    }
}

/// With an HTTP handler (`Builder::http`), plain requests it answers get its response on the
/// WebSocket port; requests it declines still get the core's 404 or 426, and upgrades are
/// untouched (the handler never sees them).
pub fn http_handler_serves_plain_requests<A: Adapter>() {
    let (server, _) = crate::app::app();
    let seen_upgrade = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = seen_upgrade.clone();
    let handler: wskit_adapter::HttpHandler = std::sync::Arc::new(move |req| {
        if req.headers().contains_key("sec-websocket-key") {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        match req.uri().path() {
            "/status" => Some(http::Response::new(b"healthy\n".to_vec())),
            _ => None,
        }
    });
    let server = A::start_with(server, super::config(), Some(handler));
    let get = |path: &str| {
        raw_http(
            server.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut page = String::new();
    stream
        .read_to_string(&mut page)
        .expect("the whole response, then EOF");
    assert_eq!(status_of(&page), 200, "{page}");
    assert!(page.ends_with("\r\n\r\nhealthy\n"), "{page}");
    assert_eq!(status_of(&get("/ws/echo")), 426);
    assert_eq!(status_of(&get("/nothing/here")), 404);
    let mut ws = connect(server.addr(), "/ws/echo");
    assert!(!welcome(&mut ws).is_empty());
    assert!(
        !seen_upgrade.load(std::sync::atomic::Ordering::SeqCst),
        "the handler saw an upgrade"
    );
}
