//! Prepared frames: server-to-client frames are unmasked, so a message's whole frame is the same
//! bytes for every recipient. It is encoded once per publish and shared by reference count.

use bytes::{BufMut, Bytes, BytesMut};
use wskit::Message;

/// Payloads up to this size are copied next to their header, so the frame is one buffer (one
/// iovec). Larger payloads are shared as they are, behind a separate header.
const INLINE_MAX: usize = 16 * 1024;

/// `FIN` + opcode ping, no payload.
static PING: [u8; 2] = [0x89, 0x00];

/// One or more complete frames, ready to write to any number of sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedFrame {
    head: Bytes,
    tail: Bytes,
}

impl PreparedFrame {
    /// Frames a data message (FIN set, unmasked). Costs one copy of small payloads, none of
    /// large ones.
    pub fn message(message: &Message) -> Self {
        let (opcode, payload) = opcode_and_payload(message);
        let len = payload.len();
        let header_len = header_len(len);
        if len <= INLINE_MAX {
            let mut buf = BytesMut::with_capacity(header_len + len);
            put_header(&mut buf, opcode, len);
            buf.extend_from_slice(payload);
            PreparedFrame {
                head: buf.freeze(),
                tail: Bytes::new(),
            }
        } else {
            let mut buf = BytesMut::with_capacity(header_len);
            put_header(&mut buf, opcode, len);
            PreparedFrame {
                head: buf.freeze(),
                tail: payload.clone(),
            }
        }
    }

    /// An empty ping (the core asks for one at half the idle timeout).
    pub fn ping() -> Self {
        PreparedFrame::raw(Bytes::from_static(&PING))
    }

    /// Bytes that already are whole frames (e.g. tungstenite's pong and close replies).
    pub fn raw(bytes: Bytes) -> Self {
        PreparedFrame {
            head: bytes,
            tail: Bytes::new(),
        }
    }

    /// Total length on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes from `offset` on, as at most two slices.
    pub(crate) fn parts_from(&self, offset: usize) -> (&[u8], &[u8]) {
        if offset < self.head.len() {
            (&self.head[offset..], &self.tail[..])
        } else {
            (&self.tail[offset - self.head.len()..], &[])
        }
    }

    /// Concatenated bytes (tests).
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], &self.tail[..]].concat()
    }
}

fn opcode_and_payload(message: &Message) -> (u8, &Bytes) {
    match message {
        Message::Text(b) => (0x1, b),
        Message::Binary(b) => (0x2, b),
    }
}

/// The length of `message`'s frame on the wire.
pub(crate) fn frame_len(message: &Message) -> usize {
    let len = opcode_and_payload(message).1.len();
    header_len(len) + len
}

/// Appends `message`'s whole frame to `buf` (for a recipient's pending buffer).
pub(crate) fn encode_into(buf: &mut Vec<u8>, message: &Message) {
    let (opcode, payload) = opcode_and_payload(message);
    put_header(buf, opcode, payload.len());
    buf.extend_from_slice(payload);
}

fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

fn put_header(buf: &mut impl BufMut, opcode: u8, len: usize) {
    buf.put_u8(0x80 | opcode);
    match len {
        0..=125 => buf.put_u8(len as u8),
        126..=0xFFFF => {
            buf.put_u8(126);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(127);
            buf.put_u64(len as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_follow_rfc6455() {
        let small = PreparedFrame::message(&Message::text("hi")).to_vec();
        assert_eq!(small, b"\x81\x02hi");
        let medium = PreparedFrame::message(&Message::Binary(Bytes::from(vec![7; 300]))).to_vec();
        assert_eq!(&medium[..4], &[0x82, 126, 0x01, 0x2c]);
        assert_eq!(medium.len(), 304);
        let big = PreparedFrame::message(&Message::Binary(Bytes::from(vec![1; 70_000])));
        let bytes = big.to_vec();
        assert_eq!(&bytes[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(big.len(), 70_010);
    }

    #[test]
    fn large_payloads_are_shared_not_copied() {
        let payload = Bytes::from(vec![5u8; INLINE_MAX + 1]);
        let frame = PreparedFrame::message(&Message::Binary(payload.clone()));
        assert_eq!(frame.tail.as_ptr(), payload.as_ptr());
        let (a, b) = frame.parts_from(3);
        assert_eq!(a.len() + b.len(), frame.len() - 3);
        let (a, b) = frame.parts_from(frame.head.len() + 1);
        assert_eq!((a.len(), b.len()), (INLINE_MAX, 0));
    }
}
