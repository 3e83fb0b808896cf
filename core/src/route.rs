//! The typed route builder and its type-erased form the server stores.

use crate::auth::{AuthedUser, TokenAuth};
use crate::config::Limits;
use crate::envelope;
use crate::error::{BuildError, ErrorCode, MessageError};
use crate::handshake::OriginPolicy;
use crate::output::{Output, Task};
use crate::params::Params;
use crate::slab::ConnId;
use crate::socket::{Ctx, Socket};
use crate::task::{AsyncCtx, AsyncSocket, Command};
use crate::validate::Validate;
use bytes::Bytes;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// The error a handler may return; it reaches `on_error` with code `handler_error`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A handler's return type when it uses `?`: `|ws, ctx, msg: T| -> HandlerResultOf { .. }`.
pub type HandlerResultOf = Result<(), HandlerError>;

/// What a handler returns: `()` or `Result<(), E>`.
pub trait HandlerResult {
    /// Converts into the core's result.
    fn into_result(self) -> Result<(), HandlerError>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// Why dispatching a message did not simply succeed.
pub(crate) enum Failure {
    /// The peer sent something wrong: report it (the default `on_error` sends the envelope).
    Message(MessageError),
    /// No binary handler: close 1003.
    BinaryUnsupported,
}

impl From<MessageError> for Failure {
    fn from(e: MessageError) -> Self {
        Failure::Message(e)
    }
}

fn handler_failed(message_type: Option<&str>, e: HandlerError) -> Failure {
    tracing::debug!(error = %e, "handler returned an error");
    let mut err = MessageError::new(ErrorCode::HandlerError, e.to_string());
    err.message_type = message_type.map(str::to_owned);
    Failure::Message(err)
}

type MessageFn<U, S, D> =
    Box<dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, &str) -> Result<(), Failure> + Send + Sync>;
type ConnectFn<U, S, D> =
    Box<dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>) -> Result<(), HandlerError> + Send + Sync>;
type CloseFn<U, S, D> = Box<dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, u16, &str) + Send + Sync>;
type ErrorFn<U, S, D> =
    Box<dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, &MessageError) + Send + Sync>;
type BinaryFn<U, S, D> = Box<
    dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, Bytes) -> Result<(), HandlerError> + Send + Sync,
>;
type TextFn<U, S, D> =
    Box<dyn Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, &str) -> Result<(), HandlerError> + Send + Sync>;

/// A JSON Schema for one type, produced on demand (used by type export).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One client message type a route accepts.
#[derive(Clone)]
pub struct MessageSpec {
    /// The `type` value on the wire.
    pub name: String,
    /// Its schema (without the `type` field).
    pub schema: SchemaFn,
    /// Whether its handler is async.
    pub is_async: bool,
}

/// Everything about a route that does not depend on its types.
#[derive(Clone)]
pub struct RouteSpec {
    pub(crate) path: String,
    pub(crate) name: Option<String>,
    pub(crate) limits: Option<Limits>,
    pub(crate) origins: Option<OriginPolicy>,
    pub(crate) protocols: Vec<String>,
    pub(crate) publish_to_self: bool,
    pub(crate) messages: Vec<MessageSpec>,
    pub(crate) server_messages: Option<SchemaFn>,
    pub(crate) misuse: Option<BuildError>,
    pub(crate) token_sources: Vec<crate::auth::TokenSource>,
}

impl RouteSpec {
    /// The route path as declared, e.g. `/ws/rooms/:roomId`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The export name: `.name(..)` or the last static path segment.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path
                .rsplit('/')
                .find(|s| !s.is_empty() && !s.starts_with([':', '*', '{']))
                .unwrap_or("root")
                .to_owned()
        })
    }

    /// Client message types, in registration order.
    pub fn messages(&self) -> &[MessageSpec] {
        &self.messages
    }

    /// The schema of the server-message type, if `.server_messages::<S>()` was called.
    pub fn server_messages(&self) -> Option<SchemaFn> {
        self.server_messages
    }

    /// Where the route reads its token from (empty on public routes).
    pub fn token_sources(&self) -> &[crate::auth::TokenSource] {
        &self.token_sources
    }

    /// Names of the path parameters.
    pub fn param_names(&self) -> Vec<String> {
        crate::router::to_matchit(&self.path)
            .map(|(_, names)| names.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }
}

/// A WebSocket route: path, authentication, message types and handlers.
///
/// `U` is the user type (`()` without authentication), `S` the server-message type and `D` the
/// per-connection data. Call [`authenticate`](Self::authenticate),
/// [`server_messages`](Self::server_messages) and [`data`](Self::data) first: they change the
/// route's types, and handlers registered before them would be lost (building then fails).
///
/// ```
/// use wskit::{Route, Validate, Validator};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize, schemars::JsonSchema)]
/// struct Echo { message: String }
/// impl Validate for Echo {}
///
/// #[derive(Serialize, schemars::JsonSchema)]
/// #[serde(tag = "type", rename_all = "snake_case")]
/// enum Out { Message { content: String, timestamp: u64 } }
///
/// let echo = Route::new("/ws/echo")
///     .server_messages::<Out>()
///     .on("echo", |ws, _ctx, data: Echo| {
///         ws.send(&Out::Message { content: data.message, timestamp: 0 })
///     });
/// # let _ = wskit::Server::builder().route(echo).build().unwrap();
/// ```
pub struct Route<U = (), S = serde_json::Value, D = ()> {
    spec: RouteSpec,
    auth: Option<TokenAuth<U>>,
    anonymous: Option<fn() -> U>,
    handlers: Vec<(Box<str>, MessageFn<U, S, D>)>,
    on_connect: Option<ConnectFn<U, S, D>>,
    on_close: Option<CloseFn<U, S, D>>,
    on_error: Option<ErrorFn<U, S, D>>,
    on_binary: Option<BinaryFn<U, S, D>>,
    on_text: Option<TextFn<U, S, D>>,
    _types: PhantomData<fn() -> (S, D)>,
}

impl Route {
    /// A public route on `path` (`:name` segments are parameters, `*name` a catch-all).
    pub fn new(path: impl Into<String>) -> Route {
        Route {
            spec: RouteSpec {
                path: path.into(),
                name: None,
                limits: None,
                origins: None,
                protocols: Vec::new(),
                publish_to_self: false,
                messages: Vec::new(),
                server_messages: None,
                misuse: None,
                token_sources: Vec::new(),
            },
            auth: None,
            anonymous: Some(|| ()),
            handlers: Vec::new(),
            on_connect: None,
            on_close: None,
            on_error: None,
            on_binary: None,
            on_text: None,
            _types: PhantomData,
        }
    }
}

impl<U, S, D> Route<U, S, D>
where
    U: Send + 'static,
    S: Serialize + 'static,
    D: Default + Send + 'static,
{
    fn has_handlers(&self) -> bool {
        !self.handlers.is_empty()
            || self.on_connect.is_some()
            || self.on_close.is_some()
            || self.on_error.is_some()
            || self.on_binary.is_some()
            || self.on_text.is_some()
    }

    fn retype<U2, S2, D2>(mut self, method: &'static str) -> Route<U2, S2, D2> {
        if self.has_handlers() && self.spec.misuse.is_none() {
            self.spec.misuse = Some(BuildError::TypesAfterHandlers {
                path: self.spec.path.clone(),
                method,
            });
        }
        Route {
            spec: self.spec,
            auth: None,
            anonymous: None,
            handlers: Vec::new(),
            on_connect: None,
            on_close: None,
            on_error: None,
            on_binary: None,
            on_text: None,
            _types: PhantomData,
        }
    }

    /// Requires a token, verified by `auth`; handlers then see `ctx.user: U2`.
    /// Without a valid token the upgrade is refused with 401.
    pub fn authenticate<U2: Send + 'static>(self, auth: TokenAuth<U2>) -> Route<U2, S, D> {
        let mut r: Route<U2, S, D> = self.retype("authenticate");
        r.spec.token_sources = auth.sources.clone();
        r.auth = Some(auth);
        r
    }

    /// Declares the server-message type: `send` and `publish` accept only `S2`.
    pub fn server_messages<S2: Serialize + JsonSchema + 'static>(self) -> Route<U, S2, D> {
        let anonymous = self.anonymous;
        let auth = self.auth.clone();
        let mut r: Route<U, S2, D> = self.retype("server_messages");
        r.anonymous = anonymous;
        r.auth = auth;
        r.spec.server_messages = Some(schema_of::<S2>);
        r
    }

    /// Per-connection data of type `D2` (starts as `D2::default()`), in `ctx.data`.
    pub fn data<D2: Default + Send + 'static>(self) -> Route<U, S, D2> {
        let anonymous = self.anonymous;
        let auth = self.auth.clone();
        let mut r: Route<U, S, D2> = self.retype("data");
        r.anonymous = anonymous;
        r.auth = auth;
        r
    }

    /// The name used in exported types (default: the last static path segment).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = Some(name.into());
        self
    }

    /// Limits for this route, replacing the server's defaults.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.spec.limits = Some(limits);
        self
    }

    /// An Origin policy for this route, replacing the server's.
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.spec.origins = Some(policy);
        self
    }

    /// Subprotocols this route speaks; the first one the client offers is selected.
    pub fn protocols<I: IntoIterator<Item = P>, P: Into<String>>(mut self, protocols: I) -> Self {
        self.spec.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Make `publish` reach the publisher too (Bun's `publishToSelf`).
    pub fn publish_to_self(mut self, yes: bool) -> Self {
        self.spec.publish_to_self = yes;
        self
    }

    /// Handles client messages `{"type": name, ...}`: the rest of the object is deserialized into
    /// `T` and validated before `handler` runs; invalid input never reaches it.
    pub fn on<T, F, R>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Validate + JsonSchema + 'static,
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.add_message::<T>(name, false);
        let type_name: Box<str> = name.into();
        let boxed: MessageFn<U, S, D> = Box::new(move |ws, ctx, text| {
            let value = envelope::decode::<T>(text).map_err(|mut e| {
                e.message_type = Some(type_name.to_string());
                e
            })?;
            handler(ws, ctx, value)
                .into_result()
                .map_err(|e| handler_failed(Some(&type_name), e))
        });
        self.handlers.push((name.into(), boxed));
        self
    }

    /// Like [`on`](Self::on) with an async handler, spawned on the adapter's runtime. It gets a
    /// clone of the user and parameters, and an [`AsyncSocket`] whose effects apply in order.
    /// Successive messages' handlers may run concurrently.
    pub fn on_async<T, F, Fut, R>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Validate + JsonSchema + Send + 'static,
        U: Clone + Sync,
        F: Fn(AsyncSocket<S>, AsyncCtx<U>, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult + 'static,
    {
        self.add_message::<T>(name, true);
        let type_name: Box<str> = name.into();
        let boxed: MessageFn<U, S, D> = Box::new(move |ws, ctx, text| {
            let value = envelope::decode::<T>(text).map_err(|mut e| {
                e.message_type = Some(type_name.to_string());
                e
            })?;
            let socket = AsyncSocket {
                conn: ws.conn,
                handle: ws.hub.handle.clone(),
                publish_to_self: ws.publish_to_self,
                _messages: PhantomData,
            };
            let actx = AsyncCtx {
                user: ctx.user.clone(),
                params: ctx.params.clone(),
                remote_addr: ctx.remote_addr,
                id: ctx.id,
            };
            let handle = ws.hub.handle.clone();
            let (conn, type_name) = (ws.conn, type_name.clone());
            let fut = handler(socket, actx, value);
            ws.hub
                .outputs
                .push_back(Output::Spawn(Task(Box::pin(async move {
                    // A panic in the handler's body closes only this connection (1011), as for
                    // a synchronous handler; the runtime's worker is unaffected.
                    let fut = std::pin::pin!(fut);
                    match crate::output::CatchUnwind(fut).await {
                        Ok(result) => {
                            if let Err(e) = result.into_result() {
                                if let Failure::Message(error) = handler_failed(Some(&type_name), e)
                                {
                                    handle.push(Command::Failed { conn, error });
                                }
                            }
                        }
                        Err(()) => {
                            tracing::error!(%conn, message_type = %type_name, "async handler panicked; closing with 1011");
                            handle.close(conn, 1011, "internal error");
                        }
                    }
                }))));
            Ok(())
        });
        self.handlers.push((name.into(), boxed));
        self
    }

    fn add_message<T: JsonSchema>(&mut self, name: &str, is_async: bool) {
        if self.spec.messages.iter().any(|m| m.name == name) && self.spec.misuse.is_none() {
            self.spec.misuse = Some(BuildError::DuplicateMessageType {
                path: self.spec.path.clone(),
                message_type: name.into(),
            });
        }
        self.spec.messages.push(MessageSpec {
            name: name.into(),
            schema: schema_of::<T>,
            is_async,
        });
    }

    /// Runs when the connection opens (after the 101 is written).
    pub fn on_connect<F, R>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.on_connect = Some(Box::new(move |ws, ctx| hook(ws, ctx).into_result()));
        self
    }

    /// Runs once when the connection is gone, with the close code and reason. The connection is
    /// already unsubscribed; it can still publish to others (e.g. "user left").
    pub fn on_close<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, u16, &str) + Send + Sync + 'static,
    {
        self.on_close = Some(Box::new(hook));
        self
    }

    /// Replaces the default error handling (which sends the SPEC §4 error envelope) for invalid
    /// messages and handler errors.
    pub fn on_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, &MessageError) + Send + Sync + 'static,
    {
        self.on_error = Some(Box::new(hook));
        self
    }

    /// Handles binary messages. Without it, a binary message closes the connection with 1003.
    pub fn on_binary<F, R>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, Bytes) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.on_binary = Some(Box::new(move |ws, ctx, data| {
            hook(ws, ctx, data).into_result()
        }));
        self
    }

    /// Handles every text message raw, bypassing the JSON envelope (non-JSON protocols).
    pub fn on_text<F, R>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Socket<'_, S>, &mut Ctx<U, D>, &str) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.on_text = Some(Box::new(move |ws, ctx, text| {
            hook(ws, ctx, text).into_result()
        }));
        self
    }
}

/// Builds the user of a new connection from an auth result; `None` when the types disagree.
pub(crate) struct NewConn {
    pub(crate) user: Option<AuthedUser>,
    pub(crate) params: Params,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) id: ConnId,
}

/// The server's view of a route, with its types erased.
pub(crate) trait ErasedRoute: Send + Sync {
    fn spec(&self) -> &RouteSpec;
    fn token_auth(&self) -> Option<(&[crate::auth::TokenSource], &crate::auth::Verifier)>;
    fn new_ctx(&self, new: NewConn) -> Option<Box<dyn Any + Send>>;
    fn connect(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send)) -> Result<(), Failure>;
    fn text(
        &self,
        ws: Socket<'_, ()>,
        ctx: &mut (dyn Any + Send),
        text: &str,
    ) -> Result<(), Failure>;
    fn binary(
        &self,
        ws: Socket<'_, ()>,
        ctx: &mut (dyn Any + Send),
        data: Bytes,
    ) -> Result<(), Failure>;
    fn close(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send), code: u16, reason: &str);
    fn error(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send), error: &MessageError);
}

fn ctx_of<U: 'static, D: 'static>(ctx: &mut (dyn Any + Send)) -> &mut Ctx<U, D> {
    ctx.downcast_mut()
        .expect("connection context has its route's types")
}

impl<U, S, D> ErasedRoute for Route<U, S, D>
where
    U: Send + 'static,
    S: Serialize + 'static,
    D: Default + Send + 'static,
{
    fn spec(&self) -> &RouteSpec {
        &self.spec
    }

    fn token_auth(&self) -> Option<(&[crate::auth::TokenSource], &crate::auth::Verifier)> {
        self.auth
            .as_ref()
            .map(|a| (a.sources.as_slice(), &a.verify))
    }

    fn new_ctx(&self, new: NewConn) -> Option<Box<dyn Any + Send>> {
        let user: U = match (new.user, self.anonymous) {
            (Some(AuthedUser(boxed)), _) => *boxed.downcast::<U>().ok()?,
            (None, Some(make)) => make(),
            (None, None) => return None,
        };
        Some(Box::new(Ctx {
            user,
            params: new.params,
            data: D::default(),
            remote_addr: new.remote_addr,
            id: new.id,
        }))
    }

    fn connect(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send)) -> Result<(), Failure> {
        match &self.on_connect {
            Some(hook) => hook(&mut ws.typed(), ctx_of(ctx)).map_err(|e| handler_failed(None, e)),
            None => Ok(()),
        }
    }

    fn text(
        &self,
        ws: Socket<'_, ()>,
        ctx: &mut (dyn Any + Send),
        text: &str,
    ) -> Result<(), Failure> {
        let ctx = ctx_of::<U, D>(ctx);
        let mut ws = ws.typed::<S>();
        if let Some(raw) = &self.on_text {
            return raw(&mut ws, ctx, text).map_err(|e| handler_failed(None, e));
        }

        let message_type = envelope::message_type(text)?;
        match self
            .handlers
            .iter()
            .find(|(name, _)| **name == *message_type)
        {
            Some((_, handler)) => handler(&mut ws, ctx, text),
            None if !envelope::is_json(text) => {
                Err(MessageError::new(ErrorCode::InvalidJson, "message is not valid JSON").into())
            }
            None => {
                let mut e = MessageError::new(
                    ErrorCode::UnknownType,
                    format!(
                        "unknown message type `{}`",
                        message_type.chars().take(64).collect::<String>()
                    ),
                );
                e.message_type = Some(message_type.into_owned());
                Err(e.into())
            }
        }
    }

    fn binary(
        &self,
        ws: Socket<'_, ()>,
        ctx: &mut (dyn Any + Send),
        data: Bytes,
    ) -> Result<(), Failure> {
        match &self.on_binary {
            Some(hook) => {
                hook(&mut ws.typed(), ctx_of(ctx), data).map_err(|e| handler_failed(None, e))
            }
            None => Err(Failure::BinaryUnsupported),
        }
    }

    fn close(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send), code: u16, reason: &str) {
        if let Some(hook) = &self.on_close {
            hook(&mut ws.typed(), ctx_of(ctx), code, reason);
        }
    }

    fn error(&self, ws: Socket<'_, ()>, ctx: &mut (dyn Any + Send), error: &MessageError) {
        let mut ws = ws.typed::<S>();
        match &self.on_error {
            Some(hook) => hook(&mut ws, ctx_of(ctx), error),
            None => {
                let envelope = bytes::Bytes::from(error.to_envelope());
                let _ = ws.send_message(crate::output::Message::Text(envelope));
            }
        }
    }
}
