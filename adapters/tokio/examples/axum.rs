//! wskit routes inside an axum 0.8 app: pages and WebSockets on one port.
//!
//! ```text
//! cargo run -p wskit-tokio --example axum --features axum
//! # then: websocat ws://127.0.0.1:3001/ws/echo
//! ```
//!
//! With the `axum` feature, the peer address from `ConnectInfo` reaches `ctx.remote_addr`.

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use std::net::SocketAddr;
use wskit::{Route, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wskit=debug".into()),
        )
        .init();

    // A raw echo route and a JSON room route, as any wskit app would declare them.
    let echo = Route::new("/ws/echo")
        .on_text(|ws, _ctx, text: &str| ws.send_text(text))
        .on_binary(|ws, _ctx, data| ws.send_binary(data));
    let server = Server::builder().route(echo).build()?;

    // Start wskit on this runtime, then hand its service to axum.
    let ws = wskit_tokio::Builder::new(server).start();
    let app = Router::new()
        .route(
            "/",
            get(|| async { "hello from axum; WebSockets at /ws/echo\n" }),
        )
        .route_service("/ws/echo", ws.service());

    // Small WebSocket frames should not wait for Nagle's algorithm.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001")
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    tracing::info!(addr = %axum::serve::Listener::local_addr(&listener)?, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;

    // axum has stopped accepting; close the WebSockets with 1001 after their queued output.
    let report = ws.shutdown().await;
    tracing::info!(?report, "stopped");
    Ok(())
}
