//! `room`: one room, N members, S of them sending with a bounded window of messages in flight.
//!
//! Every message carries `wsb:<sender>:<seq>:<send time µs>:` in its text, so each receiver
//! checks exactly-once, in-order delivery per sender (lost / duplicated / reordered must all be
//! zero) and measures latency against the send time. A message is complete when all N-1 other
//! members have it (a publish skips its sender); a sender has at most `window` incomplete
//! messages, which is the flow control: the offered load follows what the server delivers,
//! unless `--rate` fixes it.

use super::{join, measure, open_many, padding, Common, SYNC};
use crate::probe::Proc;
use crate::raw::{Event, RawReader, RawWriter};
use crate::report::Report;
use crate::stats::{now_us, Latency, Phase, PhaseCell};
use crate::{BenchError, Result};
use memchr::memmem::Finder;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex, Semaphore};
use tokio::time::Instant;

/// Options of `room`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomArgs {
    /// Members of the room (connections).
    #[arg(long, default_value_t = 200)]
    pub members: usize,
    /// How many members send (members 0..S).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages each sender may have in flight (sent, not yet received by every other member).
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Total messages per second over all senders (open loop, still capped by the window);
    /// unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Characters of padding in each message text (the text is at most 1000 characters).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// The room's id.
    #[arg(long, default_value = "bench")]
    pub room: String,
}

/// The send side of one sender, shared with every receiver.
struct Flow {
    /// `slots[seq % window]` counts receivers that have message `seq`. Completion is in order
    /// (every receiver gets a sender's messages in order), so a slot is free again by the time
    /// `seq + window` is sent.
    slots: Box<[AtomicU32]>,
    permits: Semaphore,
    sent: AtomicU64,
}

struct Shared {
    phase: PhaseCell,
    /// Other events (`room_joined` from the setup) seen so far, by all receivers.
    events: AtomicU64,
    flows: Vec<Flow>,
    /// Receivers per message: members - 1.
    expected: u32,
    window: usize,
}

impl Shared {
    fn delivered(&self, sender: usize, seq: u64) {
        let flow = &self.flows[sender];
        let slot = &flow.slots[(seq % self.window as u64) as usize];
        if slot.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            slot.store(0, Ordering::Release);
            flow.permits.add_permits(1);
        }
    }

    fn all_complete(&self) -> bool {
        self.flows
            .iter()
            .all(|f| f.permits.available_permits() == self.window)
    }
}

/// Per sender, what one receiver has seen.
#[derive(Debug, Default, Clone)]
struct Track {
    next: u64,
    missing: BTreeSet<u64>,
    received: u64,
    duplicated: u64,
    reordered: u64,
}

impl Track {
    fn on(&mut self, seq: u64) {
        if seq == self.next {
            self.next += 1;
            self.received += 1;
        } else if seq > self.next {
            self.missing.extend(self.next..seq);
            self.next = seq + 1;
            self.received += 1;
        } else if self.missing.remove(&seq) {
            self.reordered += 1;
            self.received += 1;
        } else {
            self.duplicated += 1;
        }
    }
}

/// What one receiver counted.
#[derive(Debug, Default)]
struct Seen {
    tracks: Vec<Track>,
    latency: Latency,
    deliveries: u64,
    own: u64,
    errors: u64,
    other: u64,
    closed: bool,
}

/// Where the marker starts in the server's `message` event.
const MARK: &[u8] = br#""message":"wsb:"#;

/// A searcher for [`MARK`], built once per receiver.
pub fn marker_finder() -> Finder<'static> {
    Finder::new(MARK)
}

/// `wsb:<sender>:<seq>:<t_us>:` inside the server's `message` event.
pub fn parse_marker(text: &str) -> Option<(usize, u64, u64)> {
    parse_marker_with(&marker_finder(), text.as_bytes())
}

/// [`parse_marker`] on bytes, with a prebuilt searcher.
pub fn parse_marker_with(finder: &Finder<'_>, text: &[u8]) -> Option<(usize, u64, u64)> {
    let mut rest = &text[finder.find(text)? + MARK.len()..];
    let mut field = || -> Option<u64> {
        let end = memchr::memchr(b':', rest)?;
        let digits = &rest[..end];
        rest = &rest[end + 1..];
        if digits.is_empty() || digits.len() > 19 {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let sender = field()? as usize;
    let seq = field()?;
    let t = field()?;
    Some((sender, seq, t))
}

/// Whether a text is the server's `error` reply.
fn is_error(finder: &Finder<'_>, text: &[u8]) -> bool {
    finder.find(text).is_some()
}

/// The text of message `seq` from `sender`.
pub fn marker_text(sender: usize, seq: u64, pad: &str) -> String {
    format!("wsb:{sender}:{seq}:{}:{pad}", now_us())
}

async fn receive(
    me: usize,
    mut reader: RawReader,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        tracks: vec![Track::default(); shared.flows.len()],
        ..Seen::default()
    };
    let finder = marker_finder();
    let error = Finder::new(br#""type":"error""#);
    let stopped = stop.wait_for(|s| *s);
    tokio::pin!(stopped);
    loop {
        let event = tokio::select! {
            biased;
            e = reader.next_timed() => e,
            _ = &mut stopped => break,
        };
        let (text, read_at) = match event {
            Ok(Some((Event::Text(text), at))) => (text, at),
            Ok(Some((Event::Binary(_), _))) => continue,
            Ok(Some((Event::Close(_), _))) | Ok(None) | Err(_) => {
                seen.closed = true;
                break;
            }
        };
        match parse_marker_with(&finder, text) {
            Some((sender, _, _)) if sender == me => seen.own += 1,
            Some((sender, seq, t)) if sender < seen.tracks.len() => {
                seen.tracks[sender].on(seq);
                shared.delivered(sender, seq);
                if shared.phase.measuring() {
                    seen.deliveries += 1;
                    // Latency up to when the bytes were read (one clock read per socket read).
                    seen.latency.record_us(read_at.saturating_sub(t));
                }
            }
            _ if is_error(&error, text) => seen.errors += 1,
            _ => {
                seen.other += 1;
                shared.events.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    seen
}

/// Sends [`SYNC`] and reads until the error reply (see [`super::sync`]); returns how many other
/// messages came first.
async fn sync_raw(reader: &mut RawReader, writer: &Mutex<RawWriter>) -> Result<u64> {
    {
        let mut w = writer.lock().await;
        w.queue_text(SYNC);
        w.flush().await?;
    }
    let error = Finder::new(br#""type":"error""#);
    let mut skipped = 0;
    let wait = async {
        loop {
            match reader.next().await? {
                Some(Event::Text(t)) if is_error(&error, t) => return Ok(skipped),
                Some(Event::Close(c)) => {
                    return Err(BenchError::Protocol(format!("closed during setup: {c:?}")))
                }
                None => return Err(BenchError::Protocol("connection ended during setup".into())),
                Some(_) => skipped += 1,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| BenchError::Timeout("no reply to the sync message in 30 s".into()))?
}

async fn send(
    me: usize,
    writer: Arc<Mutex<RawWriter>>,
    shared: Arc<Shared>,
    args: RoomArgs,
) -> Result<()> {
    let flow = &shared.flows[me];
    let pad = padding(args.size);
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.senders as f64 / r));
    let mut due = Instant::now();
    let mut seq = 0u64;
    while shared.phase.get() < Phase::Drain {
        let Ok(Ok(first)) =
            tokio::time::timeout(Duration::from_millis(100), flow.permits.acquire()).await
        else {
            continue; // recheck the phase
        };
        first.forget();
        let mut n = 1;
        if let Some(iv) = interval {
            tokio::time::sleep_until(due).await;
            due += iv;
            // Behind schedule: send what is due now, as far as the window allows.
            while due <= Instant::now() && n < args.window {
                let Ok(p) = flow.permits.try_acquire() else {
                    break;
                };
                p.forget();
                n += 1;
                due += iv;
            }
        } else {
            while n < args.window {
                let Ok(p) = flow.permits.try_acquire() else {
                    break;
                };
                p.forget();
                n += 1;
            }
        }
        let mut w = writer.lock().await;
        for _ in 0..n {
            let text = format!(
                r#"{{"type":"chat_message","roomId":"{}","message":"{}"}}"#,
                args.room,
                marker_text(me, seq, &pad)
            );
            w.queue_text(&text);
            seq += 1;
        }
        w.flush().await?;
        drop(w);
        flow.sent.store(seq, Ordering::Relaxed);
    }
    Ok(())
}

/// Runs `room` and reports deliveries/s, latency, and the correctness counters.
pub async fn run(common: &Common, args: &RoomArgs) -> Result<Report> {
    if args.members < 2 || args.senders == 0 || args.senders > args.members {
        return Err(BenchError::Protocol(
            "need members >= 2 and 1 <= senders <= members".into(),
        ));
    }
    let target = common.target();
    let minter = common.minter();
    let room = args.room.clone();
    let members = open_many(args.members, common.setup_concurrency, |i| {
        let (target, room) = (target.clone(), room.clone());
        let path = minter.chat_path(i);
        async move {
            let (mut reader, writer) = target.connect_raw(&path).await?;
            writer.lock().await.queue_text(&join(&room));
            let skipped = sync_raw(&mut reader, &writer).await?;
            Ok((reader, writer, skipped))
        }
    })
    .await?;
    let rss_loaded = common
        .server_pid
        .map(|p| Proc::Pid(p).rss_bytes())
        .transpose()?;

    let setup_events: u64 = members.iter().map(|m| m.2).sum();
    let shared = Arc::new(Shared {
        phase: PhaseCell::default(),
        events: AtomicU64::new(setup_events),
        flows: (0..args.senders)
            .map(|_| Flow {
                slots: (0..args.window).map(|_| AtomicU32::new(0)).collect(),
                permits: Semaphore::new(args.window),
                sent: AtomicU64::new(0),
            })
            .collect(),
        expected: (args.members - 1) as u32,
        window: args.window,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::with_capacity(args.members);
    let mut senders = Vec::with_capacity(args.senders);
    let mut writers = Vec::with_capacity(args.members);
    for (i, (reader, writer, _)) in members.into_iter().enumerate() {
        receivers.push(tokio::spawn(receive(
            i,
            reader,
            shared.clone(),
            stop_rx.clone(),
        )));
        if i < args.senders {
            senders.push(tokio::spawn(send(
                i,
                writer.clone(),
                shared.clone(),
                args.clone(),
            )));
        }
        writers.push(writer);
    }

    // Every join was published to the members before it: n(n-1)/2 `room_joined` events in all.
    // Let that backlog (O(n²): 12.5M events for 5000 members) reach the receivers before the
    // clock starts, or the window would measure the setup.
    let n = args.members as u64;
    let backlog = n * (n - 1) / 2;
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    while shared.events.load(Ordering::Relaxed) < backlog {
        if Instant::now() > setup_deadline {
            return Err(BenchError::Timeout(format!(
                "{} of {backlog} room_joined events arrived",
                shared.events.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = measure(&shared.phase, common).await?;
    // Drain: wait for every in-flight message to reach everyone (lost ones never will).
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while !shared.all_complete() && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = shared.all_complete();
    shared.phase.set(Phase::Stop);
    for s in senders {
        s.await.map_err(|e| BenchError::Protocol(e.to_string()))??;
    }
    // Give receivers a moment to read anything still on the wire, then stop them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_tx.send(true);
    let mut seen = Vec::with_capacity(receivers.len());
    for r in receivers {
        seen.push(r.await.map_err(|e| BenchError::Protocol(e.to_string()))?);
    }
    drop(writers);

    let sent: Vec<u64> = shared
        .flows
        .iter()
        .map(|f| f.sent.load(Ordering::Relaxed))
        .collect();
    let mut latency = Latency::default();
    let (mut deliveries, mut lost, mut dup, mut reord, mut own, mut errors, mut closed) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for (me, s) in seen.iter().enumerate() {
        latency.merge(&s.latency);
        deliveries += s.deliveries;
        own += s.own;
        errors += s.errors;
        closed += s.closed as u64;
        for (sender, t) in s.tracks.iter().enumerate() {
            if sender != me {
                lost += sent[sender].saturating_sub(t.received);
                dup += t.duplicated;
                reord += t.reordered;
            }
        }
    }

    let mut report = Report::new(
        "room",
        &common.label,
        args.members,
        serde_json::to_value(Params::from(args)).expect("params serialize"),
    );
    report.cpu = Some(cpu);
    report.rate("deliveries", deliveries);
    report.rate(
        "messages_sent",
        (deliveries as f64 / (args.members - 1) as f64).round() as u64,
    );
    report.latency = Some(latency.summary());
    report.counter("lost", lost as i64);
    report.counter("duplicated", dup as i64);
    report.counter("reordered", reord as i64);
    report.counter("delivered_to_sender", own as i64);
    report.counter("error_replies", errors as i64);
    report.counter("closed_by_server", closed as i64);
    report.counter("drained", drained as i64);
    report.counter("total_sent", sent.iter().sum::<u64>() as i64);
    if let Some(rss) = rss_loaded {
        report.counter("server_rss_kib_after_setup", (rss / 1024) as i64);
    }
    Ok(report)
}

#[derive(serde::Serialize)]
struct Params {
    members: usize,
    senders: usize,
    window: usize,
    rate: Option<f64>,
    size: usize,
}

impl From<&RoomArgs> for Params {
    fn from(a: &RoomArgs) -> Self {
        Params {
            members: a.members,
            senders: a.senders,
            window: a.window,
            rate: a.rate,
            size: a.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_through_a_server_event() {
        let text = marker_text(3, 42, "xx");
        let event = format!(
            r#"{{"type":"message","roomId":"bench","userId":"u3","userEmail":"e","message":"{text}","timestamp":1}}"#
        );
        let (s, q, _) = parse_marker(&event).unwrap();
        assert_eq!((s, q), (3, 42));
        assert_eq!(parse_marker(r#"{"type":"room_joined"}"#), None);
    }

    #[test]
    fn tracks_tell_lost_from_reordered_from_duplicated() {
        let mut t = Track::default();
        for q in [0, 1, 3, 2, 2, 5] {
            t.on(q);
        }
        assert_eq!(t.received, 5, "0 1 3 2 5");
        assert_eq!(t.reordered, 1, "2 after 3");
        assert_eq!(t.duplicated, 1, "the second 2");
        assert_eq!(t.missing.len(), 1, "4 never came");
    }
}
