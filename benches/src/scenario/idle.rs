//! `idle`: memory per idle authenticated connection. Reads the server's RSS, opens N
//! authenticated `/ws/chat` connections (each proven live by one sync round trip), waits for the
//! RSS to settle, reads it again: (after - before) / N.

use super::{open_many, sync, Common};
use crate::client::Ws;
use crate::probe::Proc;
use crate::report::Report;
use crate::{BenchError, Result};
use std::time::{Duration, Instant};

/// Options of `idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Seconds to hold them after the RSS reading (e.g. to watch the server by hand).
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
}

/// Reads RSS every 200 ms until two readings 1 s apart differ by under 0.5% (allocators return
/// memory and threads finish work lazily), at most 10 s.
async fn settled_rss(p: Proc) -> Result<u64> {
    let start = Instant::now();
    let mut last = p.rss_bytes()?;
    let mut stable_since = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = p.rss_bytes()?;
        if now.abs_diff(last) * 200 > last {
            stable_since = Instant::now();
            last = now;
        } else if stable_since.elapsed() >= Duration::from_secs(1) {
            return Ok(now);
        }
    }
    Ok(last)
}

/// Runs `idle`; needs `--server-pid`.
pub async fn run(common: &Common, args: &IdleArgs) -> Result<Report> {
    let pid = common
        .server_pid
        .ok_or_else(|| BenchError::Protocol("idle needs --server-pid to read the RSS".into()))?;
    let server = Proc::Pid(pid);
    let before = settled_rss(server).await?;
    let target = common.target();
    let minter = common.minter();
    let started = Instant::now();
    let conns: Vec<Ws> = open_many(args.conns, common.setup_concurrency, |i| {
        let target = target.clone();
        let path = minter.chat_path(i);
        async move {
            let mut ws = target.connect_retry(&path).await?;
            sync(&mut ws).await?;
            Ok(ws)
        }
    })
    .await?;
    let open_secs = started.elapsed().as_secs_f64();
    let after = settled_rss(server).await?;
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    drop(conns);

    let per_conn = (after as i64 - before as i64) / args.conns.max(1) as i64;
    let mut report = Report::new(
        "idle",
        &common.label,
        args.conns,
        serde_json::json!({ "conns": args.conns }),
    );
    report.counter("server_rss_before_kib", (before / 1024) as i64);
    report.counter("server_rss_after_kib", (after / 1024) as i64);
    report.counter("bytes_per_connection", per_conn);
    report.counter(
        "setup_conns_per_sec",
        (args.conns as f64 / open_secs.max(1e-9)) as i64,
    );
    Ok(report)
}
