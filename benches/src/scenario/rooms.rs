//! `rooms`: many rooms of 10 plus a personal topic per user, with join/leave churn.
//!
//! Member `i` starts in room `r{i / room_size}` and in its personal room `p{i}` (the chat
//! protocol has no other kind of topic, so a personal topic is a room of one). Each member then
//! acts `--rate` times per second: with probability `--churn` it leaves its room and joins a
//! random one; with probability `--direct` it messages another user's personal room; otherwise it
//! messages its current room. Membership is in flux, so exact delivery counts are unknowable; what
//! must still hold is per-sender order (a receiver never sees a sender's sequence go backwards or
//! repeat).

use super::room::parse_marker;
use super::{join, leave, measure, open_many, padding, sync, Common};
use crate::client::Ws;
use crate::report::Report;
use crate::stats::{now_us, Latency, Phase, PhaseCell};
use crate::{BenchError, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Options of `rooms`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomsArgs {
    /// Number of rooms; connections = rooms x room size.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Members per room at the start.
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// Actions per second per member.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Probability that an action is a move to another room (leave + join).
    #[arg(long, default_value_t = 0.2)]
    pub churn: f64,
    /// Probability that an action is a message to another user's personal room.
    #[arg(long, default_value_t = 0.1)]
    pub direct: f64,
    /// Characters of padding in each message text.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
}

#[derive(Debug, Default)]
struct Seen {
    latency: Latency,
    deliveries: u64,
    events: u64,
    errors: u64,
    order_violations: u64,
}

async fn receive(
    mut stream: SplitStream<Ws>,
    phase: PhaseCell,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut last: HashMap<usize, u64> = HashMap::new();
    let stopped = stop.wait_for(|s| *s);
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            biased;
            m = stream.next() => m,
            _ = &mut stopped => break,
        };
        let Some(Ok(msg)) = msg else { break };
        let Message::Text(text) = msg else { continue };
        if let Some((sender, seq, t)) = parse_marker(&text) {
            if last.insert(sender, seq).is_some_and(|prev| prev >= seq) {
                seen.order_violations += 1;
            }
            if phase.measuring() {
                seen.deliveries += 1;
                seen.latency.record_us(now_us().saturating_sub(t));
            }
        } else if text.contains(r#""type":"error""#) {
            seen.errors += 1;
        } else if phase.measuring() {
            seen.events += 1;
        }
    }
    seen
}

#[derive(Debug, Default)]
struct Acted {
    messages: u64,
    moves: u64,
}

async fn act(
    me: usize,
    mut sink: SplitSink<Ws, Message>,
    phase: PhaseCell,
    args: RoomsArgs,
    members: usize,
) -> Result<Acted> {
    let mut rng = fastrand::Rng::with_seed(me as u64);
    let rooms = args.rooms.max(1);
    let mut room = me / args.room_size.max(1);
    let pad = padding(args.size);
    let iv = Duration::from_secs_f64(1.0 / args.rate);
    let mut due = Instant::now() + iv.mul_f64(rng.f64());
    let (mut seq, mut acted) = (0u64, Acted::default());
    while phase.get() < Phase::Drain {
        tokio::time::sleep_until(due).await;
        due += iv;
        let dice = rng.f64();
        if dice < args.churn {
            let next = rng.usize(..rooms);
            sink.feed(Message::text(leave(&format!("r{room}")))).await?;
            sink.feed(Message::text(join(&format!("r{next}")))).await?;
            room = next;
            if phase.measuring() {
                acted.moves += 1;
            }
        } else {
            let to = if dice < args.churn + args.direct {
                format!("p{}", rng.usize(..members))
            } else {
                format!("r{room}")
            };
            let text = format!(
                r#"{{"type":"chat_message","roomId":"{to}","message":"wsb:{me}:{seq}:{}:{pad}"}}"#,
                now_us()
            );
            sink.feed(Message::text(text)).await?;
            seq += 1;
            if phase.measuring() {
                acted.messages += 1;
            }
        }
        sink.flush().await?;
    }
    Ok(acted)
}

/// Runs `rooms` and reports actions and deliveries per second, latency, and order violations.
pub async fn run(common: &Common, args: &RoomsArgs) -> Result<Report> {
    if args.rate <= 0.0 || args.room_size == 0 {
        return Err(BenchError::Protocol(
            "need --rate > 0 and --room-size > 0".into(),
        ));
    }
    let members = args.rooms * args.room_size;
    let target = common.target();
    let minter = common.minter();
    let size = args.room_size;
    let conns: Vec<Ws> = open_many(members, common.setup_concurrency, |i| {
        let target = target.clone();
        let path = minter.chat_path(i);
        async move {
            let mut ws = target.connect_retry(&path).await?;
            ws.feed(Message::text(join(&format!("r{}", i / size))))
                .await?;
            ws.send(Message::text(join(&format!("p{i}")))).await?;
            sync(&mut ws).await?;
            Ok(ws)
        }
    })
    .await?;
    let phase = PhaseCell::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::with_capacity(members);
    let mut actors = Vec::with_capacity(members);
    for (i, ws) in conns.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        receivers.push(tokio::spawn(receive(
            stream,
            phase.clone(),
            stop_rx.clone(),
        )));
        actors.push(tokio::spawn(act(
            i,
            sink,
            phase.clone(),
            args.clone(),
            members,
        )));
    }
    let cpu = measure(&phase, common).await?;
    let mut acted = Acted::default();
    for a in actors {
        let a = a.await.map_err(|e| BenchError::Protocol(e.to_string()))??;
        acted.messages += a.messages;
        acted.moves += a.moves;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    phase.set(Phase::Stop);
    let _ = stop_tx.send(true);
    let mut seen = Seen::default();
    for r in receivers {
        let s = r.await.map_err(|e| BenchError::Protocol(e.to_string()))?;
        seen.latency.merge(&s.latency);
        seen.deliveries += s.deliveries;
        seen.events += s.events;
        seen.errors += s.errors;
        seen.order_violations += s.order_violations;
    }
    let mut report = Report::new(
        "rooms",
        &common.label,
        members,
        serde_json::json!({
            "rooms": args.rooms, "room_size": args.room_size, "rate": args.rate,
            "churn": args.churn, "direct": args.direct, "size": args.size,
        }),
    );
    report.cpu = Some(cpu);
    report.rate("messages_sent", acted.messages);
    report.rate("moves", acted.moves);
    report.rate("deliveries", seen.deliveries);
    report.rate("join_leave_events", seen.events);
    report.latency = Some(seen.latency.summary());
    report.counter("order_violations", seen.order_violations as i64);
    report.counter("error_replies", seen.errors as i64);
    Ok(report)
}
