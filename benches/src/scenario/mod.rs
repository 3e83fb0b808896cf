//! The load scenarios, and what they share: options, connection setup, the sync barrier, and the
//! warmup / measure / drain clock.

pub mod connect;
pub mod echo;
pub mod idle;
pub mod room;
pub mod rooms;

use crate::client::{Target, Ws};
use crate::probe::{CpuUsage, CpuWindow};
use crate::stats::{Phase, PhaseCell};
use crate::token::{Minter, DEV_SECRET};
use crate::{BenchError, Result};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:3000", global = true)]
    pub addr: SocketAddr,
    /// Spread connections over this many source addresses 127.0.0.1..=127.0.0.N (about 28k
    /// connections fit per source).
    #[arg(long, default_value_t = 8, global = true)]
    pub sources: usize,
    /// The server's process id: its CPU time (utime + stime) over the measured window gives every
    /// throughput per server CPU-second; its RSS gives memory figures.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// HS256 secret for the tokens wsbench mints.
    #[arg(long, env = "WSKIT_JWT_SECRET", default_value = DEV_SECRET, hide_default_value = true, hide_env_values = true, global = true)]
    pub jwt_secret: String,
    /// Seconds of load before the measured window.
    #[arg(long, default_value_t = 2.0, global = true)]
    pub warmup: f64,
    /// Seconds in the measured window.
    #[arg(long, default_value_t = 10.0, global = true)]
    pub duration: f64,
    /// Connections set up at once during setup.
    #[arg(long, default_value_t = 64, global = true)]
    pub setup_concurrency: usize,
    /// Label for the report (e.g. the server's name).
    #[arg(long, default_value = "server", global = true)]
    pub label: String,
}

impl Common {
    /// Where to connect.
    pub fn target(&self) -> Target {
        Target::new(self.addr, self.sources)
    }

    /// Token minting with `--jwt-secret`.
    pub fn minter(&self) -> Minter {
        Minter::new(&self.jwt_secret)
    }
}

/// Opens `n` connections with at most `concurrency` in progress, each set up by `open(i)`
/// (connect, join, sync). Results are in index order.
pub async fn open_many<F, Fut, T>(n: usize, concurrency: usize, open: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut opened: Vec<(usize, T)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let fut = open(i);
            async move { fut.await.map(|t| (i, t)) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    opened.sort_unstable_by_key(|(i, _)| *i);
    Ok(opened.into_iter().map(|(_, t)| t).collect())
}

/// The barrier message: invalid on purpose (`roomId` must not be empty), so every server that
/// speaks the protocol answers it with a `validation_failed` error. A connection's messages are
/// handled in order, so the answer proves everything sent before it was handled (a join
/// produces no reply to the joiner, since a publish skips its sender).
pub const SYNC: &str = r#"{"type":"leave_room","roomId":""}"#;

/// Sends [`SYNC`] and reads until the error reply; returns how many other messages came first.
pub async fn sync(ws: &mut Ws) -> Result<u64> {
    ws.send(Message::text(SYNC)).await?;
    let mut skipped = 0;
    let wait = async {
        while let Some(msg) = ws.next().await {
            match msg? {
                Message::Text(t) if t.contains(r#""type":"error""#) => return Ok(skipped),
                Message::Close(c) => {
                    return Err(BenchError::Protocol(format!("closed during setup: {c:?}")))
                }
                _ => skipped += 1,
            }
        }
        Err(BenchError::Protocol("connection ended during setup".into()))
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| BenchError::Timeout("no reply to the sync message in 30 s".into()))?
}

/// A `join_room` message.
pub fn join(room: &str) -> String {
    format!(r#"{{"type":"join_room","roomId":"{room}"}}"#)
}

/// A `leave_room` message.
pub fn leave(room: &str) -> String {
    format!(r#"{{"type":"leave_room","roomId":"{room}"}}"#)
}

/// Runs the clock: `warmup` seconds, then the measured window of `duration` seconds bracketed by
/// CPU readings, then moves to [`Phase::Drain`].
pub async fn measure(phase: &PhaseCell, common: &Common) -> Result<CpuUsage> {
    tokio::time::sleep(Duration::from_secs_f64(common.warmup)).await;
    let window = CpuWindow::start(common.server_pid)?;
    phase.set(Phase::Measure);
    tokio::time::sleep(Duration::from_secs_f64(common.duration)).await;
    phase.set(Phase::Drain);
    window.stop()
}

/// Padding text of `len` characters for message bodies.
pub fn padding(len: usize) -> String {
    "x".repeat(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_messages_are_valid_json() {
        for m in [SYNC.to_string(), join("r1"), leave("r1")] {
            let v: serde_json::Value = serde_json::from_str(&m).unwrap();
            assert!(v["type"].is_string());
        }
    }

    #[tokio::test]
    async fn open_many_keeps_index_order_and_fails_on_any_error() {
        let ok = open_many(20, 4, |i| async move {
            tokio::time::sleep(Duration::from_millis((20 - i) as u64)).await;
            Ok(i)
        })
        .await
        .unwrap();
        assert_eq!(ok, (0..20).collect::<Vec<_>>());
        let err = open_many(5, 2, |i| async move {
            if i == 3 {
                Err(BenchError::Protocol("x".into()))
            } else {
                Ok(i)
            }
        })
        .await;
        assert!(err.is_err());
    }
}
