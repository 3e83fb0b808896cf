//! Target `topics`: arbitrary subscribe/unsubscribe/publish/close sequences over a few
//! connections and topics, driven through real handlers (sync and async), checked after every
//! step against a model (`BTreeMap<topic, BTreeSet<conn>>`).
//!
//! Checked after each step: the exact outputs (who receives each publish — the publisher
//! excluded unless it asked otherwise —, error envelopes for refused subscriptions, backplane
//! edges), `subscribers`, `subscriber_count`, `topic_count`, `topics`, `topics_of` of every
//! connection, and that everything is back to zero once all connections are gone.

use super::driver::{Driver, Seen};
use super::{arg, known, script};
use arbitrary::{Arbitrary, Unstructured};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use wskit::{ConnId, HandlerResultOf, Limits, Route, Server, Validate};

const MAX_TOPICS: usize = 3;
const MAX_TOPIC_LEN: usize = 8;

/// Topic names: ordinary ones, an empty one, and ones around the length limit (in bytes).
const TOPICS: &[&str] = &["a", "b", "c", "room:1", "", "xxxxxxxxx", "éééé", "ééééé"];

#[derive(Deserialize, schemars::JsonSchema)]
struct Topic {
    topic: String,
    #[serde(default)]
    serial: u64,
}

impl Validate for Topic {}

fn server(backplane: bool) -> Server {
    let route = Route::new("/ws")
        .data::<BTreeSet<String>>()
        .limits(
            Limits::default()
                .max_topics_per_conn(MAX_TOPICS)
                .max_topic_len(MAX_TOPIC_LEN),
        )
        .on("sub", |ws, ctx, t: Topic| -> HandlerResultOf {
            if ws.subscribe(&t.topic)? {
                ctx.data.insert(t.topic);
            }
            Ok(())
        })
        .on("unsub", |ws, ctx, t: Topic| {
            ws.unsubscribe(&t.topic);
            ctx.data.remove(&t.topic);
        })
        .on("pub", |ws, _, t: Topic| {
            ws.publish(&t.topic, &json!({"on": t.topic, "serial": t.serial}))
                .map(drop)
        })
        .on("pub_all", |ws, _, t: Topic| {
            let msg = json!({"on": t.topic, "serial": t.serial});
            ws.publish_including_self(&t.topic, &msg).map(drop)
        })
        .on("quit", |ws, _, (): ()| ws.close(4000, "bye"))
        .on_async("async_sub", |ws, _, t: Topic| async move {
            ws.subscribe(&t.topic);
        })
        .on_async("async_unsub", |ws, _, t: Topic| async move {
            ws.unsubscribe(&t.topic);
        })
        .on_close(|ws, ctx, _, _| {
            for topic in std::mem::take(&mut ctx.data) {
                let _ = ws.publish(&topic, &json!({"left": topic}));
            }
        });
    Server::builder()
        .backplane_events(backplane)
        .route(route)
        .build()
        .expect("valid route")
}

#[derive(Arbitrary, Debug)]
enum Op {
    Connect,
    Sub(u8, u8),
    Unsub(u8, u8),
    Pub(u8, u8),
    PubAll(u8, u8),
    /// `ServerHandle::publish`: reaches every subscriber.
    HandlePub(u8),
    /// `Server::handle_remote_publish`: reaches every subscriber, is not forwarded.
    RemotePub(u8),
    /// The handler closes its own connection.
    Quit(u8),
    /// The peer vanishes (`handle_closed` without a `Close` output).
    Disconnect(u8),
    AsyncSub(u8, u8),
    AsyncUnsub(u8, u8),
    /// Run the spawned async handlers, then apply the commands they queued.
    RunTasks,
}

impl Op {
    /// `connect`, `sub C T`, `unsub C T`, `pub C T`, `puball C T`, `hpub T`, `rpub T`,
    /// `quit C`, `gone C`, `asub C T`, `aunsub C T`, `run` (C and T are indexes).
    fn parse(name: &str, a: &[String]) -> Option<Op> {
        let (x, y) = (arg(a, 0), arg(a, 1));
        Some(match name {
            "connect" => Op::Connect,
            "sub" => Op::Sub(x, y),
            "unsub" => Op::Unsub(x, y),
            "pub" => Op::Pub(x, y),
            "puball" => Op::PubAll(x, y),
            "hpub" => Op::HandlePub(x),
            "rpub" => Op::RemotePub(x),
            "quit" => Op::Quit(x),
            "gone" => Op::Disconnect(x),
            "asub" => Op::AsyncSub(x, y),
            "aunsub" => Op::AsyncUnsub(x, y),
            "run" => Op::RunTasks,
            _ => return None,
        })
    }
}

/// A normalized output, comparable with the model's prediction.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Error(ConnId),
    Broadcast(Vec<ConnId>, String),
    Close(ConnId, u16),
    Active(String),
    Inactive(String),
    Published(String),
}

/// Normalizes outputs: sorted recipient lists, and runs of `Inactive` sorted (a connection
/// leaves its topics in an unspecified order).
fn normalize(mut evs: Vec<Ev>) -> Vec<Ev> {
    let mut i = 0;
    while i < evs.len() {
        let run = evs[i..]
            .iter()
            .take_while(|e| matches!(e, Ev::Inactive(_)))
            .count();
        evs[i..i + run].sort();
        i += run.max(1);
    }
    evs
}

fn observed(seen: Vec<Seen>) -> Vec<Ev> {
    let evs = seen
        .into_iter()
        .map(|s| match s {
            Seen::Send { conn, message } => {
                let v: Value = serde_json::from_slice(message.payload()).expect("JSON");
                assert_eq!(
                    (v["type"].as_str(), v["code"].as_str()),
                    (Some("error"), Some("handler_error")),
                    "{v}"
                );
                Ev::Error(conn)
            }
            Seen::Broadcast { mut conns, message } => {
                conns.sort();
                let v: Value = serde_json::from_slice(message.payload()).expect("JSON");
                Ev::Broadcast(conns, v.to_string())
            }
            Seen::Close { conn, code } => Ev::Close(conn, code),
            Seen::TopicActive { topic } => Ev::Active(topic),
            Seen::TopicInactive { topic } => Ev::Inactive(topic),
            Seen::Published { topic } => Ev::Published(topic),
            Seen::Ping { conn } => panic!("unexpected ping to {conn:?}"),
        })
        .collect();
    normalize(evs)
}

/// The model: who holds what, and what each step must produce.
struct Model {
    backplane: bool,
    subs: BTreeMap<String, BTreeSet<ConnId>>,
    /// The route's per-connection data: topics joined through the sync handler.
    data: BTreeMap<ConnId, BTreeSet<String>>,
    /// Async requests spawned and not yet run: (conn, subscribe?, topic).
    queued: Vec<(ConnId, bool, String)>,
    expected: Vec<Ev>,
}

impl Model {
    fn live(&self, c: ConnId) -> bool {
        self.data.contains_key(&c)
    }

    fn held_by(&self, c: ConnId) -> usize {
        self.subs.values().filter(|s| s.contains(&c)).count()
    }

    /// `Ok(true)` subscribed, `Ok(false)` already was, `Err` refused (an error envelope).
    fn subscribe(&mut self, c: ConnId, topic: &str) -> Result<bool, ()> {
        if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
            return Err(());
        }
        if self.subs.get(topic).is_some_and(|s| s.contains(&c)) {
            return Ok(false);
        }
        if self.held_by(c) >= MAX_TOPICS {
            return Err(());
        }
        let set = self.subs.entry(topic.to_owned()).or_default();
        if set.is_empty() && self.backplane {
            self.expected.push(Ev::Active(topic.to_owned()));
        }
        set.insert(c);
        Ok(true)
    }

    fn unsubscribe(&mut self, c: ConnId, topic: &str) {
        let Some(set) = self.subs.get_mut(topic) else {
            return;
        };
        if set.remove(&c) && set.is_empty() {
            self.subs.remove(topic);
            if self.backplane {
                self.expected.push(Ev::Inactive(topic.to_owned()));
            }
        }
    }

    fn leave_all(&mut self, c: ConnId) {
        let held: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.contains(&c))
            .map(|(t, _)| t.clone())
            .collect();
        for t in held {
            self.unsubscribe(c, &t);
        }
    }

    fn publish(&mut self, topic: &str, exclude: Option<ConnId>, msg: &Value, forward: bool) {
        if forward && self.backplane {
            self.expected.push(Ev::Published(topic.to_owned()));
        }
        let to: Vec<ConnId> = self
            .subs
            .get(topic)
            .into_iter()
            .flatten()
            .copied()
            .filter(|c| Some(*c) != exclude)
            .collect();
        if !to.is_empty() {
            self.expected.push(Ev::Broadcast(to, msg.to_string()));
        }
    }

    /// The connection is gone: `on_close` publishes "left" to the rooms it joined.
    fn closed(&mut self, c: ConnId) {
        self.leave_all(c);
        for topic in self.data.remove(&c).unwrap_or_default() {
            self.publish(&topic, Some(c), &json!({ "left": topic }), true);
        }
    }
}

struct Run {
    d: Driver,
    m: Model,
    /// Every connection ever opened, closed ones included (stale ids are sent to on purpose).
    conns: Vec<ConnId>,
}

impl Run {
    fn conn(&self, i: u8) -> Option<ConnId> {
        (!self.conns.is_empty()).then(|| self.conns[usize::from(i) % self.conns.len()])
    }

    fn send(&mut self, c: ConnId, kind: &str, topic: &str, serial: u64) {
        let text = json!({"type": kind, "topic": topic, "serial": serial}).to_string();
        self.d.text(c, &text);
    }

    fn step(&mut self, op: Op, serial: u64) {
        let topic = |i: u8| TOPICS[usize::from(i) % TOPICS.len()];
        match op {
            Op::Connect => {
                if self.m.data.len() < 6 {
                    let req = wskit::testing::upgrade_request("/ws")
                        .body(())
                        .expect("req");
                    let c = self.d.connect(&req).expect("public route");
                    self.m.data.insert(c, BTreeSet::new());
                    self.conns.push(c);
                }
            }
            Op::Sub(c, t) | Op::Unsub(c, t) | Op::Pub(c, t) | Op::PubAll(c, t) => {
                let Some(c) = self.conn(c) else { return };
                let t = topic(t);
                let (kind, live) = match op {
                    Op::Sub(..) => ("sub", self.m.live(c)),
                    Op::Unsub(..) => ("unsub", self.m.live(c)),
                    Op::Pub(..) => ("pub", self.m.live(c)),
                    _ => ("pub_all", self.m.live(c)),
                };
                if live {
                    let msg = json!({"on": t, "serial": serial});
                    match kind {
                        "sub" => match self.m.subscribe(c, t) {
                            Ok(true) => {
                                self.m.data.get_mut(&c).expect("live").insert(t.into());
                            }
                            Ok(false) => {}
                            Err(()) => self.m.expected.push(Ev::Error(c)),
                        },
                        "unsub" => {
                            self.m.unsubscribe(c, t);
                            self.m.data.get_mut(&c).expect("live").remove(t);
                        }
                        "pub" => self.m.publish(t, Some(c), &msg, true),
                        _ => self.m.publish(t, None, &msg, true),
                    }
                }
                self.send(c, kind, t, serial);
            }
            Op::HandlePub(t) => {
                let t = topic(t);
                let msg = json!({"on": t, "serial": serial});
                self.m.publish(t, None, &msg, true);
                self.d
                    .server
                    .handle()
                    .publish(t, &msg)
                    .expect("serializable");
                self.d.commands();
            }
            Op::RemotePub(t) => {
                let t = topic(t);
                let msg = json!({"on": t, "serial": serial});
                let n = self.m.subs.get(t).map_or(0, BTreeSet::len);
                self.m.publish(t, None, &msg, false);
                let message = wskit::Message::text(msg.to_string());
                assert_eq!(self.d.server.handle_remote_publish(t, message), n);
                self.d.drain();
            }
            Op::Quit(c) => {
                let Some(c) = self.conn(c) else { return };
                self.flush_before_close(c, serial);
                if self.m.live(c) {
                    self.m.leave_all(c);
                    self.m.expected.push(Ev::Close(c, 4000));
                    // The driver reports the close at once; on_close then runs.
                    let data = self.m.data.remove(&c).unwrap_or_default();
                    for topic in data {
                        self.m
                            .publish(&topic, Some(c), &json!({ "left": topic }), true);
                    }
                }
                self.d.text(c, r#"{"type":"quit"}"#);
            }
            Op::Disconnect(c) => {
                let Some(c) = self.conn(c) else { return };
                self.disconnect(c);
            }
            Op::AsyncSub(c, t) | Op::AsyncUnsub(c, t) => {
                let Some(c) = self.conn(c) else { return };
                let t = topic(t);
                let sub = matches!(op, Op::AsyncSub(..));
                if self.m.live(c) {
                    self.m.queued.push((c, sub, t.to_owned()));
                }
                self.send(c, if sub { "async_sub" } else { "async_unsub" }, t, serial);
            }
            Op::RunTasks => {
                for (c, sub, t) in std::mem::take(&mut self.m.queued) {
                    // Commands for a connection that has gone meanwhile are dropped.
                    if !self.m.live(c) {
                        continue;
                    }
                    if sub {
                        if self.m.subscribe(c, &t).is_err() {
                            self.m.expected.push(Ev::Error(c));
                        }
                    } else {
                        self.m.unsubscribe(c, &t);
                    }
                }
                self.d.poll_tasks();
                self.d.commands();
            }
        }
        self.check();
    }

    /// While [`known::STALE_ID_REACHES_NEW_OCCUPANT`] is open, a connection's async work runs
    /// before it closes, so no command outlives its connection.
    fn flush_before_close(&mut self, c: ConnId, serial: u64) {
        if known::STALE_ID_REACHES_NEW_OCCUPANT && self.m.queued.iter().any(|q| q.0 == c) {
            self.step(Op::RunTasks, serial);
        }
    }

    fn disconnect(&mut self, c: ConnId) {
        self.flush_before_close(c, 0);
        if self.m.live(c) {
            self.m.closed(c);
        }
        self.d.closed(c, 1006);
    }

    fn check(&mut self) {
        let expected = normalize(std::mem::take(&mut self.m.expected));
        let got = observed(self.d.take_seen());
        assert_eq!(got, expected, "outputs differ from the model");
        self.d.check_state();
        let s = &self.d.server;
        assert_eq!(s.topic_count(), self.m.subs.len(), "topic_count");
        let names: BTreeSet<String> = s.topics().iter().map(|t| t.to_string()).collect();
        let want: BTreeSet<String> = self.m.subs.keys().cloned().collect();
        assert_eq!(names, want, "topics()");
        for (topic, set) in &self.m.subs {
            let got: BTreeSet<ConnId> = s.subscribers(topic).iter().copied().collect();
            assert_eq!(&got, set, "subscribers({topic:?})");
            assert_eq!(s.subscriber_count(topic), set.len());
        }
        for &c in self.m.data.keys() {
            let got: BTreeSet<String> = s.topics_of(c).iter().map(|t| t.to_string()).collect();
            let want: BTreeSet<String> = self
                .m
                .subs
                .iter()
                .filter(|(_, set)| set.contains(&c))
                .map(|(t, _)| t.clone())
                .collect();
            assert_eq!(got, want, "topics_of({c:?})");
        }
    }
}

fn new_run(backplane: bool) -> Run {
    Run {
        d: Driver::new(server(backplane)),
        m: Model {
            backplane,
            subs: BTreeMap::new(),
            data: BTreeMap::new(),
            queued: Vec::new(),
            expected: Vec::new(),
        },
        conns: Vec::new(),
    }
}

/// Everyone leaves; leftover async work finds its connections gone; nothing is left.
fn wind_down(mut run: Run) {
    let live: Vec<ConnId> = run.m.data.keys().copied().collect();
    for c in live {
        run.disconnect(c);
        run.check();
    }
    run.step(Op::RunTasks, u64::MAX);
    assert!(run.m.data.is_empty() && run.m.subs.is_empty());
    run.d.check_empty();
}

/// The target. Text form: a line `backplane` turns backplane events on; other lines are ops.
pub fn run(data: &[u8]) {
    if let Some(lines) = script(data) {
        let mut run = new_run(lines.iter().any(|(op, _)| op == "backplane"));
        for (serial, (name, args)) in lines.iter().enumerate().take(200) {
            if let Some(op) = Op::parse(name, args) {
                run.step(op, serial as u64);
            }
        }
        return wind_down(run);
    }
    let mut u = Unstructured::new(data);
    let mut run = new_run(bool::arbitrary(&mut u).unwrap_or(false));
    let mut serial = 0;
    while !u.is_empty() && serial < 200 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        serial += 1;
        run.step(op, serial);
    }
    wind_down(run);
}
