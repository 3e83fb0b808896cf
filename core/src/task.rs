//! Async handlers and work from outside the server: a cloneable [`ServerHandle`] queues commands
//! (std only: a mutex-guarded queue and a [`Waker`]) that the adapter applies with
//! [`Server::handle_commands`](crate::Server::handle_commands). No runtime in the core.

use crate::error::{MessageError, SocketError};
use crate::output::Message;
use crate::params::Params;
use crate::slab::ConnId;
use crate::socket::encode;
use bytes::Bytes;
use serde::Serialize;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Waker;

/// A request queued through a [`ServerHandle`].
#[derive(Debug)]
pub(crate) enum Command {
    Send {
        conn: ConnId,
        message: Message,
    },
    Publish {
        topic: String,
        message: Message,
        exclude: Option<ConnId>,
    },
    Subscribe {
        conn: ConnId,
        topic: String,
    },
    Unsubscribe {
        conn: ConnId,
        topic: String,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    Failed {
        conn: ConnId,
        error: MessageError,
    },
}

#[derive(Default)]
struct Shared {
    commands: Mutex<Vec<Command>>,
    waker: Mutex<Option<Waker>>,
}

/// A cloneable, `Send` handle to a server: publish and send from async handlers, other
/// threads or HTTP endpoints. Commands apply in the order they were queued.
#[derive(Clone, Default)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerHandle(..)")
    }
}

impl ServerHandle {
    pub(crate) fn push(&self, command: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(command);
        if let Some(w) = self
            .shared
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }

    pub(crate) fn take(&self) -> Vec<Command> {
        std::mem::take(
            &mut *self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.shared.waker.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Publishes to every subscriber of `topic` (nobody excluded: a server-wide publish).
    pub fn publish<M: Serialize + ?Sized>(
        &self,
        topic: &str,
        message: &M,
    ) -> Result<(), SocketError> {
        self.publish_message(topic, encode(message)?);
        Ok(())
    }

    /// Publishes an already-encoded message to every subscriber of `topic`.
    pub fn publish_message(&self, topic: &str, message: Message) {
        self.push(Command::Publish {
            topic: topic.to_owned(),
            message,
            exclude: None,
        });
    }

    /// Sends to one connection (dropped if it has closed).
    pub fn send<M: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        message: &M,
    ) -> Result<(), SocketError> {
        self.push(Command::Send {
            conn,
            message: encode(message)?,
        });
        Ok(())
    }

    /// Closes one connection.
    pub fn close(&self, conn: ConnId, code: u16, reason: &str) {
        self.push(Command::Close {
            conn,
            code,
            reason: reason.to_owned(),
        });
    }
}

/// What an async handler knows about its connection (cloned at dispatch).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AsyncCtx<U> {
    /// The authenticated user.
    pub user: U,
    /// Path parameters.
    pub params: Params,
    /// The peer's address, when known.
    pub remote_addr: Option<SocketAddr>,
    /// The connection's id.
    pub id: ConnId,
}

/// The async handler's side of a connection. Its effects are queued and applied in order by the
/// adapter; anything aimed at a connection that has closed meanwhile is dropped.
pub struct AsyncSocket<S> {
    pub(crate) conn: ConnId,
    pub(crate) handle: ServerHandle,
    pub(crate) publish_to_self: bool,
    pub(crate) _messages: PhantomData<fn(&S)>,
}

impl<S> Clone for AsyncSocket<S> {
    fn clone(&self) -> Self {
        AsyncSocket {
            conn: self.conn,
            handle: self.handle.clone(),
            publish_to_self: self.publish_to_self,
            _messages: PhantomData,
        }
    }
}

impl<S: Serialize> AsyncSocket<S> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.conn
    }

    /// Sends a server message to this connection.
    pub fn send(&self, message: &S) -> Result<(), SocketError> {
        self.handle.push(Command::Send {
            conn: self.conn,
            message: encode(message)?,
        });
        Ok(())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) {
        self.handle.push(Command::Send {
            conn: self.conn,
            message: Message::Binary(data.into()),
        });
    }

    /// Publishes to `topic`, excluding this connection unless the route publishes to self.
    pub fn publish(&self, topic: &str, message: &S) -> Result<(), SocketError> {
        let exclude = (!self.publish_to_self).then_some(self.conn);
        self.handle.push(Command::Publish {
            topic: topic.to_owned(),
            message: encode(message)?,
            exclude,
        });
        Ok(())
    }

    /// Subscribes this connection to `topic` (a limit violation reaches `on_error`).
    pub fn subscribe(&self, topic: &str) {
        self.handle.push(Command::Subscribe {
            conn: self.conn,
            topic: topic.to_owned(),
        });
    }

    /// Unsubscribes this connection from `topic`.
    pub fn unsubscribe(&self, topic: &str) {
        self.handle.push(Command::Unsubscribe {
            conn: self.conn,
            topic: topic.to_owned(),
        });
    }

    /// Closes this connection.
    pub fn close(&self, code: u16, reason: &str) {
        self.handle.close(self.conn, code, reason);
    }

    /// The server-wide handle.
    pub fn server(&self) -> ServerHandle {
        self.handle.clone()
    }
}
