//! Latency histograms and the run clock.
//!
//! Latencies are microseconds in an HDR histogram (3 significant digits, up to one minute).
//! Each task records into its own histogram and they are merged at the end, so recording costs
//! no synchronisation on the hot path.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The largest latency recorded, in microseconds; longer ones are clamped to it.
const MAX_US: u64 = 60_000_000;

/// A per-task latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, MAX_US, 3).expect("static bounds are valid"))
    }
}

impl Latency {
    /// Records one latency.
    pub fn record_us(&mut self, us: u64) {
        // `saturating_record` clamps to the highest trackable value instead of failing.
        self.0.saturating_record(us.max(1));
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Latency) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds always merge");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Percentiles of what was recorded.
    pub fn summary(&self) -> LatencySummary {
        let q = |p: f64| self.0.value_at_quantile(p);
        LatencySummary {
            samples: self.0.len(),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: self.0.max(),
        }
    }
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct LatencySummary {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

/// Microseconds since the first call in this process: the timestamp senders embed in messages
/// and receivers subtract from (one process, one monotonic clock).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The phase of a run, shared by all tasks: only what happens in [`Phase::Measure`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Load is running; not counted yet.
    Warmup = 0,
    /// The measured window.
    Measure = 1,
    /// Senders have stopped; in-flight messages are drained (checked, not counted).
    Drain = 2,
    /// Everyone stops.
    Stop = 3,
}

/// A cheap shared [`Phase`] cell.
#[derive(Debug, Clone, Default)]
pub struct PhaseCell(Arc<AtomicU8>);

impl PhaseCell {
    /// The current phase.
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            0 => Phase::Warmup,
            1 => Phase::Measure,
            2 => Phase::Drain,
            _ => Phase::Stop,
        }
    }

    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    /// Whether samples taken now count.
    pub fn measuring(&self) -> bool {
        self.get() == Phase::Measure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_merged_histograms() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for us in 1..=99 {
            a.record_us(us);
        }
        b.record_us(10_000);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.samples, 100);
        assert_eq!(s.p50_us, 50);
        assert_eq!(s.p99_us, 99);
        assert!(
            s.max_us >= 10_000 && s.max_us < 10_010,
            "3 significant digits"
        );
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let mut a = Latency::default();
        a.record_us(u64::MAX);
        assert_eq!(a.count(), 1);
    }

    #[test]
    fn phase_cell_round_trips() {
        let p = PhaseCell::default();
        assert_eq!(p.get(), Phase::Warmup);
        p.set(Phase::Measure);
        assert!(p.measuring());
        p.set(Phase::Stop);
        assert_eq!(p.get(), Phase::Stop);
    }
}
