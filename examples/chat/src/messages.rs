//! The chat protocol of SPEC §3: client messages (validated) and the server-message union.

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Join a room: the connection subscribes to `room:{roomId}` and the others are told.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    /// The room to join.
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
}

/// Leave a room.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct LeaveRoom {
    /// The room to leave.
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
}

/// Say something in a room.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// The room to speak in.
    #[garde(length(chars, min = 1, max = 50))]
    pub room_id: String,
    /// The text.
    #[garde(length(chars, min = 1, max = 1000))]
    pub message: String,
}

/// Start or stop the "… is typing" indicator in a room.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// The room.
    #[garde(skip)]
    pub room_id: String,
    /// Whether the user is typing.
    #[garde(skip)]
    pub is_typing: bool,
}

/// One validation problem in an `error` message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ErrorIssue {
    /// Where, in wire names.
    pub path: Vec<serde_json::Value>,
    /// Zod-style code.
    pub code: String,
    /// Explanation.
    pub message: String,
}

/// Everything the chat server sends, discriminated on `type`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// Someone joined a room you are in.
    RoomJoined {
        /// The room.
        room_id: String,
        /// Who joined.
        user_id: String,
        /// Their email.
        user_email: String,
        /// Milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// Someone left a room you are in (or disconnected).
    RoomLeft {
        /// The room.
        room_id: String,
        /// Who left.
        user_id: String,
        /// Milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// A chat message.
    Message {
        /// The room.
        room_id: String,
        /// The author.
        user_id: String,
        /// The author's email.
        user_email: String,
        /// The text.
        message: String,
        /// Milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// Someone started or stopped typing.
    Typing {
        /// The room.
        room_id: String,
        /// Who.
        user_id: String,
        /// Whether they are typing.
        is_typing: bool,
    },
    /// Your last message was refused.
    Error {
        /// What went wrong.
        message: String,
        /// `invalid_json`, `unknown_type`, `validation_failed` or `handler_error`.
        code: String,
        /// Validation issues, for `validation_failed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issues: Option<Vec<ErrorIssue>>,
    },
}

impl ServerMessage {
    /// The typed form of a core error (the seed's `onError` reply).
    pub fn from_error(error: &wskit::MessageError) -> Self {
        let issues = (!error.issues.is_empty()).then(|| {
            error
                .issues
                .iter()
                .map(|i| ErrorIssue {
                    path: i
                        .path
                        .iter()
                        .map(|p| serde_json::to_value(p).unwrap_or_default())
                        .collect(),
                    code: i.code.clone(),
                    message: i.message.clone(),
                })
                .collect()
        });
        ServerMessage::Error {
            message: error.message.clone(),
            code: error.code.to_string(),
            issues,
        }
    }
}

/// `/ws/echo`'s only client message.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Echo {
    /// Sent back as `content`.
    #[garde(skip)]
    pub message: String,
}

/// `/ws/echo`'s server message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EchoMessage {
    /// The echo.
    Message {
        /// What the client sent.
        content: String,
        /// Milliseconds since the Unix epoch.
        timestamp: u64,
    },
}
