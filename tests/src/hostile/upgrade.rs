//! Attacks on the upgrade: silent and trickling clients, huge heads, bad and expired tokens,
//! tokens in logs, lookalike Origins, hostile path parameters. All are decided before any 101.

use super::app::{token, ALLOWED_ORIGIN, JWT_SECRET};
use super::wire::{big_request, Peer};
use super::{logs, start, start_with};
use crate::adapter::Adapter;
use crate::client::{handshake, raw_http, recv_json, refusal_status, request, status_of, TIMEOUT};
use base64::Engine;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Upgrade request bytes for `path` with extra header lines.
fn upgrade_head(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// How long until the server drops `stream` (EOF or reset); panics if it answers.
fn dropped_after(mut stream: TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => started.elapsed(),
        Ok(n) => panic!(
            "expected no response, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server kept the connection: {e}"
            );
            started.elapsed()
        }
    }
}

/// Silent clients, clients that stop mid-head and slowloris clients (one byte every 100 ms,
/// forever) are all dropped at `handshake_timeout`, which bounds the whole head, not the gap
/// between bytes; 100 of them at once do not delay a good client.
pub fn silent_and_trickling_handshakes_are_dropped<A: Adapter>() {
    if !A::OWNS_HANDSHAKE {
        eprintln!(
            "{}: the HTTP server in front owns the handshake timeout",
            A::NAME
        );
        return;
    }
    const LIMIT: Duration = Duration::from_millis(500);
    let (server, _) = start_with::<A>(super::config().handshake_timeout(LIMIT));
    let addr = server.addr();
    let started = Instant::now();
    let open = |_| {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        s
    };
    let crowd: Vec<TcpStream> = (0..100).map(open).collect();
    let mut partial = open(0);
    partial
        .write_all(&upgrade_head("/h/json", "")[..40])
        .expect("write");
    let trickle = open(0);
    let mut writer = trickle.try_clone().expect("clone");
    let head = upgrade_head("/h/json", "");
    std::thread::spawn(move || {
        for b in head.iter().cycle() {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let good = Instant::now();
    let _ = super::typed_client(addr, "/h/json");
    let good = good.elapsed();
    assert!(good < LIMIT, "a good client waited {good:?}");
    for (name, stream) in [("partial", partial), ("trickle", trickle)] {
        let after = dropped_after(stream, started);
        assert!(
            after >= LIMIT - Duration::from_millis(50),
            "{name} dropped early: {after:?}"
        );
        assert!(after < LIMIT * 4, "{name} dropped late: {after:?}");
    }
    for stream in crowd {
        assert!(dropped_after(stream, started) < LIMIT * 4);
    }
}

/// Decision: request heads over `max_handshake_bytes` (16 KiB by default) or with more than
/// 64 headers get 431 from adapters that parse the head themselves. Behind hyper/axum the HTTP
/// server's own limits apply: hyper answers 431 past its ~400 KiB buffer, so a 1 MiB head is
/// refused everywhere.
pub fn huge_heads_get_431<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    if A::OWNS_HANDSHAKE {
        let big = format!("X-Big: {}\r\n", "a".repeat(64 * 1024));
        let head = big_request(addr, upgrade_head("/h/json", &big));
        assert_eq!(status_of(&head), 431, "{head}");
        let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
        let head = big_request(addr, upgrade_head("/h/json", &many));
        assert_eq!(status_of(&head), 431, "{head}");
    }
    let huge = format!("X-Huge: {}\r\n", "b".repeat(1024 * 1024));
    let head = big_request(addr, upgrade_head("/h/json", &huge));
    assert_eq!(status_of(&head), 431, "{head}");
    let _ = super::typed_client(addr, "/h/json");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens the verifier must refuse, by name.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let good = token("mallory", 3600, JWT_SECRET);
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let none_alg = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(br#"{"sub":"mallory","exp":4102444800}"#)
    );
    vec![
        ("garbage", "not-a-jwt".to_owned()),
        ("expired", token("mallory", -5, JWT_SECRET)),
        ("wrong secret", token("mallory", 3600, b"guessed-secret")),
        (
            "flipped signature",
            String::from_utf8(flipped).expect("ascii"),
        ),
        ("alg none", none_alg),
        ("truncated", good[..good.len() - 10].to_owned()),
    ]
}

/// Missing, malformed, forged, `alg: none`, truncated and expired tokens get 401 with no
/// upgrade, from every transport (query, `Authorization: Bearer`, subprotocol); a good token
/// is accepted from each, and the subprotocol answer is `wskit`, never the token.
pub fn bad_and_expired_tokens_get_401<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    assert_eq!(refusal_status(addr, request(addr, "/h/auth")), 401, "none");
    assert_eq!(
        refusal_status(addr, request(addr, "/h/auth?token=")),
        401,
        "empty"
    );
    let bearer = request(addr, "/h/auth").with_header("Authorization", "Basic YWxpY2U6cHc=");
    assert_eq!(refusal_status(addr, bearer), 401, "basic auth");
    for (name, bad) in bad_tokens() {
        let query = request(addr, &format!("/h/auth?token={bad}"));
        assert_eq!(refusal_status(addr, query), 401, "{name} in the query");
        let header = request(addr, "/h/auth").with_header("Authorization", format!("Bearer {bad}"));
        assert_eq!(refusal_status(addr, header), 401, "{name} as bearer");
        let proto = request(addr, "/h/auth")
            .with_sub_protocol("wskit")
            .with_sub_protocol(format!("base64url.bearer.{}", b64(bad.as_bytes())));
        assert_eq!(refusal_status(addr, proto), 401, "{name} as subprotocol");
    }
    let good = token("alice", 3600, JWT_SECRET);
    let transports = [
        request(addr, &format!("/h/auth?token={good}")),
        request(addr, "/h/auth").with_header("Authorization", format!("Bearer {good}")),
        request(addr, "/h/auth")
            .with_sub_protocol("wskit")
            .with_sub_protocol(format!("base64url.bearer.{}", b64(good.as_bytes()))),
    ];
    for req in transports {
        let (mut ws, res) = handshake(addr, req).expect("good token accepted");
        if let Some(p) = res.headers().get("sec-websocket-protocol") {
            assert_eq!(p, "wskit");
        }
        assert_eq!(recv_json(&mut ws)["user"], "alice");
    }
}

/// SPEC §4: tokens never appear in logs. With every wskit event captured at TRACE, upgrades
/// that are accepted, refused by the verifier, refused for the path (404) and refused as plain
/// HTTP (426) carry a unique token by query, bearer header and subprotocol; no log line may
/// contain the token, its signature or its base64url form. A unique query *key* (keys survive
/// redaction) proves the lines of these very requests were captured.
pub fn tokens_never_appear_in_logs<A: Adapter>() {
    let capture = logs::capture();
    let (server, _) = start::<A>();
    let addr = server.addr();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let probe = format!("probe{nonce}{}", A::NAME.replace('+', ""));
    let good = token(&format!("leak-{nonce}"), 3600, JWT_SECRET);
    let bad = token(&format!("leak-{nonce}"), 3600, b"guessed-secret");
    let expired = token(&format!("leak-{nonce}"), -60, JWT_SECRET);
    let secrets: Vec<String> = [&good, &bad, &expired]
        .iter()
        .flat_map(|t| {
            let signature = t.rsplit('.').next().unwrap_or_default().to_owned();
            [t.to_string(), signature, b64(t.as_bytes())]
        })
        .collect();
    for s in &secrets {
        capture.watch(s);
    }
    capture.watch(&probe);
    let q = |t: &str| format!("/h/auth?{probe}=1&token={t}");
    let proto = |t: &str| format!("base64url.bearer.{}", b64(t.as_bytes()));
    let path = format!("/h/auth?{probe}=1");
    let mut accepted = 0;
    for t in [&good, &bad, &expired] {
        let attempts = [
            request(addr, &q(t)),
            request(addr, &path).with_header("Authorization", format!("Bearer {t}")),
            request(addr, &path)
                .with_sub_protocol("wskit")
                .with_sub_protocol(proto(t)),
        ];
        for req in attempts {
            if let Ok((mut ws, _)) = handshake(addr, req) {
                assert_eq!(recv_json(&mut ws)["type"], "hello");
                let _ = ws.close(None);
                accepted += 1;
            }
        }
    }
    assert_eq!(accepted, 3, "the good token is accepted by each transport");
    let unknown = request(addr, &format!("/nope?{probe}=1&token={good}"));
    assert_eq!(refusal_status(addr, unknown), 404);
    let plain = raw_http(
        addr,
        format!(
            "GET {} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {good}\r\n\r\n",
            q(&good)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&plain), 426);
    drop(server); // graceful shutdown: the close paths log too
    let seen = capture.hits(&probe);
    let leaks: Vec<String> = secrets.iter().flat_map(|s| capture.hits(s)).collect();
    for s in secrets.iter().chain([&probe]) {
        capture.forget(s);
    }
    assert!(
        leaks.is_empty(),
        "tokens in the logs:\n{}",
        leaks.join("\n")
    );
    assert!(
        seen.len() >= 6,
        "the upgrades' log lines were not captured ({} lines, {} events in all): {seen:#?}",
        seen.len(),
        capture.events()
    );
}

/// Origin allow-lists match exactly (SPEC §4: 403 when an allow-list is set): lookalike
/// hosts, the `null` origin of sandboxed frames and `file:` pages, other schemes and ports,
/// case variants and trailing characters are refused; the listed origin and a non-browser
/// client (no Origin at all) are accepted. Decision: only the first Origin header counts (a
/// browser sends exactly one).
pub fn lookalike_origins_get_403<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    for origin in [
        "https://example.com.evil.com",
        "https://evil-example.com",
        "https://example.com.",
        "https://example.com/",
        "https://example.com:443",
        "https://example.com@evil.com",
        "http://example.com",
        "https://EXAMPLE.com",
        "https://xn--exmple-cua.com",
        "null",
        "",
    ] {
        let req = request(addr, "/h/origin").with_header("Origin", origin);
        assert_eq!(refusal_status(addr, req), 403, "{origin:?}");
    }
    let twice = raw_http(
        addr,
        &upgrade_head(
            "/h/origin",
            &format!("Origin: https://evil.com\r\nOrigin: {ALLOWED_ORIGIN}\r\n"),
        ),
    );
    assert_eq!(status_of(&twice), 403, "{twice}");
    let good = request(addr, "/h/origin").with_header("Origin", ALLOWED_ORIGIN);
    let (mut ws, _) = handshake(addr, good).expect("listed origin");
    assert_eq!(recv_json(&mut ws)["type"], "welcome");
    let (mut ws, _) = handshake(addr, request(addr, "/h/origin")).expect("no origin");
    assert_eq!(recv_json(&mut ws)["type"], "welcome");
}

fn param_of(addr: SocketAddr, path: &str) -> String {
    let mut peer = Peer::connect(addr, path);
    let f = peer.read_frame().expect("the param message");
    let v: Value = serde_json::from_slice(&f.payload).expect("JSON");
    assert_eq!(v["type"], "param", "{v}");
    v["name"].as_str().expect("a string").to_owned()
}

/// Path parameters are percent-decoded exactly once and reach the handler as data: `%2F`,
/// `%00` and `..` are characters of the value, never path structure. Paths are not
/// normalized, so `/h/files/../json` cannot reach `/h/json` (404). A value that is not UTF-8
/// after decoding is a 400; a segment too large for the request head is refused before
/// routing (431 from the adapter's head limit; 414 or 431 from hyper).
pub fn hostile_path_parameters_are_data<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let huge = "s".repeat(8 * 1024);
    for (raw, decoded) in [
        ("a%2Fb", "a/b".to_owned()),
        ("a%252Fb", "a%2Fb".to_owned()),
        ("%00", "\0".to_owned()),
        ("nul%00byte", "nul\0byte".to_owned()),
        ("..", "..".to_owned()),
        ("%2E%2E", "..".to_owned()),
        ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd".to_owned()),
        ("%2e%2e%5cjson", "..\\json".to_owned()),
        ("%F0%9F%98%80", "😀".to_owned()),
        (huge.as_str(), huge.clone()),
    ] {
        assert_eq!(
            param_of(addr, &format!("/h/files/{raw}")),
            decoded,
            "{raw:.40}"
        );
    }
    for (path, status) in [
        ("/h/files/../json", 404),
        ("/h/files/./json", 404),
        ("/h/files/a/b", 404),
        ("/h/files/", 404),
        ("/h/files/%FF", 400),
        ("/h/files/%C0%AF", 400),
    ] {
        let head = raw_http(addr, &upgrade_head(path, ""));
        assert_eq!(status_of(&head), status, "{path}: {head}");
    }
    let too_big = format!("/h/files/{}", "s".repeat(70 * 1024));
    let head = big_request(addr, upgrade_head(&too_big, ""));
    let status = status_of(&head);
    if A::OWNS_HANDSHAKE {
        assert_eq!(status, 431, "{head}");
    } else {
        assert!(matches!(status, 414 | 431), "{head}");
    }
}
