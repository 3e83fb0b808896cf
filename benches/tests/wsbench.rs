//! Every wsbench scenario, briefly, against the chat app on wskit-tokio in this process: the
//! numbers are meaningless here, but the scenarios must set up, count, and find nothing lost,
//! duplicated or reordered; and a server that refuses the tokens must fail the run.

use std::net::SocketAddr;
use wskit_bench::report::Report;
use wskit_bench::scenario::{connect, echo, idle, room, rooms, Common};
use wskit_chat::{build_server, ChatConfig, Jwt, DEV_SECRET};

/// The chat server on its own runtime thread, on an ephemeral port.
fn start_chat(secret: &str) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let secret = secret.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let server = build_server(&ChatConfig {
                jwt: Jwt::new(&secret),
                allowed_origins: Vec::new(),
                backplane: false,
            })
            .unwrap();
            wskit_tokio::serve(listener, server).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn common(addr: SocketAddr) -> Common {
    Common {
        addr,
        sources: 4,
        server_pid: Some(std::process::id()),
        jwt_secret: DEV_SECRET.into(),
        warmup: 0.2,
        duration: 0.6,
        setup_concurrency: 8,
        label: "test".into(),
    }
}

fn run<F: std::future::Future<Output = wskit_bench::Result<Report>>>(f: F) -> Report {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
        .unwrap()
}

fn counter(r: &Report, name: &str) -> i64 {
    r.get_counter(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn rate(r: &Report, name: &str) -> u64 {
    r.rates.iter().find(|x| x.name == name).unwrap().count
}

#[test]
fn room_delivers_everything_once_and_in_order() {
    let c = common(start_chat(DEV_SECRET));
    let args = room::RoomArgs {
        members: 6,
        senders: 3,
        window: 4,
        rate: None,
        size: 8,
        room: "t".into(),
    };
    let r = run(room::run(&c, &args));
    assert!(rate(&r, "deliveries") > 0, "{}", r.to_text());
    for name in [
        "lost",
        "duplicated",
        "reordered",
        "delivered_to_sender",
        "closed_by_server",
    ] {
        assert_eq!(counter(&r, name), 0, "{name}: {}", r.to_text());
    }
    assert_eq!(counter(&r, "drained"), 1);
    assert!(r.cpu.unwrap().server_cpu_secs.is_some());
    // Paced: the offered load is what was asked for (within scheduling slack).
    let paced = room::RoomArgs {
        rate: Some(200.0),
        ..args
    };
    let r = run(room::run(&c, &paced));
    let sent = rate(&r, "messages_sent") as f64 / c.duration;
    assert!((100.0..=300.0).contains(&sent), "{sent} msg/s for 200");
    assert_eq!(counter(&r, "lost"), 0);
}

#[test]
fn echo_round_trips_and_connect_upgrades() {
    let c = common(start_chat(DEV_SECRET));
    let r = run(echo::run(
        &c,
        &echo::EchoArgs {
            conns: 4,
            rate: None,
            size: 16,
        },
    ));
    assert!(rate(&r, "round_trips") > 0);
    assert_eq!(counter(&r, "wrong_replies"), 0);
    assert!(r.latency.unwrap().p99_us > 0);
    let r = run(connect::run(
        &c,
        &connect::ConnectArgs {
            concurrency: 2,
            users: 3,
        },
    ));
    assert!(rate(&r, "upgrades") > 0, "{}", r.to_text());
    assert_eq!(counter(&r, "failures"), 0);
}

#[test]
fn rooms_churn_keeps_per_sender_order() {
    let c = common(start_chat(DEV_SECRET));
    let r = run(rooms::run(
        &c,
        &rooms::RoomsArgs {
            rooms: 3,
            room_size: 4,
            rate: 40.0,
            churn: 0.3,
            direct: 0.2,
            size: 8,
        },
    ));
    assert!(rate(&r, "deliveries") > 0, "{}", r.to_text());
    assert!(rate(&r, "moves") > 0);
    assert_eq!(counter(&r, "order_violations"), 0);
    assert_eq!(counter(&r, "error_replies"), 0);
}

#[test]
fn idle_reads_server_memory() {
    let c = common(start_chat(DEV_SECRET));
    let r = run(idle::run(
        &c,
        &idle::IdleArgs {
            conns: 50,
            hold: 0.0,
        },
    ));
    assert!(counter(&r, "server_rss_after_kib") > 0);
    assert!(counter(&r, "setup_conns_per_sec") > 0);
}

#[test]
fn a_server_with_another_secret_fails_the_run() {
    let c = common(start_chat("not-the-bench-secret"));
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(room::run(
            &c,
            &room::RoomArgs {
                members: 2,
                senders: 1,
                window: 1,
                rate: None,
                size: 1,
                room: "t".into(),
            },
        ))
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}
