//! The exported JSON Schemas agree with the server, both ways, on random messages:
//! every valid value of each chat message type serializes to JSON that its exported schema
//! accepts (and the server accepts too); a value that breaks a constraint is rejected by the
//! exported schema *and* by the server's validation, over a real connection.
#![cfg(feature = "garde")]

#[path = "common/export_chat.rs"]
mod export_chat;

use export_chat::{ChatMessage, Echo, EchoOut, JoinRoom, LeaveRoom, ServerMessage, Typing};
use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::OnceLock;
use wskit::export::Export;
use wskit::testing::TestServer;
use wskit::Validator;

/// Compiled validators for each exported schema, by name (`chat/join_room`, `chat/server`...).
fn validator(name: &str) -> &'static jsonschema::Validator {
    static ALL: OnceLock<Vec<(String, jsonschema::Validator)>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let export = Export::from_server(&export_chat::chat_server());
        let mut schemas = vec![
            ("echo/server", export.server_message_schema("/ws/echo")),
            ("chat/server", export.server_message_schema("/ws/chat")),
            ("echo", export.client_message_schema("/ws/echo", "echo")),
        ];
        for m in ["join_room", "leave_room", "chat_message", "typing"] {
            schemas.push((m, export.client_message_schema("/ws/chat", m)));
        }
        schemas
            .into_iter()
            .map(|(name, schema)| {
                let schema = schema.unwrap_or_else(|| panic!("{name} is exported"));
                let compiled = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("{name}: exported schema does not compile: {e}"));
                (name.to_owned(), compiled)
            })
            .collect()
    });
    &all.iter().find(|(n, _)| n == name).expect("known schema").1
}

/// A client message as it goes on the wire: the handler type's fields plus `type`.
fn wire<T: Serialize>(message_type: &str, value: &T) -> Value {
    let mut wire = serde_json::to_value(value).expect("serializes");
    wire["type"] = message_type.into();
    wire
}

fn schema_errors(name: &str, instance: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Sends `message` on a fresh `/ws/chat` connection; returns the error the sender got, if any.
fn server_error(message: &Value) -> Option<Value> {
    let mut t = TestServer::new(export_chat::chat_server());
    let alice = t
        .connect("/ws/chat?token=tok-alice")
        .expect("token accepted");
    t.send_json(alice, message);
    assert!(t.closed(alice).is_none(), "connection stays open");
    t.drain_json(alice)
        .into_iter()
        .find(|m| m["type"] == "error")
}

/// Strings of `min..=max` Unicode scalar values (any plane, so byte and code-point lengths
/// differ: limits count code points on both sides).
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), min..=max).prop_map(String::from_iter)
}

fn room_id() -> impl Strategy<Value = String> {
    text(1, 50)
}

fn bad_room_id() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), text(51, 80)]
}

/// A valid client message: `(type, handler value as JSON, issues the server's validation finds)`.
fn valid_client_message() -> impl Strategy<Value = (&'static str, Value, usize)> {
    fn entry<T: Serialize + garde::Validate>(t: &'static str, v: T) -> (&'static str, Value, usize)
    where
        T::Context: Default,
    {
        (t, wire(t, &v), Validator::run(&v).len())
    }
    prop_oneof![
        room_id().prop_map(|room_id| entry("join_room", JoinRoom { room_id })),
        room_id().prop_map(|room_id| entry("leave_room", LeaveRoom { room_id })),
        (room_id(), text(1, 1000))
            .prop_map(|(room_id, message)| entry("chat_message", ChatMessage { room_id, message })),
        (text(0, 80), any::<bool>())
            .prop_map(|(room_id, is_typing)| entry("typing", Typing { room_id, is_typing })),
        text(0, 200).prop_map(|message| entry("echo", Echo { message })),
    ]
}

/// A chat message breaking one constraint: `(type, message, the field at fault)`.
fn invalid_client_message() -> impl Strategy<Value = (&'static str, Value, &'static str)> {
    let message_too_short_or_long = prop_oneof![Just(String::new()), text(1001, 1100)];
    prop_oneof![
        bad_room_id().prop_map(|room_id| (
            "join_room",
            wire("join_room", &JoinRoom { room_id }),
            "roomId"
        )),
        bad_room_id().prop_map(|room_id| (
            "leave_room",
            wire("leave_room", &LeaveRoom { room_id }),
            "roomId"
        )),
        (bad_room_id(), text(1, 1000)).prop_map(|(room_id, message)| {
            (
                "chat_message",
                wire("chat_message", &ChatMessage { room_id, message }),
                "roomId",
            )
        }),
        (room_id(), message_too_short_or_long).prop_map(|(room_id, message)| {
            (
                "chat_message",
                wire("chat_message", &ChatMessage { room_id, message }),
                "message",
            )
        }),
    ]
}

fn issues() -> impl Strategy<Value = Option<Vec<wskit::Issue>>> {
    let segment = prop_oneof![
        text(0, 10).prop_map(wskit::PathSegment::Key),
        any::<usize>().prop_map(wskit::PathSegment::Index),
    ];
    let issue = (
        proptest::collection::vec(segment, 0..4),
        text(0, 20),
        text(0, 40),
    )
        .prop_map(|(path, code, message)| wskit::Issue {
            path,
            code,
            message,
        });
    proptest::option::of(proptest::collection::vec(issue, 0..3))
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let s = || text(0, 30);
    prop_oneof![
        (s(), s(), s(), any::<u64>()).prop_map(|(room_id, user_id, user_email, timestamp)| {
            ServerMessage::RoomJoined {
                room_id,
                user_id,
                user_email,
                timestamp,
            }
        }),
        (s(), s(), any::<u64>()).prop_map(|(room_id, user_id, timestamp)| {
            ServerMessage::RoomLeft {
                room_id,
                user_id,
                timestamp,
            }
        }),
        (s(), s(), s(), s(), any::<u64>()).prop_map(
            |(room_id, user_id, user_email, message, timestamp)| ServerMessage::Message {
                room_id,
                user_id,
                user_email,
                message,
                timestamp,
            }
        ),
        (s(), s(), any::<bool>()).prop_map(|(room_id, user_id, is_typing)| {
            ServerMessage::Typing {
                room_id,
                user_id,
                is_typing,
            }
        }),
        (s(), s(), issues()).prop_map(|(message, code, issues)| {
            ServerMessage::Error {
                message,
                code,
                issues,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn valid_client_messages_match_their_schemas((t, message, issues) in valid_client_message()) {
        let errors = schema_errors(t, &message);
        prop_assert!(errors.is_empty(), "schema rejects valid {t}: {errors:?}\n{message}");
        prop_assert_eq!(issues, 0, "server validation rejects valid {}", t);
    }

    #[test]
    fn constraint_violations_fail_schema_and_server((t, message, field) in invalid_client_message()) {
        prop_assert!(!validator(t).is_valid(&message), "schema accepts invalid {t}: {message}");
        let error = server_error(&message);
        prop_assert!(error.is_some(), "server accepts invalid {t}: {message}");
        let error = error.unwrap();
        prop_assert_eq!(&error["code"], "validation_failed");
        prop_assert_eq!(&error["issues"][0]["path"], &json!([field]));
    }

    #[test]
    fn server_messages_match_the_server_schema(message in server_message()) {
        let value = serde_json::to_value(&message).unwrap();
        let errors = schema_errors("chat/server", &value);
        prop_assert!(errors.is_empty(), "{errors:?}\n{value}");
    }

    #[test]
    fn echo_replies_match_the_echo_schema(content in text(0, 100), timestamp in any::<u64>()) {
        let value = serde_json::to_value(EchoOut::Message { content, timestamp }).unwrap();
        prop_assert!(validator("echo/server").is_valid(&value), "{value}");
    }
}

#[test]
fn valid_messages_reach_the_handlers() {
    // Each valid message is accepted end to end (no error envelope back).
    for message in [
        json!({"type": "join_room", "roomId": "é".repeat(50)}),
        json!({"type": "chat_message", "roomId": "😀", "message": "😀".repeat(1000)}),
        json!({"type": "typing", "roomId": "", "isTyping": false}),
        json!({"type": "leave_room", "roomId": "lobby"}),
    ] {
        let t = message["type"].as_str().unwrap();
        assert!(schema_errors(t, &message).is_empty(), "{message}");
        assert_eq!(server_error(&message), None, "{message}");
    }
}

#[test]
fn shape_errors_fail_schema_and_server() {
    for message in [
        json!({"type": "join_room"}),
        json!({"type": "join_room", "roomId": 7}),
        json!({"type": "typing", "roomId": "a", "isTyping": "yes"}),
        json!({"type": "chat_message", "roomId": "a"}),
    ] {
        let t = message["type"].as_str().unwrap();
        assert!(!validator(t).is_valid(&message), "schema accepts {message}");
        let error = server_error(&message).unwrap_or_else(|| panic!("server accepts {message}"));
        assert_eq!(error["code"], "validation_failed", "{error}");
    }
}

#[test]
fn exported_schemas_are_valid_2020_12_schemas() {
    let export = Export::from_server(&export_chat::chat_server());
    let document = export.json_schemas();
    assert!(
        jsonschema::meta::is_valid(&document),
        "schemas.json is not a valid schema"
    );
    let routes = document["routes"].as_object().unwrap();
    for (path, route) in routes {
        for (t, schema) in route["clientMessages"].as_object().unwrap() {
            assert!(jsonschema::meta::is_valid(schema), "{path} {t}");
        }
    }
}
