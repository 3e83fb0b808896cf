//! A minimal WebSocket client for the receive-heavy scenarios.
//!
//! In `room`, every delivery is read by wsbench, which has one core: with tungstenite's client
//! (a frame at a time, a `Vec` per message, a task wake per frame) wsbench spends more CPU per
//! delivery than the servers do and becomes the bottleneck. This client reads 64 KiB at a time
//! and hands out borrowed frames from its buffer, so a whole burst of deliveries costs one read
//! and no allocation. It speaks only what the scenarios need: the client handshake (checked:
//! status 101 and `Sec-WebSocket-Accept`), masked text frames out, unmasked frames in
//! (fragments reassembled), pings answered, close reported.

use crate::{BenchError, Result};
use base64::Engine as _;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const READ_CHUNK: usize = 64 * 1024;
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// One frame (or reassembled message) borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text message's bytes (not UTF-8 checked: the scenarios only search them).
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
    /// The server sent a close frame, with its code if any.
    Close(Option<u16>),
}

/// The writing half: queued frames go out on [`RawWriter::flush`].
#[derive(Debug)]
pub struct RawWriter {
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
    mask: [u8; 4],
}

/// The reading half.
#[derive(Debug)]
pub struct RawReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    /// When the bytes in `buf` were read ([`crate::stats::now_us`]): one clock read per socket
    /// read, not one per frame (the clock was an eighth of wsbench's CPU in `room`).
    read_at_us: u64,
    start: usize,
    end: usize,
    /// Payload of a fragmented message being reassembled, and its opcode.
    frag: Option<(u8, Vec<u8>)>,
    /// A message finished by a continuation frame, handed out by the last `next`.
    done: Vec<u8>,
    writer: Arc<Mutex<RawWriter>>,
}

/// Does the client handshake for `path` on `tcp`.
pub async fn handshake(
    mut tcp: TcpStream,
    host: &str,
    path: &str,
) -> Result<(RawReader, Arc<Mutex<RawWriter>>)> {
    let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.map_err(io_err)?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut end = 0;
    let head_len = loop {
        let n = tcp.read(&mut buf[end..]).await.map_err(io_err)?;
        if n == 0 {
            return Err(BenchError::Protocol(
                "connection closed during the handshake".into(),
            ));
        }
        end += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(len)) => {
                let code = res.code.unwrap_or(0);
                if code != 101 {
                    return Err(BenchError::Protocol(format!(
                        "HTTP error: {code} {}",
                        res.reason.unwrap_or("")
                    )));
                }
                let accept = res
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                    .map(|h| h.value.to_vec());
                if accept.as_deref() != Some(accept_key(&key).as_bytes()) {
                    return Err(BenchError::Protocol("wrong Sec-WebSocket-Accept".into()));
                }
                break len;
            }
            Ok(httparse::Status::Partial) if end < buf.len() => continue,
            Ok(httparse::Status::Partial) => {
                return Err(BenchError::Protocol("handshake response too large".into()))
            }
            Err(e) => return Err(BenchError::Protocol(format!("bad handshake response: {e}"))),
        }
    };
    let (rd, wr) = tcp.into_split();
    let writer = Arc::new(Mutex::new(RawWriter {
        wr,
        buf: Vec::with_capacity(1024),
        mask: fastrand::u32(..).to_le_bytes(),
    }));
    let reader = RawReader {
        rd,
        buf,
        read_at_us: crate::stats::now_us(),
        start: head_len,
        end,
        frag: None,
        done: Vec::new(),
        writer: writer.clone(),
    };
    Ok((reader, writer))
}

fn io_err(e: std::io::Error) -> BenchError {
    BenchError::WebSocket(e.into())
}

/// `base64(sha1(key + GUID))` (RFC 6455 §4.2.2).
fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

impl RawWriter {
    /// Queues a masked frame.
    fn queue(&mut self, opcode: u8, payload: &[u8]) {
        let len = payload.len();
        self.buf.push(0x80 | opcode);
        match len {
            0..=125 => self.buf.push(0x80 | len as u8),
            126..=0xFFFF => {
                self.buf.push(0x80 | 126);
                self.buf.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.buf.push(0x80 | 127);
                self.buf.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        self.buf.extend_from_slice(&self.mask);
        let mask = self.mask;
        self.buf
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    }

    /// Queues a text message.
    pub fn queue_text(&mut self, text: &str) {
        self.queue(0x1, text.as_bytes());
    }

    /// Queues a close frame (code 1000).
    pub fn queue_close(&mut self) {
        self.queue(0x8, &1000u16.to_be_bytes());
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.wr.write_all(&self.buf).await.map_err(io_err)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// A parsed frame header: (fin, opcode, header length, payload length).
fn parse_header(b: &[u8]) -> Option<(bool, u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let fin = b[0] & 0x80 != 0;
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (mut hlen, len) = match b[1] & 0x7F {
        126 => (4, u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize),
        127 => {
            let bytes: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (10, u64::from_be_bytes(bytes) as usize)
        }
        n => (2, n as usize),
    };
    if masked {
        hlen += 4; // servers must not mask; tolerate it by skipping the key (payload unread)
    }
    Some((fin, opcode, hlen, len))
}

impl RawReader {
    /// The next message, reading from the socket only when the buffer has no whole frame.
    /// `None` when the server closed the TCP connection.
    pub async fn next(&mut self) -> Result<Option<Event<'_>>> {
        Ok(self.next_timed().await?.map(|(event, _)| event))
    }

    /// Like [`next`](Self::next), with when the event's bytes were read off the socket.
    pub async fn next_timed(&mut self) -> Result<Option<(Event<'_>, u64)>> {
        loop {
            let read_at = self.read_at_us;
            let avail = &self.buf[self.start..self.end];
            if let Some((fin, opcode, hlen, len)) = parse_header(avail) {
                if avail.len() >= hlen + len {
                    let at = self.start + hlen;
                    self.start = at + len;
                    match (opcode, fin) {
                        (0x1 | 0x2, true) if self.frag.is_none() => {
                            let p = &self.buf[at..at + len];
                            let event = if opcode == 0x1 {
                                Event::Text(p)
                            } else {
                                Event::Binary(p)
                            };
                            return Ok(Some((event, read_at)));
                        }
                        (0x1 | 0x2, false) => {
                            self.frag = Some((opcode, self.buf[at..at + len].to_vec()));
                        }
                        (0x0, _) => {
                            let Some((op, mut data)) = self.frag.take() else {
                                return Err(BenchError::Protocol(
                                    "continuation without start".into(),
                                ));
                            };
                            data.extend_from_slice(&self.buf[at..at + len]);
                            if !fin {
                                self.frag = Some((op, data));
                                continue;
                            }
                            self.done = data;
                            let event = if op == 0x1 {
                                Event::Text(&self.done)
                            } else {
                                Event::Binary(&self.done)
                            };
                            return Ok(Some((event, read_at)));
                        }
                        (0x8, _) => {
                            let p = &self.buf[at..at + len];
                            let code = (len >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                            return Ok(Some((Event::Close(code), read_at)));
                        }
                        (0x9, _) => {
                            let payload = self.buf[at..at + len].to_vec();
                            let mut w = self.writer.lock().await;
                            w.queue(0xA, &payload);
                            w.flush().await?;
                        }
                        (0xA, _) => {}
                        _ => {
                            return Err(BenchError::Protocol(format!(
                                "unexpected frame opcode {opcode:#x}"
                            )))
                        }
                    }
                    continue;
                }
                // Make room for a frame larger than what is left of the buffer.
                if self.start + hlen + len > self.buf.len() {
                    self.compact();
                    if hlen + len > self.buf.len() {
                        self.buf.resize(hlen + len, 0);
                    }
                }
            } else if self.start == self.end || self.end == self.buf.len() {
                self.compact();
            }
            let n = self
                .rd
                .read(&mut self.buf[self.end..])
                .await
                .map_err(io_err)?;
            if n == 0 {
                return Ok(None);
            }
            self.read_at_us = crate::stats::now_us();
            self.end += n;
        }
    }

    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn headers_of_all_three_length_forms() {
        assert_eq!(parse_header(&[0x81, 5]), Some((true, 1, 2, 5)));
        assert_eq!(parse_header(&[0x01, 126, 1, 0]), Some((false, 1, 4, 256)));
        let mut long = vec![0x82, 127];
        long.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(parse_header(&long), Some((true, 2, 10, 70_000)));
        assert_eq!(parse_header(&[0x81]), None);
        assert_eq!(parse_header(&[0x81, 126, 1]), None);
    }

    /// A fake server: accepts, answers the handshake, sends `frames`, echoes back what arrives.
    async fn serve(frames: Vec<u8>) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0; 4096];
            let n = s.read(&mut req).await.unwrap();
            let text = String::from_utf8_lossy(&req[..n]).to_string();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_owned();
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                accept_key(&key)
            );
            // Head and first frames in one write: leftovers after the head must be kept.
            let mut out = head.into_bytes();
            out.extend_from_slice(&frames);
            s.write_all(&out).await.unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_millis(300), async {
                let mut b = [0u8; 1024];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&b[..n]);
                }
            })
            .await;
            got
        });
        (addr, task)
    }

    #[tokio::test]
    async fn frames_fragments_pings_and_close_arrive_in_order() {
        let mut frames = vec![0x81, 2, b'h', b'i']; // text "hi"
        frames.extend_from_slice(&[0x89, 1, b'p']); // ping "p"
        frames.extend_from_slice(&[0x01, 2, b'a', b'b', 0x80, 1, b'c']); // "ab" + "c"
        frames.extend_from_slice(&[0x88, 2, 0x03, 0xE8]); // close 1000
        let (addr, server) = serve(frames).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut r, w) = handshake(tcp, "x", "/").await.unwrap();
        assert_eq!(r.next().await.unwrap(), Some(Event::Text(b"hi")));
        assert_eq!(r.next().await.unwrap(), Some(Event::Text(b"abc")));
        assert_eq!(r.next().await.unwrap(), Some(Event::Close(Some(1000))));
        {
            let mut w = w.lock().await;
            w.queue_text("yo");
            w.flush().await.unwrap();
        }
        drop((r, w));
        let got = server.await.unwrap();
        // The pong came first, masked, then the text.
        assert_eq!(&got[..2], &[0x8A, 0x81]);
        let mask = &got[2..6];
        assert_eq!(got[6] ^ mask[0], b'p');
        assert_eq!(&got[7..9], &[0x81, 0x82]);
        let mask = &got[9..13];
        assert_eq!([got[13] ^ mask[0], got[14] ^ mask[1]], *b"yo");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_buffer_is_read_whole() {
        let payload = vec![b'z'; READ_CHUNK * 2];
        let mut frames = vec![0x82, 127];
        frames.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        frames.extend_from_slice(&payload);
        let (addr, _server) = serve(frames).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut r, _w) = handshake(tcp, "x", "/").await.unwrap();
        assert_eq!(r.next().await.unwrap(), Some(Event::Binary(&payload[..])));
    }
}
