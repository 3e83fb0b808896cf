//! The application the hostile suite attacks: typed JSON routes with deliberately small limits,
//! a text-only route, a path-parameter route, an authenticated route with real HS256 tokens, an
//! Origin allow-list, and handlers that panic, close and send late. What the server saw reaches
//! the test through [`Event`]s.

use super::gate::Gate;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wskit::{
    AuthRejection, ConnId, Ctx, HandlerResultOf, Limits, OriginPolicy, Route, Server, ServerHandle,
    Socket, TokenAuth, TokenSource, Validate, Validator,
};

/// Largest message on `/h/json` and `/h/text`: room for 100k-deep nesting and 100k fragments.
pub const BIG_MAX_PAYLOAD: usize = 1024 * 1024;
/// Largest message on `/h/small` and `/h/room`.
pub const SMALL_MAX_PAYLOAD: usize = 64 * 1024;
/// Topics one connection may hold on `/h/json`.
pub const MAX_TOPICS: usize = 64;
/// Longest topic name on `/h/json`, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;
/// Outbound queue bound on `/h/room` (slow consumers, ping floods).
pub const ROOM_MAX_OUTBOUND: usize = 64 * 1024;
/// The only Origin `/h/origin` accepts.
pub const ALLOWED_ORIGIN: &str = "https://example.com";
/// HS256 secret of `/h/auth`.
pub const JWT_SECRET: &[u8] = b"hostile-suite-secret-not-for-production";

/// What the server saw, for assertions a client cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on_connect` ran.
    Opened {
        /// The connection.
        id: ConnId,
        /// Its route.
        path: &'static str,
    },
    /// `on_close` ran with this code.
    Closed {
        /// The connection.
        id: ConnId,
        /// The close code the core reported.
        code: u16,
    },
    /// A handler sent after closing its own connection; `result` is `Debug` of what `send`
    /// returned.
    SentAfterClose {
        /// The connection.
        id: ConnId,
        /// What `send` returned.
        result: String,
    },
    /// An async handler finished sending after its gate opened.
    LateSendDone {
        /// The connection.
        id: ConnId,
    },
}

/// The test's side of a running hostile app.
pub struct Observer {
    events: Receiver<Event>,
    /// Events received while waiting for another one, kept for later waits.
    backlog: RefCell<Vec<Event>>,
    /// Server-wide publishes and sends to connections by id.
    pub handle: ServerHandle,
    /// Opened by the test to release `late_send` handlers.
    pub gate: Arc<Gate>,
}

impl Observer {
    /// Waits (bounded by `within`) for an event matching `pred` and takes it; other events
    /// stay available to later waits.
    pub fn wait_for(&self, within: Duration, pred: impl Fn(&Event) -> bool) -> Event {
        let mut backlog = self.backlog.borrow_mut();
        if let Some(i) = backlog.iter().position(&pred) {
            return backlog.remove(i);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(e) => backlog.push(e),
                Err(_) => panic!("the expected server-side event did not happen in {within:?}"),
            }
        }
    }

    /// Waits for `on_close` of the connection whose welcome carried `id`; returns its code.
    pub fn closed(&self, id: &str, within: Duration) -> u16 {
        self.try_closed(id, within)
            .unwrap_or_else(|| panic!("on_close of {id} did not run within {within:?}"))
    }

    /// Like [`closed`](Self::closed), `None` on timeout.
    pub fn try_closed(&self, id: &str, within: Duration) -> Option<u16> {
        let is_it = |e: &Event| matches!(e, Event::Closed { id: i, .. } if i.to_string() == id);
        let mut backlog = self.backlog.borrow_mut();
        if let Some(i) = backlog.iter().position(is_it) {
            if let Event::Closed { code, .. } = backlog.remove(i) {
                return Some(code);
            }
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Closed { id: i, code }) if i.to_string() == id => return Some(code),
                Ok(e) => backlog.push(e),
                Err(_) => return None,
            }
        }
    }

    /// The id of the next connection opened on `path`.
    pub fn opened(&self, path: &str, within: Duration) -> ConnId {
        match self.wait_for(
            within,
            |e| matches!(e, Event::Opened { path: p, .. } if *p == path),
        ) {
            Event::Opened { id, .. } => id,
            _ => unreachable!(),
        }
    }

    /// The `ConnId` of the connection whose welcome carried `id`.
    pub fn opened_id(&self, id: &str, within: Duration) -> ConnId {
        let is_it = |e: &Event| matches!(e, Event::Opened { id: i, .. } if i.to_string() == id);
        match self.wait_for(within, is_it) {
            Event::Opened { id, .. } => id,
            _ => unreachable!(),
        }
    }

    /// Events that arrived so far without being waited for (and any that arrive within
    /// `settle`).
    pub fn drain(&self, settle: Duration) -> Vec<Event> {
        let mut all = std::mem::take(&mut *self.backlog.borrow_mut());
        while let Ok(e) = self.events.recv_timeout(settle) {
            all.push(e);
        }
        all
    }

    /// The next event (kept ones first), waiting at most `within`.
    pub fn next_event(&self, within: Duration) -> Option<Event> {
        let kept = self.backlog.borrow_mut().pop();
        kept.or_else(|| self.events.recv_timeout(within).ok())
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Echo {
    message: String,
}
impl Validate for Echo {
    fn validate(&self, v: &mut Validator) {
        v.length("message", &self.message, 1, 100);
    }
}

/// Any JSON at all, as a handler that stores documents would take it.
#[derive(Deserialize, schemars::JsonSchema)]
struct Deep {
    data: serde_json::Value,
}
impl Validate for Deep {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Room {
    room: String,
}
impl Validate for Room {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Many {
    prefix: String,
    count: u64,
}
impl Validate for Many {}

/// A publish with the sender's own sequence number (and filler).
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
pub struct Publish {
    /// Target topic.
    pub room: String,
    /// Sender-chosen id, echoed to subscribers.
    #[serde(default)]
    pub from: String,
    /// Sequence number per sender and room.
    pub seq: u64,
    /// Filler bytes.
    #[serde(default)]
    pub pad: String,
}
impl Validate for Publish {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Empty {}
impl Validate for Empty {}

/// The authenticated user of `/h/auth`.
#[derive(Debug, Clone)]
pub struct User {
    /// The token's `sub`.
    pub id: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// An HS256 token for `sub` that expires `ttl_secs` from now (negative: already expired).
pub fn token(sub: &str, ttl_secs: i64, secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let claims = Claims {
        sub: sub.to_owned(),
        exp: (now + ttl_secs).max(0) as u64,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 encodes")
}

/// The verifier: signature, algorithm and expiry (no leeway) are checked by jsonwebtoken; the
/// refusal names the failure kind, never the token.
fn verify(token: String) -> Result<User, AuthRejection> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_secret(JWT_SECRET), &validation)
        .map(|data| User {
            id: data.claims.sub,
        })
        .map_err(|e| AuthRejection::unauthorized(format!("invalid token: {:?}", e.kind())))
}

/// Panics on purpose (the 1011 cases).
fn requested_panic(what: &str) -> HandlerResultOf {
    panic!("{what} panic requested by the hostile suite")
}

type JsonSocket<'a> = Socket<'a, serde_json::Value>;

fn publish(ws: &mut JsonSocket<'_>, _ctx: &mut Ctx<()>, m: Publish) -> HandlerResultOf {
    let mut out = json!({"type": "published", "room": m.room, "from": m.from, "seq": m.seq});
    if !m.pad.is_empty() {
        out["pad"] = m.pad.into();
    }
    ws.publish(&m.room, &out)?;
    Ok(())
}

/// The typed handlers `/h/json` and `/h/room` share.
fn typed(path: &'static str, limits: Limits, events: Sender<Event>, gate: Arc<Gate>) -> Route {
    let (opened, closed, after_close, late) =
        (events.clone(), events.clone(), events.clone(), events);
    Route::new(path)
        .limits(limits)
        .on_connect(move |ws, ctx| {
            let _ = opened.send(Event::Opened { id: ctx.id, path });
            ws.send(&json!({"type": "welcome", "id": ctx.id.to_string()}))
        })
        .on("echo", |ws, _ctx, m: Echo| {
            ws.send(&json!({"type": "echo", "message": m.message}))
        })
        .on("deep", |ws, _ctx, m: Deep| {
            ws.send(&json!({"type": "deep", "object": m.data.is_object()}))
        })
        .on("join", |ws, _ctx, m: Room| -> HandlerResultOf {
            ws.subscribe(&m.room)?;
            ws.send(&json!({"type": "joined", "room": m.room}))?;
            Ok(())
        })
        .on("leave", |ws, _ctx, m: Room| {
            ws.unsubscribe(&m.room);
            ws.send(&json!({"type": "left", "room": m.room}))
        })
        .on("topics", |ws, _ctx, _m: Empty| {
            let count = ws.topics().len();
            ws.send(&json!({"type": "topics", "count": count}))
        })
        .on("subscribe_many", |ws, _ctx, m: Many| {
            // Keeps trying after the first refusal: every attempt must be refused in O(1).
            let (mut ok, mut refused, mut first_error) = (0u64, 0u64, None);
            for i in 0..m.count {
                match ws.subscribe(&format!("{}{i}", m.prefix)) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        refused += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            ws.send(
                &json!({"type": "subscribed", "ok": ok, "refused": refused, "error": first_error}),
            )
        })
        .on("publish", publish)
        .on("panic", |_ws, _ctx, _m: Empty| requested_panic("handler"))
        .on("close_then_send", move |ws, ctx, _m: Empty| {
            ws.close(4000, "closed by the handler");
            let result = ws.send(&json!({"type": "after_close"}));
            let _ = after_close.send(Event::SentAfterClose {
                id: ctx.id,
                result: format!("{result:?}"),
            });
        })
        .on_async("async_panic", |_ws, _ctx, _m: Empty| async move {
            super::gate::yield_once().await;
            requested_panic("async handler")
        })
        .on_async("late_send", move |ws, ctx, m: Room| {
            let (gate, late) = (gate.clone(), late.clone());
            async move {
                gate.wait().await;
                let _ = ws.send(&json!({"type": "late"}));
                let _ = ws.publish(&m.room, &json!({"type": "late_publish"}));
                ws.subscribe(&m.room);
                let _ = late.send(Event::LateSendDone { id: ctx.id });
            }
        })
        .on_close(move |_ws, ctx, code, _reason| {
            let _ = closed.send(Event::Closed { id: ctx.id, code });
        })
}

fn text_echo(path: &str, max_payload: usize) -> Route {
    Route::new(path)
        .limits(Limits::default().max_payload(max_payload))
        .on_text(|ws, _ctx, text: &str| ws.send_text(text))
}

/// Builds the hostile app's server and its observer.
pub fn app() -> (Server, Observer) {
    let (tx, events) = mpsc::channel();
    let gate = Arc::new(Gate::default());
    let json_limits = Limits::default()
        .max_payload(BIG_MAX_PAYLOAD)
        .max_topics_per_conn(MAX_TOPICS)
        .max_topic_len(MAX_TOPIC_LEN);
    let room_limits = Limits::default()
        .max_payload(SMALL_MAX_PAYLOAD)
        .max_outbound_bytes(ROOM_MAX_OUTBOUND);
    let files = Route::new("/h/files/:name").on_connect(|ws, ctx| {
        let name = ctx.params.get("name").unwrap_or_default().to_owned();
        ws.send(&json!({"type": "param", "name": name}))
    });
    let auth = Route::new("/h/auth")
        .authenticate(TokenAuth::new_sync(verify).sources([
            TokenSource::query("token"),
            TokenSource::Bearer,
            TokenSource::Subprotocol,
        ]))
        .on_connect(|ws, ctx| ws.send(&json!({"type": "hello", "user": ctx.user.id})));
    let origin = Route::new("/h/origin")
        .origins(OriginPolicy::allow([ALLOWED_ORIGIN]))
        .on_connect(|ws, _ctx| ws.send(&json!({"type": "welcome"})));
    let panic_connect =
        Route::new("/h/panic/connect").on_connect(|_ws, _ctx| requested_panic("on_connect"));
    let close_events = tx.clone();
    let panic_close = Route::new("/h/panic/close")
        .on_connect(|ws, ctx| ws.send(&json!({"type": "welcome", "id": ctx.id.to_string()})))
        .on_close(move |_ws, ctx, code, _reason| {
            let _ = close_events.send(Event::Closed { id: ctx.id, code });
            panic!("on_close panic requested")
        });
    let server = Server::builder()
        .route(typed("/h/json", json_limits, tx.clone(), gate.clone()))
        .route(typed("/h/room", room_limits, tx, gate.clone()))
        .route(text_echo("/h/text", BIG_MAX_PAYLOAD))
        .route(text_echo("/h/small", SMALL_MAX_PAYLOAD))
        .route(files)
        .route(auth)
        .route(origin)
        .route(panic_connect)
        .route(panic_close)
        .build()
        .expect("the hostile app's routes are valid");
    let handle = server.handle();
    let observer = Observer {
        events,
        backlog: RefCell::new(Vec::new()),
        handle,
        gate,
    };
    (server, observer)
}
