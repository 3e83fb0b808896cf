//! The chat routes: the seed's "Complete Example" as a wskit server (SPEC §3).

use crate::jwt::{Jwt, User};
use crate::messages::{ChatMessage, Echo, EchoMessage, JoinRoom, LeaveRoom, ServerMessage, Typing};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};
use wskit::{
    BuildError, HandlerResultOf, Limits, OriginPolicy, Route, Server, TokenAuth, TokenSource,
};

/// Chat messages are capped at 64 KiB (SPEC §4).
pub const CHAT_MAX_PAYLOAD: usize = 64 * 1024;

/// The rooms one connection has joined (the seed's `userRooms`, kept per connection so it cannot
/// outlive it).
#[derive(Debug, Default)]
pub struct Rooms(pub BTreeSet<String>);

/// How to build the chat server.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Token verification.
    pub jwt: Jwt,
    /// Allowed browser origins; empty means any.
    pub allowed_origins: Vec<String>,
    /// Emit backplane events (for the Redis backplane).
    pub backplane: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn room(room_id: &str) -> String {
    format!("room:{room_id}")
}

/// `/ws/chat`: token auth (query, Bearer, subprotocol), rooms, messages, typing.
pub fn chat_route(jwt: Jwt) -> Route<User, ServerMessage, Rooms> {
    let auth = TokenAuth::new_sync(move |token: String| {
        jwt.verify(&token).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            "invalid or expired token"
        })
    })
    .sources([
        TokenSource::query("token"),
        TokenSource::Bearer,
        TokenSource::Subprotocol,
    ]);

    Route::new("/ws/chat")
        .authenticate(auth)
        .server_messages::<ServerMessage>()
        .data::<Rooms>()
        .limits(Limits::default().max_payload(CHAT_MAX_PAYLOAD))
        .on_connect(|_ws, ctx| tracing::info!(user = %ctx.user.email, "user connected"))
        .on("join_room", |ws, ctx, data: JoinRoom| -> HandlerResultOf {
            ws.subscribe(&room(&data.room_id))?;
            ctx.data.0.insert(data.room_id.clone());
            let joined = ServerMessage::RoomJoined {
                room_id: data.room_id.clone(),
                user_id: ctx.user.id.clone(),
                user_email: ctx.user.email.clone(),
                timestamp: now_ms(),
            };
            ws.publish(&room(&data.room_id), &joined)?;
            Ok(())
        })
        .on(
            "leave_room",
            |ws, ctx, data: LeaveRoom| -> HandlerResultOf {
                ctx.data.0.remove(&data.room_id);
                ws.unsubscribe(&room(&data.room_id));
                let left = ServerMessage::RoomLeft {
                    room_id: data.room_id.clone(),
                    user_id: ctx.user.id.clone(),
                    timestamp: now_ms(),
                };
                ws.publish(&room(&data.room_id), &left)?;
                Ok(())
            },
        )
        .on(
            "chat_message",
            |ws, ctx, data: ChatMessage| -> HandlerResultOf {
                let message = ServerMessage::Message {
                    room_id: data.room_id.clone(),
                    user_id: ctx.user.id.clone(),
                    user_email: ctx.user.email.clone(),
                    message: data.message,
                    timestamp: now_ms(),
                };
                ws.publish(&room(&data.room_id), &message)?;
                Ok(())
            },
        )
        .on("typing", |ws, ctx, data: Typing| -> HandlerResultOf {
            let typing = ServerMessage::Typing {
                room_id: data.room_id.clone(),
                user_id: ctx.user.id.clone(),
                is_typing: data.is_typing,
            };
            ws.publish(&room(&data.room_id), &typing)?;
            Ok(())
        })
        .on_close(|ws, ctx, code, _reason| {
            tracing::info!(user = %ctx.user.email, code, "user disconnected");
            for room_id in std::mem::take(&mut ctx.data.0) {
                let left = ServerMessage::RoomLeft {
                    room_id: room_id.clone(),
                    user_id: ctx.user.id.clone(),
                    timestamp: now_ms(),
                };
                let _ = ws.publish(&room(&room_id), &left);
            }
        })
        .on_error(|ws, ctx, error| {
            tracing::debug!(user = %ctx.user.email, %error, "message refused");
            let _ = ws.send(&ServerMessage::from_error(error));
        })
}

/// `/ws/echo`: no auth; `{"type":"echo","message":..}` comes back as a `message`.
pub fn echo_route() -> Route<(), EchoMessage> {
    Route::new("/ws/echo")
        .server_messages::<EchoMessage>()
        .on("echo", |ws, _ctx, data: Echo| {
            ws.send(&EchoMessage::Message {
                content: data.message,
                timestamp: now_ms(),
            })
        })
}

/// The whole chat server.
pub fn build_server(config: &ChatConfig) -> Result<Server, BuildError> {
    let origins = if config.allowed_origins.is_empty() {
        OriginPolicy::any()
    } else {
        OriginPolicy::allow(config.allowed_origins.iter().cloned())
    };
    Server::builder()
        .origins(origins)
        .backplane_events(config.backplane)
        .route(chat_route(config.jwt.clone()))
        .route(echo_route())
        .build()
}
