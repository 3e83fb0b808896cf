//! Target `envelope`: one text message to a route with several typed handlers (the chat
//! example's messages plus a nested one and a unit one).
//!
//! Input: a leading `0x00` byte selects the structured mode (an `arbitrary` message is
//! serialized, sent, and must reach its handler unchanged, or be refused with the exact issue
//! paths); anything else is sent as text as it is (lossily decoded when not UTF-8).
//!
//! Checked: the handler runs exactly when the reference ([`super::json`] plus a hand-written
//! model of serde's rules for these types) says the message is valid, and sees the same value;
//! otherwise exactly one SPEC §4 error envelope with the expected code (`invalid_json` for text
//! that is not JSON or not an object, `unknown_type`, `validation_failed` with non-empty
//! `issues` in wire names) and the connection stays open; over the payload limit, close 1009.

use super::driver::{Driver, Seen};
use super::json::{self, Json};
use super::known;
use arbitrary::{Arbitrary, Unstructured};
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use wskit::{Limits, Route, Server, Validate, Validator};

/// The route's payload limit: small, so that oversize inputs are cheap to find.
const MAX_PAYLOAD: usize = 2048;

/// What a handler received.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Join(String),
    Leave(String),
    Chat(String, String),
    Typing(String, bool),
    Batch(Vec<String>, u8),
    Ping,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct JoinRoom {
    room_id: String,
}

impl Validate for JoinRoom {
    fn validate(&self, v: &mut Validator) {
        v.length("roomId", &self.room_id, 1, 50);
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ChatMessage {
    room_id: String,
    message: String,
}

impl Validate for ChatMessage {
    fn validate(&self, v: &mut Validator) {
        v.length("roomId", &self.room_id, 1, 50);
        v.length("message", &self.message, 1, 1000);
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Typing {
    room_id: String,
    is_typing: bool,
}

impl Validate for Typing {}

/// Nested, and validated with Rust field names so the core must map them to wire names.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Batch {
    items: Vec<Item>,
    priority_level: u8,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Item {
    display_name: String,
}

impl Validate for Item {
    fn validate(&self, v: &mut Validator) {
        v.length("display_name", &self.display_name, 1, 20);
    }
}

impl Validate for Batch {
    fn validate(&self, v: &mut Validator) {
        v.each("items", &self.items);
        v.range("priority_level", self.priority_level, 1, 5);
    }
}

fn server(log: &Arc<Mutex<Vec<Got>>>) -> Server {
    let l = |log: &Arc<Mutex<Vec<Got>>>| {
        let log = log.clone();
        move |got: Got| log.lock().expect("log").push(got)
    };
    let (join, leave, chat, typing, batch, ping) = (l(log), l(log), l(log), l(log), l(log), l(log));
    let route = Route::new("/ws")
        .limits(Limits::default().max_payload(MAX_PAYLOAD))
        .on("join_room", move |_, _, m: JoinRoom| {
            join(Got::Join(m.room_id))
        })
        .on("leave_room", move |_, _, m: JoinRoom| {
            leave(Got::Leave(m.room_id))
        })
        .on("chat_message", move |_, _, m: ChatMessage| {
            chat(Got::Chat(m.room_id, m.message))
        })
        .on("typing", move |_, _, m: Typing| {
            typing(Got::Typing(m.room_id, m.is_typing))
        })
        .on("batch", move |_, _, m: Batch| {
            batch(Got::Batch(
                m.items.into_iter().map(|i| i.display_name).collect(),
                m.priority_level,
            ))
        })
        .on("ping", move |_, _, (): ()| ping(Got::Ping));
    Server::builder()
        .route(route)
        .build()
        .expect("valid routes")
}

/// An issue path as it appears on the wire.
type Path = Vec<Value>;

/// What the reference expects from one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// The handler runs with this value.
    Handler(Got),
    /// An error envelope with this code; for `validation_failed`, these exact issue paths when
    /// known.
    Error(&'static str, Option<Vec<Path>>),
    /// An error envelope with one of these codes.
    OneOf(&'static [&'static str]),
    /// Any of the outcomes above (serde_json's behaviour depends on details not modelled).
    Anything,
}

const INVALID_JSON: &str = "invalid_json";
const UNKNOWN_TYPE: &str = "unknown_type";
const VALIDATION_FAILED: &str = "validation_failed";

/// Wire names the core may put in issue paths.
const WIRE_NAMES: &[&str] = &[
    "type",
    "roomId",
    "message",
    "isTyping",
    "items",
    "displayName",
    "priorityLevel",
];

/// A field-level failure while modelling serde.
enum Bad {
    /// Wrong shape: `validation_failed`.
    Shape,
    /// A number serde_json may refuse to convert at all (out of f64 range): either code.
    Number,
}

fn as_str(v: &Json) -> Result<String, Bad> {
    match v {
        Json::Str(Some(s)) => Ok(s.clone()),
        Json::Num(n) if n.as_integer().is_none() => Err(Bad::Number),
        _ => Err(Bad::Shape),
    }
}

fn as_bool(v: &Json) -> Result<bool, Bad> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::Num(n) if n.as_integer().is_none() => Err(Bad::Number),
        _ => Err(Bad::Shape),
    }
}

fn as_u8(v: &Json) -> Result<u8, Bad> {
    match v {
        Json::Num(n) => match n.as_integer() {
            Some(i) => u8::try_from(i).map_err(|_| Bad::Shape),
            None => Err(Bad::Number),
        },
        _ => Err(Bad::Shape),
    }
}

/// serde's derived struct rules: each listed field exactly once (others ignored), or an array
/// of exactly the fields, in order.
fn fields<'a>(v: &'a Json, names: &[&str]) -> Result<Vec<&'a Json>, Bad> {
    match v {
        Json::Obj(entries) => names
            .iter()
            .map(|name| {
                let mut found = entries.iter().filter(|(k, _)| k.as_deref() == Some(name));
                match (found.next(), found.next()) {
                    (Some((_, v)), None) => Ok(v),
                    _ => Err(Bad::Shape),
                }
            })
            .collect(),
        Json::Arr(items) if items.len() == names.len() => Ok(items.iter().collect()),
        _ => Err(Bad::Shape),
    }
}

fn items(v: &Json) -> Result<Vec<String>, Bad> {
    match v {
        Json::Arr(list) => list
            .iter()
            .map(|item| as_str(fields(item, &["displayName"])?[0]))
            .collect(),
        _ => Err(Bad::Shape),
    }
}

fn chars_between(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.chars().count())
}

/// Constraint violations of a well-shaped message, as wire paths, in the order the route's
/// `Validate` impls record them.
fn violations(got: &Got) -> Vec<Path> {
    let key = |k: &str| vec![Value::from(k)];
    let mut out = Vec::new();
    match got {
        Got::Join(room) | Got::Leave(room) => {
            if !chars_between(room, 1, 50) {
                out.push(key("roomId"));
            }
        }
        Got::Chat(room, message) => {
            if !chars_between(room, 1, 50) {
                out.push(key("roomId"));
            }
            if !chars_between(message, 1, 1000) {
                out.push(key("message"));
            }
        }
        Got::Batch(items, priority) => {
            for (i, name) in items.iter().enumerate() {
                if !chars_between(name, 1, 20) {
                    out.push(vec!["items".into(), i.into(), "displayName".into()]);
                }
            }
            if !(1..=5).contains(priority) {
                out.push(key("priorityLevel"));
            }
        }
        Got::Typing(..) | Got::Ping => {}
    }
    out
}

/// The reference: what the core must do with `text`.
pub fn expect(text: &str) -> Expect {
    let doc = match json::parse(text) {
        Ok(doc) => doc,
        Err(json::Error::Syntax) => return Expect::Error(INVALID_JSON, None),
        Err(json::Error::TooDeep) => return Expect::Anything,
    };
    if doc.has_lone_surrogate() {
        return Expect::Anything;
    }
    let Json::Obj(entries) = &doc else {
        return Expect::Error(INVALID_JSON, None);
    };
    // The first `type` key whose value is a string names the handler.
    let kind = entries.iter().find_map(|(k, v)| match (k.as_deref(), v) {
        (Some("type"), Json::Str(Some(t))) => Some(t.as_str()),
        _ => None,
    });
    let names: &[&str] = match kind {
        Some("join_room" | "leave_room") => &["roomId"],
        Some("chat_message") => &["roomId", "message"],
        Some("typing") => &["roomId", "isTyping"],
        Some("batch") => &["items", "priorityLevel"],
        Some("ping") => &[],
        _ => return Expect::Error(UNKNOWN_TYPE, None),
    };
    let type_keys = entries
        .iter()
        .filter(|(k, _)| k.as_deref() == Some("type"))
        .count();
    let shaped = if type_keys > 1 {
        Err(Bad::Shape)
    } else {
        fields(&doc, names).and_then(|f| {
            Ok(match kind.expect("known type") {
                "join_room" => Got::Join(as_str(f[0])?),
                "leave_room" => Got::Leave(as_str(f[0])?),
                "chat_message" => Got::Chat(as_str(f[0])?, as_str(f[1])?),
                "typing" => Got::Typing(as_str(f[0])?, as_bool(f[1])?),
                "batch" => Got::Batch(items(f[0])?, as_u8(f[1])?),
                _ => Got::Ping,
            })
        })
    };
    match shaped {
        Err(Bad::Shape) => Expect::Error(VALIDATION_FAILED, None),
        Err(Bad::Number) => Expect::OneOf(&[VALIDATION_FAILED, INVALID_JSON]),
        Ok(got) => {
            let paths = violations(&got);
            if paths.is_empty() {
                Expect::Handler(got)
            } else {
                Expect::Error(VALIDATION_FAILED, Some(paths))
            }
        }
    }
}

/// Rust field names of the route's types, mapped to their wire names; `Some` only while
/// [`known::RUST_NAMES_IN_ISSUE_PATHS`] is open.
fn tolerated_names() -> Option<fn(&str) -> &str> {
    known::RUST_NAMES_IN_ISSUE_PATHS.then_some(|name| match name {
        "priority_level" => "priorityLevel",
        "display_name" => "displayName",
        other => other,
    })
}

/// Whether two codes differ only as [`known::ERROR_CODE_FROM_SERDE_CATEGORY`] makes them.
fn tolerated_code(got: &str, want: &str) -> bool {
    let pair = [INVALID_JSON, VALIDATION_FAILED];
    known::ERROR_CODE_FROM_SERDE_CATEGORY && pair.contains(&got) && pair.contains(&want)
}

/// Checks one error envelope and returns its code and issue paths (in wire names).
fn check_envelope(seen: &[Seen]) -> (String, Option<Vec<Path>>) {
    let [Seen::Send { message, .. }] = seen else {
        panic!("expected exactly one error envelope, got {seen:?}");
    };
    let envelope = message.as_text().expect("error envelopes are text");
    let v: Value = serde_json::from_str(envelope).expect("error envelope is JSON");
    assert_eq!(v["type"], "error", "{v}");
    assert!(v["message"].is_string(), "{v}");
    let code = v["code"].as_str().expect("code").to_owned();
    assert!(
        [INVALID_JSON, UNKNOWN_TYPE, VALIDATION_FAILED].contains(&code.as_str()),
        "SPEC §4 has no code {code:?} for a bad message"
    );
    let issues = v.get("issues").map(|issues| {
        let issues = issues.as_array().expect("issues is an array");
        issues
            .iter()
            .map(|i| {
                assert!(i["code"].is_string() && i["message"].is_string(), "{i}");
                let mut path = i["path"].as_array().expect("path is an array").clone();
                if let Some(wire) = tolerated_names() {
                    for seg in &mut path {
                        if let Some(name) = seg.as_str() {
                            *seg = wire(name).into();
                        }
                    }
                }
                for seg in &path {
                    assert!(
                        seg.is_u64() || seg.as_str().is_some_and(|k| WIRE_NAMES.contains(&k)),
                        "issue path {path:?} is not in wire names"
                    );
                }
                path
            })
            .collect::<Vec<_>>()
    });
    if code == VALIDATION_FAILED {
        assert!(
            issues.as_ref().is_some_and(|i| !i.is_empty()),
            "validation_failed without issues: {v}"
        );
    } else {
        assert!(issues.is_none(), "{code} with issues: {v}");
    }
    (code, issues)
}

/// Sends `text` and checks the outcome against `expected`.
fn check(text: &str, expected: &Expect) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut d = Driver::new(server(&log));
    let req = wskit::testing::upgrade_request("/ws")
        .body(())
        .expect("request");
    let conn = d.connect(&req).expect("public route accepts");
    d.text(conn, text);
    let seen = d.take_seen();
    let got = std::mem::take(&mut *log.lock().expect("log"));
    d.check_state();

    if text.len() > MAX_PAYLOAD {
        assert!(got.is_empty(), "handler ran for an oversize message");
        assert!(
            matches!(seen.as_slice(), [Seen::Close { code: 1009, .. }]),
            "oversize message: {seen:?}"
        );
        return;
    }
    assert!(
        d.server.is_open(conn),
        "a bad message closed the connection: {seen:?}"
    );
    if got.is_empty() {
        let (code, paths) = check_envelope(&seen);
        match expected {
            Expect::Handler(want) => {
                panic!("expected the handler with {want:?}, got error {code}: {seen:?}")
            }
            Expect::Error(want, _) if code != *want && tolerated_code(&code, want) => {}
            Expect::Error(want, want_paths) => {
                assert_eq!(code, *want, "{text:?}: {seen:?}");
                if let Some(want_paths) = want_paths {
                    assert_eq!(paths.as_ref(), Some(want_paths), "issue paths for {text:?}");
                }
            }
            Expect::OneOf(codes) => assert!(codes.contains(&code.as_str()), "{text:?}: {code}"),
            Expect::Anything => {}
        }
    } else {
        assert_eq!(got.len(), 1, "one message, one handler call");
        assert!(
            seen.is_empty(),
            "a handled message produced output: {seen:?}"
        );
        match expected {
            Expect::Handler(want) => assert_eq!(&got[0], want, "{text:?}"),
            Expect::Anything => {}
            other => panic!("{text:?}: expected {other:?}, but the handler ran with {got:?}"),
        }
    }
}

/// A message built from fuzz input, serialized by us.
#[derive(Arbitrary, Debug)]
enum Msg {
    Join(String, u8),
    Leave(String, u8),
    Chat(String, String, u16),
    Typing(String, bool),
    Batch(Vec<String>, u8),
    Ping,
}

/// How the message is laid out on the wire.
#[derive(Arbitrary, Debug)]
struct Layout {
    type_last: bool,
    spaced: bool,
    extra: Option<(String, u8)>,
}

/// Builds `{"type":..,fields..}` by hand so key order and spacing vary.
fn render(kind: &str, fields: &[(&str, Value)], layout: &Layout) -> String {
    let mut parts: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_string()))
        .collect();
    if let Some((name, n)) = &layout.extra {
        if name != "type" && !fields.iter().any(|(k, _)| k == name) {
            parts.push((name.clone(), Value::from(*n).to_string()));
        }
    }
    let ty = ("type".to_owned(), Value::from(kind).to_string());
    if layout.type_last {
        parts.push(ty);
    } else {
        parts.insert(0, ty);
    }
    let sep = if layout.spaced { " , " } else { "," };
    let colon = if layout.spaced { " : " } else { ":" };
    let body: Vec<String> = parts
        .iter()
        .map(|(k, v)| format!("{}{colon}{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", body.join(sep))
}

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let msg = Msg::arbitrary(u)?;
    let layout = Layout::arbitrary(u)?;
    // Stretch strings across the length limits (50 and 1000 code points).
    let stretch = |s: String, n: usize, with: &str| s + &with.repeat(n);
    let (got, text) = match msg {
        Msg::Join(room, n) => {
            let room = stretch(room, usize::from(n % 64), "é");
            let text = render("join_room", &[("roomId", room.clone().into())], &layout);
            (Got::Join(room), text)
        }
        Msg::Leave(room, n) => {
            let room = stretch(room, usize::from(n % 64), "é");
            let text = render("leave_room", &[("roomId", room.clone().into())], &layout);
            (Got::Leave(room), text)
        }
        Msg::Chat(room, message, n) => {
            let message = stretch(message, usize::from(n % 1100), "x");
            let fields = [
                ("roomId", room.clone().into()),
                ("message", message.clone().into()),
            ];
            (
                Got::Chat(room, message),
                render("chat_message", &fields, &layout),
            )
        }
        Msg::Typing(room, on) => {
            let fields = [("roomId", room.clone().into()), ("isTyping", on.into())];
            (Got::Typing(room, on), render("typing", &fields, &layout))
        }
        Msg::Batch(names, priority) => {
            let items: Vec<Value> = names
                .iter()
                .map(|n| serde_json::json!({ "displayName": n }))
                .collect();
            let fields = [("items", items.into()), ("priorityLevel", priority.into())];
            (
                Got::Batch(names, priority),
                render("batch", &fields, &layout),
            )
        }
        Msg::Ping => (Got::Ping, render("ping", &[], &layout)),
    };
    let paths = violations(&got);
    let expected = if paths.is_empty() {
        Expect::Handler(got)
    } else {
        Expect::Error(VALIDATION_FAILED, Some(paths))
    };
    // The reference must agree with what we built (this checks the reference itself).
    assert_eq!(expect(&text), expected, "reference disagrees on {text:?}");
    check(&text, &expected);
    Ok(())
}

/// The target.
pub fn run(data: &[u8]) {
    match data.split_first() {
        Some((0, rest)) => {
            let _ = structured(&mut Unstructured::new(rest));
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            check(&text, &expect(&text));
        }
    }
}
