//! Mounting wskit routes in a hyper 1.x / axum 0.8 application: a `tower::Service` that decides
//! the upgrade with the core (before any 101) and, once hyper hands over the upgraded stream,
//! runs the same connection engine as the TCP listener. One port for HTTP and WebSockets.

use crate::conn::connection_task;
use crate::handshake::Tokio;
use crate::server::Handle;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use wskit_adapter::handshake::authenticate;
use wskit_adapter::Upgrade;

/// A `tower::Service` for hyper and axum: `Router::new().route_service("/ws/chat", ws.service())`
/// or `.fallback_service(ws.service())`. Build it with [`Handle::service`].
///
/// The peer address reaches `Ctx::remote_addr` from a `std::net::SocketAddr` request extension,
/// or with the `axum` feature from axum's `ConnectInfo<SocketAddr>`.
#[derive(Clone, Debug)]
pub struct WsService {
    handle: Handle,
}

impl Handle {
    /// A service that upgrades requests inside hyper/axum (HTTP/1.1 upgrades).
    pub fn service(&self) -> WsService {
        WsService {
            handle: self.clone(),
        }
    }
}

fn remote_addr<B>(req: &Request<B>) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0);
    }
    req.extensions().get::<SocketAddr>().copied()
}

fn full<B: AsRef<[u8]>>(res: Response<B>) -> Response<Full<Bytes>> {
    res.map(|b| Full::new(Bytes::copy_from_slice(b.as_ref())))
}

impl<B> tower_service::Service<Request<B>> for WsService
where
    B: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let handle = self.handle.clone();
        let on_upgrade = hyper::upgrade::on(&mut req);
        let remote = remote_addr(&req);
        let mut head = Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.version_mut() = req.version();
        *head.headers_mut() = req.headers().clone();
        drop(req);
        Box::pin(async move {
            let shared = handle.shared().clone();
            let upgrade = match shared.upgrade(Instant::now(), &head, remote) {
                Upgrade::Authenticate(pending) => {
                    authenticate::<Tokio>(&shared, pending, shared.config().auth_timeout).await
                }
                other => other,
            };
            let accepted = match upgrade {
                Upgrade::Reject(r) => return Ok(full(r.to_response())),
                Upgrade::Respond(res) => return Ok(res.map(|body| Full::new(Bytes::from(body)))),
                Upgrade::Authenticate(_) => {
                    let mut res = Response::new(Full::new(Bytes::from_static(b"auth loop\n")));
                    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    return Ok(res);
                }
                Upgrade::Accept(accepted) => accepted,
            };
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = accepted.response().status();
            *response.headers_mut() = accepted.response().headers().clone();
            let guard = handle.tracker().guard();
            handle.runtime().spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let conn = accepted.open(Instant::now());
                        let _guard = guard;
                        connection_task(TokioIo::new(upgraded), conn, &[]).await;
                    }
                    // Dropping `accepted` tells the core the connection never opened.
                    Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
                }
            });
            Ok(response)
        })
    }
}
