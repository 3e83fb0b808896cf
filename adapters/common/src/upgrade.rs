//! The outcome of an upgrade request, as the adapter acts on it.

use crate::engine::Connection;
use crate::outbox::Outbox;
use crate::shared::{Effects, Shared};
use http::{Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use wskit::{ConnId, Limits, PendingAuth, Rejection};

/// What to do with an upgrade request.
#[derive(Debug)]
#[must_use = "the adapter must act on the upgrade"]
pub enum Upgrade {
    /// Answer with this refusal ([`rejection_bytes`](crate::http::rejection_bytes)) and close.
    Reject(Rejection),
    /// Run the verifier (bounded by [`Config::auth_timeout`](crate::Config::auth_timeout)), then
    /// call [`Shared::complete_auth`].
    Authenticate(PendingAuth),
    /// Write the 101, then [`Accepted::open`] the connection.
    Accept(Accepted),
    /// Not an upgrade: the [`HttpHandler`](crate::HttpHandler) answered. Write
    /// [`response_bytes`](crate::http::response_bytes) and close, as for a refusal.
    Respond(http::Response<Vec<u8>>),
}

/// An accepted upgrade: the core has a connection id and its queue exists. Dropping it without
/// [`open`](Self::open) tells the core the connection never opened.
pub struct Accepted {
    shared: Arc<Shared>,
    conn: ConnId,
    response: Response<()>,
    limits: Limits,
    outbox: Option<Arc<Outbox>>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("conn", &self.conn)
            .field("status", &self.response.status())
            .finish_non_exhaustive()
    }
}

impl Accepted {
    pub(crate) fn new(shared: Arc<Shared>, a: wskit::Accepted, outbox: Arc<Outbox>) -> Self {
        Accepted {
            shared,
            conn: a.conn,
            response: a.response,
            limits: a.limits,
            outbox: Some(outbox),
        }
    }

    /// The connection's id.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The `101 Switching Protocols` response.
    pub fn response(&self) -> &Response<()> {
        &self.response
    }

    /// The 101 as bytes, to write on the socket.
    pub fn response_bytes(&self) -> Vec<u8> {
        crate::http::head_bytes(&self.response)
    }

    /// The matched route's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The 101 is written: the connection opens (`on_connect` runs) and its engine is returned.
    pub fn open(mut self, now: Instant) -> Connection {
        let outbox = self.outbox.take().expect("opened once");
        let mut fx = Effects::default();
        {
            let mut core = self.shared.lock();
            core.server().handle_open(now, self.conn);
            core.pump(now, &mut fx);
        }
        fx.run(&self.shared);
        Connection::new(self.shared.clone(), self.conn, &self.limits, outbox)
    }
}

impl Drop for Accepted {
    fn drop(&mut self) {
        if self.outbox.take().is_some() {
            let now = Instant::now();
            let mut fx = Effects::default();
            {
                let mut core = self.shared.lock();
                core.closed(now, self.conn, 1006, "upgrade not completed");
                core.pump(now, &mut fx);
            }
            fx.run(&self.shared);
        }
    }
}

/// 503 while shutting down.
pub(crate) fn unavailable() -> Rejection {
    Rejection {
        status: StatusCode::SERVICE_UNAVAILABLE,
        reason: "server shutting down".into(),
        headers: Vec::new(),
    }
}

/// Logs an upgrade's outcome; the URI is redacted (tokens travel in query strings).
pub(crate) fn log_decision(req: &http::Request<()>, remote: Option<SocketAddr>, upgrade: &Upgrade) {
    let uri = wskit::redact_uri(req.uri());
    match upgrade {
        Upgrade::Reject(r) => {
            tracing::debug!(%uri, ?remote, status = r.status.as_u16(), reason = %r.reason, "upgrade refused")
        }
        Upgrade::Authenticate(_) => tracing::trace!(%uri, ?remote, "upgrade authenticating"),
        Upgrade::Accept(a) => tracing::debug!(%uri, ?remote, conn = %a.conn, "upgrade accepted"),
        Upgrade::Respond(_) => {}
    }
}
