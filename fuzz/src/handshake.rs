//! Target `handshake`: an arbitrary upgrade request (method, path, query, headers including
//! Upgrade/Connection/Sec-WebSocket-*/Origin/Authorization/Cookie) through
//! `Server::handle_upgrade`, compared with a naive reference written here: route matching by
//! splitting on `/`, percent-decoding and base64 by hand, the decision order of SPEC §4
//! (404, 400, 426/405/400, 403, 401, then accept) and every token source's extraction.

use super::driver::block_on;
use arbitrary::{Arbitrary, Unstructured};
use http::header::{HeaderName, HeaderValue};
use http::Request;
use std::time::{Duration, Instant};
use wskit::{
    AuthRejection, Decision, OriginPolicy, Route, Server, TokenAuth, TokenSource, TOKEN_SUBPROTOCOL,
};

/// One segment of a route pattern.
#[derive(Debug, Clone, Copy)]
enum Seg {
    Static(&'static str),
    Param(&'static str),
    CatchAll(&'static str),
}

use Seg::{CatchAll, Param, Static};

/// How a route authenticates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Auth {
    Public,
    /// query `token`, Bearer, subprotocol.
    Chat,
    /// cookie `session`, query `access_token`; the token `banned` is refused with 403.
    Cookie,
}

/// A route of the server under test, as the reference sees it.
struct Spec {
    path: &'static str,
    segs: &'static [Seg],
    auth: Auth,
    /// `Some(deny_missing)` when the route has an Origin allow-list.
    origin_list: Option<bool>,
    protocols: &'static [&'static str],
}

const ALLOWED_ORIGIN: &str = "https://app.example";

const ROUTES: &[Spec] = &[
    Spec {
        path: "/ws/echo",
        segs: &[Static("ws"), Static("echo")],
        auth: Auth::Public,
        origin_list: None,
        protocols: &[],
    },
    Spec {
        path: "/ws/chat",
        segs: &[Static("ws"), Static("chat")],
        auth: Auth::Chat,
        origin_list: None,
        protocols: &[],
    },
    Spec {
        path: "/ws/rooms/:roomId",
        segs: &[Static("ws"), Static("rooms"), Param("roomId")],
        auth: Auth::Public,
        origin_list: Some(false),
        protocols: &[],
    },
    Spec {
        path: "/ws/rooms/special",
        segs: &[Static("ws"), Static("rooms"), Static("special")],
        auth: Auth::Public,
        origin_list: None,
        protocols: &[],
    },
    Spec {
        path: "/ws/strict",
        segs: &[Static("ws"), Static("strict")],
        auth: Auth::Public,
        origin_list: Some(true),
        protocols: &["v2.chat", "v1.chat"],
    },
    Spec {
        path: "/ws/cookie",
        segs: &[Static("ws"), Static("cookie")],
        auth: Auth::Cookie,
        origin_list: None,
        protocols: &["wskit"],
    },
    Spec {
        path: "/files/*rest",
        segs: &[Static("files"), CatchAll("rest")],
        auth: Auth::Public,
        origin_list: None,
        protocols: &["wskit", "v1.chat"],
    },
    Spec {
        path: "/ws/games/:gameId/players/:playerId",
        segs: &[
            Static("ws"),
            Static("games"),
            Param("gameId"),
            Static("players"),
            Param("playerId"),
        ],
        auth: Auth::Public,
        origin_list: None,
        protocols: &[],
    },
];

/// The user of authenticated routes is the token itself.
#[derive(Debug, Clone, PartialEq)]
struct User(String);

fn verify(token: &str, auth: Auth) -> Result<User, AuthRejection> {
    if auth == Auth::Cookie && token == "banned" {
        return Err(AuthRejection::forbidden("banned"));
    }
    match token.starts_with("tok-") {
        true => Ok(User(token.to_owned())),
        false => Err(AuthRejection::unauthorized("invalid token")),
    }
}

fn build_server() -> Server {
    let mut b = Server::builder();
    for spec in ROUTES {
        let mut route = Route::new(spec.path).protocols(spec.protocols.iter().copied());
        if let Some(deny_missing) = spec.origin_list {
            let policy = OriginPolicy::allow([ALLOWED_ORIGIN]);
            route = route.origins(if deny_missing {
                policy.deny_missing()
            } else {
                policy
            });
        }
        b = match spec.auth {
            Auth::Public => b.route(route),
            Auth::Chat => b.route(route.authenticate(
                TokenAuth::new_sync(|t: String| verify(&t, Auth::Chat)).sources([
                    TokenSource::query("token"),
                    TokenSource::Bearer,
                    TokenSource::Subprotocol,
                ]),
            )),
            Auth::Cookie => b.route(route.authenticate(
                TokenAuth::new_sync(|t: String| verify(&t, Auth::Cookie)).sources([
                    TokenSource::cookie("session"),
                    TokenSource::query("access_token"),
                ]),
            )),
        };
    }
    b.build().expect("valid routes")
}

// ----- the reference -----

/// `%XX` decoded, anything else (a lone `%` included) kept.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space.
fn form_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(&s.replace('+', " "))).into_owned()
}

/// The route a path leads to, with its parameters still encoded.
fn route_for(path: &str) -> Option<(usize, Vec<(&'static str, String)>)> {
    let rest = path.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let matches = |spec: &Spec| -> Option<Vec<(&'static str, String)>> {
        let mut params = Vec::new();
        for (i, seg) in spec.segs.iter().enumerate() {
            match *seg {
                Static(s) => (parts.get(i)? == &s).then_some(())?,
                Param(name) => {
                    let p = parts.get(i).filter(|p| !p.is_empty())?;
                    params.push((name, (*p).to_owned()));
                }
                CatchAll(name) => {
                    let tail = parts.get(i..)?.join("/");
                    (!tail.is_empty()).then_some(())?;
                    params.push((name, tail));
                    return Some(params);
                }
            }
        }
        (parts.len() == spec.segs.len()).then_some(params)
    };
    let mut found: Vec<(usize, Vec<(&'static str, String)>)> = ROUTES
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| matches(spec).map(|p| (i, p)))
        .collect();
    // A static segment beats a parameter (the only overlap here is `/ws/rooms/special`).
    found.sort_by_key(|(i, _)| {
        ROUTES[*i]
            .segs
            .iter()
            .filter(|s| !matches!(s, Static(_)))
            .count()
    });
    found.into_iter().next()
}

/// A header value as text, when it is visible ASCII (what `HeaderValue::to_str` accepts).
fn visible(v: &HeaderValue) -> Option<&str> {
    let ok = v
        .as_bytes()
        .iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b));
    ok.then(|| std::str::from_utf8(v.as_bytes()).expect("ASCII"))
}

/// All values of a header that are visible ASCII.
fn texts<'a>(req: &'a Request<()>, name: &str) -> Vec<&'a str> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(visible)
        .collect()
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn has_token(req: &Request<()>, name: &str, token: &str) -> bool {
    texts(req, name)
        .iter()
        .any(|v| v.split(',').any(|t| trim(t).eq_ignore_ascii_case(token)))
}

fn offered(req: &Request<()>) -> Vec<&str> {
    texts(req, "sec-websocket-protocol")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(trim)
        .filter(|p| !p.is_empty())
        .collect()
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A canonical base64 encoding of exactly 16 bytes: 22 digits, the last one with its low four
/// bits clear, then `==`.
fn is_websocket_key(key: &[u8]) -> bool {
    key.len() == 24
        && key[..21].iter().all(|c| B64.contains(c))
        && b"AQgw".contains(&key[21])
        && &key[22..] == b"=="
}

/// Unpadded base64url, canonical (unused trailing bits clear).
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = s
        .bytes()
        .map(|c| B64URL.iter().position(|&d| d == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | (d << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 if n & 0xFF == 0 => out.extend_from_slice(&bytes[1..3]),
            2 if n & 0xFFFF == 0 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// The token sources of the server's routes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Query(&'static str),
    Bearer,
    Cookie(&'static str),
    Subprotocol,
}

impl Source {
    fn core(self) -> TokenSource {
        match self {
            Source::Query(n) => TokenSource::query(n),
            Source::Bearer => TokenSource::Bearer,
            Source::Cookie(n) => TokenSource::cookie(n),
            Source::Subprotocol => TokenSource::Subprotocol,
        }
    }

    /// What the reference extracts (empty counts as absent).
    fn extract(self, req: &Request<()>) -> Option<String> {
        let token = match self {
            Source::Query(name) => req.uri().query().and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(k) == name).then(|| form_decode(v))
                })
            }),
            Source::Bearer => req
                .headers()
                .get("authorization")
                .and_then(visible)
                .and_then(|v| {
                    let (scheme, token) = trim(v).split_once(' ')?;
                    scheme
                        .eq_ignore_ascii_case("bearer")
                        .then(|| trim(token).to_owned())
                }),
            Source::Cookie(name) => texts(req, "cookie").iter().find_map(|v| {
                v.split(';').find_map(|pair| {
                    let (k, v) = trim(pair).split_once('=')?;
                    (k == name).then(|| v.trim_matches('"').to_owned())
                })
            }),
            Source::Subprotocol => offered(req).iter().find_map(|p| {
                let encoded = p.strip_prefix("base64url.bearer.")?;
                String::from_utf8(base64url_decode(encoded.trim_end_matches('='))?).ok()
            }),
        };
        token.filter(|t| !t.is_empty())
    }
}

const ALL_SOURCES: &[Source] = &[
    Source::Query("token"),
    Source::Query("access_token"),
    Source::Bearer,
    Source::Cookie("session"),
    Source::Subprotocol,
];

fn sources_of(auth: Auth) -> &'static [Source] {
    match auth {
        Auth::Public => &[],
        Auth::Chat => &[Source::Query("token"), Source::Bearer, Source::Subprotocol],
        Auth::Cookie => &[Source::Cookie("session"), Source::Query("access_token")],
    }
}

/// What the reference decides before any verifier runs.
#[derive(Debug, PartialEq)]
enum Step {
    Reject(u16),
    /// Route, decoded params, selected subprotocol, token (auth routes).
    Go {
        route: usize,
        params: Vec<(&'static str, String)>,
        protocol: Option<String>,
        token: Option<(Source, String)>,
    },
}

fn decide(req: &Request<()>) -> Step {
    let Some((route, raw)) = route_for(req.uri().path()) else {
        return Step::Reject(404);
    };
    let mut params = Vec::new();
    for (name, value) in raw {
        match String::from_utf8(percent_decode(&value)) {
            Ok(v) => params.push((name, v)),
            Err(_) => return Step::Reject(400),
        }
    }
    if !has_token(req, "upgrade", "websocket") || !has_token(req, "connection", "upgrade") {
        return Step::Reject(426);
    }
    if req.method() != http::Method::GET {
        return Step::Reject(405);
    }
    let first = |name: &str| req.headers().get(name).map(HeaderValue::as_bytes);
    if first("sec-websocket-version") != Some(b"13") {
        return Step::Reject(426);
    }
    if !first("sec-websocket-key").is_some_and(is_websocket_key) {
        return Step::Reject(400);
    }
    let spec = &ROUTES[route];
    if let Some(deny_missing) = spec.origin_list {
        let ok = match first("origin") {
            None => !deny_missing,
            Some(o) => o == ALLOWED_ORIGIN.as_bytes(),
        };
        if !ok {
            return Step::Reject(403);
        }
    }
    let mut protocol = offered(req)
        .into_iter()
        .find(|p| spec.protocols.contains(p))
        .map(str::to_owned);
    let token = if spec.auth == Auth::Public {
        None
    } else {
        let found = sources_of(spec.auth)
            .iter()
            .find_map(|s| s.extract(req).map(|t| (*s, t)));
        let Some((source, token)) = found else {
            return Step::Reject(401);
        };
        if matches!(source, Source::Subprotocol) && protocol.is_none() {
            protocol = Some(TOKEN_SUBPROTOCOL.to_owned());
        }
        Some((source, token))
    };
    Step::Go {
        route,
        params,
        protocol,
        token,
    }
}

// ----- input generation -----

const WORDS: &[&str] = &[
    "ws",
    "echo",
    "chat",
    "rooms",
    "special",
    "strict",
    "cookie",
    "files",
    "games",
    "players",
    "",
    "a",
    "%2F",
    "%00",
    "..",
    ".",
    "%FF",
    "%C3%A9",
    "%",
    "%zz",
    "special%20",
    "éé",
];
const QUERY_KEYS: &[&str] = &[
    "token",
    "access_token",
    "x",
    "tok%65n",
    "token+",
    "",
    "TOKEN",
];
const TOKENS: &[&str] = &[
    "tok-a", "tok-%41", "", "tok-a+b", "bad", "banned", "tok-%FF", "tok-é",
];
const HEADER_NAMES: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-version",
    "sec-websocket-key",
    "origin",
    "authorization",
    "cookie",
    "sec-websocket-protocol",
    "host",
];
const HEADER_VALUES: &[&str] = &[
    "websocket",
    "WebSocket, h2c",
    "keep-alive, Upgrade",
    "upgrade",
    "13",
    "8",
    "dGhlIHNhbXBsZSBub25jZQ==",
    "AAAAAAAAAAAAAAAAAAAAAQ==",
    "AAAAAAAAAAAAAAAAAAAAAB==",
    "dGhlIHNhbXBsZSBub25jZQ",
    "https://app.example",
    "https://app.example.evil",
    "null",
    "Bearer tok-h",
    "bearer  tok-h ",
    "Basic dG9rLWg=",
    "Bearer",
    "session=tok-c",
    "theme=dark; session=\"tok-c\"",
    "session=; session=tok-c",
    "session =tok-c",
    "wskit, base64url.bearer.dG9rLXM",
    "base64url.bearer.dG9rLXM=",
    "base64url.bearer.dG9rLXN",
    "base64url.bearer.!!",
    "base64url.bearer.",
    "v1.chat, v2.chat",
    "",
];

fn pick<'a>(u: &mut Unstructured<'_>, from: &[&'a str]) -> arbitrary::Result<&'a str> {
    u.choose(from).copied()
}

/// A dictionary word or arbitrary text.
fn text(u: &mut Unstructured<'_>, from: &[&str]) -> arbitrary::Result<String> {
    Ok(if u.ratio(3, 4)? {
        pick(u, from)?.to_owned()
    } else {
        String::arbitrary(u)?
    })
}

fn request(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<Request<()>>> {
    let method = *u.choose(&["GET", "GET", "GET", "POST", "HEAD", "get"])?;
    let mut target = String::new();
    if u.ratio(1, 8)? {
        target.push_str("http://example.com");
    }
    for _ in 0..u.int_in_range(0..=6)? {
        target.push('/');
        target.push_str(&text(u, WORDS)?);
    }
    if target.is_empty() || target.ends_with(".com") {
        target.push('/');
    }
    if u.ratio(2, 3)? {
        target.push('?');
        let pairs = u.int_in_range(0..=3)?;
        for i in 0..pairs {
            if i > 0 {
                target.push('&');
            }
            target.push_str(&text(u, QUERY_KEYS)?);
            if u.ratio(7, 8)? {
                target.push('=');
                target.push_str(&text(u, TOKENS)?);
            }
        }
    }
    let mut b = Request::builder().method(method).uri(target);
    // The standard headers of a good upgrade, each left out now and then.
    let standard = [
        ("host", "localhost"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mask = u8::arbitrary(u)?;
    for (i, (k, v)) in standard.iter().enumerate() {
        if mask & (1 << i) == 0 || mask == 0xFF {
            b = b.header(*k, *v);
        }
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name = pick(u, HEADER_NAMES)?;
        let value: Vec<u8> = if u.ratio(7, 8)? {
            pick(u, HEADER_VALUES)?.as_bytes().to_vec()
        } else {
            Vec::arbitrary(u)?
        };
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            b = b.header(HeaderName::from_static(name), v);
        }
    }
    Ok(b.body(()).ok())
}

/// The text form: `# comment` lines (`# late` completes the authentication after its timeout),
/// then a request line `METHOD TARGET [VERSION]` and `Name: value` header lines.
fn parse_head(data: &[u8]) -> Option<(Request<()>, bool)> {
    let text = String::from_utf8_lossy(data.strip_prefix(b"#")?).into_owned();
    let mut lines = text.lines().skip(1);
    let mut late = false;
    let start = loop {
        let line = lines.next()?;
        match line.strip_prefix('#') {
            Some(comment) => late |= comment.trim() == "late",
            None => break line,
        }
    };
    let mut words = start.split(' ');
    let mut b = Request::builder().method(words.next()?).uri(words.next()?);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value.trim_start().as_bytes()).ok()?;
        b = b.header(name, value);
    }
    Some((b.body(()).ok()?, late))
}

/// The query string as `redact_uri` must show it.
fn redacted(uri: &http::Uri) -> String {
    let Some(q) = uri.query() else {
        return uri.path().to_owned();
    };
    let pairs: Vec<String> = q
        .split('&')
        .map(|p| match p.find('=') {
            Some(i) => format!("{}=REDACTED", &p[..i]),
            None => p.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// The target.
pub fn run(data: &[u8]) {
    let (req, late) = if data.starts_with(b"#") {
        let Some(parsed) = parse_head(data) else {
            return;
        };
        parsed
    } else {
        let mut u = Unstructured::new(data);
        let Ok(Some(req)) = request(&mut u) else {
            return;
        };
        (req, u.ratio(1, 8).unwrap_or(false))
    };

    for &source in ALL_SOURCES {
        assert_eq!(
            source.core().extract(&req),
            source.extract(&req),
            "{source:?} on {req:?}"
        );
    }
    assert_eq!(wskit::redact_uri(req.uri()), redacted(req.uri()));

    let mut server = build_server();
    let now = Instant::now();
    let expected = decide(&req);
    let mut decision = server.handle_upgrade(now, &req, None);
    let (route, params, protocol, token) = match expected {
        Step::Reject(status) => {
            let Decision::Reject(r) = decision else {
                panic!("expected {status} for {req:?}, got {decision:?}");
            };
            assert_eq!(r.status.as_u16(), status, "{req:?}: {r:?}");
            assert_eq!(server.pending_auth_count(), 0);
            assert_eq!(server.connection_count(), 0);
            return;
        }
        Step::Go {
            route,
            params,
            protocol,
            token,
        } => (route, params, protocol, token),
    };
    let mut user = None;
    if let Some((_, token)) = &token {
        let Decision::Authenticate(mut pending) = decision else {
            panic!("expected authentication for {req:?}, got {decision:?}");
        };
        assert_eq!(server.pending_auth_count(), 1);
        let result = block_on(pending.verify.as_mut()).expect("sync verifier");
        let mut at = now;
        if late {
            at = now + Duration::from_secs(11);
            server.handle_timeout(at);
            assert_eq!(server.pending_auth_count(), 0, "expired auth kept");
        }
        decision = server.complete_auth(at, pending.ticket, result);
        assert_eq!(server.pending_auth_count(), 0);
        let want = match verify(token, ROUTES[route].auth) {
            _ if late => Err(401),
            Ok(u) => Ok(u),
            Err(r) => Err(r.status.as_u16()),
        };
        match want {
            Err(status) => {
                let Decision::Reject(r) = decision else {
                    panic!("expected {status} for {req:?}, got {decision:?}");
                };
                assert_eq!(r.status.as_u16(), status, "{req:?}");
                assert_eq!(server.connection_count(), 0);
                return;
            }
            Ok(u) => user = Some(u),
        }
    }
    let Decision::Accept(accepted) = decision else {
        panic!("expected accept for {req:?}, got {decision:?}");
    };
    let res = &accepted.response;
    assert_eq!(res.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    let key = req.headers()["sec-websocket-key"].as_bytes();
    assert_eq!(
        res.headers()["sec-websocket-accept"],
        wskit::accept_key(key)
    );
    let selected = res
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    assert_eq!(selected, protocol, "subprotocol for {req:?}");
    assert!(
        !selected.is_some_and(|p| p.contains("bearer")),
        "the token was echoed"
    );
    assert_eq!(server.connection_count(), 1);
    let got_params: Vec<(String, String)> = match &user {
        None => {
            let ctx = server.ctx::<(), ()>(accepted.conn).expect("public ctx");
            ctx.params
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        }
        Some(want) => {
            let ctx = server.ctx::<User, ()>(accepted.conn).expect("user ctx");
            assert_eq!(&ctx.user, want);
            ctx.params
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        }
    };
    let want_params: Vec<(String, String)> =
        params.into_iter().map(|(k, v)| (k.into(), v)).collect();
    assert_eq!(got_params, want_params, "params of {req:?}");
}
