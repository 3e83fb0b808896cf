//! What the core asks its adapter to do.

use crate::auth::BoxFuture;
use crate::slab::ConnId;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// A WebSocket data message. Cloning shares the payload (a reference count), which is how one
/// publish reaches many sockets without copying.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text frame; the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Message {
    /// A text message from a string.
    pub fn text(s: impl Into<String>) -> Self {
        Message::Text(Bytes::from(s.into()))
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(b) | Message::Binary(b) => b,
        }
    }

    /// The payload as text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            // Text is only ever built from `String`/`&str`/serde_json output.
            Message::Text(b) => std::str::from_utf8(b).ok(),
            Message::Binary(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(b) => write!(f, "Text({:?})", String::from_utf8_lossy(b)),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

/// A future the adapter must spawn on its runtime (an async handler's body).
pub struct Task(pub(crate) BoxFuture<()>);

impl Task {
    /// The future to spawn or poll.
    pub fn into_future(self) -> BoxFuture<()> {
        self.0
    }
}

/// Polls a future, turning a panic into `Err(())` (the panic message is already printed by the
/// panic hook).
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: std::future::Future + Unpin> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = std::pin::Pin::new(&mut self.0);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Task(..)")
    }
}

/// One thing for the adapter to do, drained with [`Server::poll_output`](crate::Server::poll_output).
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Queue `message` on one connection.
    Send {
        /// The recipient.
        conn: ConnId,
        /// What to send.
        message: Message,
    },
    /// Queue the same `message` on every connection in `conns` (one publish; the payload was
    /// serialized once, so frame it once too).
    Broadcast {
        /// The recipients (already excluding the publisher where Bun's semantics say so).
        conns: Vec<ConnId>,
        /// What to send.
        message: Message,
    },
    /// Send a close frame with `code` after flushing what is queued, then drop the connection and
    /// call [`Server::handle_closed`](crate::Server::handle_closed). The core sends nothing more to it.
    Close {
        /// The connection.
        conn: ConnId,
        /// RFC 6455 close code.
        code: u16,
        /// Close reason (at most 123 bytes).
        reason: String,
    },
    /// Send a ping (the connection has been quiet for half its idle timeout).
    Ping {
        /// The connection.
        conn: ConnId,
    },
    /// Spawn this future (an async handler); it talks back through a [`ServerHandle`](crate::ServerHandle).
    Spawn(Task),
    /// A local publish, for a backplane to forward to other nodes (only with
    /// [`ServerBuilder::backplane_events`](crate::ServerBuilder::backplane_events)).
    Published {
        /// The topic.
        topic: Arc<str>,
        /// The already-encoded message.
        message: Message,
    },
    /// The first local subscriber of `topic` arrived (backplane: subscribe upstream).
    TopicActive {
        /// The topic.
        topic: Arc<str>,
    },
    /// The last local subscriber of `topic` left (backplane: unsubscribe upstream).
    TopicInactive {
        /// The topic.
        topic: Arc<str>,
    },
}
