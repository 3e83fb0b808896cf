//! Raw echo of text and binary frames through the framework, for the Autobahn suite.
//!
//! ```text
//! cargo run --release -p wskit-tests --bin autobahn-echo -- --adapter tokio --addr 127.0.0.1:9001
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use wskit::{Limits, Route, Server};

const USAGE: &str =
    "usage: autobahn-echo [--adapter tokio|async-std|smol|blocking] [--addr HOST:PORT] | --list-adapters";

/// Adapters wired into this binary (the others are accepted but refused with a clear error).
const WIRED: &[&str] = &["tokio", "async-std", "smol", "blocking"];

fn echo_server() -> Server {
    let limits = Limits::default()
        .max_payload(16 * 1024 * 1024)
        .max_outbound_bytes(64 * 1024 * 1024);
    let route = Route::new("/")
        .limits(limits)
        .on_text(|ws, _ctx, text: &str| ws.send_text(text))
        .on_binary(|ws, _ctx, data| ws.send_binary(data));
    Server::builder()
        .route(route)
        .build()
        .expect("the echo route is valid")
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut adapter = String::from("tokio");
    let mut addr: SocketAddr = ([127, 0, 0, 1], 9001).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--list-adapters" {
            WIRED.iter().for_each(|a| println!("{a}"));
            return ExitCode::SUCCESS;
        }
        let value = args.next();
        match (arg.as_str(), value) {
            ("--adapter", Some(v)) => adapter = v,
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(e) => {
                    eprintln!("bad --addr {v}: {e}\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match adapter.as_str() {
        "tokio" => run_tokio(addr),
        "async-std" => run_async_std(addr),
        "smol" => run_smol(addr),
        "blocking" => run_blocking(addr),
        other => {
            eprintln!("autobahn-echo: unknown adapter {other}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_tokio(addr: SocketAddr) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("autobahn-echo: cannot bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("autobahn-echo (tokio) listening on {addr}");
        match wskit_tokio::serve(listener, echo_server()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("autobahn-echo: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Binds `addr`, or says why not.
fn bind(addr: SocketAddr) -> Option<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| eprintln!("autobahn-echo: cannot bind {addr}: {e}"))
        .ok()
}

fn served(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// wskit-async-std on async-std's global executor.
fn run_async_std(addr: SocketAddr) -> ExitCode {
    let Some(listener) = bind(addr) else {
        return ExitCode::FAILURE;
    };
    eprintln!("autobahn-echo (async-std) listening on {addr}");
    served(async_std::task::block_on(wskit_async_std::serve(
        listener,
        echo_server(),
    )))
}

/// wskit-async-std on a smol `Executor` run by one thread per core.
fn run_smol(addr: SocketAddr) -> ExitCode {
    let Some(listener) = bind(addr) else {
        return ExitCode::FAILURE;
    };
    eprintln!("autobahn-echo (smol) listening on {addr}");
    let ex = std::sync::Arc::new(smol::Executor::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for _ in 1..threads {
        let ex = ex.clone();
        std::thread::spawn(move || smol::block_on(ex.run(std::future::pending::<()>())));
    }
    let serve = wskit_async_std::serve(listener, echo_server())
        .spawner(wskit_async_std::Spawner::executor(ex.clone()));
    served(smol::block_on(ex.run(serve)))
}

/// wskit-blocking: a thread per connection, blocking sockets.
fn run_blocking(addr: SocketAddr) -> ExitCode {
    let Some(listener) = bind(addr) else {
        return ExitCode::FAILURE;
    };
    eprintln!("autobahn-echo (blocking) listening on {addr}");
    served(wskit_blocking::serve(listener, echo_server()).run())
}
