//! Authentication: where a token comes from, and the user's (possibly async) verifier.
//!
//! The core never awaits the verifier: the handshake yields a [`PendingAuth`](crate::PendingAuth)
//! holding the verifier's future; the adapter runs it and hands the result back with
//! [`Server::complete_auth`](crate::Server::complete_auth).

use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_PROTOCOL};
use http::{Request, StatusCode};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed `Send` future, as the core hands them to adapters.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The subprotocol a client offers (with `base64url.bearer.<token>`) to carry a token, and the
/// one the server selects in reply (SPEC §6).
pub const TOKEN_SUBPROTOCOL: &str = "wskit";
const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.";

/// A custom token extractor.
pub type Extractor = Arc<dyn Fn(&Request<()>) -> Option<String> + Send + Sync>;

/// Where to look for the token. Several may be given; the first that yields a token wins.
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// A query parameter, `?token=...` by default.
    Query(String),
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A cookie with this name.
    Cookie(String),
    /// The `Sec-WebSocket-Protocol` form of SPEC §6 (for browsers, which cannot set headers).
    Subprotocol,
    /// Your own extractor over the upgrade request.
    Custom(Extractor),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Query(n) => write!(f, "Query({n:?})"),
            TokenSource::Bearer => f.write_str("Bearer"),
            TokenSource::Cookie(n) => write!(f, "Cookie({n:?})"),
            TokenSource::Subprotocol => f.write_str("Subprotocol"),
            TokenSource::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl TokenSource {
    /// The query parameter `name`.
    pub fn query(name: impl Into<String>) -> Self {
        TokenSource::Query(name.into())
    }

    /// The cookie `name`.
    pub fn cookie(name: impl Into<String>) -> Self {
        TokenSource::Cookie(name.into())
    }

    /// A custom extractor.
    pub fn custom(f: impl Fn(&Request<()>) -> Option<String> + Send + Sync + 'static) -> Self {
        TokenSource::Custom(Arc::new(f))
    }

    /// The token this source finds in `req`, if any (empty tokens count as absent).
    pub fn extract(&self, req: &Request<()>) -> Option<String> {
        let token = match self {
            TokenSource::Query(name) => query_param(req.uri().query()?, name),
            TokenSource::Bearer => {
                let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            }
            TokenSource::Cookie(name) => req.headers().get_all(COOKIE).iter().find_map(|v| {
                v.to_str().ok()?.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    (k == name).then(|| v.trim_matches('"').to_owned())
                })
            }),
            TokenSource::Subprotocol => offered_protocols(req).find_map(|p| {
                let encoded = p.strip_prefix(BEARER_PROTOCOL_PREFIX)?;
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(encoded.trim_end_matches('='))
                    .ok()?;
                String::from_utf8(bytes).ok()
            }),
            TokenSource::Custom(f) => f(req),
        };
        token.filter(|t| !t.is_empty())
    }
}

/// The subprotocols a client offered, in order.
pub(crate) fn offered_protocols(req: &Request<()>) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The first value of query parameter `name`, form-decoded (`+` is a space).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_form(k) == name).then(|| decode_form(v))
    })
}

fn decode_form(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// A refusal from the verifier: the upgrade is answered with `status` (401 by default).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct AuthRejection {
    /// HTTP status of the refusal: 401 or 403 usually.
    pub status: StatusCode,
    /// Why (sent in the response body; never include the token).
    pub reason: String,
}

impl AuthRejection {
    /// 401 Unauthorized.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        AuthRejection {
            status: StatusCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        AuthRejection {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
        }
    }
}

/// What a verifier may return: `Option<U>` (None = 401), or `Result<U, E>` with `E` shown
/// in the 401 body (use [`AuthRejection`] to pick the status).
pub trait IntoAuthResult<U> {
    /// Converts into the core's result type.
    fn into_auth_result(self) -> Result<U, AuthRejection>;
}

impl<U> IntoAuthResult<U> for Option<U> {
    fn into_auth_result(self) -> Result<U, AuthRejection> {
        self.ok_or_else(|| AuthRejection::unauthorized("invalid token"))
    }
}

impl<U, E: Into<AuthRejectionSource>> IntoAuthResult<U> for Result<U, E> {
    fn into_auth_result(self) -> Result<U, AuthRejection> {
        self.map_err(|e| e.into().0)
    }
}

/// Anything a verifier's `Err` can be: an [`AuthRejection`] or any displayable error (401).
pub struct AuthRejectionSource(AuthRejection);

impl From<AuthRejection> for AuthRejectionSource {
    fn from(r: AuthRejection) -> Self {
        AuthRejectionSource(r)
    }
}

impl From<String> for AuthRejectionSource {
    fn from(s: String) -> Self {
        AuthRejectionSource(AuthRejection::unauthorized(s))
    }
}

impl From<&str> for AuthRejectionSource {
    fn from(s: &str) -> Self {
        AuthRejectionSource(AuthRejection::unauthorized(s))
    }
}

/// The authenticated user, type-erased while it travels through the adapter.
pub struct AuthedUser(pub(crate) Box<dyn Any + Send>);

impl fmt::Debug for AuthedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthedUser(..)")
    }
}

pub(crate) type Verifier =
    Arc<dyn Fn(String) -> BoxFuture<Result<AuthedUser, AuthRejection>> + Send + Sync>;

/// Token authentication: a list of sources and a verifier that turns a token into a user `U`.
///
/// ```
/// use wskit::{TokenAuth, TokenSource};
/// #[derive(Clone)]
/// struct User { id: String }
/// let auth = TokenAuth::new(|token: String| async move {
///     // look the token up in a database...
///     (token == "secret").then(|| User { id: "u1".into() })
/// })
/// .sources([TokenSource::query("token"), TokenSource::Bearer, TokenSource::Subprotocol]);
/// # let _ = auth;
/// ```
pub struct TokenAuth<U> {
    pub(crate) sources: Vec<TokenSource>,
    pub(crate) verify: Verifier,
    _user: std::marker::PhantomData<fn() -> U>,
}

impl<U> Clone for TokenAuth<U> {
    fn clone(&self) -> Self {
        TokenAuth {
            sources: self.sources.clone(),
            verify: self.verify.clone(),
            _user: Default::default(),
        }
    }
}

impl<U: Send + 'static> TokenAuth<U> {
    /// An async verifier; the token is read from the `token` query parameter unless
    /// [`sources`](Self::sources) says otherwise.
    pub fn new<F, Fut, R>(verify: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoAuthResult<U>,
    {
        let verify = Arc::new(verify);
        TokenAuth {
            sources: vec![TokenSource::query("token")],
            verify: Arc::new(move |token| {
                let fut = verify(token);
                Box::pin(async move {
                    fut.await
                        .into_auth_result()
                        .map(|u| AuthedUser(Box::new(u)))
                })
            }),
            _user: Default::default(),
        }
    }

    /// A synchronous verifier (no I/O).
    pub fn new_sync<F, R>(verify: F) -> Self
    where
        F: Fn(String) -> R + Send + Sync + 'static,
        R: IntoAuthResult<U> + Send + 'static,
    {
        TokenAuth::new(move |token| std::future::ready(verify(token)))
    }

    /// Replaces where the token is looked for; the first source that has one wins.
    pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// The token in `req`, from the first source that has one.
    pub fn extract(&self, req: &Request<()>) -> Option<String> {
        self.sources.iter().find_map(|s| s.extract(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn each_source_finds_its_token() {
        let r = req("/ws?a=1&token=abc%2Bd+e", &[]);
        assert_eq!(
            TokenSource::query("token").extract(&r).as_deref(),
            Some("abc+d e")
        );
        let r = req("/ws", &[("authorization", "bearer  xyz ")]);
        assert_eq!(TokenSource::Bearer.extract(&r).as_deref(), Some("xyz"));
        let r = req("/ws", &[("cookie", "a=b; auth_token=tok; c=d")]);
        assert_eq!(
            TokenSource::cookie("auth_token").extract(&r).as_deref(),
            Some("tok")
        );
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("jwt.x.y");
        let r = req(
            "/ws",
            &[(
                "sec-websocket-protocol",
                &format!("wskit, base64url.bearer.{enc}"),
            )],
        );
        assert_eq!(
            TokenSource::Subprotocol.extract(&r).as_deref(),
            Some("jwt.x.y")
        );
        let r = req("/ws", &[("x-auth-token", "custom")]);
        let custom = TokenSource::custom(|r| {
            r.headers()
                .get("x-auth-token")?
                .to_str()
                .ok()
                .map(Into::into)
        });
        assert_eq!(custom.extract(&r).as_deref(), Some("custom"));
    }

    #[test]
    fn empty_or_malformed_tokens_are_absent() {
        assert_eq!(
            TokenSource::query("token").extract(&req("/ws?token=", &[])),
            None
        );
        assert_eq!(
            TokenSource::Bearer.extract(&req("/ws", &[("authorization", "Basic abc")])),
            None
        );
        let r = req(
            "/ws",
            &[("sec-websocket-protocol", "wskit, base64url.bearer.!!!")],
        );
        assert_eq!(TokenSource::Subprotocol.extract(&r), None);
    }
}
