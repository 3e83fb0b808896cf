//! An async client for many connections at once (tokio-tungstenite on a tokio runtime of the
//! test's own): the 1,000-member room and the soak's churning clients.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

/// One async client connection.
pub type AsyncWs = WebSocketStream<TcpStream>;

/// Small buffers: thousands of clients share the machine with the server under test.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// Connects to `path`.
pub async fn connect(addr: SocketAddr, path: &str) -> Result<AsyncWs, Error> {
    let stream = TcpStream::connect(addr).await.map_err(Error::Io)?;
    stream.set_nodelay(true).map_err(Error::Io)?;
    let request = format!("ws://{addr}{path}").into_client_request()?;
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config())).await?;
    Ok(ws)
}

/// Sends `value` as a text message.
pub async fn send_json(ws: &mut AsyncWs, value: &Value) -> Result<(), Error> {
    ws.send(Message::text(value.to_string())).await
}

/// The next text message (control frames are skipped; pings are answered by tungstenite);
/// `None` when the connection ended.
pub async fn next_text(ws: &mut AsyncWs) -> Option<Result<String, Error>> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(Ok(t.as_str().to_owned())),
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The next text message parsed as JSON; panics on anything else.
pub async fn next_json(ws: &mut AsyncWs) -> Value {
    match next_text(ws).await {
        Some(Ok(t)) => serde_json::from_str(&t).expect("the server sends JSON"),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The unsigned integer after `"key":` in `text`, without parsing the whole (possibly large)
/// message.
pub fn field_u64(text: &str, key: &str) -> Option<u64> {
    let needle = format!("\"{key}\":");
    let at = text.find(&needle)? + needle.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The string after `"key":"` in `text` (no escapes expected).
pub fn field_str<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":\"");
    let at = text.find(&needle)? + needle.len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

/// A tokio runtime for the clients (separate from the server's).
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("client runtime")
}
