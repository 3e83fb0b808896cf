//! The adapter end to end on each runtime it supports, with a blocking tungstenite client on
//! its own thread. (The full behavioural suite runs in `wskit-tests` against both runtimes.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;
use wskit::{Route, Server};
use wskit_async_std::{Builder, Running, Spawner};

fn echo_server() -> Server {
    let echo = Route::new("/ws/echo").on_text(|ws, _ctx, text: &str| ws.send_text(text));
    Server::builder().route(echo).build().expect("valid routes")
}

/// A client thread: echoes one message, signals `ready`, then waits for the server's close
/// frame and returns its code.
fn echo_client(addr: SocketAddr, ready: smol::channel::Sender<()>) -> JoinHandle<CloseCode> {
    std::thread::spawn(move || {
        let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws/echo")).expect("upgrade");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        }
        ws.send(Message::text("hello")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hello"));
        ready.try_send(()).unwrap();
        match ws.read() {
            Ok(Message::Close(Some(frame))) => frame.code,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("no close frame: {e}"),
        }
    })
}

/// One echo over a WebSocket, then a graceful shutdown: the client must get 1001.
async fn echo_then_shutdown(running: Running) {
    let (ready, ready_rx) = smol::channel::bounded(1);
    let client = echo_client(running.local_addr(), ready);
    ready_rx.recv().await.unwrap();
    let handle = running.handle().clone();
    assert_eq!(handle.connection_count(), 1);
    let report = running.shutdown().await;
    assert!(report.drained, "{report:?}");
    assert_eq!(handle.connection_count(), 0);
    assert_eq!(client.join().unwrap(), CloseCode::Away);
}

/// Sends a raw HTTP request, returns the whole response (the server closes after it).
#[cfg(feature = "smol")]
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[cfg(feature = "async-std")]
#[test]
fn async_std_echoes_and_shuts_down_with_1001() {
    async_std::task::block_on(async {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let running = Builder::new(echo_server()).listen(listener).unwrap();
        echo_then_shutdown(running).await;
    });
}

#[cfg(feature = "smol")]
#[test]
fn smol_executor_serves_pages_and_websockets_on_one_port() {
    let ex = Arc::new(smol::Executor::new());
    let (quit, quit_rx) = smol::channel::unbounded::<()>();
    let worker = {
        let ex = ex.clone();
        std::thread::spawn(move || smol::block_on(ex.run(quit_rx.recv())))
    };
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = Builder::new(echo_server())
            .spawner(Spawner::executor(ex.clone()))
            .http(|req: &http::Request<()>| {
                (req.uri().path() == "/").then(|| http::Response::new(b"<h1>chat</h1>".to_vec()))
            })
            .listen(listener)
            .unwrap();
        let addr = running.local_addr();
        let (page, not_upgrade, unknown) = smol::unblock(move || {
            (
                http_get(addr, "/"),
                http_get(addr, "/ws/echo"),
                http_get(addr, "/missing"),
            )
        })
        .await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.ends_with("\r\n\r\n<h1>chat</h1>"), "{page}");
        assert!(not_upgrade.starts_with("HTTP/1.1 426 "), "{not_upgrade}");
        assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown}");
        echo_then_shutdown(running).await;
    });
    drop(quit);
    let _ = worker.join().unwrap();
}

#[test]
fn serve_on_a_custom_spawner_stops_on_its_signal() {
    // Any executor works through `Spawner::new`; here smol's global one, counting spawns.
    let spawned = Arc::new(AtomicUsize::new(0));
    let count = spawned.clone();
    let spawner = Spawner::new(move |task| {
        count.fetch_add(1, Ordering::SeqCst);
        smol::spawn(task).detach();
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (ready, ready_rx) = smol::channel::bounded(1);
    let client = echo_client(addr, ready);
    let serve = wskit_async_std::serve(listener, echo_server())
        .spawner(spawner)
        .with_graceful_shutdown(async move {
            let _ = ready_rx.recv().await;
        });
    let served = smol::block_on(serve);
    served.unwrap();
    assert_eq!(client.join().unwrap(), CloseCode::Away);
    // The driver, the accept loop and the connection's task.
    assert!(spawned.load(Ordering::SeqCst) >= 3);
}
