//! A connection thread's life: read the request head (bounded in size and time), let the core
//! decide (route, Origin, credentials: all before any 101), run the verifier, answer, then serve
//! the connection.

use crate::conn::ConnCell;
use crate::pool::{block_on_until, Interrupted};
use crate::rt::Rt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use wskit::{AuthRejection, PendingAuth};
use wskit_adapter::http::{rejection_bytes, response_bytes, HeadError, HeadReader};
use wskit_adapter::{Connection, Upgrade};

/// How long a refused client gets to read the refusal before the socket is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

enum HeadFailure {
    TimedOut,
    Io(io::Error),
    Head(HeadError),
}

/// Serves one accepted socket for its whole life: the handshake on the calling (pool) thread,
/// then the connection on a thread of its own. The new thread's stack has touched only what the
/// read loop needs, and what the handshake allocated and freed stays in the pool thread's
/// allocator cache: an idle connection's thread costs two or three pages instead of five.
pub(crate) fn serve_socket(rt: Arc<Rt>, stream: TcpStream, remote: Option<SocketAddr>) {
    let stream = Arc::new(stream);
    let seat = rt.registry.enter(stream.clone());
    // Registered before checking: a shutdown either sees this socket or is seen here.
    if rt.is_stopping() {
        return;
    }
    let Some((conn, leftover)) = handshake(&rt, &stream, remote) else {
        return;
    };
    let stack_size = rt.stack_size;
    let spawned = thread::Builder::new()
        .name("wskit-conn".into())
        .stack_size(stack_size)
        .spawn(move || {
            seat.opened();
            ConnCell::run(rt, stream, conn, leftover);
            drop(seat);
        });
    if let Err(e) = spawned {
        // Out of threads (ulimit -u, pid_max, memory): the connection is dropped (1006).
        tracing::warn!(error = %e, ?remote, "could not start a connection thread");
    }
}

/// Reads the head, decides (and authenticates), answers. Returns the open connection and any
/// bytes the client sent after its head.
fn handshake(
    rt: &Rt,
    stream: &TcpStream,
    remote: Option<SocketAddr>,
) -> Option<(Connection, Vec<u8>)> {
    let _ = stream.set_nodelay(true);
    let config = rt.shared.config();
    let deadline = Instant::now() + config.handshake_timeout;
    let (req, leftover) = match read_head(stream, config.max_handshake_bytes, deadline) {
        Ok(found) => found,
        Err(HeadFailure::TimedOut) => {
            tracing::debug!(?remote, "handshake timed out; dropping the connection");
            return None;
        }
        Err(HeadFailure::Io(e)) => {
            tracing::debug!(?remote, error = %e, "connection lost during the handshake");
            return None;
        }
        Err(HeadFailure::Head(e)) => {
            tracing::debug!(?remote, error = %e, "bad request head");
            refuse(stream, &e.to_bytes());
            return None;
        }
    };
    let upgrade = match rt.shared.upgrade(Instant::now(), &req, remote) {
        Upgrade::Authenticate(pending) => authenticate(rt, pending),
        other => other,
    };
    drop(req);
    match upgrade {
        Upgrade::Reject(r) => {
            refuse(stream, &rejection_bytes(&r));
            None
        }
        Upgrade::Respond(res) => {
            refuse(stream, &response_bytes(&res));
            None
        }
        Upgrade::Authenticate(_) => {
            tracing::error!("the core asked to authenticate twice; dropping the connection");
            None
        }
        Upgrade::Accept(accepted) => {
            let _ = stream.set_write_timeout(Some(config.handshake_timeout));
            if let Err(e) = (&*stream).write_all(&accepted.response_bytes()) {
                tracing::debug!(?remote, error = %e, "could not write the 101");
                return None; // dropping `accepted` tells the core
            }
            Some((accepted.open(Instant::now()), leftover))
        }
    }
}

/// Runs the verifier on this thread, bounded by the adapter's auth timeout and the route's own
/// deadline (the core refuses completions past it), and interrupted by a shutdown.
fn authenticate(rt: &Rt, pending: PendingAuth) -> Upgrade {
    let limit = (Instant::now() + rt.shared.config().auth_timeout).min(pending.deadline);
    let result = match block_on_until(pending.verify, limit, &rt.stopping) {
        Ok(result) => result,
        Err(Interrupted::TimedOut) => Err(AuthRejection::unauthorized("authentication timed out")),
        // The core answers 503 to completions during a shutdown.
        Err(Interrupted::Stopped) => Err(AuthRejection::unauthorized("server shutting down")),
    };
    rt.shared
        .complete_auth(Instant::now(), pending.ticket, result)
}

/// Reads until a complete head; every read waits only for what is left of the handshake
/// timeout, so a client trickling bytes is dropped on time too.
fn read_head(
    stream: &TcpStream,
    max: usize,
    deadline: Instant,
) -> Result<(http::Request<()>, Vec<u8>), HeadFailure> {
    let mut reader = HeadReader::new(max);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadFailure::TimedOut);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(HeadFailure::Io)?;
        let spare = reader.spare().map_err(HeadFailure::Head)?;
        let n = match (&*stream).read(spare) {
            Ok(0) => return Err(HeadFailure::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadFailure::TimedOut)
            }
            Err(e) => return Err(HeadFailure::Io(e)),
        };
        if let Some(done) = reader.filled(n).map_err(HeadFailure::Head)? {
            return Ok(done);
        }
    }
}

/// Writes a refusal, then closes politely: shut the write half and drain briefly, so unread
/// request bytes do not turn the close into a reset that could destroy the response.
fn refuse(stream: &TcpStream, response: &[u8]) {
    let until = Instant::now() + REFUSAL_LINGER;
    let _ = stream.set_write_timeout(Some(REFUSAL_LINGER));
    if (&*stream).write_all(response).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 512];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
