//! What crosses Redis: one compact frame per publish, whatever the number of subscribers.
//!
//! ```text
//! byte 0       version (1)
//! byte 1       kind: 0 text, 1 binary
//! bytes 2..18  id of the node that published (drops its own echo)
//! bytes 18..   the message exactly as the core encoded it
//! ```
//!
//! The payload is the core's already-serialized message, so no node re-encodes anything: the
//! publishing node copies it once into the frame, each receiving node copies it once out of
//! Redis' reply and shares it among its local subscribers.

use bytes::Bytes;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use wskit::Message;

const VERSION: u8 = 1;
const KIND_TEXT: u8 = 0;
const KIND_BINARY: u8 = 1;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 2 + NodeId::LEN;

/// Identifies one backplane instance (one node). Random per [`Backplane`](crate::Backplane)
/// unless set with [`BackplaneBuilder::node_id`](crate::BackplaneBuilder::node_id).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId([u8; NodeId::LEN]);

impl NodeId {
    const LEN: usize = 16;

    /// A fresh random id. Collisions only matter between nodes sharing a Redis prefix; 128 bits
    /// from the standard library's per-process random hash keys make them negligible.
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut bytes = [0u8; Self::LEN];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            // Every `RandomState::new()` draws new keys (seeded from the OS per thread).
            let mut h = RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.write_u32(std::process::id());
            if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        NodeId(bytes)
    }

    /// An id from its 16 bytes (for a stable id per deployment slot, or tests).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        NodeId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// The bytes before the payload of `message`'s frame.
pub(crate) fn encode_header(node: NodeId, message: &Message) -> [u8; HEADER_LEN] {
    let kind = match message {
        Message::Text(_) => KIND_TEXT,
        Message::Binary(_) => KIND_BINARY,
    };
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1] = kind;
    header[2..].copy_from_slice(&node.0);
    header
}

/// Frames `message` for other nodes (the sink writes the same bytes straight into the
/// `PUBLISH` command instead).
#[cfg(test)]
pub(crate) fn encode(node: NodeId, message: &Message) -> Vec<u8> {
    let mut frame = encode_header(node, message).to_vec();
    frame.extend_from_slice(message.payload());
    frame
}

/// Why a frame from Redis was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Not a frame of this version (another program publishing on the prefix, or a newer node).
    Malformed,
    /// A text frame whose payload is not UTF-8 (clients would have to close with 1007).
    NotUtf8,
}

/// A frame read back from Redis.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Published by `own`: local subscribers already have it.
    Echo,
    /// Published by another node.
    Remote(Message),
}

/// Parses a frame; the payload is copied out once, and not at all for an echo of `own`.
pub(crate) fn decode(frame: &[u8], own: NodeId) -> Result<Decoded, Rejected> {
    if frame.len() < HEADER_LEN || frame[0] != VERSION {
        return Err(Rejected::Malformed);
    }
    if frame[2..HEADER_LEN] == own.0 {
        return Ok(Decoded::Echo);
    }
    let payload = &frame[HEADER_LEN..];
    let message = match frame[1] {
        KIND_TEXT => {
            // `Message::Text` promises UTF-8; a foreign publisher must not break that promise.
            std::str::from_utf8(payload).map_err(|_| Rejected::NotUtf8)?;
            Message::Text(Bytes::copy_from_slice(payload))
        }
        KIND_BINARY => Message::Binary(Bytes::copy_from_slice(payload)),
        _ => return Err(Rejected::Malformed),
    };
    Ok(Decoded::Remote(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        let node = NodeId::random();
        let other = NodeId::random();
        for message in [
            Message::text(r#"{"type":"message","text":"héllo"}"#),
            Message::Binary(Bytes::from_static(&[0, 159, 146, 150, 255])),
            Message::text(""),
        ] {
            let frame = encode(node, &message);
            assert_eq!(frame.len(), HEADER_LEN + message.len());
            assert_eq!(decode(&frame, other), Ok(Decoded::Remote(message)));
            assert_eq!(decode(&frame, node), Ok(Decoded::Echo));
        }
    }

    #[test]
    fn foreign_or_broken_frames_are_refused() {
        let node = NodeId::random();
        let me = NodeId::random();
        assert_eq!(decode(b"hello", me), Err(Rejected::Malformed));
        let mut frame = encode(node, &Message::text("x"));
        frame[0] = 2;
        assert_eq!(decode(&frame, me), Err(Rejected::Malformed));
        let mut frame = encode(node, &Message::text("x"));
        frame[1] = 7;
        assert_eq!(decode(&frame, me), Err(Rejected::Malformed));
        let mut frame = encode(node, &Message::text("x"));
        *frame.last_mut().unwrap() = 0xff;
        assert_eq!(decode(&frame, me), Err(Rejected::NotUtf8));
    }

    #[test]
    fn ids_differ() {
        let a = NodeId::random();
        let b = NodeId::random();
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 32);
        assert_eq!(NodeId::from_bytes(*a.as_bytes()), a);
    }
}
