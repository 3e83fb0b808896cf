//! Upgrade decisions: routing, SPEC §4's HTTP rows, Origin, every token source, async auth.

#[path = "common/chat.rs"]
mod chat;

use base64::Engine;
use http::StatusCode;
use std::time::{Duration, Instant};
use wskit::testing::{upgrade_request, TestServer};
use wskit::{AuthRejection, Decision, OriginPolicy, Route, Server, TokenAuth, TokenSource};

fn status_of(t: &mut TestServer, req: http::Request<()>) -> StatusCode {
    match t.accept(req) {
        Ok((_, res)) => res.status(),
        Err(r) => r.status,
    }
}

#[test]
fn unknown_path_is_404() {
    let mut t = TestServer::new(chat::chat_server());
    assert_eq!(
        status_of(&mut t, upgrade_request("/ws/nope").body(()).unwrap()),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&mut t, upgrade_request("/ws/chat/extra").body(()).unwrap()),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn plain_get_on_a_ws_path_is_426_before_any_auth_check() {
    let mut t = TestServer::new(chat::chat_server());
    let plain = http::Request::get("/ws/chat").body(()).unwrap();
    let rejection = t.connect_with(plain).unwrap_err();
    assert_eq!(rejection.status, StatusCode::UPGRADE_REQUIRED);
    let res = rejection.to_response();
    assert_eq!(res.headers()["sec-websocket-version"], "13");
    assert_eq!(res.headers()["upgrade"], "websocket");
}

#[test]
fn malformed_upgrades_are_refused() {
    let mut t = TestServer::new(chat::chat_server());
    let wrong_version = upgrade_request("/ws/echo").header("sec-websocket-version", "8");
    let mut req = wrong_version.body(()).unwrap();
    req.headers_mut()
        .insert("sec-websocket-version", "8".parse().unwrap());
    assert_eq!(status_of(&mut t, req), StatusCode::UPGRADE_REQUIRED);
    let mut req = upgrade_request("/ws/echo").body(()).unwrap();
    req.headers_mut()
        .insert("sec-websocket-key", "short".parse().unwrap());
    assert_eq!(status_of(&mut t, req), StatusCode::BAD_REQUEST);
    let mut req = upgrade_request("/ws/echo").body(()).unwrap();
    *req.method_mut() = http::Method::POST;
    assert_eq!(status_of(&mut t, req), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn accepted_upgrade_answers_101_with_the_accept_key() {
    let mut t = TestServer::new(chat::chat_server());
    let (_, res) = t
        .accept(upgrade_request("/ws/echo").body(()).unwrap())
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        res.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert!(res.headers().get("sec-websocket-protocol").is_none());
}

#[test]
fn missing_or_bad_token_is_401() {
    let mut t = TestServer::new(chat::chat_server());
    assert_eq!(
        status_of(&mut t, upgrade_request("/ws/chat").body(()).unwrap()),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&mut t, upgrade_request("/ws/chat?token=").body(()).unwrap()),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(
            &mut t,
            upgrade_request("/ws/chat?token=forged").body(()).unwrap()
        ),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.server().connection_count(), 0);
    assert_eq!(t.server().pending_auth_count(), 0);
}

#[test]
fn token_from_query_header_and_subprotocol() {
    let mut t = TestServer::new(chat::chat_server());
    let q = t.connect("/ws/chat?token=tok-q").unwrap();
    assert_eq!(
        t.server()
            .ctx::<chat::User, chat::Rooms>(q)
            .unwrap()
            .user
            .id,
        "q"
    );
    let h = t
        .connect_with(
            upgrade_request("/ws/chat")
                .header("authorization", "Bearer tok-h")
                .body(())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        t.server()
            .ctx::<chat::User, chat::Rooms>(h)
            .unwrap()
            .user
            .id,
        "h"
    );
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("tok-s");
    let req = upgrade_request("/ws/chat")
        .header(
            "sec-websocket-protocol",
            format!("wskit, base64url.bearer.{enc}"),
        )
        .body(())
        .unwrap();
    let (s, res) = t.accept(req).unwrap();
    assert_eq!(
        res.headers()["sec-websocket-protocol"],
        "wskit",
        "selects wskit, never echoes the token"
    );
    assert_eq!(
        t.server()
            .ctx::<chat::User, chat::Rooms>(s)
            .unwrap()
            .user
            .id,
        "s"
    );
}

#[derive(Debug, Clone)]
struct Named(String);

fn route_with(source: TokenSource) -> Server {
    let auth = TokenAuth::new_sync(|t: String| (t == "good").then_some(Named(t))).sources([source]);
    let route = Route::new("/ws")
        .authenticate(auth)
        .on_connect(|ws, ctx| ws.send(&serde_json::json!({"user": ctx.user.0})));
    Server::builder().route(route).build().unwrap()
}

#[test]
fn token_from_cookie_and_custom_extractor() {
    let mut t = TestServer::new(route_with(TokenSource::cookie("auth_token")));
    let ok = upgrade_request("/ws")
        .header("cookie", "theme=dark; auth_token=good")
        .body(())
        .unwrap();
    let c = t.connect_with(ok).unwrap();
    assert_eq!(t.recv_json(c).unwrap()["user"], "good");
    let wrong_cookie = upgrade_request("/ws")
        .header("cookie", "other=good")
        .body(())
        .unwrap();
    assert_eq!(status_of(&mut t, wrong_cookie), StatusCode::UNAUTHORIZED);

    let custom = TokenSource::custom(|r| {
        r.headers()
            .get("x-auth-token")?
            .to_str()
            .ok()
            .map(str::to_owned)
    });
    let mut t = TestServer::new(route_with(custom));
    let c = t
        .connect_with(
            upgrade_request("/ws")
                .header("x-auth-token", "good")
                .body(())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(t.recv_json(c).unwrap()["user"], "good");
    // The default query source is replaced, not added to.
    assert_eq!(
        status_of(&mut t, upgrade_request("/ws?token=good").body(()).unwrap()),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn verifier_can_choose_403() {
    let auth = TokenAuth::new(|t: String| async move {
        if t == "banned" {
            Err(AuthRejection::forbidden("banned"))
        } else {
            Ok(t)
        }
    });
    let server = Server::builder()
        .route(Route::new("/ws").authenticate(auth))
        .build()
        .unwrap();
    let mut t = TestServer::new(server);
    let r = t.connect("/ws?token=banned").unwrap_err();
    assert_eq!(
        (r.status, r.reason.as_ref()),
        (StatusCode::FORBIDDEN, "banned")
    );
    assert!(t.connect("/ws?token=fine").is_ok());
}

#[test]
fn origin_allow_list_is_exact_and_per_route_overrides_server() {
    let server = Server::builder()
        .origins(OriginPolicy::allow(["https://app.example"]).deny_missing())
        .route(Route::new("/ws/strict"))
        .route(Route::new("/ws/open").origins(OriginPolicy::any()))
        .build()
        .unwrap();
    let mut t = TestServer::new(server);
    let with = |path: &str, origin: Option<&str>| {
        let mut b = upgrade_request(path);
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).unwrap()
    };
    assert_eq!(
        status_of(&mut t, with("/ws/strict", Some("https://app.example"))),
        StatusCode::SWITCHING_PROTOCOLS
    );
    assert_eq!(
        status_of(
            &mut t,
            with("/ws/strict", Some("https://app.example.evil.com"))
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&mut t, with("/ws/strict", Some("null"))),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&mut t, with("/ws/strict", None)),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&mut t, with("/ws/open", Some("https://anything"))),
        StatusCode::SWITCHING_PROTOCOLS
    );
}

#[test]
fn origin_is_checked_before_the_token() {
    let server = Server::builder()
        .origins(OriginPolicy::allow(["https://a.example"]))
        .route(chat::chat_route())
        .build()
        .unwrap();
    let mut t = TestServer::new(server);
    let req = upgrade_request("/ws/chat")
        .header("origin", "https://b.example")
        .body(())
        .unwrap();
    assert_eq!(status_of(&mut t, req), StatusCode::FORBIDDEN);
}

#[test]
fn late_or_stale_auth_completion_is_refused() {
    let mut server = chat::chat_server();
    let t0 = Instant::now();
    let req = upgrade_request("/ws/chat?token=tok-late").body(()).unwrap();
    let Decision::Authenticate(pending) = server.handle_upgrade(t0, &req, None) else {
        panic!("expected auth")
    };
    assert_eq!(server.pending_auth_count(), 1);
    // The verifier takes longer than the auth timeout (10 s by default), which the pending
    // authentication announces so adapters can stop waiting.
    assert_eq!(server.limits().auth_timeout, Duration::from_secs(10));
    assert_eq!(pending.deadline, t0 + Duration::from_secs(10));
    let late = t0 + Duration::from_secs(11);
    server.handle_timeout(late);
    assert_eq!(
        server.pending_auth_count(),
        0,
        "expired authentications are dropped"
    );
    let user = futures_lite_block_on(pending.verify).unwrap();
    match server.complete_auth(late, pending.ticket, Ok(user)) {
        Decision::Reject(r) => assert_eq!(r.status, StatusCode::UNAUTHORIZED),
        other => panic!("expected 401, got {other:?}"),
    }
    assert_eq!(server.connection_count(), 0);
}

/// Polls a future that needs no runtime.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn path_parameters_are_decoded_once_and_parse_into_a_struct() {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Seat {
        game_id: String,
        player_id: u32,
    }
    let route = Route::new("/ws/games/:gameId/players/:playerId").on_connect(|ws, ctx| -> wskit::HandlerResultOf {
        let seat: Seat = ctx.params.parse()?;
        ws.send(&serde_json::json!({"game": seat.game_id, "player": seat.player_id, "raw": ctx.params.get("gameId")}))?;
        Ok(())
    });
    let mut t = TestServer::new(Server::builder().route(route).build().unwrap());
    let c = t.connect("/ws/games/g%2F1%2541/players/7").unwrap();
    assert_eq!(
        t.recv_json(c).unwrap(),
        serde_json::json!({"game": "g/1%41", "player": 7, "raw": "g/1%41"})
    );
    let bad = t.connect("/ws/games/g/players/notanumber").unwrap();
    let err = t.recv_json(bad).unwrap();
    assert_eq!(err["code"], "handler_error");
    assert!(
        err["message"].as_str().unwrap().contains("notanumber"),
        "{err}"
    );
    assert_eq!(
        status_of(
            &mut t,
            upgrade_request("/ws/games/%FF/players/1").body(()).unwrap()
        ),
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn building_rejects_conflicts_and_misuse() {
    use wskit::BuildError;
    let conflict = Server::builder()
        .route(Route::new("/ws/rooms/:a"))
        .route(Route::new("/ws/rooms/:b"))
        .build();
    assert!(
        matches!(conflict, Err(BuildError::RouteConflict { .. })),
        "{conflict:?}"
    );
    let late = Route::new("/ws")
        .on_connect(|_, _| ())
        .server_messages::<serde_json::Value>();
    assert!(matches!(
        Server::builder().route(late).build(),
        Err(BuildError::TypesAfterHandlers {
            method: "server_messages",
            ..
        })
    ));
    let twice = Route::new("/ws")
        .on("a", |_, _, _: ()| ())
        .on("a", |_, _, _: ()| ());
    assert!(matches!(
        Server::builder().route(twice).build(),
        Err(BuildError::DuplicateMessageType { .. })
    ));
    let bad = Server::builder().route(Route::new("no-slash")).build();
    assert!(matches!(bad, Err(BuildError::InvalidPath { .. })));
    let same_name = Server::builder()
        .route(Route::new("/a/chat"))
        .route(Route::new("/b/chat"))
        .build();
    assert!(matches!(same_name, Err(BuildError::DuplicateName { .. })));
}
