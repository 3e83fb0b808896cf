//! Readings of a process from `/proc`: CPU time (utime + stime) and resident memory.
//!
//! The server's CPU time over the measured window is the denominator of every "per server
//! CPU-second" figure; our own CPU time tells whether the load generator was the bottleneck.

use crate::{BenchError, Result};
use std::time::Instant;

/// Linux reports `/proc/PID/stat` times in clock ticks of `USER_HZ`, which is 100 on every
/// architecture Linux supports for userspace ABI purposes.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A process to read: the server (`--server-pid`) or ourselves.
#[derive(Debug, Clone, Copy)]
pub enum Proc {
    /// A process by id.
    Pid(u32),
    /// This process (`/proc/self`).
    Own,
}

impl Proc {
    fn path(&self, file: &str) -> String {
        match self {
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
            Proc::Own => format!("/proc/self/{file}"),
        }
    }

    fn read(&self, file: &str) -> Result<String> {
        std::fs::read_to_string(self.path(file)).map_err(|source| BenchError::Proc {
            pid: match self {
                Proc::Pid(p) => *p,
                Proc::Own => std::process::id(),
            },
            source,
        })
    }

    /// User + system CPU seconds consumed so far, all threads.
    pub fn cpu_seconds(&self) -> Result<f64> {
        self.cpu_split().map(|(u, s)| u + s)
    }

    /// (user, system) CPU seconds consumed so far, all threads.
    pub fn cpu_split(&self) -> Result<(f64, f64)> {
        parse_cpu_seconds(&self.read("stat")?)
            .ok_or_else(|| BenchError::Protocol(format!("unparsable {}", self.path("stat"))))
    }

    /// Resident set size in bytes (`VmRSS` in `/proc/PID/status`).
    pub fn rss_bytes(&self) -> Result<u64> {
        parse_rss_bytes(&self.read("status")?)
            .ok_or_else(|| BenchError::Protocol(format!("no VmRSS in {}", self.path("status"))))
    }
}

/// utime and stime are fields 14 and 15; the command name (field 2) may contain spaces and
/// parentheses, so count fields after its closing parenthesis.
fn parse_cpu_seconds(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((
        utime as f64 / CLOCK_TICKS_PER_SEC,
        stime as f64 / CLOCK_TICKS_PER_SEC,
    ))
}

fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time of the server (if known) and of this process, from `start` to `stop`.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    started: Instant,
    server: Option<(Proc, (f64, f64))>,
    own: f64,
}

/// What a [`CpuWindow`] measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CpuUsage {
    /// Wall-clock seconds of the window.
    pub wall_secs: f64,
    /// Server CPU seconds spent in it, if `--server-pid` was given.
    pub server_cpu_secs: Option<f64>,
    /// The part of `server_cpu_secs` spent in user space (the rest is the kernel: syscalls,
    /// TCP, wakeups). Tells framework overhead from I/O cost.
    pub server_user_secs: Option<f64>,
    /// The load generator's own CPU seconds in it.
    pub client_cpu_secs: f64,
}

impl CpuWindow {
    /// Reads both processes now.
    pub fn start(server: Option<u32>) -> Result<Self> {
        let server = match server {
            Some(pid) => {
                let p = Proc::Pid(pid);
                Some((p, p.cpu_split()?))
            }
            None => None,
        };
        Ok(CpuWindow {
            started: Instant::now(),
            server,
            own: Proc::Own.cpu_seconds()?,
        })
    }

    /// Reads both again and returns the differences.
    pub fn stop(&self) -> Result<CpuUsage> {
        let (server_cpu_secs, server_user_secs) = match self.server {
            Some((p, (user0, sys0))) => {
                let (user, sys) = p.cpu_split()?;
                (Some(user - user0 + sys - sys0), Some(user - user0))
            }
            None => (None, None),
        };
        Ok(CpuUsage {
            wall_secs: self.started.elapsed().as_secs_f64(),
            server_cpu_secs,
            server_user_secs,
            client_cpu_secs: Proc::Own.cpu_seconds()? - self.own,
        })
    }
}

impl CpuUsage {
    /// `count` per server CPU-second, if the server's CPU time is known and non-zero.
    pub fn per_server_cpu_sec(&self, count: u64) -> Option<f64> {
        self.server_cpu_secs
            .filter(|&s| s > 0.0)
            .map(|s| count as f64 / s)
    }

    /// `count` per wall-clock second.
    pub fn per_sec(&self, count: u64) -> f64 {
        count as f64 / self.wall_secs.max(1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis must not shift the fields.
        let stat = "1234 (my (odd) srv) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 4 0 100";
        assert_eq!(parse_cpu_seconds(stat), Some((2.5, 0.75)));
    }

    #[test]
    fn rss_is_read_in_kib() {
        let status = "Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t    2048 kB\nThreads: 1\n";
        assert_eq!(parse_rss_bytes(status), Some(2048 * 1024));
    }

    #[test]
    fn own_process_is_readable() {
        assert!(Proc::Own.cpu_seconds().unwrap() >= 0.0);
        assert!(Proc::Own.rss_bytes().unwrap() > 0);
    }
}
