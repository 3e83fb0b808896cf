//! Golden files of the type export. `tests/golden/<case>/` holds exactly what
//! `Export::write_to` writes for the chat routes of SPEC §3 (`chat`) and for routes with tricky
//! message shapes (`shapes`). After an intended change, regenerate and review the diff:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p wskit --features garde --test export_golden
//! ```
//!
//! Besides the byte-for-byte comparison, each case asserts the facts the goldens must show, so
//! a regenerated golden cannot quietly encode a regression.
#![cfg(feature = "garde")]

#[path = "common/export_chat.rs"]
mod export_chat;
#[path = "common/export_shapes.rs"]
mod export_shapes;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use wskit::export::{Export, ASYNCAPI_FILE, JSON_SCHEMA_FILE, TYPESCRIPT_FILE};

fn golden_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
}

/// Compares (or with `UPDATE_GOLDEN=1`, rewrites) the three files of `case`.
fn check_golden(case: &str, export: &Export) {
    let fresh = std::env::temp_dir().join(format!("wskit-golden-{case}-{}", std::process::id()));
    export.write_to(&fresh).expect("export writes its files");
    let golden = golden_dir(case);
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut stale = Vec::new();
    for file in [TYPESCRIPT_FILE, JSON_SCHEMA_FILE, ASYNCAPI_FILE] {
        let got = std::fs::read_to_string(fresh.join(file)).expect("written file is readable");
        let path = golden.join(file);
        if update {
            std::fs::create_dir_all(&golden).expect("golden dir can be created");
            std::fs::write(&path, &got).expect("golden file can be written");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", path.display()));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            stale.push(format!(
                "{} differs from line {}:\n  golden: {:?}\n  fresh:  {:?}",
                path.display(),
                line + 1,
                want.lines().nth(line).unwrap_or("<end of file>"),
                got.lines().nth(line).unwrap_or("<end of file>"),
            ));
        }
    }
    std::fs::remove_dir_all(&fresh).ok();
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended, regenerate with UPDATE_GOLDEN=1 and review the diff.",
        stale.join("\n")
    );
}

fn chat() -> Export {
    Export::from_server(&export_chat::chat_server()).title("wskit chat")
}

fn shapes() -> Export {
    Export::from_server(&export_shapes::shapes_server())
}

#[test]
fn chat_golden() {
    check_golden("chat", &chat());
}

#[test]
fn shapes_golden() {
    check_golden("shapes", &shapes());
}

#[test]
fn chat_typescript_has_the_spec_shape() {
    let ts = chat().typescript();
    for expected in [
        "export type ChatServerMessage =\n",
        "export type ChatClientMessage =\n",
        "export interface ChatWebSocketRoute {\n  path: \"/ws/chat\";\n  serverMessages: ChatServerMessage;\n  clientMessages: ChatClientMessage;\n}",
        "export interface WebSocketRoutes {\n  \"/ws/echo\": EchoWebSocketRoute;\n  \"/ws/chat\": ChatWebSocketRoute;\n}",
        "  | { type: \"echo\"; message: string };",
        "  | { type: \"typing\"; roomId: string; isTyping: boolean };",
        "    type: \"join_room\";\n    /**\n     * @minLength 1\n     * @maxLength 50\n     */\n    roomId: string;",
        "     * @minLength 1\n     * @maxLength 1000\n     */\n    message: string;",
        "    issues?: Issue[] | null;",
        "export type PathSegment =",
    ] {
        assert!(ts.contains(expected), "missing {expected:?} in\n{ts}");
    }
    for server_type in ["room_joined", "room_left", "message", "typing", "error"] {
        assert!(
            ts.contains(&format!("type: \"{server_type}\";")),
            "{server_type}"
        );
    }
}

#[test]
fn chat_schemas_carry_the_validation_limits() {
    let schemas = chat().json_schemas();
    let chat = &schemas["routes"]["/ws/chat"];
    let room_id = json!({"type": "string", "minLength": 1, "maxLength": 50});
    for message in ["join_room", "leave_room", "chat_message"] {
        let schema = &chat["clientMessages"][message];
        assert_eq!(schema["properties"]["roomId"], room_id, "{message}");
        assert_eq!(schema["properties"]["type"]["const"], message);
        assert_eq!(schema["required"][0], "type");
    }
    let body = &chat["clientMessages"]["chat_message"]["properties"]["message"];
    assert_eq!(
        (&body["minLength"], &body["maxLength"]),
        (&json!(1), &json!(1000))
    );
    let server: Vec<&String> = chat["serverMessages"].as_object().unwrap().keys().collect();
    assert_eq!(server.len(), 5, "{server:?}");
    let error = &chat["serverMessages"]["error"];
    assert_eq!(error["required"], json!(["type", "message", "code"]));
    assert!(error["properties"]["issues"].is_object());
}

#[test]
fn chat_asyncapi_has_channels_operations_and_credentials() {
    let doc = chat().asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["chat"]["address"], "/ws/chat");
    let ws = &doc["channels"]["chat"]["bindings"]["ws"];
    assert!(ws["query"]["properties"]["token"].is_object());
    assert!(ws["headers"]["properties"]["Authorization"].is_object());
    assert!(doc["channels"]["echo"].get("bindings").is_none());
    let count = |op: &str| doc["operations"][op]["messages"].as_array().map(Vec::len);
    assert_eq!(count("chat.receive"), Some(4));
    assert_eq!(count("chat.send"), Some(5));
    assert_eq!(doc["operations"]["chat.receive"]["action"], "receive");
    assert_eq!(doc["operations"]["chat.send"]["action"], "send");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("query_token"));
}

#[test]
fn shapes_typescript_renders_each_shape() {
    let ts = shapes().typescript();
    for expected in [
        // Optional (absent or null) when read, always present but nullable when written.
        "    label?: string | null;",
        "  label: string | null;",
        // Renamed field, with its pattern.
        "     * Hex colour.\n     * @pattern ^#[0-9a-f]{6}$\n     */\n    colour: string;",
        // Array item constraints.
        "     * @minItems 1\n     * @maxItems 8\n     * @items.minLength 1\n     * @items.maxLength 16\n     */\n    tags: string[];",
        // Maps.
        "    counters?: Record<string, number>;",
        "  points: Record<string, Point>;",
        // Enums of strings, documented members, tuples, recursion.
        "export type Volume = \"quiet\" | \"normal\" | \"very_loud\";",
        "  /** A round one. */\n  | \"circle\"",
        "  size: [number, number];",
        "  children: Layer[];",
        "  strokes: Point[][];",
        // A type whose read and written schemas differ is split.
        "export interface NoteInput {",
        "export interface NoteOutput {",
        // A newtype variant of an internally tagged enum; a unit message.
        "  | Point & { type: \"cursor\" }",
        "  | { type: \"ping\" }",
        // A built-in name is not shadowed.
        "export interface Record2 {",
        "    records: Record2[];",
        // No declared server messages.
        "export type RawServerMessage = unknown;",
        "path: \"/ws/boards/:boardId\";",
    ] {
        assert!(ts.contains(expected), "missing {expected:?} in\n{ts}");
    }
    assert!(
        !ts.contains("export interface Draw "),
        "top-level messages are inlined"
    );
}

#[test]
fn shapes_asyncapi_uses_brace_addresses_and_draft07_payloads() {
    let doc = shapes().asyncapi();
    let board = &doc["channels"]["board"];
    assert_eq!(board["address"], "/ws/boards/{boardId}");
    assert!(board["parameters"]["boardId"].is_object());
    assert_eq!(doc["channels"]["raw"]["address"], "/ws/raw/{rest}");
    let ws = &board["bindings"]["ws"];
    assert!(ws["query"]["properties"]["access_token"].is_object());
    assert!(ws["headers"]["properties"]["Cookie"].is_object());
    let text = doc.to_string();
    assert!(!text.contains("#/$defs/"), "refs point into components");
    assert!(!text.contains("prefixItems"), "tuples use draft 07 `items`");
    let size =
        &doc["components"]["messages"]["board.server.snapshot"]["payload"]["properties"]["size"];
    assert_eq!(size["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn standalone_schemas_include_their_definitions() {
    let export = shapes();
    let draw = export
        .client_message_schema("/ws/boards/:boardId", "draw")
        .unwrap();
    assert_eq!(
        draw["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let defs: Vec<&String> = draw["$defs"].as_object().unwrap().keys().collect();
    assert!(defs.contains(&&"Point".to_owned()) && defs.contains(&&"NoteInput".to_owned()));
    assert_eq!(
        export.server_message_schema("/ws/raw/{*rest}"),
        Some(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema"
        }))
    );
    assert_eq!(export.client_message_schema("/nope", "draw"), None::<Value>);
}
