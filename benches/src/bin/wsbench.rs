//! `wsbench`: load generator for the wskit chat protocol (SPEC §3), for any server that speaks it.
//!
//! ```text
//! wsbench room  --addr 127.0.0.1:3000 --server-pid PID --members 200 --senders 10
//! wsbench echo  --conns 50
//! wsbench rooms --rooms 100 --churn 0.2
//! wsbench connect --concurrency 32
//! wsbench idle  --conns 10000 --server-pid PID
//! wsbench plot  --input results/sweep.jsonl --out results/sweep.png
//! wsbench compare --input results/compare.jsonl --baseline bun
//! ```
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use wskit_bench::report::Report;
use wskit_bench::scenario::{connect, echo, idle, room, rooms, Common};
use wskit_bench::{client, plot, summary};

#[derive(Parser)]
#[command(name = "wsbench", about = "Load generator for the wskit chat protocol")]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// Print one line of JSON with the results (after the human-readable lines, on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Runtime worker threads; 1 runs everything on one thread (pin it with taskset).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    /// Exit non-zero if a correctness counter (lost, duplicated, reordered, ...) is not zero.
    #[arg(long, global = true)]
    strict: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Closed-loop round trips on /ws/echo.
    Echo(echo::EchoArgs),
    /// One room: N members, S senders with bounded windows; checks exactly-once in-order delivery.
    Room(room::RoomArgs),
    /// Many rooms of 10 plus personal topics, with join/leave churn.
    Rooms(rooms::RoomsArgs),
    /// Authenticated upgrades per second.
    Connect(connect::ConnectArgs),
    /// Server memory per idle authenticated connection (needs --server-pid).
    Idle(idle::IdleArgs),
    /// Plot throughput and p99 against connection count from --json output lines.
    Plot(PlotArgs),
    /// Medians and ratios against a baseline server, as a Markdown table, from --json lines.
    Compare(CompareArgs),
}

#[derive(clap::Args)]
struct CompareArgs {
    /// JSON-lines files written by earlier runs with --json.
    #[arg(long, required = true)]
    input: Vec<PathBuf>,
    /// The label the ratios are against.
    #[arg(long, default_value = "bun")]
    baseline: String,
}

#[derive(clap::Args)]
struct PlotArgs {
    /// JSON-lines files written by earlier runs with --json.
    #[arg(long, required = true)]
    input: Vec<PathBuf>,
    /// PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Which scenario's lines to plot.
    #[arg(long, default_value = "room")]
    scenario: String,
    /// Which throughput to plot.
    #[arg(long, default_value = "deliveries")]
    rate: String,
    /// Title above the panels.
    #[arg(long, default_value = "wsbench")]
    title: String,
}

/// Counters that must be zero for a run to count as correct.
const MUST_BE_ZERO: [&str; 8] = [
    "lost",
    "duplicated",
    "reordered",
    "delivered_to_sender",
    "error_replies",
    "closed_by_server",
    "order_violations",
    "wrong_replies",
];

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Scenario::Plot(p) = &cli.scenario {
        let result = plot::load(&p.input, &p.scenario, &p.rate)
            .and_then(|s| plot::draw(&s, &p.out, &p.title, &p.rate));
        return match result {
            Ok(()) => {
                println!("wrote {}", p.out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wsbench plot: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Scenario::Compare(c) = &cli.scenario {
        return match summary::compare(&c.input, &c.baseline) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wsbench compare: {e}");
                ExitCode::FAILURE
            }
        };
    }
    client::raise_fd_limit();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsbench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: wskit_bench::Result<Report> = runtime.block_on(async {
        match &cli.scenario {
            Scenario::Echo(a) => echo::run(&cli.common, a).await,
            Scenario::Room(a) => room::run(&cli.common, a).await,
            Scenario::Rooms(a) => rooms::run(&cli.common, a).await,
            Scenario::Connect(a) => connect::run(&cli.common, a).await,
            Scenario::Idle(a) => idle::run(&cli.common, a).await,
            Scenario::Plot(_) | Scenario::Compare(_) => unreachable!("handled above"),
        }
    });
    // Connections still open are dropped with the runtime; do not wait for servers to close them.
    runtime.shutdown_background();
    match result {
        Ok(report) => {
            print!("{}", report.to_text());
            if cli.json {
                println!("{}", report.to_json());
            }
            let bad: Vec<_> = MUST_BE_ZERO
                .iter()
                .filter(|n| report.get_counter(n).is_some_and(|v| v != 0))
                .collect();
            if !bad.is_empty() {
                eprintln!("wsbench: correctness counters not zero: {bad:?}");
                if cli.strict {
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsbench {}: {e}", report_name(&cli.scenario));
            ExitCode::FAILURE
        }
    }
}

fn report_name(s: &Scenario) -> &'static str {
    match s {
        Scenario::Echo(_) => "echo",
        Scenario::Room(_) => "room",
        Scenario::Rooms(_) => "rooms",
        Scenario::Connect(_) => "connect",
        Scenario::Idle(_) => "idle",
        Scenario::Plot(_) => "plot",
        Scenario::Compare(_) => "compare",
    }
}
