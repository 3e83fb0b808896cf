//! Errors: what a peer did wrong (sent back on the wire) and what an app author did wrong (`Err`).

use serde::Serialize;
use std::fmt;

/// Machine-readable code of a peer error, as it appears in the `code` field of the error envelope
/// (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The text was not JSON, or not a JSON object.
    InvalidJson,
    /// The object had no string `type`, or the route has no handler for it.
    UnknownType,
    /// Fields were missing, had the wrong type or broke a constraint.
    ValidationFailed,
    /// A handler returned an error.
    HandlerError,
}

impl ErrorCode {
    /// The wire form, e.g. `"validation_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::HandlerError => "handler_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One element of an issue path: an object key (the serde wire name) or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PathSegment {
    /// A field name as it appears on the wire.
    Key(String),
    /// A position in an array.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(s: &str) -> Self {
        PathSegment::Key(s.to_owned())
    }
}

impl From<usize> for PathSegment {
    fn from(i: usize) -> Self {
        PathSegment::Index(i)
    }
}

/// One validation problem, shaped like a Zod issue: `{path, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Issue {
    /// Where the problem is, in wire names, e.g. `["roomId"]` or `["items", 0, "name"]`.
    pub path: Vec<PathSegment>,
    /// Zod-style issue code: `invalid_type`, `too_small`, `too_big`, `invalid_format`,
    /// `invalid_value`, `unrecognized_keys` or `custom`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// An error caused by what a peer sent, or by a handler. It becomes the SPEC §4 error envelope
/// unless the route's `on_error` hook decides otherwise; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MessageError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// Human-readable explanation (never contains credentials).
    pub message: String,
    /// Validation issues; empty unless `code` is `ValidationFailed`.
    pub issues: Vec<Issue>,
    /// The `type` of the offending message, when one was found.
    pub message_type: Option<String>,
}

impl MessageError {
    /// A new error without issues.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MessageError {
            code,
            message: message.into(),
            issues: Vec::new(),
            message_type: None,
        }
    }

    /// A `validation_failed` error carrying `issues`.
    pub fn validation(issues: Vec<Issue>) -> Self {
        let message = match issues.as_slice() {
            [one] => format!("validation failed: {}", one.message),
            many => format!("validation failed: {} issues", many.len()),
        };
        MessageError {
            code: ErrorCode::ValidationFailed,
            message,
            issues,
            message_type: None,
        }
    }

    /// The error envelope of SPEC §4:
    /// `{"type":"error","code":..,"message":..,"issues":[..]}` (`issues` only when non-empty).
    pub fn to_envelope(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            code: ErrorCode,
            message: &'a str,
            #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
            issues: &'a [Issue],
        }
        serde_json::to_vec(&Envelope {
            kind: "error",
            code: self.code,
            message: &self.message,
            issues: &self.issues,
        })
        .expect("error envelope serializes")
    }
}

/// A mistake in how the server was put together, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two routes cannot both be registered (same or overlapping path).
    #[error("route `{path}` conflicts with an existing route: {reason}")]
    RouteConflict {
        /// The route that could not be added.
        path: String,
        /// matchit's explanation.
        reason: String,
    },
    /// A route path is malformed.
    #[error("route path `{path}` is invalid: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same message type was registered twice on one route.
    #[error("route `{path}` registers message type `{message_type}` twice")]
    DuplicateMessageType {
        /// The route.
        path: String,
        /// The message type.
        message_type: String,
    },
    /// A type-changing builder method (`authenticate`, `server_messages`, `data`) was called after
    /// handlers were registered, which would discard them.
    #[error("route `{path}`: call `{method}` before registering handlers")]
    TypesAfterHandlers {
        /// The route.
        path: String,
        /// The method called too late.
        method: &'static str,
    },
    /// Two routes were given the same export name.
    #[error("two routes are named `{name}`")]
    DuplicateName {
        /// The clashing name.
        name: String,
    },
}

/// Errors from calling the socket API with arguments the limits forbid. Handlers usually
/// propagate these with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The connection already holds the maximum number of topics.
    #[error("too many topics: the limit is {limit} per connection")]
    TooManyTopics {
        /// The configured limit.
        limit: usize,
    },
    /// The topic name is longer than allowed.
    #[error("topic name is {len} bytes; the limit is {limit}")]
    TopicTooLong {
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The topic name is empty.
    #[error("topic name is empty")]
    EmptyTopic,
    /// A message could not be serialized.
    #[error("message could not be serialized: {0}")]
    Serialize(String),
    /// The connection is closing or closed; nothing more is sent to it.
    #[error("the connection is closed")]
    Closed,
}
