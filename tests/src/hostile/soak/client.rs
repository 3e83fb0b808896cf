//! The soak's client process: stable members, publishers and churners, each checking what it
//! receives (see the module above for the rules).

use super::{ClientReport, Options};
use crate::hostile::swarm::{self, field_str, field_u64, AsyncWs};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The name of room `i`.
pub fn room(i: usize) -> String {
    format!("room{i}")
}

/// A small deterministic PRNG (xorshift64*), one per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// State shared by every task of the client process.
#[derive(Default)]
struct Shared {
    report: Mutex<ClientReport>,
    /// Senders that published into each room (they all end with a `last` marker).
    senders: Mutex<HashMap<String, HashSet<String>>>,
    stop: AtomicBool,
}

impl Shared {
    fn fail(&self, what: impl FnOnce(&mut ClientReport) -> &mut u64, sample: String) {
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
        *what(&mut r) += 1;
        if r.samples.len() < 20 {
            r.samples.push(sample);
        }
    }
    fn count(&self, what: impl FnOnce(&mut ClientReport) -> &mut u64, n: u64) {
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
        *what(&mut r) += n;
    }
    fn publishes_to(&self, room: &str, sender: &str) {
        let mut s = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        s.entry(room.to_owned())
            .or_default()
            .insert(sender.to_owned());
    }
}

/// Per-(sender, room) sequence tracking of one connection.
#[derive(Default)]
struct Streams {
    /// (room, sender) -> (next expected seq, ended by `last`).
    next: HashMap<(String, String), (u64, bool)>,
    /// Rooms this connection left (anything later from them is wrong).
    left: HashSet<String>,
}

impl Streams {
    /// Checks one published message. `strict`: the stream must start at 0 (stable clients).
    fn check(&mut self, text: &str, strict: bool, who: &str, shared: &Shared) {
        let (Some(room), Some(from), Some(seq)) = (
            field_str(text, "room"),
            field_str(text, "from"),
            field_u64(text, "seq"),
        ) else {
            shared.fail(
                |r| &mut r.unexpected_closes,
                format!("{who}: unexpected {text:.120}"),
            );
            return;
        };
        shared.count(|r| &mut r.received, 1);
        if self.left.contains(room) {
            shared.fail(|r| &mut r.after_end, format!("{who}: {room} after leaving"));
            return;
        }
        let last = field_str(text, "pad") == Some("last");
        let key = (room.to_owned(), from.to_owned());
        let entry = self
            .next
            .entry(key)
            .or_insert((if strict { 0 } else { seq }, false));
        if entry.1 {
            shared.fail(
                |r| &mut r.after_end,
                format!("{who}: {from}/{room} after last"),
            );
        } else if seq == entry.0 {
            entry.0 += 1;
        } else if seq > entry.0 {
            let gap = seq - entry.0;
            shared.fail(
                |r| &mut r.lost,
                format!("{who}: {from}/{room} expected {} got {seq}", entry.0),
            );
            shared.count(|r| &mut r.lost, gap - 1);
            entry.0 = seq + 1;
        } else if seq + 1 == entry.0 {
            shared.fail(
                |r| &mut r.duplicated,
                format!("{who}: {from}/{room} {seq} twice"),
            );
        } else {
            shared.fail(
                |r| &mut r.reordered,
                format!("{who}: {from}/{room} {seq} after {}", entry.0 - 1),
            );
        }
        entry.1 |= last;
    }
}

async fn open(addr: SocketAddr, shared: &Shared) -> Option<AsyncWs> {
    for _ in 0..5 {
        match swarm::connect(addr, "/h/json").await {
            Ok(mut ws) => {
                swarm::next_json(&mut ws).await; // welcome
                shared.count(|r| &mut r.connects, 1);
                return Some(ws);
            }
            Err(e) => {
                shared.fail(|r| &mut r.connect_errors, format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    None
}

/// Sends `join` and reads until `joined`, checking anything published meanwhile.
async fn join(ws: &mut AsyncWs, room: &str, streams: &mut Streams, who: &str, shared: &Shared) {
    swarm::send_json(ws, &json!({"type": "join", "room": room}))
        .await
        .expect("send join");
    await_ack(ws, "joined", streams, false, who, shared).await;
}

/// Reads until a message of type `ack` (checking publishes on the way); false if the
/// connection ended.
async fn await_ack(
    ws: &mut AsyncWs,
    ack: &str,
    streams: &mut Streams,
    strict: bool,
    who: &str,
    shared: &Shared,
) -> bool {
    loop {
        match swarm::next_text(ws).await {
            Some(Ok(t)) if field_str(&t, "type") == Some(ack) => return true,
            Some(Ok(t)) => streams.check(&t, strict, who, shared),
            other => {
                shared.fail(|r| &mut r.unexpected_closes, format!("{who}: {other:?}"));
                return false;
            }
        }
    }
}

/// A stable member of two rooms: joins before publishing starts, reads until the end, then
/// checks every stream reached its `last` marker.
async fn stable(
    addr: SocketAddr,
    i: usize,
    rooms: usize,
    shared: Arc<Shared>,
    joined: tokio::sync::oneshot::Sender<()>,
) {
    let who = format!("stable{i}");
    let Some(mut ws) = open(addr, &shared).await else {
        return;
    };
    let mut streams = Streams::default();
    let mine = [room(i % rooms), room((i + 1) % rooms)];
    for r in &mine {
        join(&mut ws, r, &mut streams, &who, &shared).await;
    }
    // Joined: publishing may start. Read until the senders are done, then until every stream
    // is complete (bounded).
    let _ = joined.send(());
    let complete = |streams: &Streams| {
        let senders = shared.senders.lock().unwrap_or_else(|e| e.into_inner());
        mine.iter().all(|r| {
            let mut expected: Vec<&String> = senders
                .get(r)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            let server = String::from("server");
            expected.push(&server);
            expected.into_iter().all(|s| {
                streams
                    .next
                    .get(&(r.clone(), s.clone()))
                    .is_some_and(|(_, ended)| *ended)
            })
        })
    };
    let mut deadline: Option<Instant> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            let d = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(15));
            if complete(&streams) || Instant::now() > d {
                break;
            }
        }
        match tokio::time::timeout(Duration::from_millis(200), swarm::next_text(&mut ws)).await {
            Err(_) => {}
            Ok(Some(Ok(t))) => streams.check(&t, true, &who, &shared),
            Ok(other) => {
                shared.fail(|r| &mut r.unexpected_closes, format!("{who}: {other:?}"));
                return;
            }
        }
    }
    let senders = shared
        .senders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for r in &mine {
        let mut expected: Vec<String> = senders
            .get(r)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        expected.push("server".into());
        for s in expected {
            if !streams
                .next
                .get(&(r.clone(), s.clone()))
                .is_some_and(|(_, e)| *e)
            {
                shared.fail(
                    |rep| &mut rep.incomplete,
                    format!("{who}: {s}/{r} incomplete"),
                );
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Publishes `count` messages (the last one marked) from `sender` into `room`, starting at
/// `*seq`.
async fn publish(
    ws: &mut AsyncWs,
    sender: &str,
    room: &str,
    seq: &mut u64,
    last: bool,
    shared: &Shared,
) {
    if *seq == 0 {
        shared.publishes_to(room, sender);
    }
    let mut msg = json!({"type": "publish", "room": room, "from": sender, "seq": *seq});
    if last {
        msg["pad"] = "last".into();
    }
    swarm::send_json(ws, &msg).await.expect("send publish");
    *seq += 1;
    shared.count(|r| &mut r.published, 1);
}

/// A dedicated publisher: every interval, one message into the next room (its own sequence
/// per room); `last` markers into every room it used when the churn stops.
async fn publisher(addr: SocketAddr, i: usize, options: Options, shared: Arc<Shared>) {
    let sender = format!("pub{i}");
    let Some(mut ws) = open(addr, &shared).await else {
        return;
    };
    let rooms = options.rooms();
    let mut seqs = vec![0u64; rooms];
    let mut k = i;
    let mut tick = tokio::time::interval(Duration::from_millis(options.interval_ms));
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let r = k % rooms;
        publish(&mut ws, &sender, &room(r), &mut seqs[r], false, &shared).await;
        k += 1;
    }
    for (r, seq) in seqs.iter_mut().enumerate() {
        if *seq > 0 {
            publish(&mut ws, &sender, &room(r), seq, true, &shared).await;
        }
    }
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// A churner: connect, join 1-3 rooms, maybe publish, read for a while, then leave and close
/// cleanly (or vanish with a reset), again and again until the churn stops.
async fn churner(addr: SocketAddr, i: usize, options: Options, shared: Arc<Shared>) {
    let mut rng = Rng::new(i as u64 + 1);
    let rooms = options.rooms() as u64;
    let mut generation = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        generation += 1;
        let who = format!("churn{i}-{generation}");
        let Some(mut ws) = open(addr, &shared).await else {
            return;
        };
        let mut streams = Streams::default();
        let mut mine: Vec<String> = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let r = room(rng.below(rooms) as usize);
            if !mine.contains(&r) {
                join(&mut ws, &r, &mut streams, &who, &shared).await;
                mine.push(r);
            }
        }
        let publishes = rng.below(10) == 0;
        let vanish = !publishes && rng.below(10) == 0;
        let mut seqs: HashMap<String, u64> = HashMap::new();
        let dwell = Duration::from_millis(200 + rng.below(1800));
        let until = Instant::now() + dwell;
        let mut next_publish = Instant::now();
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            if publishes && Instant::now() >= next_publish {
                let r = mine[rng.below(mine.len() as u64) as usize].clone();
                let seq = seqs.entry(r.clone()).or_default();
                publish(&mut ws, &who, &r, seq, false, &shared).await;
                next_publish = Instant::now() + Duration::from_millis(options.interval_ms * 10);
            }
            match tokio::time::timeout(Duration::from_millis(50), swarm::next_text(&mut ws)).await {
                Err(_) => {}
                Ok(Some(Ok(t))) => streams.check(&t, false, &who, &shared),
                Ok(other) => {
                    shared.fail(|r| &mut r.unexpected_closes, format!("{who}: {other:?}"));
                    break;
                }
            }
        }
        if vanish {
            let _ = socket2::SockRef::from(ws.get_ref()).set_linger(Some(Duration::ZERO));
            drop(ws);
            shared.count(|r| &mut r.vanished, 1);
            continue;
        }
        for (r, seq) in seqs.iter_mut() {
            publish(&mut ws, &who, r, seq, true, &shared).await;
        }
        // Leave half the rooms explicitly (nothing of them may arrive after `left`).
        for r in mine.iter().take(mine.len() / 2 + 1) {
            swarm::send_json(&mut ws, &json!({"type": "leave", "room": r}))
                .await
                .expect("send leave");
            if !await_ack(&mut ws, "left", &mut streams, false, &who, &shared).await {
                break;
            }
            streams.left.insert(r.clone());
        }
        let _ = ws.send(Message::Close(None)).await;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                streams.check(t.as_str(), false, &who, &shared);
            }
        }
        shared.count(|r| &mut r.clean_closes, 1);
    }
}

/// Runs the client side against `addr` and returns what it saw. Talks to the parent over
/// stdin/stdout (`ready`, `stopping`, waits for `go`).
pub fn run(addr: SocketAddr, options: Options) -> ClientReport {
    let rt = swarm::runtime(2);
    let shared = Arc::new(Shared::default());
    let stable_n = (options.conns / 10).max(4);
    let publishers_n = (options.rooms() / 2).max(2);
    let churners_n = options.conns.saturating_sub(stable_n + publishers_n);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..stable_n {
            let (joined, has_joined) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(stable(
                addr,
                i,
                options.rooms(),
                shared.clone(),
                joined,
            )));
            let _ = has_joined.await;
        }
        println!("ready");
        for i in 0..publishers_n {
            tasks.push(tokio::spawn(publisher(
                addr,
                i,
                options.clone(),
                shared.clone(),
            )));
        }
        for i in 0..churners_n {
            tasks.push(tokio::spawn(churner(
                addr,
                i,
                options.clone(),
                shared.clone(),
            )));
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(options.secs)).await;
        // Churners and publishers finish (publishers send their `last` markers) ...
        shared.stop.store(true, Ordering::Relaxed);
        let (stables, others) = tasks.split_at_mut(stable_n);
        for t in others {
            let _ = t.await;
        }
        // ... then the server sends its own.
        println!("stopping");
        let go = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        });
        let _ = go.await;
        for t in stables {
            let _ = t.await;
        }
    });
    let report = shared
        .report
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    report
}
