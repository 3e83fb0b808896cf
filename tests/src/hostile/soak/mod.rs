//! The soak: thousands of connections churning (connect, join rooms, publish, leave,
//! disconnect cleanly or vanish with a reset) while rooms are published to by clients and by
//! the server, for a fixed time.
//!
//! Two processes, so memory is measured for the server alone: the `soak` binary serves the
//! hostile app in-process (on the chosen adapter, on its own runtime/threads), samples its own
//! `VmRSS`, and publishes into every room through a `ServerHandle`; it runs itself again with
//! `--client` for the load. The client checks every delivery with per-sender, per-room
//! sequence numbers:
//!
//! - stable clients join before any publish and stay: they must see every sender's sequence
//!   from 0 to its `last` marker, with no gap, duplicate or reordering;
//! - churning clients check that what they see is consecutive per sender after their first
//!   message, and that nothing of a room arrives after its `left` acknowledgement.
//!
//! The parent and child talk over the child's stdin/stdout, one line per step: `ready` (stable
//! clients joined: start publishing), `stopping` (churn over: send your `last` markers),
//! `go` (they are sent), `report {json}`. With `rounds > 1` the parent runs the client again
//! against the same server: RSS after each round must plateau (retention) rather than climb
//! (a leak), and every connection the server opened must have been released (`on_close`).

pub mod client;

use super::app::{self, Observer};
use crate::adapter::{self, Adapter, Running};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Adapter name (`tokio`, `tokio+axum`, `async-std`, `smol`, `blocking`).
    pub adapter: String,
    /// How long the churn lasts.
    pub secs: u64,
    /// Connections open at once (stable + publishers + churners).
    pub conns: usize,
    /// Milliseconds between two publishes of one publisher (server-side: per room).
    pub interval_ms: u64,
    /// Largest accepted growth of the server's RSS from its baseline after the first round, in
    /// MiB (the allocator keeps some of the peak; later rounds must reuse it).
    pub max_rss_growth_mib: u64,
    /// Rounds of churn against the same server: RSS after each round shows whether memory is
    /// reused (a plateau) or leaked (growth per round).
    pub rounds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            adapter: "tokio".into(),
            secs: 60,
            conns: 2000,
            interval_ms: 50,
            max_rss_growth_mib: 64,
            rounds: 1,
        }
    }
}

impl Options {
    /// Number of rooms: one per 100 connections, at least 4.
    pub fn rooms(&self) -> usize {
        (self.conns / 100).max(4)
    }
}

/// What the client process saw (all counters of failures must be zero).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ClientReport {
    /// Successful upgrades.
    pub connects: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Published messages received.
    pub received: u64,
    /// Messages published by clients.
    pub published: u64,
    /// Churners that left with a close handshake.
    pub clean_closes: u64,
    /// Churners that vanished with a TCP reset.
    pub vanished: u64,
    /// Messages missing in a sequence (a gap).
    pub lost: u64,
    /// Messages seen twice.
    pub duplicated: u64,
    /// Messages older than one already seen.
    pub reordered: u64,
    /// Messages of a room after its `left` acknowledgement, or of a sender after its `last`.
    pub after_end: u64,
    /// (stable client, sender, room) streams that never reached their `last` marker.
    pub incomplete: u64,
    /// Healthy connections the server closed or that failed.
    pub unexpected_closes: u64,
    /// A few descriptions of failures.
    pub samples: Vec<String>,
}

impl ClientReport {
    /// Whether any check failed.
    pub fn failures(&self) -> u64 {
        self.connect_errors
            + self.lost
            + self.duplicated
            + self.reordered
            + self.after_end
            + self.incomplete
            + self.unexpected_closes
    }
}

/// One round: a client process's run against the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// The client's observations.
    pub client: ClientReport,
    /// Messages the server published through its handle.
    pub server_published: u64,
    /// Highest server RSS sampled during the round.
    pub rss_peak: u64,
    /// Server RSS once every connection of the round was closed.
    pub rss_after: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The options.
    pub options: Options,
    /// Each round.
    pub rounds: Vec<Round>,
    /// Connections the server opened (`on_connect` ran).
    pub server_opened: u64,
    /// Connections the server released (`on_close` ran).
    pub server_closed: u64,
    /// Server RSS before any client, in bytes.
    pub rss_baseline: u64,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// Allowed RSS growth between the first and the last round (a leak grows every round).
const LEAK_TOLERANCE: u64 = 8 << 20;

impl Report {
    /// Whether the run passed: no delivery failure, every connection released, RSS back within
    /// the allowed growth after the first round and flat after that.
    pub fn passed(&self) -> bool {
        let (Some(first), Some(last)) = (self.rounds.first(), self.rounds.last()) else {
            return false;
        };
        self.rounds.iter().all(|r| r.client.failures() == 0)
            && self.server_opened == self.server_closed
            && first.rss_after.saturating_sub(self.rss_baseline)
                <= self.options.max_rss_growth_mib << 20
            && last.rss_after.saturating_sub(first.rss_after) <= LEAK_TOLERANCE
    }

    /// Human-readable summary: one line per round, then the verdict.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (i, round) in self.rounds.iter().enumerate() {
            let c = &round.client;
            out += &format!(
                "round {}: {} connects ({} clean closes, {} resets), {} published by clients + \
                 {} by the server, {} received; lost {} dup {} reordered {} after-end {} \
                 incomplete {} unexpected-closes {} connect-errors {}; server RSS peak {:.1} \
                 MiB, after {:.1} MiB\n",
                i + 1,
                c.connects,
                c.clean_closes,
                c.vanished,
                c.published,
                round.server_published,
                c.received,
                c.lost,
                c.duplicated,
                c.reordered,
                c.after_end,
                c.incomplete,
                c.unexpected_closes,
                c.connect_errors,
                mib(round.rss_peak),
                mib(round.rss_after),
            );
        }
        out += &format!(
            "soak {} {}s x{} {} conns: server opened {} and released {} connections; RSS \
             baseline {:.1} MiB, peak {:.1} MiB, after {:.1} MiB -> {}",
            self.options.adapter,
            self.options.secs,
            self.rounds.len(),
            self.options.conns,
            self.server_opened,
            self.server_closed,
            mib(self.rss_baseline),
            mib(self.rounds.iter().map(|r| r.rss_peak).max().unwrap_or(0)),
            mib(self.rounds.last().map_or(0, |r| r.rss_after)),
            if self.passed() { "PASS" } else { "FAIL" },
        );
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Adapter names [`start_named`] knows (with `tokio-axum` and `axum` as aliases).
pub const ADAPTERS: &[&str] = &[
    "tokio",
    "tokio+axum",
    "tokio-axum",
    "axum",
    "async-std",
    "smol",
    "blocking",
];

/// Starts the hostile app on the adapter called `name`.
pub fn start_named(name: &str) -> Option<(Running, Observer)> {
    fn on<A: Adapter>() -> (Running, Observer) {
        let (server, observer) = app::app();
        let config = super::config().close_timeout(Duration::from_secs(2));
        (A::start(server, config), observer)
    }
    Some(match name {
        "tokio" => on::<adapter::Tokio>(),
        "tokio+axum" | "tokio-axum" | "axum" => on::<adapter::TokioAxum>(),
        "async-std" => on::<adapter::AsyncStd>(),
        "smol" => on::<adapter::Smol>(),
        "blocking" => on::<adapter::Blocking>(),
        _ => return None,
    })
}

/// Publishes into every room through the handle every `interval` until `stop`, then a `last`
/// marker per room; returns how many it published.
fn server_publisher(
    observer_handle: wskit::ServerHandle,
    rooms: usize,
    interval: Duration,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for r in 0..rooms {
            let msg =
                json!({"type": "published", "room": client::room(r), "from": "server", "seq": seq});
            observer_handle
                .publish(&client::room(r), &msg)
                .expect("serializable");
            count.fetch_add(1, Ordering::Relaxed);
        }
        seq += 1;
        thread::sleep(interval);
    }
    for r in 0..rooms {
        let msg = json!({"type": "published", "room": client::room(r), "from": "server", "seq": seq, "pad": "last"});
        observer_handle
            .publish(&client::room(r), &msg)
            .expect("serializable");
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts `on_connect` and `on_close` as they happen (the events must be consumed anyway,
/// or they would pile up in the server's process).
struct Tally {
    opened: AtomicU64,
    closed: AtomicU64,
    stop: AtomicBool,
}

impl Tally {
    fn open_now(&self) -> u64 {
        self.opened
            .load(Ordering::SeqCst)
            .saturating_sub(self.closed.load(Ordering::SeqCst))
    }
}

/// One client process: spawn, publish from the server while it runs, collect its report.
fn round(
    exe: &std::path::Path,
    addr: std::net::SocketAddr,
    options: &Options,
    handle: &wskit::ServerHandle,
) -> (ClientReport, u64) {
    let mut child = Command::new(exe)
        .arg("--client")
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--options")
        .arg(serde_json::to_string(options).expect("options serialize"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the soak client");
    let mut to_child = child.stdin.take().expect("stdin");
    let from_child = BufReader::new(child.stdout.take().expect("stdout"));
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let mut publisher = None;
    let mut report = None;
    for line in from_child.lines() {
        let line = line.expect("child output");
        match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("ready", _) => {
                let (handle, stop, count) = (handle.clone(), stop.clone(), published.clone());
                let (rooms, interval) =
                    (options.rooms(), Duration::from_millis(options.interval_ms));
                publisher = Some(thread::spawn(move || {
                    server_publisher(handle, rooms, interval, stop, count)
                }));
            }
            ("stopping", _) => {
                stop.store(true, Ordering::Relaxed);
                if let Some(p) = publisher.take() {
                    p.join().expect("server publisher");
                }
                writeln!(to_child, "go").expect("tell the client");
            }
            ("report", json) => {
                report = Some(serde_json::from_str::<ClientReport>(json).expect("client report"))
            }
            _ => eprintln!("soak client: {line}"),
        }
    }
    let status = child.wait().expect("client exit");
    assert!(status.success(), "the soak client failed: {status}");
    (
        report.expect("the client reported"),
        published.load(Ordering::Relaxed),
    )
}

/// The parent side: serves, runs the client process `options.rounds` times, measures,
/// reports.
pub fn run(exe: &std::path::Path, options: Options) -> Report {
    let started = Instant::now();
    let (server, observer) = start_named(&options.adapter).unwrap_or_else(|| {
        panic!("unknown adapter {:?}", options.adapter);
    });
    let handle = observer.handle.clone();
    let tally = Arc::new(Tally {
        opened: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let counter = {
        let tally = tally.clone();
        thread::spawn(move || {
            while !tally.stop.load(Ordering::Relaxed) {
                match observer.next_event(Duration::from_millis(100)) {
                    Some(app::Event::Opened { .. }) => tally.opened.fetch_add(1, Ordering::SeqCst),
                    Some(app::Event::Closed { .. }) => tally.closed.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    let baseline = super::rss_bytes().unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(super::rss_bytes().unwrap_or(0), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut rounds = Vec::new();
    for _ in 0..options.rounds.max(1) {
        peak.store(super::rss_bytes().unwrap_or(0), Ordering::Relaxed);
        let (client, server_published) = round(exe, server.addr(), &options, &handle);
        // Every connection must be released (close handshakes and resets take a moment).
        let deadline = Instant::now() + Duration::from_secs(10);
        while tally.open_now() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(500));
        rounds.push(Round {
            client,
            server_published,
            rss_peak: peak.load(Ordering::Relaxed),
            rss_after: super::rss_bytes().unwrap_or(0),
        });
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    tally.stop.store(true, Ordering::Relaxed);
    counter.join().expect("event counter");
    drop(server);
    Report {
        rounds,
        server_opened: tally.opened.load(Ordering::SeqCst),
        server_closed: tally.closed.load(Ordering::SeqCst),
        rss_baseline: baseline,
        elapsed_ms: started.elapsed().as_millis() as u64,
        options,
    }
}

/// The short soak run by `cargo test`: two rounds of 3 s with 200 connections, through the
/// `soak` binary.
pub fn short<A: Adapter>(exe: &str) {
    let _heavy = super::heavy();
    let output = Command::new(exe)
        .args([
            "--adapter",
            A::NAME,
            "--secs",
            "3",
            "--conns",
            "200",
            "--rounds",
            "2",
        ])
        .output()
        .expect("run the soak binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "soak failed: {stdout}");
    assert!(stdout.contains("-> PASS"), "{stdout}");
}
