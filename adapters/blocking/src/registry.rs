//! Every socket a connection thread serves, so a shutdown can find them: it drops connections
//! still in their handshake, waits for the rest to drain, and past its deadline shuts every
//! socket, which wakes any thread blocked on one (a read returns end-of-file, a write fails).

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Instant;

struct Entry {
    stream: Arc<TcpStream>,
    /// The thread serving it (unparked to interrupt an authentication).
    thread: Thread,
    /// Past its 101: a shutdown closes it with 1001 instead of dropping it.
    open: bool,
}

#[derive(Default)]
struct Inner {
    next: u64,
    live: HashMap<u64, Entry>,
}

/// The live connection threads and their sockets.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
    empty: Condvar,
}

/// A connection thread's place in the registry; leaving it (drop) may end a shutdown's wait.
pub(crate) struct Seat {
    registry: Arc<Registry>,
    id: u64,
}

impl Registry {
    /// Registers the calling thread as the server of `stream`.
    pub(crate) fn enter(self: &Arc<Self>, stream: Arc<TcpStream>) -> Seat {
        let mut inner = self.inner.lock();
        let id = inner.next;
        inner.next += 1;
        inner.live.insert(
            id,
            Entry {
                stream,
                thread: thread::current(),
                open: false,
            },
        );
        Seat {
            registry: self.clone(),
            id,
        }
    }

    /// Connection threads alive.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// Drops every connection that has not upgraded yet (shutdown: they will get no 101).
    pub(crate) fn drop_handshakes(&self) {
        let inner = self.inner.lock();
        for entry in inner.live.values().filter(|e| !e.open) {
            entry.interrupt();
        }
    }

    /// Shuts every socket (a shutdown past its deadline).
    pub(crate) fn interrupt_all(&self) {
        let inner = self.inner.lock();
        inner.live.values().for_each(Entry::interrupt);
    }

    /// Waits until no connection thread is left, or `deadline`. Returns whether none is.
    pub(crate) fn wait_empty(&self, deadline: Instant) -> bool {
        let mut inner = self.inner.lock();
        while !inner.live.is_empty() {
            if self.empty.wait_until(&mut inner, deadline).timed_out() {
                return inner.live.is_empty();
            }
        }
        true
    }
}

impl Entry {
    fn interrupt(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.thread.unpark();
    }
}

impl Seat {
    /// The 101 is written and the calling thread serves the connection from now on.
    pub(crate) fn opened(&self) {
        if let Some(entry) = self.registry.inner.lock().live.get_mut(&self.id) {
            entry.open = true;
            entry.thread = thread::current();
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock();
        inner.live.remove(&self.id);
        if inner.live.is_empty() {
            self.registry.empty.notify_all();
        }
    }
}
