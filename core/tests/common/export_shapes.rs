//! Routes whose message types have the shapes a type export can get wrong: nested structs,
//! enums of strings, optional and nullable fields, renamed fields, maps, arrays with item
//! constraints, tuples, recursion, doc comments, a type used in both directions with different
//! serde views, a type named like a TypeScript built-in, path parameters, a unit message and a
//! route without declared server messages. Needs the `garde` feature.
#![allow(dead_code)]

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use wskit::{Route, Server, TokenAuth, TokenSource};

/// A point on the board.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Latitude in degrees.
    #[garde(range(min = -90.0, max = 90.0))]
    pub lat: f64,
    #[garde(range(min = -180.0, max = 180.0))]
    pub lng: f64,
}

/// How loud a drawing is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Volume {
    Quiet,
    Normal,
    VeryLoud,
}

/// Shapes, each documented.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// A round one.
    Circle,
    /// Four equal sides.
    Square,
}

/// A sticky note: read with `pinned` optional, written with `pinned` always present.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct Note {
    #[garde(length(chars, min = 1, max = 280))]
    pub text: String,
    #[garde(skip)]
    pub pinned: Option<bool>,
}

/// A tree of layers (recursive).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct Layer {
    #[garde(length(min = 1))]
    pub name: String,
    #[garde(dive)]
    pub children: Vec<Layer>,
}

/// Named like TypeScript's built-in `Record`, which the generated file also uses.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    pub id: u32,
}

/// Draw on the board.
///
/// Every constraint here is checked by the server before the handler runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Draw {
    /// Where to draw.
    #[garde(dive)]
    pub at: Point,
    #[garde(skip)]
    pub shape: Shape,
    #[garde(skip)]
    pub volume: Volume,
    /// An optional caption (absent or null means none).
    #[garde(length(chars, min = 1, max = 20))]
    pub label: Option<String>,
    /// Hex colour.
    #[serde(rename = "colour")]
    #[garde(pattern(r"^#[0-9a-f]{6}$"))]
    pub color: String,
    #[garde(length(min = 1, max = 8), inner(length(chars, min = 1, max = 16)))]
    pub tags: Vec<String>,
    #[garde(length(max = 4), dive)]
    pub path: Vec<Point>,
    /// Free-form counters.
    #[serde(default)]
    #[garde(skip)]
    pub counters: HashMap<String, u32>,
    #[garde(email)]
    pub author_email: String,
    #[garde(range(min = 1, max = 10))]
    pub weight: u8,
    #[garde(dive)]
    pub note: Option<Note>,
    #[garde(skip)]
    pub records: Vec<Record>,
}

/// Plant a tree of layers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
pub struct Plant {
    #[garde(dive)]
    pub root: Layer,
}

/// What the board route sends.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum BoardOut {
    /// Somebody drew something.
    Drawn {
        by: String,
        at: Point,
        /// Always present; null when there is none.
        label: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<Note>,
    },
    /// The whole board.
    Snapshot {
        points: BTreeMap<String, Point>,
        strokes: Vec<Vec<Point>>,
        size: (u32, u32),
        layers: Option<Layer>,
    },
    /// Keep-alive.
    Ping,
    /// A point on its own (a newtype variant).
    Cursor(Point),
}

pub fn board_route() -> Route<String, BoardOut> {
    let auth = TokenAuth::new_sync(|t: String| Some(t)).sources([
        TokenSource::query("access_token"),
        TokenSource::cookie("session"),
        TokenSource::custom(|r| r.headers().get("x-token")?.to_str().ok().map(Into::into)),
    ]);
    Route::new("/ws/boards/:boardId")
        .name("board")
        .authenticate(auth)
        .server_messages::<BoardOut>()
        .on("draw", |_ws, _ctx, _m: Draw| {})
        .on("plant", |_ws, _ctx, _m: Plant| {})
        .on("ping", |_ws, _ctx, _m: ()| {})
}

/// A route without `server_messages`: its server messages are `unknown`.
pub fn raw_route() -> Route {
    Route::new("/ws/raw/{*rest}").on("note", |_ws, _ctx, _m: Note| {})
}

pub fn shapes_server() -> Server {
    Server::builder()
        .route(board_route())
        .route(raw_route())
        .build()
        .expect("the shape routes are valid")
}
