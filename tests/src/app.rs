//! The application every adapter serves in the suite: routes that exercise handshakes, auth,
//! envelopes, pub/sub, close codes and timers. Server-side observations (close codes seen by
//! `on_close`) reach the test through a channel.

use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, Sender};
use std::task::{Context, Poll};
use std::time::Duration;
use wskit::{
    Limits, OriginPolicy, Route, Server, ServerHandle, TokenAuth, TokenSource, Validate, Validator,
};

/// The only token the verifiers accept.
pub const GOOD_TOKEN: &str = "good-token";
/// Largest message on `/ws/echo` (bigger closes with 1009).
pub const ECHO_MAX_PAYLOAD: usize = 64 * 1024;
/// Outbound queue limit on `/ws/slow`.
pub const SLOW_MAX_OUTBOUND: usize = 512 * 1024;
/// Idle timeout on `/ws/idle`.
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(1200);

/// The authentication deadline of `/ws/auth/stuck`, whose verifier never answers (the
/// adapter's own bound is the server default, 10 s).
pub const STUCK_AUTH_TIMEOUT: Duration = Duration::from_millis(300);

/// What the server saw, for assertions the client cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// `on_close` ran for connection `id` (as sent in its welcome message).
    Closed {
        /// The connection id (`ConnId`'s display form).
        id: String,
        /// The close code the core reported.
        code: u16,
    },
    /// A `burst` handler queued its messages.
    BurstQueued,
}

/// The test's side of a running app: server-side observations and a handle for
/// server-wide publishes.
pub struct Observer {
    /// Events from the handlers.
    pub events: Receiver<AppEvent>,
    /// Publish from outside (like an HTTP endpoint would).
    pub handle: ServerHandle,
}

impl Observer {
    /// Waits (bounded) for the first event matching `pred`.
    pub fn wait_for(&self, pred: impl Fn(&AppEvent) -> bool) -> AppEvent {
        let deadline = std::time::Instant::now() + crate::client::TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("the expected server-side event did not happen"),
            }
        }
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

#[derive(Deserialize, schemars::JsonSchema)]
struct Room {
    room: String,
}
impl Validate for Room {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Publish {
    room: String,
    seq: u64,
    /// Filler, to make messages big.
    #[serde(default)]
    pad: String,
}
impl Validate for Publish {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Burst {
    count: usize,
    size: usize,
}
impl Validate for Burst {}

#[derive(Deserialize, schemars::JsonSchema)]
struct Empty {}
impl Validate for Empty {}

/// The user an authenticated route sees.
#[derive(Debug, Clone)]
pub struct User {
    /// Display name.
    pub name: String,
}

/// A future that is pending once (waking itself), so verifiers and async handlers really go
/// through the adapter's runtime, whatever the runtime is.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn verify(token: String) -> Option<User> {
    (token == GOOD_TOKEN).then(|| User {
        name: "alice".into(),
    })
}

fn authed(path: &str, source: TokenSource) -> Route<User> {
    Route::new(path)
        .authenticate(TokenAuth::new_sync(verify).sources([source]))
        .on_connect(|ws, ctx| ws.send(&json!({"type": "hello", "user": ctx.user.name})))
}

fn publish(
    ws: &mut wskit::Socket<'_, serde_json::Value>,
    _ctx: &mut wskit::Ctx<()>,
    m: Publish,
) -> Result<(), wskit::SocketError> {
    let mut out = json!({"type": "published", "room": m.room, "seq": m.seq});
    if !m.pad.is_empty() {
        out["pad"] = m.pad.into();
    }
    ws.publish(&m.room, &out).map(|_| ())
}

/// The public route with typed messages, rooms, bursts, a panicking and an async handler.
fn echo_route(events: Sender<AppEvent>) -> Route {
    let burst_events = events.clone();
    Route::new("/ws/echo")
        .limits(Limits::default().max_payload(ECHO_MAX_PAYLOAD))
        .on_connect(|ws, ctx| ws.send(&json!({"type": "welcome", "id": ctx.id.to_string()})))
        .on("echo", |ws, _ctx, m: Echo| {
            ws.send(&json!({"type": "echo", "message": m.message}))
        })
        .on("join", |ws, _ctx, m: Room| -> wskit::HandlerResultOf {
            ws.subscribe(&m.room)?;
            ws.send(&json!({"type": "joined", "room": m.room}))?;
            Ok(())
        })
        .on("leave", |ws, _ctx, m: Room| {
            ws.unsubscribe(&m.room);
            ws.send(&json!({"type": "left", "room": m.room}))
        })
        .on("publish", publish)
        .on(
            "burst",
            move |ws, _ctx, m: Burst| -> wskit::HandlerResultOf {
                let pad = "x".repeat(m.size);
                for seq in 0..m.count {
                    ws.send(&json!({"type": "burst", "seq": seq, "pad": pad}))?;
                }
                let _ = burst_events.send(AppEvent::BurstQueued);
                Ok(())
            },
        )
        .on("panic", |_ws, _ctx, _m: Empty| -> wskit::HandlerResultOf {
            panic!("handler panic requested by the test")
        })
        .on_async("async_panic", |_ws, _ctx, _m: Empty| async move {
            YieldOnce(false).await;
            if true {
                panic!("async handler panic requested by the test");
            }
            Ok::<(), wskit::HandlerError>(())
        })
        .on_async("async_echo", |ws, _ctx, m: Echo| async move {
            YieldOnce(false).await;
            ws.send(&json!({"type": "async_echo", "message": m.message}))
        })
        .on_close(move |_ws, ctx, code, _reason| {
            let _ = events.send(AppEvent::Closed {
                id: ctx.id.to_string(),
                code,
            });
        })
}

/// A room route whose subscribers have a small outbound queue.
fn slow_route(events: Sender<AppEvent>) -> Route {
    Route::new("/ws/slow")
        .limits(Limits::default().max_outbound_bytes(SLOW_MAX_OUTBOUND))
        .on_connect(|ws, ctx| ws.send(&json!({"type": "welcome", "id": ctx.id.to_string()})))
        .on("echo", |ws, _ctx, m: Echo| {
            ws.send(&json!({"type": "echo", "message": m.message}))
        })
        .on("join", |ws, _ctx, m: Room| -> wskit::HandlerResultOf {
            ws.subscribe(&m.room)?;
            ws.send(&json!({"type": "joined", "room": m.room}))?;
            Ok(())
        })
        .on("publish", publish)
        .on_close(move |_ws, ctx, code, _reason| {
            let _ = events.send(AppEvent::Closed {
                id: ctx.id.to_string(),
                code,
            });
        })
}

/// Builds the app's server and the observer that goes with it.
pub fn app() -> (Server, Observer) {
    let (tx, events) = mpsc::channel();
    let raw = Route::new("/ws/raw")
        .limits(Limits::default().max_payload(4 * 1024 * 1024))
        .on_text(|ws, _ctx, text: &str| ws.send_text(text))
        .on_binary(|ws, _ctx, data| ws.send_binary(data));
    let origin = Route::new("/ws/origin")
        .origins(OriginPolicy::allow(["https://good.example"]))
        .on_connect(|ws, _ctx| ws.send(&json!({"type": "welcome"})));
    let idle = Route::new("/ws/idle")
        .limits(Limits::default().idle_timeout(IDLE_TIMEOUT))
        .on("echo", |ws, _ctx, m: Echo| {
            ws.send(&json!({"type": "echo", "message": m.message}))
        });
    let custom = TokenSource::custom(|req| {
        req.headers()
            .get("x-api-key")?
            .to_str()
            .ok()
            .map(str::to_owned)
    });
    let async_auth = Route::new("/ws/auth/async")
        .authenticate(
            TokenAuth::new(|token: String| async move {
                YieldOnce(false).await;
                verify(token)
            })
            .sources([TokenSource::query("token")]),
        )
        .on_connect(|ws, ctx| ws.send(&json!({"type": "hello", "user": ctx.user.name})));
    let stuck_auth = Route::new("/ws/auth/stuck")
        .limits(Limits::default().auth_timeout(STUCK_AUTH_TIMEOUT))
        .authenticate(
            TokenAuth::new(|_token: String| std::future::pending::<Option<User>>())
                .sources([TokenSource::query("token")]),
        );
    let server = Server::builder()
        .route(echo_route(tx.clone()))
        .route(slow_route(tx))
        .route(raw)
        .route(origin)
        .route(idle)
        .route(authed("/ws/auth/query", TokenSource::query("token")))
        .route(authed("/ws/auth/bearer", TokenSource::Bearer))
        .route(authed("/ws/auth/cookie", TokenSource::cookie("session")))
        .route(authed("/ws/auth/subprotocol", TokenSource::Subprotocol))
        .route(authed("/ws/auth/custom", custom))
        .route(async_auth)
        .route(stuck_auth)
        .build()
        .expect("the test app's routes are valid");
    let handle = server.handle();
    (server, Observer { events, handle })
}
