//! How the backplane reaches the local server: [`ServerAccess`].

use std::sync::Arc;
use std::time::Instant;
use wskit::Server;

/// The local server, as the backplane needs it: to deliver publishes from other nodes
/// ([`Server::handle_remote_publish`]) and to read which topics have local subscribers.
///
/// Implemented for `wskit_tokio::Handle` (feature `tokio`), `wskit_async_std::Handle` (feature
/// `smol`), `wskit_blocking::Handle` (feature `blocking`) and `Arc<`[`wskit_adapter::Shared`]`>`, which every adapter built on `wskit-adapter`
/// has; another adapter needs a few lines.
pub trait ServerAccess: Send + Sync + 'static {
    /// Runs `f` on the server under its lock, then lets the adapter route what `f` produced
    /// (the remote publish's `Broadcast`). Must not hold the lock while calling the backplane
    /// sink (adapters call sinks after unlocking).
    fn with_server(&self, f: &mut dyn FnMut(&mut Server));

    /// Whether the server has shut down (shutdown begun and no connection left); the
    /// backplane task then ends by itself, dropping its Redis connections (so Redis forgets
    /// this node's subscriptions). Until then, the "user left" publishes of a draining
    /// shutdown still reach the other nodes.
    fn has_stopped(&self) -> bool {
        false
    }
}

#[cfg(feature = "tokio")]
impl ServerAccess for wskit_tokio::Handle {
    fn with_server(&self, f: &mut dyn FnMut(&mut Server)) {
        wskit_tokio::Handle::with_server(self, |s| f(s));
    }

    fn has_stopped(&self) -> bool {
        self.is_shutting_down() && self.connection_count() == 0
    }
}

#[cfg(feature = "smol")]
impl ServerAccess for wskit_async_std::Handle {
    fn with_server(&self, f: &mut dyn FnMut(&mut Server)) {
        wskit_async_std::Handle::with_server(self, |s| f(s));
    }

    fn has_stopped(&self) -> bool {
        self.is_shutting_down() && self.connection_count() == 0
    }
}

#[cfg(feature = "blocking")]
impl ServerAccess for wskit_blocking::Handle {
    fn with_server(&self, f: &mut dyn FnMut(&mut Server)) {
        wskit_blocking::Handle::with_server(self, |s| f(s));
    }

    fn has_stopped(&self) -> bool {
        self.is_shutting_down() && self.connection_count() == 0
    }
}

impl ServerAccess for Arc<wskit_adapter::Shared> {
    fn with_server(&self, f: &mut dyn FnMut(&mut Server)) {
        wskit_adapter::Shared::with_server(self, Instant::now(), |s| f(s));
    }

    fn has_stopped(&self) -> bool {
        self.is_shutting_down() && self.connection_count() == 0
    }
}

/// Runs `f` through [`ServerAccess::with_server`] and returns its result (`None` only if an
/// implementation broke its contract and never called the closure).
pub(crate) fn query<N: ServerAccess + ?Sized, R>(
    node: &N,
    f: impl FnOnce(&mut Server) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    node.with_server(&mut |s| {
        if let Some(f) = f.take() {
            out = Some(f(s));
        }
    });
    out
}
