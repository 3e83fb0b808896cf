//! What a handler sees: the [`Socket`] it acts through and the [`Ctx`] it reads.

use crate::config::Limits;
use crate::error::SocketError;
use crate::output::{Message, Output};
use crate::params::Params;
use crate::slab::ConnId;
use crate::task::ServerHandle;
use crate::topics::{Change, Topics};
use bytes::Bytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

/// Per-connection context: who the peer is and what the app keeps for it.
///
/// `user` has the verifier's type on authenticated routes and is `()` on public ones.
#[derive(Debug)]
#[non_exhaustive]
pub struct Ctx<U, D = ()> {
    /// The authenticated user.
    pub user: U,
    /// Path parameters, percent-decoded.
    pub params: Params,
    /// Data the app keeps for this connection (see `Route::data`).
    pub data: D,
    /// The peer's address, when the adapter knows it.
    pub remote_addr: Option<SocketAddr>,
    /// This connection's id.
    pub id: ConnId,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Accepted; the adapter has not yet reported the 101 written.
    Accepted,
    /// Open: messages flow.
    Open,
    /// A close was requested or seen; nothing more is sent to it.
    Closing,
}

/// The parts of the server that handlers may touch (everything but the connection table).
pub(crate) struct Hub {
    pub(crate) topics: Topics,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) handle: ServerHandle,
    pub(crate) backplane_events: bool,
}

impl Hub {
    /// Fans one encoded message out to a topic's subscribers, optionally minus one.
    pub(crate) fn publish(
        &mut self,
        topic: &str,
        message: Message,
        exclude: Option<ConnId>,
        forward: bool,
    ) -> usize {
        let subscribers = self.topics.subscribers(topic);
        let conns: Vec<ConnId> = match exclude {
            Some(me) => subscribers.iter().copied().filter(|c| *c != me).collect(),
            None => subscribers.to_vec(),
        };
        let n = conns.len();
        if forward && self.backplane_events {
            self.outputs.push_back(Output::Published {
                topic: Arc::from(topic),
                message: message.clone(),
            });
        }
        if n > 0 {
            self.outputs.push_back(Output::Broadcast { conns, message });
        }
        n
    }

    pub(crate) fn subscribe(
        &mut self,
        conn: ConnId,
        topic: &str,
        limits: &Limits,
    ) -> Result<bool, SocketError> {
        if topic.is_empty() {
            return Err(SocketError::EmptyTopic);
        }
        if topic.len() > limits.max_topic_len {
            return Err(SocketError::TopicTooLong {
                len: topic.len(),
                limit: limits.max_topic_len,
            });
        }
        if self.topics.is_subscribed(conn, topic) {
            return Ok(false);
        }
        if self.topics.count_of(conn) >= limits.max_topics_per_conn {
            return Err(SocketError::TooManyTopics {
                limit: limits.max_topics_per_conn,
            });
        }
        if self.topics.subscribe(conn, topic) == Change::TopicEdge && self.backplane_events {
            self.outputs.push_back(Output::TopicActive {
                topic: Arc::from(topic),
            });
        }
        Ok(true)
    }

    pub(crate) fn unsubscribe(&mut self, conn: ConnId, topic: &str) -> bool {
        match self.topics.unsubscribe(conn, topic) {
            Change::None => false,
            Change::Member => true,
            Change::TopicEdge => {
                if self.backplane_events {
                    self.outputs.push_back(Output::TopicInactive {
                        topic: Arc::from(topic),
                    });
                }
                true
            }
        }
    }

    /// Drops every subscription of `conn`.
    pub(crate) fn leave_all(&mut self, conn: ConnId) {
        for topic in self.topics.remove_conn(conn) {
            if self.backplane_events {
                self.outputs.push_back(Output::TopicInactive { topic });
            }
        }
    }

    /// Marks `conn` closing, unsubscribes it and asks the adapter to close it.
    pub(crate) fn close(&mut self, conn: ConnId, status: &mut Status, code: u16, reason: &str) {
        if *status == Status::Closing {
            return;
        }
        *status = Status::Closing;
        self.leave_all(conn);
        let mut reason = reason.to_owned();
        truncate_utf8(&mut reason, 123);
        self.outputs.push_back(Output::Close { conn, code, reason });
    }
}

/// Close reasons must fit a control frame (125 bytes with the code).
fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Serializes a message once; every recipient shares the bytes.
pub(crate) fn encode<M: Serialize + ?Sized>(message: &M) -> Result<Message, SocketError> {
    serde_json::to_vec(message)
        .map(|v| Message::Text(Bytes::from(v)))
        .map_err(|e| SocketError::Serialize(e.to_string()))
}

/// The handler's side of one connection: send, publish, subscribe, close.
///
/// `S` is the route's server-message type: `send` and `publish` accept nothing else.
pub struct Socket<'a, S> {
    pub(crate) conn: ConnId,
    pub(crate) status: &'a mut Status,
    pub(crate) hub: &'a mut Hub,
    pub(crate) limits: &'a Limits,
    pub(crate) publish_to_self: bool,
    pub(crate) _messages: PhantomData<fn(&S)>,
}

impl<'a> Socket<'a, ()> {
    pub(crate) fn typed<S>(self) -> Socket<'a, S> {
        Socket {
            conn: self.conn,
            status: self.status,
            hub: self.hub,
            limits: self.limits,
            publish_to_self: self.publish_to_self,
            _messages: PhantomData,
        }
    }
}

impl<S: Serialize> Socket<'_, S> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.conn
    }

    /// Whether the connection is still open (false once `close` was called or the peer left).
    pub fn is_open(&self) -> bool {
        *self.status != Status::Closing
    }

    /// Sends a server message to this connection.
    pub fn send(&mut self, message: &S) -> Result<(), SocketError> {
        let encoded = encode(message)?;
        self.send_message(encoded)
    }

    /// Sends raw text, outside the typed protocol (for non-JSON routes).
    pub fn send_text(&mut self, text: impl Into<String>) -> Result<(), SocketError> {
        self.send_message(Message::text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SocketError> {
        self.send_message(Message::Binary(data.into()))
    }

    /// Sends an already-encoded message.
    pub fn send_message(&mut self, message: Message) -> Result<(), SocketError> {
        if !self.is_open() {
            return Err(SocketError::Closed);
        }
        self.hub.outputs.push_back(Output::Send {
            conn: self.conn,
            message,
        });
        Ok(())
    }

    /// Publishes to every subscriber of `topic` except this connection (Bun's semantics; the
    /// route's `publish_to_self(true)` includes it). Returns the number of local recipients.
    /// The message is serialized once, whatever the number of subscribers.
    pub fn publish(&mut self, topic: &str, message: &S) -> Result<usize, SocketError> {
        let encoded = encode(message)?;
        let exclude = (!self.publish_to_self).then_some(self.conn);
        Ok(self.hub.publish(topic, encoded, exclude, true))
    }

    /// Publishes to every subscriber of `topic`, this connection included.
    pub fn publish_including_self(
        &mut self,
        topic: &str,
        message: &S,
    ) -> Result<usize, SocketError> {
        let encoded = encode(message)?;
        Ok(self.hub.publish(topic, encoded, None, true))
    }

    /// Publishes an already-encoded message (excluding this connection, as `publish`).
    pub fn publish_message(&mut self, topic: &str, message: Message) -> usize {
        let exclude = (!self.publish_to_self).then_some(self.conn);
        self.hub.publish(topic, message, exclude, true)
    }

    /// Subscribes this connection to `topic`. `Ok(false)` if it already was.
    pub fn subscribe(&mut self, topic: &str) -> Result<bool, SocketError> {
        if !self.is_open() {
            return Err(SocketError::Closed);
        }
        self.hub.subscribe(self.conn, topic, self.limits)
    }

    /// Unsubscribes this connection from `topic`. `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        self.hub.unsubscribe(self.conn, topic)
    }

    /// Whether this connection holds `topic`.
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.hub.topics.is_subscribed(self.conn, topic)
    }

    /// The topics this connection holds.
    pub fn topics(&self) -> Vec<Arc<str>> {
        self.hub.topics.topics_of(self.conn)
    }

    /// How many connections on this node hold `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.hub.topics.subscribers(topic).len()
    }

    /// Closes the connection with `code` and `reason` (truncated to 123 bytes). It is
    /// unsubscribed at once; `on_close` runs when the adapter reports the socket gone.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.hub.close(self.conn, self.status, code, reason);
    }

    /// A handle for work outside this handler (async tasks, other threads): publish and send
    /// from anywhere.
    pub fn server(&self) -> ServerHandle {
        self.hub.handle.clone()
    }
}
