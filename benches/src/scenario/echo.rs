//! `echo`: N connections to `/ws/echo`, each a closed loop of round trips (send, wait for the
//! reply, repeat), optionally paced to a total `--rate`.

use super::{measure, open_many, padding, Common};
use crate::client::Ws;
use crate::report::Report;
use crate::stats::{now_us, Latency, Phase, PhaseCell};
use crate::{BenchError, Result};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Options of `echo`.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoArgs {
    /// Connections, each with one round trip in flight.
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    /// Total round trips per second over all connections (open loop); unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Characters in each echoed message.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
}

#[derive(Debug, Default)]
struct Loop {
    latency: Latency,
    round_trips: u64,
    wrong: u64,
}

async fn run_one(
    mut ws: Ws,
    phase: PhaseCell,
    interval: Option<Duration>,
    size: usize,
) -> Result<Loop> {
    let msg = format!(r#"{{"type":"echo","message":"{}"}}"#, padding(size));
    let expect = format!(r#""content":"{}""#, padding(size));
    let mut out = Loop::default();
    // Stagger paced connections so they do not all fire in the same tick.
    let mut due = Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(fastrand::f64()));
    while phase.get() < Phase::Drain {
        if let Some(iv) = interval {
            tokio::time::sleep_until(due).await;
            due += iv;
        }
        let t = now_us();
        ws.send(Message::text(msg.clone())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(reply))) => {
                    if !reply.contains(expect.as_str()) {
                        out.wrong += 1;
                    }
                    break;
                }
                Some(Ok(Message::Close(c))) => {
                    return Err(BenchError::Protocol(format!("echo closed: {c:?}")))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(BenchError::Protocol("echo connection ended".into())),
            }
        }
        if phase.measuring() {
            out.round_trips += 1;
            out.latency.record_us(now_us() - t);
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}

/// Runs `echo` and reports round trips/s and their latency.
pub async fn run(common: &Common, args: &EchoArgs) -> Result<Report> {
    let target = common.target();
    let conns = open_many(args.conns, common.setup_concurrency, |_| {
        let target = target.clone();
        async move { target.connect_retry("/ws/echo").await }
    })
    .await?;
    let phase = PhaseCell::default();
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.conns as f64 / r));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(run_one(ws, phase.clone(), interval, args.size)))
        .collect();
    let cpu = measure(&phase, common).await?;
    let mut latency = Latency::default();
    let (mut round_trips, mut wrong) = (0, 0);
    for t in tasks {
        let l = t.await.map_err(|e| BenchError::Protocol(e.to_string()))??;
        latency.merge(&l.latency);
        round_trips += l.round_trips;
        wrong += l.wrong;
    }
    let mut report = Report::new(
        "echo",
        &common.label,
        args.conns,
        serde_json::json!({ "conns": args.conns, "rate": args.rate, "size": args.size }),
    );
    report.cpu = Some(cpu);
    report.rate("round_trips", round_trips);
    report.latency = Some(latency.summary());
    report.counter("wrong_replies", wrong as i64);
    Ok(report)
}
