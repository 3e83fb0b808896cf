//! `--redis URL`: several chat nodes share rooms through Redis (the `wskit-redis` backplane),
//! whatever their adapters: a tokio node and a smol node talk through the same channels.
//! Publishes cross nodes at most once: while Redis is down each node serves its own users
//! only, and reconnects by itself.

/// The Redis channel prefix of the chat's rooms (`wskit:room:{roomId}`).
pub const PREFIX: &str = wskit_redis::DEFAULT_PREFIX;

/// Connects to Redis at `url`, failing fast (clear error at startup) if it does not answer.
pub async fn connect(url: &str) -> std::io::Result<wskit_redis::Backplane> {
    let backplane = wskit_redis::Backplane::builder(url)
        .prefix(PREFIX)
        .connect()
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!(node = %backplane.node_id(), "Redis backplane on; rooms are shared with the other nodes");
    Ok(backplane)
}
