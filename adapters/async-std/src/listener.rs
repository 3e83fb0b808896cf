//! The TCP listener the adapter accepts from, whichever runtime's type it arrives as. All of
//! them are `async_io::Async<std::net::TcpListener>` underneath, so that is what is kept: one
//! reactor registration, no runtime-specific wrapper per accepted socket.

use async_io::Async;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

/// A listening socket registered with async-io's reactor. Build one with [`IntoListener`].
#[derive(Debug, Clone)]
pub struct Listener(Arc<Async<TcpListener>>);

impl Listener {
    /// Binds a new listener on `addr`.
    pub fn bind(addr: impl Into<SocketAddr>) -> io::Result<Self> {
        Ok(Listener(Arc::new(Async::<TcpListener>::bind(addr)?)))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// Waits for the next connection.
    pub(crate) async fn accept(&self) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        self.0.accept().await
    }
}

/// Anything [`Builder::listen`](crate::Builder::listen) accepts: std's, async-io's,
/// async-std's and smol's TCP listeners.
pub trait IntoListener {
    /// Registers the socket with the reactor (non-blocking mode) if it is not already.
    fn into_listener(self) -> io::Result<Listener>;
}

impl IntoListener for Listener {
    fn into_listener(self) -> io::Result<Listener> {
        Ok(self)
    }
}

impl IntoListener for TcpListener {
    fn into_listener(self) -> io::Result<Listener> {
        Ok(Listener(Arc::new(Async::new(self)?)))
    }
}

impl IntoListener for Async<TcpListener> {
    fn into_listener(self) -> io::Result<Listener> {
        Ok(Listener(Arc::new(self)))
    }
}

impl IntoListener for Arc<Async<TcpListener>> {
    fn into_listener(self) -> io::Result<Listener> {
        Ok(Listener(self))
    }
}

#[cfg(feature = "async-std")]
impl IntoListener for async_std::net::TcpListener {
    fn into_listener(self) -> io::Result<Listener> {
        TcpListener::try_from(self)?.into_listener()
    }
}

#[cfg(feature = "smol")]
impl IntoListener for smol::net::TcpListener {
    fn into_listener(self) -> io::Result<Listener> {
        Ok(Listener(Arc::<Async<TcpListener>>::from(self)))
    }
}
