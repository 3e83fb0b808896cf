//! `connect`: authenticated upgrades per second. C workers each loop: open a TCP connection,
//! upgrade `/ws/chat?token=..` (the server verifies the HS256 token), prove the connection is
//! live with one sync round trip, close it.

use super::{measure, sync, Common};
use crate::report::Report;
use crate::stats::{now_us, Latency, Phase, PhaseCell};
use crate::{BenchError, Result};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Options of `connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Connections being opened at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Distinct users (tokens minted up front, reused round-robin).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
}

#[derive(Debug, Default)]
struct Worker {
    latency: Latency,
    upgrades: u64,
    failures: u64,
}

async fn work(
    w: usize,
    common: Common,
    paths: Arc<Vec<String>>,
    phase: PhaseCell,
    workers: usize,
) -> Worker {
    let target = common.target();
    let mut out = Worker::default();
    let mut i = w;
    while phase.get() < Phase::Drain {
        let path = &paths[i % paths.len()];
        i += workers;
        let t = now_us();
        let attempt = async {
            let mut ws = target.connect(path).await?;
            sync(&mut ws).await?;
            Ok::<_, BenchError>(ws)
        };
        match attempt.await {
            Ok(mut ws) => {
                if phase.measuring() {
                    out.upgrades += 1;
                    out.latency.record_us(now_us() - t);
                }
                // Close politely and wait for the server's close (it closes TCP first, so the
                // TIME_WAIT state stays on its side rather than eating our ports).
                let _ = ws
                    .send(tokio_tungstenite::tungstenite::Message::Close(None))
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            }
            Err(e) => {
                out.failures += 1;
                if out.failures <= 3 {
                    tracing::warn!(%e, "connect failed");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    out
}

/// Runs `connect` and reports upgrades/s and the latency of connect + upgrade + first reply.
pub async fn run(common: &Common, args: &ConnectArgs) -> Result<Report> {
    let minter = common.minter();
    let paths: Arc<Vec<String>> = Arc::new(
        (0..args.users.max(1))
            .map(|n| minter.chat_path(n))
            .collect(),
    );
    let phase = PhaseCell::default();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|w| {
            tokio::spawn(work(
                w,
                common.clone(),
                paths.clone(),
                phase.clone(),
                args.concurrency,
            ))
        })
        .collect();
    let cpu = measure(&phase, common).await?;
    let (mut latency, mut upgrades, mut failures) = (Latency::default(), 0, 0);
    for t in tasks {
        let w = t.await.map_err(|e| BenchError::Protocol(e.to_string()))?;
        latency.merge(&w.latency);
        upgrades += w.upgrades;
        failures += w.failures;
    }
    let mut report = Report::new(
        "connect",
        &common.label,
        args.concurrency,
        serde_json::json!({ "concurrency": args.concurrency, "users": args.users }),
    );
    report.cpu = Some(cpu);
    report.rate("upgrades", upgrades);
    report.latency = Some(latency.summary());
    report.counter("failures", failures as i64);
    Ok(report)
}
