//! A raw client for what no well-behaved client sends: frames with lying length fields, close
//! frames with forbidden codes, floods, and sockets with tiny buffers or `SO_LINGER 0`.

use crate::client::{RawFrame, TIMEOUT};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The mask every frame of [`Peer`] uses (any value is as good as another here).
const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// One client frame as it goes on the wire: `first_byte` is FIN/RSV/opcode, the payload is
/// masked.
pub fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(first_byte, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Only the header of a masked frame announcing `len` payload bytes (in the shortest length
/// form, or the 64-bit one when `len` needs it).
pub fn header(first_byte: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first_byte];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// A close frame with `code` (and no reason).
pub fn close_frame(code: u16) -> Vec<u8> {
    frame(0x88, &code.to_be_bytes())
}

/// A raw WebSocket client over a socket the test may tune first.
pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    /// Upgrades `path` and expects a 101.
    pub fn connect(addr: SocketAddr, path: &str) -> Peer {
        Self::connect_with(addr, path, |_| {})
    }

    /// Like [`connect`](Self::connect), with `setup` applied to the socket before it connects
    /// (buffer sizes must be set then to take effect).
    pub fn connect_with(addr: SocketAddr, path: &str, setup: impl FnOnce(&Socket)) -> Peer {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .expect("socket");
        setup(&socket);
        socket.connect(&addr.into()).expect("connect");
        let mut stream: TcpStream = socket.into();
        let (_, buf) = crate::client::raw_upgrade(&mut stream, addr, path);
        Peer { stream, buf }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one masked frame.
    pub fn send_frame(&mut self, first_byte: u8, payload: &[u8]) {
        self.send(&frame(first_byte, payload)).expect("write frame");
    }

    /// The next frame, or `None` when the stream ended or timed out.
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        crate::client::read_frame(&mut self.stream, &mut self.buf)
    }

    /// Reads until a close frame and returns its code (1005 for an empty one); data frames
    /// before it are returned too. `None` for the code: the stream ended without a close.
    pub fn read_until_close(&mut self) -> (Vec<RawFrame>, Option<u16>) {
        let mut frames = Vec::new();
        while let Some(f) = self.read_frame() {
            if f.opcode == 0x8 {
                return (frames, f.close_code().or(Some(1005)));
            }
            frames.push(f);
        }
        (frames, None)
    }

    /// Whether the server ended the TCP stream (EOF or reset) within `within`, after reading
    /// and discarding anything before that.
    pub fn ended_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// Makes dropping `stream` send a reset instead of a FIN: the peer "vanishes".
pub fn reset_on_drop(stream: &TcpStream) {
    SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
}

/// Sends `request` (which may be huge) while reading the response concurrently, so a server
/// that answers before reading everything is still heard. Returns the response head, or the
/// empty string if the server closed without one.
pub fn big_request(addr: SocketAddr, request: Vec<u8>) -> String {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        // The server may close once it has decided: a failed write is expected.
        let _ = writer.write_all(&request);
    });
    let mut reader = stream;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    String::from_utf8_lossy(&head).into_owned()
}
