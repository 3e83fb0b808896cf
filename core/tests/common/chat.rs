//! The seed's "Complete Example: Chat Application", written against the core.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};
use wskit::{HandlerResultOf, Limits, Route, Server, TokenAuth, TokenSource, Validate, Validator};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    pub room_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveRoom {
    pub room_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub room_id: String,
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub room_id: String,
    pub is_typing: bool,
}

impl Validate for JoinRoom {
    fn validate(&self, v: &mut Validator) {
        v.length("roomId", &self.room_id, 1, 50);
    }
}

impl Validate for LeaveRoom {
    fn validate(&self, v: &mut Validator) {
        v.length("roomId", &self.room_id, 1, 50);
    }
}

impl Validate for ChatMessage {
    fn validate(&self, v: &mut Validator) {
        v.length("roomId", &self.room_id, 1, 50);
        v.length("message", &self.message, 1, 1000);
    }
}

impl Validate for Typing {}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    RoomJoined {
        room_id: String,
        user_id: String,
        user_email: String,
        timestamp: u64,
    },
    RoomLeft {
        room_id: String,
        user_id: String,
        timestamp: u64,
    },
    Message {
        room_id: String,
        user_id: String,
        user_email: String,
        message: String,
        timestamp: u64,
    },
    Typing {
        room_id: String,
        user_id: String,
        is_typing: bool,
    },
    Error {
        message: String,
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        issues: Option<Vec<wskit::Issue>>,
    },
}

/// The rooms this connection joined (the seed keeps `userRooms` keyed by user id).
#[derive(Debug, Default)]
pub struct Rooms(pub BTreeSet<String>);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Test tokens: `tok-<name>` is user `<name>` with email `<name>@example.com`.
pub fn auth() -> TokenAuth<User> {
    TokenAuth::new(|token: String| async move {
        let name = token.strip_prefix("tok-")?;
        Some(User {
            id: name.to_owned(),
            email: format!("{name}@example.com"),
        })
    })
    .sources([
        TokenSource::query("token"),
        TokenSource::Bearer,
        TokenSource::Subprotocol,
    ])
}

pub fn chat_route() -> Route<User, ServerMessage, Rooms> {
    Route::new("/ws/chat")
        .authenticate(auth())
        .server_messages::<ServerMessage>()
        .data::<Rooms>()
        .limits(Limits::default().max_payload(64 * 1024))
        .on("join_room", |ws, ctx, data: JoinRoom| -> HandlerResultOf {
            let topic = format!("room:{}", data.room_id);
            ws.subscribe(&topic)?;
            ctx.data.0.insert(data.room_id.clone());
            ws.publish(
                &topic,
                &ServerMessage::RoomJoined {
                    room_id: data.room_id,
                    user_id: ctx.user.id.clone(),
                    user_email: ctx.user.email.clone(),
                    timestamp: now_ms(),
                },
            )?;
            Ok(())
        })
        .on(
            "leave_room",
            |ws, ctx, data: LeaveRoom| -> HandlerResultOf {
                let topic = format!("room:{}", data.room_id);
                ctx.data.0.remove(&data.room_id);
                ws.unsubscribe(&topic);
                ws.publish(
                    &topic,
                    &ServerMessage::RoomLeft {
                        room_id: data.room_id,
                        user_id: ctx.user.id.clone(),
                        timestamp: now_ms(),
                    },
                )?;
                Ok(())
            },
        )
        .on(
            "chat_message",
            |ws, ctx, data: ChatMessage| -> HandlerResultOf {
                ws.publish(
                    &format!("room:{}", data.room_id),
                    &ServerMessage::Message {
                        room_id: data.room_id,
                        user_id: ctx.user.id.clone(),
                        user_email: ctx.user.email.clone(),
                        message: data.message,
                        timestamp: now_ms(),
                    },
                )?;
                Ok(())
            },
        )
        .on("typing", |ws, ctx, data: Typing| -> HandlerResultOf {
            ws.publish(
                &format!("room:{}", data.room_id),
                &ServerMessage::Typing {
                    room_id: data.room_id,
                    user_id: ctx.user.id.clone(),
                    is_typing: data.is_typing,
                },
            )?;
            Ok(())
        })
        .on_error(|ws, _ctx, error| {
            // The seed's onError: report to the sender, typed like every other server message.
            let issues = (!error.issues.is_empty()).then(|| error.issues.clone());
            let _ = ws.send(&ServerMessage::Error {
                message: error.message.clone(),
                code: error.code.to_string(),
                issues,
            });
        })
        .on_close(|ws, ctx, _code, _reason| {
            for room_id in std::mem::take(&mut ctx.data.0) {
                let left = ServerMessage::RoomLeft {
                    room_id: room_id.clone(),
                    user_id: ctx.user.id.clone(),
                    timestamp: now_ms(),
                };
                let _ = ws.publish(&format!("room:{room_id}"), &left);
            }
        })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Echo {
    pub message: String,
}

impl Validate for Echo {}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EchoOut {
    Message { content: String, timestamp: u64 },
}

pub fn echo_route() -> Route<(), EchoOut> {
    Route::new("/ws/echo")
        .server_messages::<EchoOut>()
        .on("echo", |ws, _ctx, data: Echo| {
            ws.send(&EchoOut::Message {
                content: data.message,
                timestamp: now_ms(),
            })
        })
}

pub fn chat_server() -> Server {
    Server::builder()
        .route(chat_route())
        .route(echo_route())
        .build()
        .expect("routes are valid")
}
