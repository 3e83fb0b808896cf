//! Benchmarks and load tools for wskit.
//!
//! - `benches/core.rs`: criterion benches of the core state machine (no sockets); run them with
//!   `cargo bench -p wskit-bench --bench core`.
//! - `wsbench` (this library plus `src/bin/wsbench.rs`): a load generator for the chat protocol of
//!   SPEC §3, usable against any server that speaks it (`wskit-chat`, or the Bun peer in
//!   `peers/bun/`). Run `cargo run --release -p wskit-bench --bin wsbench -- --help`.
//! - `compare.sh`: wskit-chat against the Bun peer, side by side, per server CPU-second.
//!
//! Every scenario measures the same way: connect and set up, warm up, then a measured window
//! bracketed by readings of the server's CPU time (`/proc/PID/stat`, with `--server-pid`), so each
//! throughput is also reported per server CPU-second. That ratio is what the comparisons use: the
//! machine is shared, and the load generator may saturate before the server does, but CPU spent
//! per delivered message is comparable across servers at the same offered load.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod plot;
pub mod probe;
pub mod raw;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod summary;
pub mod token;

/// Writes `text` to a fresh `runs.jsonl` in a temporary directory named after `tag` (tests of the
/// tools that read wsbench's JSON lines).
#[cfg(test)]
pub(crate) fn temp_jsonl(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsbench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("runs.jsonl");
    std::fs::write(&file, text).unwrap();
    file
}

/// Why a run failed before it could report numbers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A socket error while connecting (after retries).
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The WebSocket handshake or a later WebSocket operation failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// Reading `/proc` for the server process failed (wrong `--server-pid`?).
    #[error("reading /proc for pid {pid}: {source}")]
    Proc {
        /// The process id.
        pid: u32,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server broke the protocol the scenario relies on (unexpected reply, early close).
    #[error("protocol: {0}")]
    Protocol(String),
    /// Setup did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Reading input or writing output files.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("plot: {0}")]
    Plot(String),
}

/// Result alias for the bench tools.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
