//! `wsbench compare`: medians over rounds, per scenario and server, with ratios against a
//! baseline server (the Bun peer), from the JSON lines of earlier runs.
//!
//! Runs are grouped by scenario, connection count and offered rate (a closed-loop run and a
//! paced one are different experiments), then by label.

use crate::{BenchError, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The throughput each scenario is judged by.
fn main_rate(scenario: &str) -> &'static str {
    match scenario {
        "echo" => "round_trips",
        "connect" => "upgrades",
        _ => "deliveries",
    }
}

/// Counters summed over runs and shown when not zero.
const CHECKED: [&str; 7] = [
    "lost",
    "duplicated",
    "reordered",
    "delivered_to_sender",
    "closed_by_server",
    "order_violations",
    "wrong_replies",
];

#[derive(Debug, Default, Clone)]
struct Runs {
    per_cpu: Vec<f64>,
    per_sec: Vec<f64>,
    p99_us: Vec<f64>,
    server_cpu_util: Vec<f64>,
    ns_user: Vec<f64>,
    ns_kernel: Vec<f64>,
    client_cpu_util: Vec<f64>,
    bytes_per_conn: Vec<f64>,
    bad: BTreeMap<String, i64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Reads the runs and renders a Markdown table (one row per group and server).
pub fn compare(inputs: &[PathBuf], baseline: &str) -> Result<String> {
    // group -> label -> runs
    let mut groups: BTreeMap<String, BTreeMap<String, Runs>> = BTreeMap::new();
    for path in inputs {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let scenario = v["scenario"].as_str().unwrap_or("?");
            let mut key = format!("{scenario} {}", v["connections"]);
            if let Some(rate) = v["params"]["rate"].as_f64() {
                if scenario != "rooms" {
                    let _ = write!(key, " @{rate}/s");
                }
            }
            let runs = groups
                .entry(key)
                .or_default()
                .entry(v["label"].as_str().unwrap_or("?").to_owned())
                .or_default();
            if let Some(r) = v["rates"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["name"] == main_rate(scenario)))
            {
                runs.per_cpu.extend(r["per_server_cpu_sec"].as_f64());
                runs.per_sec.extend(r["per_sec"].as_f64());
                let count = r["count"].as_f64().unwrap_or(0.0);
                if let (Some(total), Some(user)) = (
                    v["cpu"]["server_cpu_secs"].as_f64(),
                    v["cpu"]["server_user_secs"].as_f64(),
                ) {
                    if count > 0.0 {
                        runs.ns_user.push(user * 1e9 / count);
                        runs.ns_kernel.push((total - user) * 1e9 / count);
                    }
                }
            }
            runs.p99_us.extend(v["latency"]["p99_us"].as_f64());
            let wall = v["cpu"]["wall_secs"].as_f64().unwrap_or(0.0);
            if wall > 0.0 {
                runs.server_cpu_util
                    .extend(v["cpu"]["server_cpu_secs"].as_f64().map(|c| c / wall));
                runs.client_cpu_util
                    .extend(v["cpu"]["client_cpu_secs"].as_f64().map(|c| c / wall));
            }
            for c in v["counters"].as_array().into_iter().flatten() {
                let (Some(name), Some(val)) = (c[0].as_str(), c[1].as_i64()) else {
                    continue;
                };
                if name == "bytes_per_connection" {
                    runs.bytes_per_conn.push(val as f64);
                } else if CHECKED.contains(&name) {
                    *runs.bad.entry(name.to_owned()).or_default() += val;
                }
            }
        }
    }
    if groups.is_empty() {
        return Err(BenchError::Protocol("no runs in the input".into()));
    }
    let mut out = String::new();
    out.push_str("| scenario | server | runs | per server CPU-second (median) | vs baseline | per second | p99 | server CPU | server ns each: user + kernel | wsbench CPU | correctness |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (group, labels) in &groups {
        let base = labels.get(baseline).and_then(|r| median(r.per_cpu.clone()));
        let base_mem = labels
            .get(baseline)
            .and_then(|r| median(r.bytes_per_conn.clone()));
        for (label, runs) in labels {
            let n = runs
                .per_cpu
                .len()
                .max(runs.bytes_per_conn.len())
                .max(runs.per_sec.len());
            let per_cpu = median(runs.per_cpu.clone());
            let ratio = match (per_cpu, base, median(runs.bytes_per_conn.clone()), base_mem) {
                (Some(a), Some(b), _, _) if b > 0.0 => format!("{:.2}x", a / b),
                (_, _, Some(m), Some(bm)) if bm > 0.0 => format!("{:.2}x memory", m / bm),
                _ => "-".into(),
            };
            let fmt_rate = |v: Option<f64>| v.map_or("-".into(), crate::report::si);
            let first = match median(runs.bytes_per_conn.clone()) {
                Some(b) => format!("{b:.0} B/conn"),
                None => fmt_rate(per_cpu),
            };
            let p99 = median(runs.p99_us.clone())
                .map_or("-".into(), |us| format!("{:.2} ms", us / 1000.0));
            let pct = |v: Option<f64>| v.map_or("-".into(), |u| format!("{:.0}%", u * 100.0));
            let bad: Vec<String> = runs
                .bad
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "| {group} | {label} | {n} | {first} | {ratio} | {} | {p99} | {} | {} | {} | {} |",
                fmt_rate(median(runs.per_sec.clone())),
                pct(median(runs.server_cpu_util.clone())),
                match (median(runs.ns_user.clone()), median(runs.ns_kernel.clone())) {
                    (Some(u), Some(k)) => format!("{u:.0} + {k:.0}"),
                    _ => "-".into(),
                },
                pct(median(runs.client_cpu_util.clone())),
                if bad.is_empty() {
                    "ok".into()
                } else {
                    bad.join(" ")
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_medians_against_the_baseline() {
        let run = |label: &str, per_cpu: f64, lost: i64| {
            format!(
                r#"{{"scenario":"room","label":"{label}","connections":200,"params":{{"rate":null}},"cpu":{{"wall_secs":2.0,"server_cpu_secs":1.0,"server_user_secs":0.25,"client_cpu_secs":0.5}},"rates":[{{"name":"deliveries","count":1,"per_sec":10.0,"per_server_cpu_sec":{per_cpu}}}],"latency":{{"p99_us":1500}},"counters":[["lost",{lost}]]}}"#
            )
        };
        let lines = [
            run("bun", 100.0, 0),
            run("bun", 300.0, 0),
            run("bun", 200.0, 0),
            run("wskit", 250.0, 0),
            run("wskit", 350.0, 2),
        ];
        let file = crate::temp_jsonl("cmp", &lines.join("\n"));
        let dir = file.parent().unwrap().to_path_buf();
        let table = compare(&[file], "bun").unwrap();
        let wskit = table.lines().find(|l| l.contains("| wskit |")).unwrap();
        assert!(
            wskit.contains("| 1.50x |"),
            "median 300 over median 200: {wskit}"
        );
        assert!(wskit.contains("lost=2"));
        assert!(wskit.contains("| 50% |"), "server CPU utilisation");
        assert!(
            wskit.contains("| 250000000 + 750000000 |"),
            "ns per delivery, count 1"
        );
        let bun = table.lines().find(|l| l.contains("| bun |")).unwrap();
        assert!(bun.contains("| 1.00x |") && bun.contains("| ok |"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
