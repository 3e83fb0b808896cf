//! Opening WebSocket connections to the server under test.
//!
//! One source address has about 28k ephemeral ports, and a socket bound before `connect` keeps
//! its port for that address whatever the destination, so connections are spread round-robin over
//! several loopback sources (127.0.0.1, 127.0.0.2, ...: all of 127.0.0.0/8 is local on Linux).

use crate::raw::{self, RawReader, RawWriter};
use crate::{BenchError, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect and from which source addresses.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    sources: Arc<Vec<IpAddr>>,
    next: Arc<AtomicUsize>,
}

impl Target {
    /// `sources` loopback addresses 127.0.0.1 ..= 127.0.0.N (N >= 1) when `addr` is IPv4
    /// loopback; the kernel picks the source otherwise.
    pub fn new(addr: SocketAddr, sources: usize) -> Self {
        let sources = match addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => (1..=sources.clamp(1, 254))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
                .collect(),
            _ => Vec::new(),
        };
        Target {
            addr,
            sources: Arc::new(sources),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a TCP connection from the next source address and does the WebSocket handshake for
    /// `path` (with its query). Small read buffers: tens of thousands of client connections share
    /// the machine with the server under test. Writes are buffered up to 16 KiB so a sender can
    /// queue several messages (`feed`) and write them with one `flush`.
    pub async fn connect(&self, path: &str) -> Result<Ws> {
        let tcp = self.tcp().await?;
        let url = format!("ws://{}{}", self.addr, path);
        let request = url.into_client_request()?;
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(16 * 1024);
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
        Ok(ws)
    }

    /// Like [`Target::connect`], retrying transient failures (a full accept backlog refuses or
    /// resets connections under a connect storm) a few times with a short pause.
    pub async fn connect_retry(&self, path: &str) -> Result<Ws> {
        let mut attempt = 0;
        loop {
            match self.connect(path).await {
                Ok(ws) => return Ok(ws),
                Err(e) if attempt < 5 && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`Target::connect_retry`], with the lean client of [`crate::raw`].
    pub async fn connect_raw(&self, path: &str) -> Result<(RawReader, Arc<Mutex<RawWriter>>)> {
        let mut attempt = 0;
        loop {
            let result = match self.tcp().await {
                Ok(tcp) => raw::handshake(tcp, &self.addr.to_string(), path).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(halves) => return Ok(halves),
                Err(e) if attempt < 5 && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn tcp(&self) -> Result<TcpStream> {
        let err = |source| BenchError::Connect {
            addr: self.addr,
            source,
        };
        let socket = TcpSocket::new_v4().map_err(err)?;
        if !self.sources.is_empty() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            socket
                .bind(SocketAddr::new(self.sources[i], 0))
                .map_err(err)?;
        }
        let stream = socket.connect(self.addr).await.map_err(err)?;
        stream.set_nodelay(true).map_err(err)?;
        Ok(stream)
    }
}

fn is_transient(e: &BenchError) -> bool {
    use std::io::ErrorKind::*;
    let io_kind = match e {
        BenchError::Connect { source, .. } => Some(source.kind()),
        BenchError::WebSocket(tokio_tungstenite::tungstenite::Error::Io(io)) => Some(io.kind()),
        _ => None,
    };
    matches!(
        io_kind,
        Some(ConnectionRefused | ConnectionReset | ConnectionAborted | TimedOut | UnexpectedEof)
    )
}

/// Raises this process's open-file limit to the hard limit, so thousands of connections fit.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(%e, "could not raise the open file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_spread_over_sources() {
        let t = Target::new("127.0.0.1:9".parse().unwrap(), 8);
        assert_eq!(t.sources.len(), 8);
        assert_eq!(t.sources[7], "127.0.0.8".parse::<IpAddr>().unwrap());
        let t = Target::new("[::1]:9".parse().unwrap(), 8);
        assert!(t.sources.is_empty(), "IPv6 lets the kernel choose");
    }
}
