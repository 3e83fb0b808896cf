//! Measures the server's resident memory per idle authenticated connection.
//!
//! ```text
//! cargo run --release -p wskit-tests --bin idle-conns -- --conns 10000 [--sources 4] [--adapter A]
//! ```
//!
//! The server runs in a child process (this binary with `--serve`), so the clients' memory is
//! not counted. The parent opens `--conns` authenticated WebSocket connections (spread over
//! `--sources` loopback source addresses, 127.0.0.1, .2, ...), keeps them idle, and reports
//! the growth of the child's `VmRSS` divided by the number of connections.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wskit::{Route, Server, TokenAuth, TokenSource};

const TOKEN: &str = "idle-token";

#[derive(Clone)]
#[allow(dead_code)] // the user is what an authenticated connection keeps; nothing reads it here
struct User {
    id: u64,
}

fn server() -> Server {
    let auth = TokenAuth::new_sync(|token: String| (token == TOKEN).then_some(User { id: 1 }))
        .sources([TokenSource::query("token")]);
    let route = Route::new("/ws")
        .authenticate(auth)
        .on_text(|ws, _ctx, text: &str| ws.send_text(text));
    Server::builder().route(route).build().expect("valid route")
}

/// The server side, in the child process, on the adapter the parent named.
fn serve(adapter: &str) -> ExitCode {
    match adapter {
        "tokio" => serve_tokio(),
        "async-std" => serve_async_std(),
        "smol" => serve_smol(),
        "blocking" => serve_blocking(),
        other => {
            eprintln!("idle-conns: adapter {other} is not wired into this binary");
            ExitCode::from(2)
        }
    }
}

/// wskit-async-std on async-std's global executor.
fn serve_async_std() -> ExitCode {
    async_std::task::block_on(async {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = wskit_async_std::Builder::new(server())
            .listen(listener)
            .expect("listen");
        println!("{}", running.local_addr());
        running.wait().await;
    });
    ExitCode::SUCCESS
}

/// wskit-async-std on smol's global executor (`SMOL_THREADS` threads, default 1).
fn serve_smol() -> ExitCode {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = wskit_async_std::Builder::new(server())
            .spawner(wskit_async_std::Spawner::smol())
            .listen(listener)
            .expect("listen");
        println!("{}", running.local_addr());
        running.wait().await;
    });
    ExitCode::SUCCESS
}

/// wskit-blocking: one thread per connection (a small stack, mostly untouched).
fn serve_blocking() -> ExitCode {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = wskit_blocking::Builder::new(server())
        .listen(listener)
        .expect("listen");
    println!("{}", running.local_addr());
    // Runs until the parent kills this process.
    running.wait();
    ExitCode::SUCCESS
}

fn serve_tokio() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = wskit_tokio::Builder::new(server())
            .listen(listener)
            .expect("listen");
        println!("{}", running.local_addr());
        // Runs until the parent kills this process.
        running.wait().await;
    });
    ExitCode::SUCCESS
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// A number from `/proc/PID/status` (`VmRSS:`, `VmSize:`, `Threads:`; sizes in KiB).
fn proc_status(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

async fn open(addr: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(addr).await?;
    let req = format!(
        "GET /ws?token={TOKEN} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(stream)
}

async fn open_many(
    addr: SocketAddr,
    n: usize,
    sources: u8,
    into: &mut Vec<TcpStream>,
) -> std::io::Result<()> {
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..n {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % sources as usize) as u8));
        pending.spawn(open(addr, source));
        if pending.len() >= 256 {
            into.push(pending.join_next().await.expect("task").expect("join")?);
        }
    }
    while let Some(done) = pending.join_next().await {
        into.push(done.expect("join")?);
    }
    Ok(())
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> ExitCode {
    let mut conns = 10_000usize;
    let mut sources = 1u8;
    let mut adapter = String::from("tokio");
    let mut serve_mode = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serve" => serve_mode = true,
            "--adapter" => adapter = args.next().unwrap_or(adapter),
            "--conns" => conns = args.next().and_then(|v| v.parse().ok()).unwrap_or(conns),
            "--sources" => sources = args.next().and_then(|v| v.parse().ok()).unwrap_or(1).max(1),
            _ => {
                eprintln!("usage: idle-conns [--conns N] [--sources K] [--adapter tokio|async-std|smol|blocking]");
                return ExitCode::from(2);
            }
        }
    }
    if serve_mode {
        return serve(&adapter);
    }
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--serve")
        .args(["--adapter", &adapter])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server address");
    let child = Killed(child);
    let pid = child.0.id();
    let addr: SocketAddr = line.trim().parse().expect("address");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = rt.block_on(async {
        // Warm up: threads, per-thread buffers, allocator arenas, table growth to a few hundred.
        let mut warm = Vec::new();
        open_many(addr, 500, sources, &mut warm).await?;
        drop(warm);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);
        let (vm_before, threads_before) =
            (proc_status(pid, "VmSize:"), proc_status(pid, "Threads:"));
        let started = Instant::now();
        let mut streams = Vec::with_capacity(conns);
        open_many(addr, conns, sources, &mut streams).await?;
        let opened = started.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_kib(pid);
        let (vm_after, threads_after) = (proc_status(pid, "VmSize:"), proc_status(pid, "Threads:"));
        // Address space reserved (thread stacks, mostly untouched) next to the resident set.
        println!(
            "{adapter}: server virtual size {vm_before} KiB -> {vm_after} KiB; threads \
             {threads_before} -> {threads_after}"
        );
        Ok::<_, std::io::Error>((before, after, opened, streams.len()))
    });
    drop(child);
    match result {
        Ok((before, after, opened, n)) => {
            let per_conn = (after.saturating_sub(before) as f64 * 1024.0) / n as f64;
            println!(
                "{adapter}: {n} idle authenticated connections opened in {opened:.2?}; server RSS \
                 {before} KiB -> {after} KiB; {per_conn:.0} bytes ({:.2} KiB) per connection",
                per_conn / 1024.0
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idle-conns: {e} (raise `ulimit -n`, or use --sources to spread ports)");
            ExitCode::FAILURE
        }
    }
}
