//! `wskit-chat`: the chat server (SPEC §2, §3) and `wskit-chat export --out DIR`.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use wskit_chat::run::{run, AdapterKind, App};
use wskit_chat::{build_server, ChatConfig, Jwt, DEV_SECRET};

#[derive(Parser)]
#[command(name = "wskit-chat", about = "The seed's chat application on wskit")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Which adapter runs the server.
    #[arg(long, value_enum, default_value = "tokio")]
    adapter: AdapterKind,
    /// Allowed browser Origin (repeatable); none means any.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// HS256 secret for tokens.
    #[arg(long, env = "WSKIT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Redis URL (e.g. redis://127.0.0.1:6379): share rooms with every node on that Redis
    /// (wskit-redis backplane; any adapter).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Write websocket-types.ts, asyncapi.json and schemas.json for the chat routes.
    Export {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

fn config(cli: &Cli) -> ChatConfig {
    let secret = cli.jwt_secret.clone().unwrap_or_else(|| {
        tracing::warn!("no --jwt-secret or WSKIT_JWT_SECRET: using the dev default secret; never do this in production");
        DEV_SECRET.to_owned()
    });
    ChatConfig {
        jwt: Jwt::new(&secret),
        allowed_origins: cli.allowed_origins.clone(),
        backplane: cli.redis.is_some(),
    }
}

/// Ctrl-C or SIGTERM, once, as a channel any adapter can wait on.
fn stop_signal() -> Result<std::sync::mpsc::Receiver<()>, ctrlc::Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })?;
    Ok(rx)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = config(&cli);
    let server = match build_server(&config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "invalid routes");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Export { out }) = &cli.command {
        return match wskit::export::Export::from_server(&server)
            .title("wskit chat")
            .write_to(out)
        {
            Ok(()) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("export failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stop = match stop_signal() {
        Ok(stop) => stop,
        Err(e) => {
            tracing::error!(%e, "cannot install the Ctrl-C handler");
            return ExitCode::FAILURE;
        }
    };
    let app = App {
        server,
        jwt: config.jwt,
        addr: cli.addr,
        stop,
        redis: cli.redis.clone(),
    };
    match run(cli.adapter, app) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%e, addr = %cli.addr, "server failed");
            ExitCode::FAILURE
        }
    }
}
