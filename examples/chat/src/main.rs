//! `wskit-chat`: the chat server (SPEC §2, §3) and `wskit-chat export --out DIR`.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use wskit_chat::{build_server, web, ChatConfig, Jwt, DEV_SECRET};

#[derive(Parser)]
#[command(name = "wskit-chat", about = "The seed's chat application on wskit")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Which adapter runs the server (only tokio is available so far).
    #[arg(long, default_value = "tokio", value_parser = ["tokio"])]
    adapter: String,
    /// Allowed browser Origin (repeatable); none means any.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// HS256 secret for tokens.
    #[arg(long, env = "WSKIT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
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
        backplane: false,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
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
    match serve(cli.addr, config.jwt, server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Pages and `/token` from [`web::respond`]; everything else goes to the wskit service
/// (WebSocket routes, or its 404).
async fn serve(addr: SocketAddr, jwt: Jwt, server: wskit::Server) -> std::io::Result<()> {
    let ws = wskit_tokio::Builder::new(server).start();
    let service = ws.service();
    let app = axum::Router::new().fallback(move |req: Request| {
        let jwt = jwt.clone();
        let mut service = service.clone();
        async move {
            let (parts, body) = req.into_parts();
            let head = http::Request::from_parts(parts.clone(), ());
            if let Some(page) = web::respond(&head, &jwt) {
                return page.map(Body::from).into_response();
            }
            let req = http::Request::from_parts(parts, body);
            match tower_call(&mut service, req).await {
                Ok(res) => res.into_response(),
                Err(e) => Response::builder()
                    .status(500)
                    .body(Body::from(e.to_string()))
                    .unwrap(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "chat on http://{addr} (GET /token is a dev-only token mint)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    let report = ws.shutdown().await;
    tracing::info!(?report, "stopped");
    Ok(())
}

async fn tower_call<S>(service: &mut S, req: http::Request<Body>) -> Result<S::Response, S::Error>
where
    S: tower_service::Service<http::Request<Body>>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(req).await
}
