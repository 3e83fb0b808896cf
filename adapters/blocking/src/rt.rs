//! What every thread of a server shares ([`Rt`]), and the driver thread: it applies
//! `ServerHandle` commands, fires the core's timers (pings, idle timeouts, expired
//! authentications) and the connections' close deadlines, then parks until the next one is due
//! or it is unparked (new commands, an earlier timer).

use crate::conn::ConnCell;
use crate::pool::{Pool, Unpark};
use crate::registry::Registry;
use parking_lot::Mutex;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::thread::{self, JoinHandle, Thread};
use std::time::Instant;
use wskit_adapter::Shared;

/// Shared by the accept, connection, pool and driver threads of one server.
pub(crate) struct Rt {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) timers: Timers,
    /// Set once shutdown began: no new connections, handshakes give up.
    pub(crate) stopping: AtomicBool,
    /// Stack size of connection and pool threads.
    pub(crate) stack_size: usize,
    driver_stop: AtomicBool,
}

impl Rt {
    pub(crate) fn new(shared: Arc<Shared>, pool: Arc<Pool>, stack_size: usize) -> Arc<Self> {
        Arc::new(Rt {
            shared,
            pool,
            registry: Arc::default(),
            timers: Timers::default(),
            stopping: AtomicBool::new(false),
            stack_size,
            driver_stop: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Starts the driver thread.
    pub(crate) fn start_driver(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let rt = self.clone();
        let handle = thread::Builder::new()
            .name("wskit-driver".into())
            .stack_size(self.stack_size)
            .spawn(move || rt.drive())?;
        let _ = self.timers.driver.set(handle.thread().clone());
        Ok(handle)
    }

    /// Stops the driver thread (join its handle afterwards).
    pub(crate) fn stop_driver(&self) {
        self.driver_stop.store(true, Ordering::SeqCst);
        self.timers.wake_driver();
    }

    fn drive(&self) {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        while !self.driver_stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let core = self.shared.drive(now, &waker);
            let deadlines = self.timers.fire(now);
            let next = match (core, deadlines) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // An unpark that raced ahead of this park makes it return at once: nothing is lost.
            match next {
                Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
                None => thread::park(),
            }
        }
        tracing::debug!("driver stopped");
    }
}

/// A connection's close deadline.
struct Timer {
    at: Instant,
    cell: Weak<ConnCell>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    /// Reversed: the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.at.cmp(&self.at)
    }
}

/// Close deadlines of connections, fired by the driver. Only closing connections have one, so
/// the heap stays small outside a shutdown.
#[derive(Default)]
pub(crate) struct Timers {
    heap: Mutex<BinaryHeap<Timer>>,
    driver: OnceLock<Thread>,
}

impl Timers {
    /// Expires `cell` at `at` (see [`ConnCell::expire`]).
    pub(crate) fn add(&self, at: Instant, cell: Weak<ConnCell>) {
        let earliest = {
            let mut heap = self.heap.lock();
            let earliest = heap.peek().is_none_or(|t| at < t.at);
            heap.push(Timer { at, cell });
            earliest
        };
        if earliest {
            self.wake_driver();
        }
    }

    fn wake_driver(&self) {
        if let Some(driver) = self.driver.get() {
            driver.unpark();
        }
    }

    /// Expires what is due; returns the next deadline.
    fn fire(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut heap = self.heap.lock();
            while heap.peek().is_some_and(|t| t.at <= now) {
                due.extend(heap.pop());
            }
            heap.peek().map(|t| t.at)
        };
        for timer in due {
            if let Some(cell) = timer.cell.upgrade() {
                cell.expire();
            }
        }
        next
    }
}
