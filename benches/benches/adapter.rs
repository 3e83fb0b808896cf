//! The adapter's side of a delivery, without sockets: a publisher's read goes through
//! `Connection::receive` (frame parsing, the core, grouping, each recipient's queue), then every
//! recipient's writer drains its queue into a sink that takes everything. What is left of a
//! delivery's cost in the load tests is the kernel and the runtime's task wake-ups.
//!
//! `cargo bench -p wskit-bench --bench adapter`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;
use wskit::testing::upgrade_request;
use wskit::{Message, Route, Server};
use wskit_adapter::{Config, Connection, Shared, Upgrade};

/// `join:T` subscribes to T, `pub:T:x` publishes `x` to T.
fn server() -> Server {
    let route = Route::new("/").on_text(|ws, _ctx, text: &str| {
        if let Some(topic) = text.strip_prefix("join:") {
            ws.subscribe(topic).map(|_| ())
        } else {
            let rest = text.strip_prefix("pub:").unwrap_or(text);
            let (topic, body) = rest.split_once(':').unwrap_or((rest, ""));
            ws.publish_message(topic, Message::text(body));
            Ok(())
        }
    });
    Server::builder().route(route).build().expect("server")
}

fn open(shared: &Arc<Shared>) -> Connection {
    let req = upgrade_request("/").body(()).expect("request");
    match shared.upgrade(Instant::now(), &req, None) {
        Upgrade::Accept(a) => a.open(Instant::now()),
        other => panic!("not accepted: {other:?}"),
    }
}

/// A masked client text frame.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [7, 1, 9, 3];
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Drains a connection's queue into a sink that accepts every byte; returns the bytes.
fn drain(conn: &mut Connection) -> usize {
    let mut total = 0;
    conn.write_with(Instant::now(), |slices: &[IoSlice<'_>]| {
        let n: usize = slices.iter().map(|s| s.len()).sum();
        total += n;
        Ok(n)
    })
    .expect("sink never fails");
    total
}

/// A room of `members`, and one publisher whose every read holds `per_read` messages of about
/// 100 bytes (8 is what a busy `wsbench room` sender's reads hold; 1 is a quiet room).
fn fan_out(c: &mut Criterion, members: usize, per_read: usize) {
    let shared = Shared::new(server(), Config::default(), Box::new(drop));
    let mut room: Vec<Connection> = (0..members).map(|_| open(&shared)).collect();
    for conn in &mut room {
        conn.receive(Instant::now(), &client_frame(b"join:t"));
    }
    let mut publisher = open(&shared);
    let body = "x".repeat(90);
    let read: Vec<u8> = (0..per_read)
        .flat_map(|i| client_frame(format!("pub:t:{i}{body}").as_bytes()))
        .collect();
    let mut group = c.benchmark_group("adapter fan-out");
    group.throughput(Throughput::Elements((members * per_read) as u64));
    let name = format!("{per_read} message(s) per read to {members} members (per delivery)");
    group.bench_function(name, |b| {
        b.iter(|| {
            publisher.receive(Instant::now(), black_box(&read));
            let written: usize = room.iter_mut().map(drain).sum();
            assert!(written >= members * per_read * 90);
        })
    });
    group.finish();
}

fn adapter(c: &mut Criterion) {
    fan_out(c, 200, 8);
    fan_out(c, 200, 1);
}

criterion_group!(benches, adapter);
criterion_main!(benches);
