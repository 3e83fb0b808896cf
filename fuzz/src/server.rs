//! Target `server`: the whole state machine under arbitrary event sequences — upgrades with good
//! and bad tokens, authentications completed, late or abandoned, opens, texts, binaries, pongs,
//! a virtual clock with idle and auth timeouts, slow consumers, adapter- and peer-side closes,
//! shutdown, `ServerHandle` commands and async handlers polled at arbitrary times.
//!
//! Checked (besides the per-output contract of [`Driver`]): each close has the code SPEC §4
//! gives its cause; authentication tickets are honoured only while alive (not completed, not
//! expired, not dropped by shutdown) and accept the request they were issued for;
//! `pending_auth_count` and `connection_count` match the adapter's view; the topic registry is
//! consistent; everything returns to zero once all connections are gone; no panic escapes.

use super::driver::{block_on, Driver};
use super::{arg, known, script, DeliberatePanic};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use wskit::{
    AuthRejection, AuthTicket, AuthedUser, BoxFuture, ConnId, Decision, ErrorCode, HandlerResultOf,
    Limits, OriginPolicy, Route, Server, TokenAuth, Validate,
};

const ROOMS: &[&str] = &["room:0", "room:1", "room:2", "lobby"];
const KEYS: &[&str] = &[
    "dGhlIHNhbXBsZSBub25jZQ==",
    "AAAAAAAAAAAAAAAAAAAAAA==",
    "AQIDBAUGBwgJCgsMDQ4PEA==",
];
const TOKENS: &[&str] = &["", "tok-a", "tok-b", "bad", "deny"];
const PATHS: &[&str] = &["/ws/chat", "/ws/echo", "/ws/strict", "/nope"];
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_PAYLOAD: usize = 256;

#[derive(Deserialize, schemars::JsonSchema)]
struct Room {
    room: String,
}
impl Validate for Room {}

#[derive(Deserialize, schemars::JsonSchema)]
struct CloseWith {
    code: u16,
}
impl Validate for CloseWith {}

/// A handler bug on purpose (the core must close 1011).
fn deliberate_panic() {
    std::panic::panic_any(DeliberatePanic)
}

fn limits(idle_secs: u64, slow: u16) -> Limits {
    Limits::default()
        .idle_timeout(Duration::from_secs(idle_secs))
        .auth_timeout(AUTH_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .max_topics_per_conn(3)
        .slow_consumer_code(slow)
}

/// `/ws/chat`: authenticated, sync and async handlers, topics, hooks.
fn chat() -> Route<String, serde_json::Value, BTreeSet<String>> {
    let auth = TokenAuth::new_sync(|t: String| {
        if t == "deny" {
            return Err(AuthRejection::forbidden("denied"));
        }
        t.starts_with("tok-")
            .then_some(t)
            .ok_or(AuthRejection::unauthorized("bad token"))
    });
    Route::new("/ws/chat")
        .authenticate(auth)
        .data::<BTreeSet<String>>()
        .limits(limits(10, 1013))
        .on_connect(|ws, _| ws.subscribe("lobby").map(drop))
        .on("join", |ws, ctx, r: Room| -> HandlerResultOf {
            if ws.subscribe(&r.room)? {
                ws.publish(&r.room, &json!({"joined": ctx.user}))?;
                ctx.data.insert(r.room);
            }
            Ok(())
        })
        .on("leave", |ws, ctx, r: Room| {
            ws.unsubscribe(&r.room);
            ctx.data.remove(&r.room);
        })
        .on("say", |ws, ctx, r: Room| {
            ws.publish(&r.room, &json!({"from": ctx.user})).map(drop)
        })
        .on("close", |ws, _, c: CloseWith| ws.close(c.code, "asked to"))
        .on("panic", |_, _, (): ()| -> () { deliberate_panic() })
        .on("fail", |_, _, (): ()| -> HandlerResultOf {
            Err("refused".into())
        })
        .on_async("async_join", |ws, _, r: Room| async move {
            ws.subscribe(&r.room)
        })
        .on_async("async_leave", |ws, _, r: Room| async move {
            ws.unsubscribe(&r.room)
        })
        .on_async("async_say", |ws, ctx, r: Room| async move {
            ws.publish(&r.room, &json!({"async_from": ctx.user}))
        })
        .on_async("async_close", |ws, _, c: CloseWith| async move {
            ws.close(c.code, "async close")
        })
        .on_binary(|ws, _, data| ws.send_binary(data))
        .on_close(|ws, ctx, _, _| {
            for room in std::mem::take(&mut ctx.data) {
                let _ = ws.publish(&room, &json!({"left": ctx.user}));
            }
        })
}

fn server(backplane: bool) -> Server {
    let echo = Route::new("/ws/echo")
        .limits(limits(20, 1008))
        .on_text(|ws, _, text: &str| ws.send_text(text.to_uppercase()));
    let strict = Route::new("/ws/strict")
        .origins(OriginPolicy::allow(["https://app.example"]).deny_missing())
        .limits(limits(6, 1008))
        .on("ping", |ws, _, (): ()| ws.send(&json!({"type": "pong"})))
        .on_error(|ws, _, e| {
            // A faulty error hook: the core must close with 1011, not crash.
            if e.code == ErrorCode::UnknownType {
                deliberate_panic();
            }
            let _ = ws.send(&json!({"type": "error", "code": e.code.as_str()}));
        });
    Server::builder()
        .backplane_events(backplane)
        .route(chat())
        .route(echo)
        .route(strict)
        .build()
        .expect("valid routes")
}

#[derive(Arbitrary, Debug)]
enum Op {
    Upgrade {
        path: u8,
        token: u8,
        origin: u8,
        key: u8,
        open_now: bool,
    },
    CompleteAuth(u8, bool),
    /// The adapter gives up on a verifier and never reports back.
    AbandonAuth(u8),
    Open(u8),
    Text(u8, u8, u8),
    RawText(u8, String),
    Binary(u8, Vec<u8>),
    Activity(u8),
    /// Seconds (fractions of them too) to move the clock.
    Advance(u8),
    SlowConsumer(u8),
    AdapterClose(u8, u8),
    PeerGone(u8),
    FinishCloses,
    Shutdown,
    HandleSend(u8),
    HandlePublish(u8),
    HandleClose(u8),
    Commands,
    PollTasks,
    RemotePublish(u8),
    AutoClose(bool),
    AutoPong(bool),
}

impl Op {
    /// One line of the text form; numbers are indexes into the tables above.
    fn parse(name: &str, a: &[String]) -> Option<Op> {
        let (x, y, z) = (arg(a, 0), arg(a, 1), arg(a, 2));
        let rest = || a.get(1..).map(|r| r.join(" ")).unwrap_or_default();
        Some(match name {
            "upgrade" => Op::Upgrade {
                path: x,
                token: y,
                origin: z,
                key: arg(a, 3),
                open_now: arg(a, 4) != 0,
            },
            "complete" => Op::CompleteAuth(x, y != 0),
            "abandon" => Op::AbandonAuth(x),
            "open" => Op::Open(x),
            "text" => Op::Text(x, y, z),
            "raw" => Op::RawText(x, rest()),
            "bin" => Op::Binary(x, rest().into_bytes()),
            "activity" => Op::Activity(x),
            "advance" => Op::Advance(x),
            "slow" => Op::SlowConsumer(x),
            "aclose" => Op::AdapterClose(x, y),
            "gone" => Op::PeerGone(x),
            "finish" => Op::FinishCloses,
            "shutdown" => Op::Shutdown,
            "hsend" => Op::HandleSend(x),
            "hpub" => Op::HandlePublish(x),
            "hclose" => Op::HandleClose(x),
            "commands" => Op::Commands,
            "tasks" => Op::PollTasks,
            "rpub" => Op::RemotePublish(x),
            "autoclose" => Op::AutoClose(x != 0),
            "autopong" => Op::AutoPong(x != 0),
            _ => return None,
        })
    }
}

/// An authentication the adapter is running.
struct InFlight {
    ticket: AuthTicket,
    verify: Option<BoxFuture<Result<AuthedUser, AuthRejection>>>,
    deadline: Instant,
    key: &'static str,
    open_now: bool,
    /// Dropped by `shutdown`: must be refused from now on.
    dropped: bool,
}

struct Run {
    d: Driver,
    conns: Vec<ConnId>,
    routes: std::collections::BTreeMap<ConnId, Kind>,
    auths: Vec<InFlight>,
}

/// Which route a connection is on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Echo,
    Strict,
}

impl Kind {
    fn of(path: &str) -> Kind {
        match path {
            "/ws/chat" => Kind::Chat,
            "/ws/echo" => Kind::Echo,
            _ => Kind::Strict,
        }
    }

    fn slow_code(self) -> u16 {
        if self == Kind::Chat {
            1013
        } else {
            1008
        }
    }
}

/// The close a step must have caused, if the connection was open before it.
fn expect_close(d: &Driver, conn: ConnId, was_open: bool, code: u16) {
    if was_open {
        assert_eq!(d.closes.get(&conn), Some(&code), "close code of {conn:?}");
    }
}

impl Run {
    fn conn(&self, i: u8) -> Option<ConnId> {
        (!self.conns.is_empty()).then(|| self.conns[usize::from(i) % self.conns.len()])
    }

    /// Open (`handle_open` done) and not closing.
    fn open(&self, c: ConnId) -> bool {
        self.d
            .peers
            .get(&c)
            .is_some_and(|p| p.opened && p.close.is_none())
    }

    fn admit(&mut self, decision: Decision, kind: Kind, key: &str, open_now: bool) {
        let Decision::Accept(a) = decision else {
            return;
        };
        assert_eq!(
            a.response.headers()["sec-websocket-accept"],
            wskit::accept_key(key.as_bytes()),
            "accepted with another request's key"
        );
        self.d.admit(&a);
        self.conns.push(a.conn);
        self.routes.insert(a.conn, kind);
        if open_now {
            self.d.open(a.conn);
        }
    }

    fn pending_alive(&self) -> usize {
        self.auths
            .iter()
            .filter(|a| !a.dropped && a.deadline > self.d.now)
            .count()
    }

    fn step(&mut self, op: Op) {
        let now = self.d.now;
        match op {
            Op::Upgrade {
                path,
                token,
                origin,
                key,
                open_now,
            } => {
                let path = PATHS[usize::from(path) % PATHS.len()];
                let token = TOKENS[usize::from(token) % TOKENS.len()];
                let key = KEYS[usize::from(key) % KEYS.len()];
                let uri = format!("{path}?token={token}");
                let mut b = wskit::testing::upgrade_request(&uri);
                match origin % 3 {
                    0 => {}
                    1 => b = b.header("origin", "https://app.example"),
                    _ => b = b.header("origin", "https://evil.example"),
                }
                let mut req = b.body(()).expect("request");
                req.headers_mut()
                    .insert("sec-websocket-key", key.parse().expect("header"));
                let decision = self.d.server.handle_upgrade(now, &req, None);
                let want = match (path, token) {
                    ("/nope", _) => Some(404),
                    ("/ws/chat", "") => Some(401),
                    ("/ws/chat", _) => None,
                    ("/ws/strict", _) if origin % 3 != 1 => Some(403),
                    _ => Some(101),
                };
                match decision {
                    Decision::Reject(r) => assert_eq!(Some(r.status.as_u16()), want, "{uri}"),
                    Decision::Authenticate(p) => {
                        assert_eq!(want, None, "{uri}");
                        self.auths.push(InFlight {
                            ticket: p.ticket,
                            verify: Some(p.verify),
                            deadline: now + AUTH_TIMEOUT,
                            key,
                            open_now,
                            dropped: false,
                        });
                    }
                    accept @ Decision::Accept(_) => {
                        assert_eq!(want, Some(101), "{uri}");
                        self.admit(accept, Kind::of(path), key, open_now);
                    }
                }
            }
            Op::CompleteAuth(i, drop_after) => {
                let Some(n) = (!self.auths.is_empty()).then_some(self.auths.len()) else {
                    return;
                };
                let i = usize::from(i) % n;
                if known::SHUTDOWN_RESETS_TICKETS && self.auths[i].dropped {
                    return;
                }
                let Some(mut fut) = self.auths[i].verify.take() else {
                    return;
                };
                let result = block_on(fut.as_mut()).expect("sync verifier");
                let want = match &result {
                    _ if self.auths[i].dropped || self.auths[i].deadline <= now => 401,
                    Ok(_) => 101,
                    Err(r) => r.status.as_u16(),
                };
                let decision = self
                    .d
                    .server
                    .complete_auth(now, self.auths[i].ticket, result);
                let a = &mut self.auths[i];
                a.dropped = true;
                let (key, open_now) = (a.key, a.open_now);
                match decision {
                    Decision::Reject(r) => assert_eq!(r.status.as_u16(), want),
                    Decision::Accept(_) => {
                        assert_eq!(want, 101, "a dead ticket was honoured");
                        self.admit(decision, Kind::Chat, key, open_now);
                    }
                    Decision::Authenticate(_) => panic!("asked to authenticate twice"),
                }
                if drop_after {
                    self.auths.remove(i);
                }
            }
            Op::AbandonAuth(i) => {
                let n = self.auths.len();
                if let Some(a) = self.auths.get_mut(usize::from(i) % n.max(1)) {
                    a.verify = None;
                }
            }
            Op::Open(c) => {
                if let Some(c) = self.conn(c) {
                    self.d.open(c);
                }
            }
            Op::Text(c, kind, arg) => {
                let Some(c) = self.conn(c) else { return };
                let was_open = self.open(c);
                let room = ROOMS[usize::from(arg) % ROOMS.len()];
                let code = [1000, 3000, 4000, 4999][usize::from(arg) % 4];
                let mut kind = kind % 14;
                if known::STALE_ID_REACHES_NEW_OCCUPANT && kind == 7 {
                    kind = 6; // no async unsubscribe while that bug is open
                }
                let text = match kind {
                    0 => json!({"type": "join", "room": room}).to_string(),
                    1 => json!({"type": "leave", "room": room}).to_string(),
                    2 => json!({"type": "say", "room": room}).to_string(),
                    3 => json!({"type": "close", "code": code}).to_string(),
                    4 => r#"{"type":"panic"}"#.to_owned(),
                    5 => r#"{"type":"fail"}"#.to_owned(),
                    6 => json!({"type": "async_join", "room": room}).to_string(),
                    7 => json!({"type": "async_leave", "room": room}).to_string(),
                    8 => json!({"type": "async_say", "room": room}).to_string(),
                    9 => json!({"type": "async_close", "code": code}).to_string(),
                    10 => "not json".to_owned(),
                    11 => "x".repeat(MAX_PAYLOAD + 1),
                    12 => r#"{"type":"ping"}"#.to_owned(),
                    _ => r#"{"type":"nope"}"#.to_owned(),
                };
                self.d.text(c, &text);
                // SPEC §4: oversize 1009, handler panic 1011 (the strict route's error hook
                // panics on unknown types), or the code the handler asked for.
                let closes = match (self.routes[&c], kind) {
                    (_, 11) => Some(1009),
                    (Kind::Chat, 3) => Some(code),
                    (Kind::Chat, 4) => Some(1011),
                    (Kind::Strict, 10 | 12) | (Kind::Chat | Kind::Echo, _) => None,
                    (Kind::Strict, _) => Some(1011),
                };
                if let Some(code) = closes {
                    expect_close(&self.d, c, was_open, code);
                }
            }
            Op::RawText(c, text) => {
                if let Some(c) = self.conn(c) {
                    self.d.text(c, &text);
                }
            }
            Op::Binary(c, data) => {
                let Some(c) = self.conn(c) else { return };
                let was_open = self.open(c);
                let chat = self.routes[&c] == Kind::Chat;
                let len = data.len();
                self.d.binary(c, Bytes::from(data));
                if len > MAX_PAYLOAD {
                    expect_close(&self.d, c, was_open, 1009);
                } else if !chat {
                    expect_close(&self.d, c, was_open, 1003);
                }
            }
            Op::Activity(c) => {
                if let Some(c) = self.conn(c) {
                    self.d.activity(c);
                }
            }
            Op::Advance(n) => {
                // Mostly sub-second steps, sometimes long jumps past every timeout.
                let by = match n {
                    0..=199 => Duration::from_millis(u64::from(n) * 50),
                    _ => Duration::from_secs(u64::from(n - 199)),
                };
                self.d.advance(by);
            }
            Op::SlowConsumer(c) => {
                let Some(c) = self.conn(c) else { return };
                let was_live = self.d.peers.get(&c).is_some_and(|p| p.close.is_none());
                self.d.server.handle_slow_consumer(now, c);
                self.d.drain();
                expect_close(&self.d, c, was_live, self.routes[&c].slow_code());
                assert!(self.d.server.topics_of(c).is_empty() || !self.d.peers.contains_key(&c));
            }
            Op::AdapterClose(c, code) => {
                let Some(c) = self.conn(c) else { return };
                let was_live = self.d.peers.get(&c).is_some_and(|p| p.close.is_none());
                let code = [1002, 1007, 1009][usize::from(code) % 3];
                self.d
                    .server
                    .close(c, code, "adapter detected a protocol error");
                self.d.drain();
                expect_close(&self.d, c, was_live, code);
            }
            Op::PeerGone(c) => {
                if let Some(c) = self.conn(c) {
                    self.d.closed(c, 1006);
                }
            }
            Op::FinishCloses => self.d.finish_closes(),
            Op::Shutdown => {
                let live: Vec<ConnId> = self
                    .d
                    .peers
                    .iter()
                    .filter(|(_, p)| p.close.is_none())
                    .map(|(c, _)| *c)
                    .collect();
                self.d.server.shutdown(now);
                self.d.drain();
                for c in live {
                    expect_close(&self.d, c, true, 1001);
                }
                for a in &mut self.auths {
                    a.dropped = true;
                }
                assert_eq!(self.d.server.pending_auth_count(), 0);
            }
            Op::HandleSend(c) => {
                if let Some(c) = self.conn(c) {
                    let h = self.d.server.handle();
                    h.send(c, &json!({"direct": true})).expect("serializable");
                }
            }
            Op::HandlePublish(r) => {
                let room = ROOMS[usize::from(r) % ROOMS.len()];
                let h = self.d.server.handle();
                h.publish(room, &json!({"server": true}))
                    .expect("serializable");
            }
            Op::HandleClose(c) => {
                if let Some(c) = self.conn(c) {
                    self.d.server.handle().close(c, 4001, "from a handle");
                }
            }
            Op::Commands => self.d.commands(),
            Op::PollTasks => self.d.poll_tasks(),
            Op::RemotePublish(r) => {
                let room = ROOMS[usize::from(r) % ROOMS.len()];
                let n = self.d.server.subscriber_count(room);
                let message = wskit::Message::text("{\"remote\":true}");
                assert_eq!(self.d.server.handle_remote_publish(room, message), n);
                self.d.drain();
            }
            Op::AutoClose(on) => {
                self.d.auto_close = on;
                if on {
                    self.d.finish_closes();
                }
            }
            Op::AutoPong(on) => self.d.auto_pong = on,
        }
        self.d.seen.clear();
        self.d.check_state();
        assert_eq!(
            self.d.server.pending_auth_count(),
            self.pending_alive(),
            "pending_auth_count"
        );
    }

    /// Everyone leaves, async work drains, the clock passes every deadline: nothing is left.
    fn wind_down(&mut self) {
        self.d.auto_close = true;
        self.d.finish_closes();
        let live: Vec<ConnId> = self.d.peers.keys().copied().collect();
        for c in live {
            self.d.closed(c, 1001);
        }
        for _ in 0..4 {
            self.d.poll_tasks();
            self.d.commands();
        }
        assert!(self.d.tasks.is_empty(), "tasks never finished");
        self.d.advance(AUTH_TIMEOUT + Duration::from_secs(60));
        self.d.check_state();
        self.d.check_empty();
        assert_eq!(
            self.d.server.pending_auth_count(),
            0,
            "authentications left"
        );
    }
}

fn new_run(backplane: bool, auto_close: bool) -> Run {
    let mut d = Driver::new(server(backplane));
    d.auto_close = auto_close;
    Run {
        d,
        conns: Vec::new(),
        routes: Default::default(),
        auths: Vec::new(),
    }
}

/// The target. Text form: lines `backplane` and `manualclose` set options; others are ops.
pub fn run(data: &[u8]) {
    if let Some(lines) = script(data) {
        let has = |flag: &str| lines.iter().any(|(op, _)| op == flag);
        let mut run = new_run(has("backplane"), !has("manualclose"));
        for (name, args) in lines.iter().take(300) {
            if let Some(op) = Op::parse(name, args) {
                run.step(op);
            }
        }
        return run.wind_down();
    }
    let mut u = Unstructured::new(data);
    let backplane = bool::arbitrary(&mut u).unwrap_or(false);
    let mut run = new_run(backplane, bool::arbitrary(&mut u).unwrap_or(true));
    let mut steps = 0;
    while !u.is_empty() && steps < 300 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        steps += 1;
        run.step(op);
    }
    run.wind_down();
}
