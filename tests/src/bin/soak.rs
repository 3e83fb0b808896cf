//! Soak test: thousands of connections churning while rooms publish, with every delivery
//! checked (no loss, duplication or reordering for healthy clients) and the server's memory
//! measured before, during and after.
//!
//! ```text
//! cargo run --release -p wskit-tests --bin soak -- --adapter tokio --secs 60 --conns 2000
//! ```
//!
//! Options: `--adapter tokio|tokio+axum|async-std|smol|blocking`, `--secs N`, `--conns N`,
//! `--interval-ms N` (publish interval), `--rounds N` (repeat the churn against the same server:
//! RSS must plateau), `--max-rss-growth-mib N` (allowed RSS growth after the first round),
//! `--json` (print the full report as JSON too). Exits non-zero when a check fails.
//! The server runs in this process; the clients run in a child process (this binary with
//! `--client`), so the RSS figures are the server's.

use std::process::ExitCode;
use wskit_tests::hostile::soak::{self, Options};

fn usage() -> ExitCode {
    eprintln!(
        "usage: soak [--adapter NAME] [--secs N] [--conns N] [--interval-ms N] \
         [--rounds N] [--max-rss-growth-mib N] [--json]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut options = Options::default();
    let mut client_addr = None;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        let parsed = match arg.as_str() {
            "--adapter" => value().map(|v| options.adapter = v).is_some(),
            "--secs" => value()
                .and_then(|v| v.parse().ok())
                .map(|v| options.secs = v)
                .is_some(),
            "--conns" => value()
                .and_then(|v| v.parse().ok())
                .map(|v| options.conns = v)
                .is_some(),
            "--interval-ms" => value()
                .and_then(|v| v.parse().ok())
                .map(|v| options.interval_ms = v)
                .is_some(),
            "--rounds" => value()
                .and_then(|v| v.parse().ok())
                .map(|v| options.rounds = v)
                .is_some(),
            "--max-rss-growth-mib" => value()
                .and_then(|v| v.parse().ok())
                .map(|v| options.max_rss_growth_mib = v)
                .is_some(),
            "--json" => {
                json = true;
                true
            }
            // Internal: the client process.
            "--client" => true,
            "--addr" => value()
                .and_then(|v| v.parse().ok())
                .map(|a| client_addr = Some(a))
                .is_some(),
            "--options" => value()
                .and_then(|v| serde_json::from_str(&v).ok())
                .map(|o| options = o)
                .is_some(),
            _ => false,
        };
        if !parsed {
            return usage();
        }
    }
    if let Some(addr) = client_addr {
        let report = soak::client::run(addr, options);
        println!(
            "report {}",
            serde_json::to_string(&report).expect("report serializes")
        );
        return ExitCode::SUCCESS;
    }
    if !soak::ADAPTERS.contains(&options.adapter.as_str()) {
        eprintln!("unknown adapter {:?}", options.adapter);
        return usage();
    }
    let exe = std::env::current_exe().expect("own path");
    let report = soak::run(&exe, options);
    println!("{}", report.summary());
    for sample in report.rounds.iter().flat_map(|r| &r.client.samples) {
        println!("  {sample}");
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
