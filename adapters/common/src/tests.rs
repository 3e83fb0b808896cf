//! The engine and the routing driven without sockets: client frames in, server bytes out.

use crate::{Config, Connection, Shared, Upgrade};
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;
use wskit::{Limits, Message, Route, Server};

/// A masked client frame (`first` is FIN/RSV/opcode).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7, 1, 9, 3];
    assert!(payload.len() < 126);
    let mut f = vec![first, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// `join:T` subscribes, `pub:T:x` publishes `x` to T, anything else is echoed.
fn server(limits: Limits) -> Server {
    let route = Route::new("/")
        .limits(limits)
        .on_text(|ws, _ctx, text: &str| {
            if let Some(topic) = text.strip_prefix("join:") {
                ws.subscribe(topic).map(|_| ())
            } else if let Some(rest) = text.strip_prefix("pub:") {
                let (topic, body) = rest.split_once(':').unwrap_or((rest, ""));
                ws.publish_message(topic, Message::text(body));
                Ok(())
            } else {
                ws.send_text(text)
            }
        });
    Server::builder().route(route).build().unwrap()
}

fn shared(limits: Limits) -> Arc<Shared> {
    Shared::new(server(limits), Config::default(), Box::new(drop))
}

fn open(shared: &Arc<Shared>) -> Connection {
    let req = wskit::testing::upgrade_request("/").body(()).unwrap();
    match shared.upgrade(Instant::now(), &req, None) {
        Upgrade::Accept(a) => {
            assert_eq!(a.response().status(), 101);
            a.open(Instant::now())
        }
        other => panic!("not accepted: {other:?}"),
    }
}

/// Everything the connection wants to write, through a writer taking at most `chunk` bytes
/// per call.
fn written(conn: &mut Connection, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    conn.write_with(Instant::now(), |slices: &[IoSlice<'_>]| {
        Ok(copy(slices, chunk, &mut out))
    })
    .unwrap();
    out
}

/// What a socket that takes `n` bytes and then blocks receives.
fn written_then_blocked(conn: &mut Connection, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut budget = Some(n);
    let r = conn.write_with(Instant::now(), |slices: &[IoSlice<'_>]| {
        match budget.take() {
            Some(n) => Ok(copy(slices, n, &mut out)),
            None => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    });
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    out
}

fn copy(slices: &[IoSlice<'_>], chunk: usize, out: &mut Vec<u8>) -> usize {
    {
        let mut n = 0;
        for s in slices {
            let take = s.len().min(chunk - n);
            out.extend_from_slice(&s[..take]);
            n += take;
            if n == chunk {
                break;
            }
        }
        n
    }
}

#[test]
fn text_is_echoed_as_an_unmasked_frame() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    let mut input = client_frame(0x81, b"hi");
    input.extend(client_frame(0x89, b"p")); // a ping: answered with a pong
    conn.receive(Instant::now(), &input);
    // The pong goes ahead of data still queued (control frames may sit between any frames).
    assert_eq!(written(&mut conn, usize::MAX), b"\x8a\x01p\x81\x02hi");
}

#[test]
fn frames_split_across_reads_are_reassembled() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    let frame = client_frame(0x81, b"hello");
    for byte in &frame {
        conn.receive(Instant::now(), std::slice::from_ref(byte));
    }
    assert_eq!(written(&mut conn, 3), b"\x81\x05hello");
}

/// Connections `a` and `b` subscribed to topic `t`, and a third that is not.
fn two_members_of_t_and_a_publisher(shared: &Arc<Shared>) -> (Connection, Connection, Connection) {
    let mut a = open(shared);
    let mut b = open(shared);
    a.receive(Instant::now(), &client_frame(0x81, b"join:t"));
    b.receive(Instant::now(), &client_frame(0x81, b"join:t"));
    (a, b, open(shared))
}

#[test]
fn small_publishes_are_copied_back_to_back_into_each_subscribers_buffer() {
    let shared = shared(Limits::default());
    let (a, b, mut publisher) = two_members_of_t_and_a_publisher(&shared);
    let mut two = client_frame(0x81, b"pub:t:news");
    two.extend(client_frame(0x81, b"pub:t:more"));
    publisher.receive(Instant::now(), &two);
    for conn in [&a, &b] {
        let outbox = shared.lock().table().get(conn.id()).unwrap().clone();
        let mut queue = Default::default();
        outbox.take(&mut queue);
        // One contiguous run for the two publishes: one slice for the kernel, no refcounts.
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].parts_from(0).0, b"\x81\x04news\x81\x04more");
    }
    assert!(
        written(&mut publisher, usize::MAX).is_empty(),
        "publisher excluded"
    );
}

#[test]
fn publishes_and_replies_of_one_read_reach_every_recipient_in_order() {
    let shared = shared(Limits::default());
    let (mut a, mut b, mut publisher) = two_members_of_t_and_a_publisher(&shared);
    publisher.receive(Instant::now(), &client_frame(0x81, b"join:u"));
    // One read, one pump: deliveries are grouped per recipient and keep their order.
    let mut input = Vec::new();
    for text in ["pub:t:1", "hello", "pub:u:x", "pub:t:2", "bye", "pub:t:3"] {
        input.extend(client_frame(0x81, text.as_bytes()));
    }
    publisher.receive(Instant::now(), &input);
    for conn in [&mut a, &mut b] {
        assert_eq!(written(conn, 5), b"\x81\x011\x81\x012\x81\x013");
    }
    // Its own publish to `u` excludes it (Bun's semantics); its replies keep their order.
    assert_eq!(written(&mut publisher, 3), b"\x81\x05hello\x81\x03bye");
}

#[test]
fn protocol_error_is_closed_with_1002_after_earlier_replies() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    let mut input = client_frame(0x81, b"ok");
    input.extend(client_frame(0xC1, b"rsv")); // RSV1 without an extension
    conn.receive(Instant::now(), &input);
    let out = written(&mut conn, usize::MAX);
    assert_eq!(&out[..4], b"\x81\x02ok");
    assert_eq!(&out[4..8], &[0x88, 16, 0x03, 0xEA]); // close, 1002
    assert!(
        conn.wants_shutdown(),
        "no reply is awaited from a broken stream"
    );
    assert_eq!(shared.connection_count(), 1);
    conn.shutdown_done();
    assert!(
        !conn.is_done(),
        "lingers for the peer's EOF after a protocol error"
    );
    conn.receive_eof(Instant::now());
    assert!(conn.is_done());
    assert_eq!(shared.connection_count(), 0);
}

#[test]
fn invalid_utf8_and_oversize_get_1007_and_1009() {
    let shared = shared(Limits::default().max_payload(8));
    let mut conn = open(&shared);
    conn.receive(Instant::now(), &client_frame(0x81, &[0xC3, 0x28]));
    assert_eq!(
        &written(&mut conn, usize::MAX)[2..4],
        &1007u16.to_be_bytes()
    );
    let mut conn = open(&shared);
    conn.receive(Instant::now(), &client_frame(0x82, b"123456789"));
    assert_eq!(
        &written(&mut conn, usize::MAX)[2..4],
        &1009u16.to_be_bytes()
    );
}

#[test]
fn peer_close_is_answered_after_queued_output_and_reported_once() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    let mut input = client_frame(0x81, b"last");
    input.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    conn.receive(Instant::now(), &input);
    assert_eq!(shared.connection_count(), 0, "reported at the close frame");
    let out = written(&mut conn, 2);
    assert_eq!(out, b"\x81\x04last\x88\x02\x03\xE8");
    assert!(conn.wants_shutdown());
    // The handshake is complete: the server closes the TCP connection without waiting for EOF.
    conn.shutdown_done();
    assert!(conn.is_done());
}

#[test]
fn slow_consumer_is_cut_at_a_frame_boundary_then_closed_1008() {
    let shared = shared(Limits::default().max_outbound_bytes(64));
    let mut slow = open(&shared);
    let mut publisher = open(&shared);
    slow.receive(Instant::now(), &client_frame(0x81, b"join:t"));
    let body = "x".repeat(40);
    let msg = format!("pub:t:{body}");
    publisher.receive(Instant::now(), &client_frame(0x81, msg.as_bytes()));
    // The writer starts the first frame, then the queue overflows.
    let first = written_then_blocked(&mut slow, 10);
    assert_eq!(first.len(), 10);
    for _ in 0..3 {
        publisher.receive(Instant::now(), &client_frame(0x81, msg.as_bytes()));
    }
    let rest = written(&mut slow, usize::MAX);
    let mut frame = vec![0x81, 40];
    frame.extend_from_slice(body.as_bytes());
    // The first frame is finished (the stream stays well-framed), the backlog dropped,
    // and the close follows.
    assert_eq!([&first[..], &rest[..frame.len() - 10]].concat(), frame);
    let close = &rest[frame.len() - 10..];
    assert_eq!(close[0], 0x88);
    assert_eq!(close.len(), 2 + close[1] as usize);
    assert_eq!(&close[2..4], &1008u16.to_be_bytes());
    assert_eq!(shared.lock().server().subscriber_count("t"), 0);
}

#[test]
fn dropping_an_accepted_upgrade_releases_the_connection() {
    let shared = shared(Limits::default());
    let req = wskit::testing::upgrade_request("/").body(()).unwrap();
    let Upgrade::Accept(accepted) = shared.upgrade(Instant::now(), &req, None) else {
        panic!("not accepted")
    };
    assert_eq!(shared.connection_count(), 1);
    drop(accepted);
    assert_eq!(shared.connection_count(), 0);
    assert_eq!(shared.lock().server().connection_count(), 0);
}

#[test]
fn upgrades_are_refused_with_503_once_shutting_down() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    shared.shutdown(Instant::now());
    let out = written(&mut conn, usize::MAX);
    assert_eq!(&out[2..4], &1001u16.to_be_bytes());
    let req = wskit::testing::upgrade_request("/").body(()).unwrap();
    match shared.upgrade(Instant::now(), &req, None) {
        Upgrade::Reject(r) => assert_eq!(r.status, 503),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_read_holding_thousands_of_messages_is_handled_in_order() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let text = format!("m{i}");
        input.extend(client_frame(0x81, text.as_bytes()));
        expected.extend_from_slice(&[0x81, text.len() as u8]);
        expected.extend_from_slice(text.as_bytes());
    }
    conn.receive(Instant::now(), &input);
    assert_eq!(written(&mut conn, 1000), expected);
}

/// The HTTP handler answers plain requests it knows; upgrades and requests it declines still
/// reach the core (101, 404, and 426 on a WebSocket path).
#[test]
fn http_handler_answers_only_plain_requests() {
    let handler: crate::HttpHandler = Arc::new(|req: &http::Request<()>| {
        (req.uri().path() != "/elsewhere").then(|| http::Response::new(b"page".to_vec()))
    });
    let shared = Shared::builder(server(Limits::default()))
        .http(Some(handler))
        .build(Box::new(drop));
    let get = |path: &str| http::Request::get(path).body(()).unwrap();
    match shared.upgrade(Instant::now(), &get("/"), None) {
        Upgrade::Respond(res) => {
            assert_eq!(res.body(), b"page");
            let bytes = crate::http::response_bytes(&res);
            assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(bytes.ends_with(b"content-length: 4\r\n\r\npage"));
        }
        other => panic!("plain GET not answered by the handler: {other:?}"),
    }
    match shared.upgrade(Instant::now(), &get("/elsewhere"), None) {
        Upgrade::Reject(r) => assert_eq!(r.status, 404),
        other => panic!("declined request: {other:?}"),
    }
    let upgrade = wskit::testing::upgrade_request("/").body(()).unwrap();
    assert!(crate::http::is_websocket_upgrade(&upgrade));
    assert!(matches!(
        shared.upgrade(Instant::now(), &upgrade, None),
        Upgrade::Accept(_)
    ));
    // Without a handler, a plain GET on a WebSocket path is the core's 426.
    match self::shared(Limits::default()).upgrade(Instant::now(), &get("/"), None) {
        Upgrade::Reject(r) => assert_eq!(r.status, 426),
        other => panic!("{other:?}"),
    }
}

/// Counts its wake-ups.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, std::task::Waker) {
    let count = Arc::new(CountingWaker(Default::default()));
    (count.clone(), std::task::Waker::from(count))
}

fn wakes(count: &CountingWaker) -> usize {
    count.0.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn deferred_writer_wakes_wait_for_wake_deferred_and_skip_the_readers_own_writer() {
    let shared = shared(Limits::default());
    let (mut a, mut b, mut publisher) = two_members_of_t_and_a_publisher(&shared);
    let ((count_a, waker_a), (count_b, waker_b)) = (counting_waker(), counting_waker());
    a.register_waker(&waker_a);
    b.register_waker(&waker_b);
    let (own_count, own) = counting_waker();
    publisher.register_waker(&own);
    publisher.defer_writer_wakes(true);

    publisher.receive(Instant::now(), &client_frame(0x81, b"pub:t:1"));
    publisher.receive(Instant::now(), &client_frame(0x81, b"echo me"));
    assert_eq!((wakes(&count_a), wakes(&count_b)), (0, 0), "held back");
    assert!(publisher.has_deferred());
    // Until the writers are woken, a second read's publish joins the same pending write.
    publisher.receive(Instant::now(), &client_frame(0x81, b"pub:t:2"));
    publisher.wake_deferred();
    assert_eq!((wakes(&count_a), wakes(&count_b)), (1, 1), "one wake each");
    assert!(!publisher.has_deferred());
    for conn in [&mut a, &mut b] {
        assert_eq!(written(conn, usize::MAX), b"\x81\x011\x81\x012");
    }
    // The reply to the publisher itself is not a held-back wake: the adapter writes it next.
    assert_eq!(wakes(&own_count), 0);
    assert_eq!(written(&mut publisher, usize::MAX), b"\x81\x07echo me");

    // Writers held back when a connection goes away are woken, never forgotten.
    publisher.receive(Instant::now(), &client_frame(0x81, b"pub:t:3"));
    drop(publisher);
    assert_eq!((wakes(&count_a), wakes(&count_b)), (2, 2));
    assert_eq!(written(&mut a, usize::MAX), b"\x81\x013");
}

/// Pending on its first poll (waking the task at once), ready on the second: a runtime's yield.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[test]
fn a_deferral_wakes_the_held_back_writers_on_the_poll_after_its_yield() {
    let shared = shared(Limits::default());
    let (mut a, _b, mut publisher) = two_members_of_t_and_a_publisher(&shared);
    let (count_a, waker_a) = counting_waker();
    a.register_waker(&waker_a);
    publisher.defer_writer_wakes(true);
    let (task_count, task_waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&task_waker);
    let mut deferral = crate::Deferral::new(|| YieldOnce(false));

    for round in 1..=2 {
        // A poll of the publisher's task: the deferral first, a read, then the yield starts.
        deferral.poll(&mut publisher, &mut cx);
        publisher.receive(Instant::now(), &client_frame(0x81, b"pub:t:m"));
        deferral.start(&mut publisher, &mut cx);
        assert_eq!(wakes(&count_a), round - 1, "held back until the next poll");
        assert_eq!(wakes(&task_count), round, "the yield rescheduled the task");
        // The next poll finds the yield done and wakes the writer.
        deferral.poll(&mut publisher, &mut cx);
        deferral.start(&mut publisher, &mut cx);
        assert_eq!(wakes(&count_a), round);
        assert!(!publisher.has_deferred());
        // The writer runs; the next publish to it wakes it again (and the box is reused).
        assert_eq!(written(&mut a, usize::MAX), b"\x81\x01m");
    }
}

#[test]
fn every_adapter_builder_starts_from_the_servers_handshake_limits() {
    let limits = Limits::default().max_handshake_bytes(2048);
    let server = Server::builder()
        .limits(limits)
        .route(Route::new("/"))
        .build()
        .unwrap();
    let shared = Shared::builder(server).build(Box::new(drop));
    assert_eq!(shared.config().max_handshake_bytes, 2048);
}

#[test]
fn a_close_we_started_ends_the_connection_once_the_peer_replies() {
    let shared = shared(Limits::default());
    let mut conn = open(&shared);
    shared.shutdown(Instant::now());
    let out = written(&mut conn, usize::MAX);
    assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xE9], "close 1001");
    assert!(!conn.wants_shutdown(), "waiting for the reply");
    conn.receive(Instant::now(), &client_frame(0x88, &1001u16.to_be_bytes()));
    assert!(conn.wants_shutdown());
    conn.shutdown_done();
    assert!(conn.is_done(), "no linger after a complete close handshake");
    assert_eq!(
        shared.connection_count(),
        1,
        "reported when the connection is dropped"
    );
    drop(conn);
    assert_eq!(shared.connection_count(), 0);
}
