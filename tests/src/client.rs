//! The suite's clients: tungstenite's blocking client (independent of the server's code) and,
//! for what a well-behaved client never sends, raw frames on a TCP stream.
//! Every read has a timeout, so a hung server fails a test instead of hanging it.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::client::ClientRequestBuilder;
use tungstenite::http::Uri;
use tungstenite::{Error as WsError, Message, WebSocket};

/// Upper bound on any single wait for the server.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A connected client.
pub type Ws = WebSocket<TcpStream>;

/// A request for `path` on `addr`; add headers or subprotocols before [`handshake`].
pub fn request(addr: SocketAddr, path: &str) -> ClientRequestBuilder {
    let uri: Uri = format!("ws://{addr}{path}").parse().expect("valid uri");
    ClientRequestBuilder::new(uri)
}

/// Performs the opening handshake; `Err` carries the refusal (see [`refusal_status`]).
pub fn handshake(
    addr: SocketAddr,
    req: ClientRequestBuilder,
) -> Result<(Ws, tungstenite::handshake::client::Response), WsError> {
    let stream = TcpStream::connect(addr).map_err(WsError::Io)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(WsError::Io)?;
    stream.set_nodelay(true).map_err(WsError::Io)?;
    tungstenite::client::client(req, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => {
            WsError::Io(std::io::ErrorKind::TimedOut.into())
        }
    })
}

/// Connects to `path`, expecting a 101.
pub fn connect(addr: SocketAddr, path: &str) -> Ws {
    match handshake(addr, request(addr, path)) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("upgrade to {path} failed: {e}"),
    }
}

/// The HTTP status of a refused upgrade (panics if it was accepted).
pub fn refusal_status(addr: SocketAddr, req: ClientRequestBuilder) -> u16 {
    match handshake(addr, req) {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(WsError::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

/// Sends `value` as a JSON text message.
pub fn send_json(ws: &mut Ws, value: &Value) {
    ws.send(Message::text(value.to_string())).expect("send");
}

/// The next data message (pings and pongs are skipped; tungstenite answers pings).
pub fn recv(ws: &mut Ws) -> Message {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => return m,
            Ok(Message::Close(frame)) => panic!("closed while waiting for a message: {frame:?}"),
            Ok(_) => {}
            Err(e) => panic!("no message: {e}"),
        }
    }
}

/// The next data message, parsed as JSON.
pub fn recv_json(ws: &mut Ws) -> Value {
    match recv(ws) {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("server sent JSON"),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Sends `{"type":"echo","message":tag}` and reads until its reply: everything received before
/// the reply is returned (a way to prove that nothing else arrived, without sleeping).
pub fn sync(ws: &mut Ws, tag: &str) -> Vec<Value> {
    send_json(ws, &serde_json::json!({"type": "echo", "message": tag}));
    let mut before = Vec::new();
    loop {
        let v = recv_json(ws);
        if v == serde_json::json!({"type": "echo", "message": tag}) {
            return before;
        }
        before.push(v);
    }
}

/// What a client saw until the server closed: data messages, then the close code.
#[derive(Debug)]
pub struct Closed {
    /// Data messages received before the close frame.
    pub messages: Vec<Message>,
    /// The close frame's code (`None`: the connection ended without one).
    pub code: Option<u16>,
}

/// Reads until the server's close frame (answering it) and the end of the stream.
pub fn expect_close(ws: &mut Ws) -> Closed {
    let mut messages = Vec::new();
    let mut code = None;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "the server did not close");
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => messages.push(m),
            Ok(Message::Close(frame)) => code = Some(frame.map_or(1005, |f| u16::from(f.code))),
            Ok(_) => {}
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("timed out waiting for the close")
            }
            Err(_) => break, // reset or EOF after (or instead of) the close frame
        }
    }
    Closed { messages, code }
}

/// Writes raw bytes and returns the response head (status line and headers).
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&byte[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The status code of a raw HTTP response head.
pub fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// A client that speaks raw frames: for protocol violations, and for a peer that never pongs.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame received by [`RawWs`].
#[derive(Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong).
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawWs {
    /// Upgrades with a hand-written request and expects a 101.
    pub fn connect(addr: SocketAddr, path: &str) -> RawWs {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let (head, buf) = raw_upgrade(&mut stream, addr, path);
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "bad accept key: {head}"
        );
        RawWs { stream, buf }
    }

    /// Sends one masked frame; `first_byte` is FIN/RSV/opcode as it goes on the wire.
    pub fn send_frame(&mut self, first_byte: u8, payload: &[u8]) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![first_byte];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).expect("write frame");
    }

    /// Sends bytes as they are (an unmasked frame, garbage, ...).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next frame, or `None` when the stream ended (or timed out).
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        read_frame(&mut self.stream, &mut self.buf)
    }

    /// Reads frames until a close frame; returns its code (`None`: the stream ended first).
    pub fn read_until_close(&mut self) -> Option<u16> {
        while let Some(frame) = self.read_frame() {
            if frame.opcode == 0x8 {
                return frame.close_code().or(Some(1005));
            }
        }
        None
    }
}

/// Reads the next (unmasked) server frame from `stream`, keeping what arrived past it in `buf`;
/// `None` when the stream ended or timed out first.
pub(crate) fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawFrame> {
    let mut fill = |buf: &mut Vec<u8>, n: usize| {
        while buf.len() < n {
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        true
    };
    if !fill(buf, 2) {
        return None;
    }
    let (b0, b1) = (buf[0], buf[1]);
    assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
    let (len, header) = match b1 & 0x7F {
        126 => {
            if !fill(buf, 4) {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if !fill(buf, 10) {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if !fill(buf, header + len) {
        return None;
    }
    let payload = buf[header..header + len].to_vec();
    buf.drain(..header + len);
    Some(RawFrame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        payload,
    })
}

/// Sends a hand-written upgrade request for `path` on `stream` (setting its read timeout and
/// `TCP_NODELAY`) and expects a 101. Returns the response head and the bytes read after it.
pub(crate) fn raw_upgrade(
    stream: &mut TcpStream,
    addr: SocketAddr,
    path: &str,
) -> (String, Vec<u8>) {
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).expect("read response");
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    assert_eq!(status_of(&head), 101, "{head}");
    buf.drain(..end);
    (head, buf)
}
