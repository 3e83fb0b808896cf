//! Log capture for the "tokens never appear in logs" case (SPEC §4).
//!
//! The server under test runs on its own threads, so a thread-local subscriber would miss it:
//! the capture installs the process-wide subscriber (once; the first caller wins), at TRACE for
//! everything wskit and its HTTP stack emit, `log` records included. It keeps no log text:
//! each formatted event is scanned for the strings a test watches, and only matching lines are
//! kept, so other tests running meanwhile cost formatting time but no memory.
//!
//! tungstenite's TRACE output is left out: on the server it only traces frames (the upgrade
//! request never reaches it), and its client-side handshake trace prints the test client's own
//! request, token included.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The filter the capture uses.
pub const FILTER: &str = "trace,tungstenite=debug,tungstenite::handshake::client=off";

/// What the capture has seen.
#[derive(Debug, Default)]
pub struct Capture {
    watched: Mutex<Vec<(String, Vec<String>)>>,
    events: AtomicU64,
}

impl Capture {
    /// Starts recording every event whose formatted line contains `needle`.
    pub fn watch(&self, needle: &str) {
        self.lock().push((needle.to_owned(), Vec::new()));
    }

    /// The lines that contained `needle` since it was watched.
    pub fn hits(&self, needle: &str) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(n, _)| n == needle)
            .flat_map(|(_, lines)| lines.iter().cloned())
            .collect()
    }

    /// Stops watching `needle`.
    pub fn forget(&self, needle: &str) {
        self.lock().retain(|(n, _)| n != needle);
    }

    /// Events formatted since the capture started (all tests).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Vec<String>)>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, line: &[u8]) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let line = String::from_utf8_lossy(line);
        for (needle, hits) in self.lock().iter_mut() {
            if line.contains(needle.as_str()) && hits.len() < 16 {
                hits.push(line.trim_end().to_owned());
            }
        }
    }
}

/// The writer the subscriber formats each event into (one `write` per event).
pub struct Sink(&'static Capture);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.record(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for &'static Capture {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        Sink(self)
    }
}

/// The process-wide capture, installed on first use.
///
/// # Panics
/// If another global subscriber was installed first (nothing in this crate does).
pub fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(FILTER))
            .with_ansi(false)
            .with_thread_names(true)
            .with_writer(capture)
            .try_init()
            .expect("no other global subscriber is installed");
        capture
    })
}
