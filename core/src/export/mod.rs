//! Type export: TypeScript declarations, JSON Schemas and an AsyncAPI 3.0 document, generated
//! from the routes registered on a built [`Server`].
//!
//! Every schema comes from the very types the handlers use (through [`schemars`], which reads
//! serde attributes and garde/validator constraint attributes), so the exported contract cannot
//! drift from what the server accepts. Client messages are described as the server reads them
//! (serde's deserialize view, plus the `type` discriminator); server messages as it writes them
//! (serialize view).
//!
//! ```
//! use wskit::{export::Export, Route, Server, Validate};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct JoinRoom { room_id: String }
//! impl Validate for JoinRoom {}
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Out { RoomJoined { room: String } }
//!
//! let route = Route::new("/ws/chat")
//!     .server_messages::<Out>()
//!     .on("join_room", |_ws, _ctx, _m: JoinRoom| {});
//! let server = Server::builder().route(route).build().unwrap();
//! let export = Export::from_server(&server);
//! let ts = export.typescript();
//! assert!(ts.contains(r#"{ type: "join_room"; roomId: string }"#));
//! assert!(ts.contains(r#""/ws/chat": ChatWebSocketRoute;"#));
//! assert_eq!(export.asyncapi()["asyncapi"], "3.0.0");
//! ```

mod asyncapi;
mod json_schema;
mod schema;
mod typescript;

use crate::auth::TokenSource;
use crate::route::RouteSpec;
use crate::server::Server;
use schemars::generate::SchemaSettings;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io;
use std::path::Path;

/// File name of the TypeScript declarations written by [`Export::write_to`].
pub const TYPESCRIPT_FILE: &str = "websocket-types.ts";
/// File name of the JSON Schemas written by [`Export::write_to`].
pub const JSON_SCHEMA_FILE: &str = "schemas.json";
/// File name of the AsyncAPI document written by [`Export::write_to`].
pub const ASYNCAPI_FILE: &str = "asyncapi.json";

/// The exported description of a server's routes. Build it with [`Export::from_server`], then
/// render [`typescript`](Self::typescript), [`json_schemas`](Self::json_schemas) and
/// [`asyncapi`](Self::asyncapi), or write all three with [`write_to`](Self::write_to).
#[derive(Debug, Clone)]
pub struct Export {
    routes: Vec<RouteExport>,
    defs: schema::Defs,
    title: String,
    version: String,
}

/// One route, its schemas resolved.
#[derive(Debug, Clone)]
struct RouteExport {
    /// `RouteSpec::name()`.
    name: String,
    /// The PascalCase prefix of its TypeScript names, unique among the routes.
    ident: String,
    path: String,
    params: Vec<String>,
    token_sources: Vec<TokenSource>,
    /// `(type, schema of the whole wire message)`, in registration order.
    client: Vec<(String, Value)>,
    /// The server-message schema (top-level `$ref` inlined); `None` when undeclared.
    server: Option<Value>,
}

impl Export {
    /// Describes every route of `server`, in registration order.
    pub fn from_server(server: &Server) -> Self {
        Self::from_routes(server.routes())
    }

    /// Describes the given routes.
    pub fn from_routes<'a>(routes: impl IntoIterator<Item = &'a RouteSpec>) -> Self {
        let mut reader = SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator();
        let mut writer = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator();
        let mut raw = Vec::new();
        for spec in routes {
            let client: Vec<(String, Value)> = spec
                .messages()
                .iter()
                .map(|m| (m.name.clone(), (m.schema)(&mut reader).to_value()))
                .collect();
            let server = spec.server_messages().map(|f| f(&mut writer).to_value());
            raw.push((spec, client, server));
        }
        let (client_renames, server_renames, defs) =
            schema::merge_defs(reader.take_definitions(true), writer.take_definitions(true));
        let mut idents = BTreeSet::new();
        let routes = raw
            .into_iter()
            .map(|(spec, client, server)| {
                let name = spec.name();
                let mut base = schema::pascal_case(&name);
                if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    base.insert_str(0, "Route");
                }
                let client = client
                    .into_iter()
                    .map(|(ty, mut s)| {
                        schema::rename_refs(&mut s, &client_renames);
                        let wire = schema::wire_client(&s, &ty, &defs);
                        (ty, wire)
                    })
                    .collect();
                let server = server.map(|mut s| {
                    schema::rename_refs(&mut s, &server_renames);
                    schema::resolve(&s, &defs).clone()
                });
                RouteExport {
                    ident: schema::unique(&mut idents, &base),
                    name,
                    path: spec.path().to_owned(),
                    params: spec.param_names(),
                    token_sources: spec.token_sources().to_vec(),
                    client,
                    server,
                }
            })
            .collect();
        Export {
            routes,
            defs,
            title: "wskit WebSocket API".into(),
            version: "1.0.0".into(),
        }
    }

    /// Sets the AsyncAPI `info.title` (default `wskit WebSocket API`).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the AsyncAPI `info.version`, the version of your API (default `1.0.0`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The TypeScript declarations (`websocket-types.ts`, SPEC §5): per route
    /// `<Name>ServerMessage`, `<Name>ClientMessage` and `<Name>WebSocketRoute`, the
    /// `WebSocketRoutes` map keyed by path, and the named types they use. Constraints and doc
    /// comments appear as JSDoc.
    pub fn typescript(&self) -> String {
        typescript::render(self)
    }

    /// The JSON Schemas (draft 2020-12) of every message (`schemas.json`): under
    /// `routes[path]`, `clientMessages[type]` and `serverMessage` (with `serverMessages[type]`
    /// too when the server messages are a union discriminated on `type`); named types under
    /// `$defs`.
    pub fn json_schemas(&self) -> Value {
        json_schema::document(self)
    }

    /// A standalone JSON Schema (2020-12) of the client message `message_type` on the route at
    /// `path`, `type` field included; `None` if there is no such route or message.
    pub fn client_message_schema(&self, path: &str, message_type: &str) -> Option<Value> {
        let route = self.routes.iter().find(|r| r.path == path)?;
        let (_, schema) = route.client.iter().find(|(t, _)| t == message_type)?;
        Some(json_schema::standalone(schema, &self.defs))
    }

    /// A standalone JSON Schema (2020-12) of the server messages of the route at `path`
    /// (`true`, anything, when the route declares none); `None` if there is no such route.
    pub fn server_message_schema(&self, path: &str) -> Option<Value> {
        let route = self.routes.iter().find(|r| r.path == path)?;
        let schema = route.server.clone().unwrap_or(Value::Bool(true));
        Some(json_schema::standalone(&schema, &self.defs))
    }

    /// The AsyncAPI 3.0.0 document (`asyncapi.json`): a channel per route, a `receive`
    /// operation for client messages and a `send` operation for server messages, `ws`
    /// bindings and security schemes for the token sources.
    pub fn asyncapi(&self) -> Value {
        asyncapi::document(self)
    }

    /// Writes [`TYPESCRIPT_FILE`], [`JSON_SCHEMA_FILE`] and [`ASYNCAPI_FILE`] into `dir`
    /// (created if missing). JSON is pretty-printed with sorted keys, so output is stable.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> io::Result<()> {
        let dir = dir.as_ref();
        let context = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| context("creating", e))?;
        let files = [
            (TYPESCRIPT_FILE, self.typescript()),
            (JSON_SCHEMA_FILE, schema::to_json_text(&self.json_schemas())),
            (ASYNCAPI_FILE, schema::to_json_text(&self.asyncapi())),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text)
                .map_err(|e| context(&format!("writing {name} in"), e))?;
        }
        Ok(())
    }
}

impl RouteExport {
    /// The server messages split by `type`, when they form a discriminated union.
    fn server_variants(&self, defs: &schema::Defs) -> Option<Vec<(String, Value)>> {
        schema::variants(self.server.as_ref()?, defs)
    }
}
