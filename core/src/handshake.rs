//! The HTTP side of a WebSocket upgrade: is this an upgrade at all, is the Origin allowed, and
//! the 101 response. Decisions are returned to the adapter, which writes them.

use crate::auth::{offered_protocols, BoxFuture};
use crate::config::Limits;
use crate::slab::ConnId;
use crate::AuthRejection;
use base64::Engine;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use std::borrow::Cow;

/// The server's answer to an upgrade request.
#[derive(Debug)]
#[must_use = "the adapter must act on the decision"]
pub enum Decision {
    /// Refuse with an HTTP response (404, 426, 400, 403, 401, ...).
    Reject(Rejection),
    /// Run [`PendingAuth::verify`], then call [`Server::complete_auth`](crate::Server::complete_auth).
    Authenticate(PendingAuth),
    /// Write [`Accepted::response`] (the 101), then call
    /// [`Server::handle_open`](crate::Server::handle_open).
    Accept(Accepted),
}

/// An HTTP refusal of an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status to answer with.
    pub status: StatusCode,
    /// A short explanation for the body (never contains credentials).
    pub reason: Cow<'static, str>,
    /// Extra headers, e.g. `Sec-WebSocket-Version: 13` on a 426.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// The full HTTP response, body `reason` as text.
    pub fn to_response(&self) -> Response<String> {
        let mut res = Response::new(format!("{}\n", self.reason));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        for (k, v) in &self.headers {
            h.append(k.clone(), v.clone());
        }
        res
    }
}

impl From<AuthRejection> for Rejection {
    fn from(r: AuthRejection) -> Self {
        Rejection::new(r.status, r.reason)
    }
}

/// Identifies an authentication in progress; stale tickets (timed out, server restarted the
/// slot) are recognised by their generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthTicket(pub(crate) ConnId);

/// An upgrade waiting for the user's verifier.
pub struct PendingAuth {
    /// Pass back to [`Server::complete_auth`](crate::Server::complete_auth).
    pub ticket: AuthTicket,
    /// The verifier's future; run it on your runtime, bounded by [`Limits::auth_timeout`].
    pub verify: BoxFuture<Result<crate::auth::AuthedUser, AuthRejection>>,
    /// When the route's `auth_timeout` runs out: a result completed later is refused with 401,
    /// so an adapter may stop waiting for the verifier at this instant.
    pub deadline: std::time::Instant,
}

impl std::fmt::Debug for PendingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuth")
            .field("ticket", &self.ticket)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// An accepted upgrade.
#[derive(Debug)]
pub struct Accepted {
    /// The new connection.
    pub conn: ConnId,
    /// The `101 Switching Protocols` response to write.
    pub response: Response<()>,
    /// The limits of the matched route (message size for the framer, queue bound, ...).
    pub limits: Limits,
}

/// Checks that `req` is a well-formed WebSocket upgrade; returns the accept key.
pub(crate) fn check_upgrade(req: &Request<()>) -> Result<HeaderValue, Rejection> {
    let has_token = |name: HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let upgrade_required = || {
        let mut r = Rejection::new(
            StatusCode::UPGRADE_REQUIRED,
            "this path only accepts WebSocket upgrades",
        );
        r.headers
            .push((header::UPGRADE, HeaderValue::from_static("websocket")));
        r.headers
            .push((header::CONNECTION, HeaderValue::from_static("Upgrade")));
        r.headers.push((
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        ));
        r
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(upgrade_required());
    }
    if req.method() != http::Method::GET {
        return Err(Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket upgrades use GET",
        ));
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(upgrade_required());
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or_else(|| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "missing or malformed Sec-WebSocket-Key",
            )
        })?;
    Ok(accept_key(key.as_bytes()))
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let encoded = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

/// Builds the 101 response.
pub(crate) fn switching_protocols(accept: HeaderValue, protocol: Option<&str>) -> Response<()> {
    let mut res = Response::new(());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    res
}

/// The subprotocol to select: the first one the client offered that the route speaks.
pub(crate) fn select_protocol<'a>(req: &Request<()>, supported: &'a [String]) -> Option<&'a str> {
    offered_protocols(req)
        .find_map(|p| supported.iter().find(|s| s.as_str() == p))
        .map(String::as_str)
}

/// Which browser origins may open connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Option<Vec<String>>,
    allow_missing: bool,
}

impl OriginPolicy {
    /// Any origin (the default): fine for non-browser clients and token-authenticated routes.
    pub fn any() -> Self {
        OriginPolicy {
            allowed: None,
            allow_missing: true,
        }
    }

    /// Only these exact origins (`scheme://host[:port]`); a request without an `Origin` header
    /// (a non-browser client) is allowed unless [`deny_missing`](Self::deny_missing) is set.
    /// `"null"` is matched literally, so it is refused unless listed.
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OriginPolicy {
            allowed: Some(origins.into_iter().map(Into::into).collect()),
            allow_missing: true,
        }
    }

    /// Refuse requests that carry no `Origin` header.
    pub fn deny_missing(mut self) -> Self {
        self.allow_missing = false;
        self
    }

    /// Whether `req` passes.
    pub fn permits(&self, req: &Request<()>) -> bool {
        match req.headers().get(header::ORIGIN) {
            None => self.allow_missing,
            Some(origin) => match &self.allowed {
                None => true,
                Some(list) => list.iter().any(|o| o.as_bytes() == origin.as_bytes()),
            },
        }
    }
}

/// The request URI with every query value replaced by `REDACTED`, for logs.
pub fn redact_uri(uri: &http::Uri) -> String {
    match uri.query() {
        None => uri.path().to_owned(),
        Some(q) => {
            let redacted: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}=REDACTED"),
                    None => pair.to_owned(),
                })
                .collect();
            format!("{}?{}", uri.path(), redacted.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn origin_policy_is_exact() {
        let p = OriginPolicy::allow(["https://chat.example"]);
        let with = |o: &str| Request::get("/").header("origin", o).body(()).unwrap();
        assert!(p.permits(&with("https://chat.example")));
        assert!(!p.permits(&with("https://chat.example.evil")));
        assert!(!p.permits(&with("https://evil-chat.example")));
        assert!(!p.permits(&with("null")));
        assert!(p.permits(&Request::get("/").body(()).unwrap()));
        assert!(!p
            .clone()
            .deny_missing()
            .permits(&Request::get("/").body(()).unwrap()));
    }

    #[test]
    fn redaction_hides_every_query_value() {
        let uri: http::Uri = "/ws/chat?token=eyJsecret&x=1".parse().unwrap();
        assert_eq!(redact_uri(&uri), "/ws/chat?token=REDACTED&x=REDACTED");
    }
}
