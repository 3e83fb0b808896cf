//! The chat example's routes as SPEC §3 states them, with constraints declared through garde
//! (so they reach the exported schemas). Used by the export golden and round-trip tests and by
//! the `export_chat` example; needs the `garde` feature.
#![allow(dead_code)]

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use wskit::{HandlerResultOf, Route, Server, TokenAuth, TokenSource};

/// The authenticated user (from the token's `sub` and `email` claims).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
}

/// Echo `message` back to the sender.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct Echo {
    #[garde(skip)]
    pub message: String,
}

/// What `/ws/echo` sends.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EchoOut {
    /// The echoed text.
    Message {
        content: String,
        /// Milliseconds since the Unix epoch.
        timestamp: u64,
    },
}

/// Join a room: subscribe to it and announce yourself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
}

/// Leave a room.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct LeaveRoom {
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
}

/// Say something in a room.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
    #[garde(length(chars, min = 1, max = 1000))]
    pub message: String,
}

/// Start or stop the typing indicator.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    #[garde(skip)]
    pub room_id: String,
    #[garde(skip)]
    pub is_typing: bool,
}

/// What `/ws/chat` sends.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// Someone joined the room (published to `room:{roomId}`).
    RoomJoined {
        room_id: String,
        user_id: String,
        user_email: String,
        timestamp: u64,
    },
    /// Someone left the room, or disconnected while in it.
    RoomLeft {
        room_id: String,
        user_id: String,
        timestamp: u64,
    },
    /// A chat message in the room.
    Message {
        room_id: String,
        user_id: String,
        user_email: String,
        message: String,
        timestamp: u64,
    },
    /// Typing indicator.
    Typing {
        room_id: String,
        user_id: String,
        is_typing: bool,
    },
    /// What went wrong with the sender's last message.
    Error {
        message: String,
        /// `invalid_json`, `unknown_type`, `validation_failed` or `handler_error`.
        code: String,
        /// Validation issues, when `code` is `validation_failed`.
        #[serde(skip_serializing_if = "Option::is_none")]
        issues: Option<Vec<wskit::Issue>>,
    },
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Test tokens: `tok-<name>` is user `<name>`.
pub fn auth() -> TokenAuth<User> {
    TokenAuth::new_sync(|token: String| {
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

pub fn chat_route() -> Route<User, ServerMessage> {
    Route::new("/ws/chat")
        .authenticate(auth())
        .server_messages::<ServerMessage>()
        .on("join_room", |ws, ctx, data: JoinRoom| -> HandlerResultOf {
            let topic = format!("room:{}", data.room_id);
            ws.subscribe(&topic)?;
            let joined = ServerMessage::RoomJoined {
                room_id: data.room_id,
                user_id: ctx.user.id.clone(),
                user_email: ctx.user.email.clone(),
                timestamp: now_ms(),
            };
            ws.publish(&topic, &joined)?;
            Ok(())
        })
        .on(
            "leave_room",
            |ws, ctx, data: LeaveRoom| -> HandlerResultOf {
                let topic = format!("room:{}", data.room_id);
                ws.unsubscribe(&topic);
                let left = ServerMessage::RoomLeft {
                    room_id: data.room_id,
                    user_id: ctx.user.id.clone(),
                    timestamp: now_ms(),
                };
                ws.publish(&topic, &left)?;
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
                ws.publish(&format!("room:{}", data.room_id), &message)?;
                Ok(())
            },
        )
        .on("typing", |ws, ctx, data: Typing| -> HandlerResultOf {
            let typing = ServerMessage::Typing {
                room_id: data.room_id.clone(),
                user_id: ctx.user.id.clone(),
                is_typing: data.is_typing,
            };
            ws.publish(&format!("room:{}", data.room_id), &typing)?;
            Ok(())
        })
        .on_error(|ws, _ctx, error| {
            let issues = (!error.issues.is_empty()).then(|| error.issues.clone());
            let _ = ws.send(&ServerMessage::Error {
                message: error.message.clone(),
                code: error.code.to_string(),
                issues,
            });
        })
}

pub fn chat_server() -> Server {
    Server::builder()
        .route(echo_route())
        .route(chat_route())
        .build()
        .expect("the chat routes are valid")
}
