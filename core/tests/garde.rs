//! The `garde` feature: derive `garde::Validate`, get `wskit::Validate`; issue paths in wire names.
#![cfg(feature = "garde")]

use serde_json::json;
use wskit::testing::TestServer;
use wskit::{Route, Server};

#[derive(serde::Deserialize, schemars::JsonSchema, garde::Validate)]
#[serde(rename_all = "camelCase")]
struct ChatMessage {
    #[garde(length(chars, min = 1, max = 50))]
    room_id: String,
    #[garde(length(chars, min = 1, max = 1000))]
    message: String,
    #[garde(dive)]
    attachments: Vec<Attachment>,
}

#[derive(serde::Deserialize, schemars::JsonSchema, garde::Validate)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    #[garde(range(min = 1, max = 10))]
    size_mb: u32,
}

fn server() -> Server {
    Server::builder()
        .route(Route::new("/ws").on("chat_message", |_, _, _: ChatMessage| ()))
        .build()
        .unwrap()
}

#[test]
fn garde_issues_use_wire_names_and_count_code_points() {
    let mut t = TestServer::new(server());
    let c = t.connect("/ws").unwrap();
    t.send_json(c, &json!({"type": "chat_message", "roomId": "é".repeat(50), "message": "ok", "attachments": []}));
    assert_eq!(
        t.recv_json(c),
        None,
        "50 code points (100 bytes) is within max 50"
    );
    t.send_json(
        c,
        &json!({"type": "chat_message", "roomId": "", "message": "x", "attachments": [{"sizeMb": 2}, {"sizeMb": 99}]}),
    );
    let err = t.recv_json(c).unwrap();
    assert_eq!(err["code"], "validation_failed");
    let mut paths: Vec<_> = err["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].clone())
        .collect();
    paths.sort_by_key(|p| p.to_string());
    assert_eq!(
        paths,
        vec![json!(["attachments", 1, "sizeMb"]), json!(["roomId"])]
    );
    let codes: Vec<_> = err["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        codes.contains(&"too_small".to_owned()) && codes.contains(&"too_big".to_owned()),
        "{codes:?}"
    );
}

/// garde names fields in Rust; the wire names come from the message type's schema, so they are
/// right even where the client's JSON has no keys (serde's array form) or nests far deeper than
/// serde_json's recursion limit in a key the type ignores.
#[test]
fn garde_paths_use_wire_names_for_array_form_and_deeply_nested_extras() {
    let mut t = TestServer::new(server());
    let c = t.connect("/ws").unwrap();
    let deep = "[".repeat(50_000) + &"]".repeat(50_000);
    let text = format!(
        r#"{{"type":"chat_message","x":{deep},"roomId":"r","message":"m","attachments":[{{"sizeMb":2}},[99]]}}"#
    );
    t.send_text(c, &text);
    let err = t.recv_json(c).unwrap();
    assert_eq!(err["code"], "validation_failed", "{err}");
    assert_eq!(
        err["issues"][0]["path"],
        json!(["attachments", 1, "sizeMb"])
    );
}
