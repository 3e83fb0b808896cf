//! What a scenario reports: printed for people, and as one JSON line (`--json`) for scripts.

use crate::probe::CpuUsage;
use crate::stats::LatencySummary;
use serde::Serialize;
use std::fmt::Write as _;

/// One throughput figure: a count over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// What was counted (`deliveries`, `round_trips`, `upgrades`, ...).
    pub name: String,
    /// How many in the window.
    pub count: u64,
    /// Per wall-clock second.
    pub per_sec: f64,
    /// Per server CPU-second, when `--server-pid` was given.
    pub per_server_cpu_sec: Option<f64>,
}

/// The results of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Free label (`--label`), e.g. the server's name, for plots and comparisons.
    pub label: String,
    /// Connections the scenario held open (or opened, for `connect`).
    pub connections: usize,
    /// CPU and wall time of the measured window.
    pub cpu: Option<CpuUsage>,
    /// Throughputs.
    pub rates: Vec<Rate>,
    /// Latency percentiles, if the scenario measures latency.
    pub latency: Option<LatencySummary>,
    /// Named integers: correctness counters (must be zero where named so), memory figures.
    pub counters: Vec<(String, i64)>,
    /// Scenario parameters, for the record.
    pub params: serde_json::Value,
}

impl Report {
    /// A report with no figures yet.
    pub fn new(scenario: &str, label: &str, connections: usize, params: serde_json::Value) -> Self {
        Report {
            scenario: scenario.into(),
            label: label.into(),
            connections,
            cpu: None,
            rates: Vec::new(),
            latency: None,
            counters: Vec::new(),
            params,
        }
    }

    /// Adds a throughput computed from `count` over the window in `self.cpu`.
    pub fn rate(&mut self, name: &str, count: u64) {
        let (per_sec, per_server_cpu_sec) = match &self.cpu {
            Some(cpu) => (cpu.per_sec(count), cpu.per_server_cpu_sec(count)),
            None => (0.0, None),
        };
        self.rates.push(Rate {
            name: name.into(),
            count,
            per_sec,
            per_server_cpu_sec,
        });
    }

    /// Adds a named counter.
    pub fn counter(&mut self, name: &str, value: i64) {
        self.counters.push((name.into(), value));
    }

    /// The value of a counter, if present.
    pub fn get_counter(&self, name: &str) -> Option<i64> {
        self.counters.iter().find(|(n, _)| n == name).map(|c| c.1)
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("reports serialize")
    }

    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} [{}]: {} connections",
            self.scenario, self.label, self.connections
        );
        if let Some(cpu) = &self.cpu {
            let server = cpu
                .server_cpu_secs
                .map_or("unknown (no --server-pid)".into(), |c| {
                    let user = cpu.server_user_secs.unwrap_or(0.0);
                    format!(
                        "{c:.2} s ({:.0}% of one core; user {user:.2} s, kernel {:.2} s)",
                        100.0 * c / cpu.wall_secs,
                        c - user
                    )
                });
            let _ = writeln!(
                s,
                "  window {:.2} s; server CPU {server}; wsbench CPU {:.2} s ({:.0}%)",
                cpu.wall_secs,
                cpu.client_cpu_secs,
                100.0 * cpu.client_cpu_secs / cpu.wall_secs
            );
        }
        for r in &self.rates {
            let per_cpu = r.per_server_cpu_sec.map_or(String::new(), |v| {
                format!(", {} per server CPU-second", si(v))
            });
            let _ = writeln!(
                s,
                "  {}: {} ({}/s{per_cpu})",
                r.name,
                r.count,
                si(r.per_sec)
            );
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                s,
                "  latency: p50 {} p90 {} p99 {} p99.9 {} max {} ({} samples)",
                us(l.p50_us),
                us(l.p90_us),
                us(l.p99_us),
                us(l.p999_us),
                us(l.max_us),
                l.samples
            );
        }
        for (name, v) in &self.counters {
            let _ = writeln!(s, "  {name}: {v}");
        }
        s
    }
}

/// 1234567.0 -> "1.23M".
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_the_window_and_server_cpu() {
        let mut r = Report::new("room", "x", 3, serde_json::json!({}));
        r.cpu = Some(CpuUsage {
            wall_secs: 2.0,
            server_cpu_secs: Some(0.5),
            server_user_secs: Some(0.2),
            client_cpu_secs: 1.0,
        });
        r.rate("deliveries", 1000);
        assert_eq!(r.rates[0].per_sec, 500.0);
        assert_eq!(r.rates[0].per_server_cpu_sec, Some(2000.0));
        r.counter("lost", 0);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["rates"][0]["per_server_cpu_sec"], 2000.0);
        assert!(r.to_text().contains("2.0k per server CPU-second"));
    }

    #[test]
    fn si_prefixes() {
        assert_eq!(si(2_500_000.0), "2.50M");
        assert_eq!(si(1234.0), "1.2k");
        assert_eq!(si(12.0), "12.0");
    }
}
