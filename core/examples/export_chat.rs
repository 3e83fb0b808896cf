//! Writes the type export of the chat routes (SPEC §3): `websocket-types.ts`, `schemas.json`
//! and `asyncapi.json`.
//!
//! ```text
//! cargo run -p wskit --features garde --example export_chat -- --out DIR
//! ```

#[path = "../tests/common/export_chat.rs"]
mod export_chat;

use std::path::PathBuf;
use std::process::ExitCode;
use wskit::export::Export;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let out = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--out"), Some(dir), None) => PathBuf::from(dir),
        _ => {
            eprintln!("usage: export_chat --out DIR");
            return ExitCode::from(2);
        }
    };
    let export = Export::from_server(&export_chat::chat_server()).title("wskit chat");
    match export.write_to(&out) {
        Ok(()) => {
            println!("wrote the chat export to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("export failed: {e}");
            ExitCode::FAILURE
        }
    }
}
