//! The plain-HTTP side of the chat: the page, its script, and the dev-only token mint.
//! Runtime-agnostic: every adapter calls [`respond`] for requests that are not WebSocket routes.

use crate::jwt::Jwt;
use http::{header, Method, Request, Response, StatusCode};

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");

/// Tokens minted by `/token` live this long.
pub const DEMO_TOKEN_TTL_SECS: u64 = 24 * 3600;

fn response(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type.parse().expect("valid content type"),
    );
    h.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("valid header"),
    );
    res
}

/// Answers `GET /`, `GET /app.js` and `GET /token?user=NAME`; `None` for anything else (the
/// adapter then answers 404).
pub fn respond(req: &Request<()>, jwt: &Jwt) -> Option<Response<Vec<u8>>> {
    if req.method() != Method::GET {
        return None;
    }
    match req.uri().path() {
        "/" | "/index.html" => Some(response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            INDEX_HTML,
        )),
        "/app.js" => Some(response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            APP_JS,
        )),
        "/token" => Some(mint(req, jwt)),
        _ => None,
    }
}

/// Dev-only: anyone can get a token for any name. Documented as such; a real app mints tokens
/// after a login.
fn mint(req: &Request<()>, jwt: &Jwt) -> Response<Vec<u8>> {
    let user = req
        .uri()
        .query()
        .and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == "user").then(|| {
                    percent_encoding::percent_decode_str(&v.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                })
            })
        })
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let len = user.chars().count();
    if len == 0 || len > 40 || user.chars().any(char::is_control) {
        let body = serde_json::json!({"error": "user must be 1 to 40 printable characters"});
        return response(
            StatusCode::BAD_REQUEST,
            "application/json",
            body.to_string(),
        );
    }
    let email = format!(
        "{}@example.com",
        user.to_lowercase().replace(char::is_whitespace, ".")
    );
    let token = jwt.mint(&user, &email, DEMO_TOKEN_TTL_SECS);
    response(
        StatusCode::OK,
        "application/json",
        serde_json::json!({ "token": token }).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Option<Response<Vec<u8>>> {
        respond(&Request::get(uri).body(()).unwrap(), &Jwt::new("s"))
    }

    #[test]
    fn serves_page_script_and_tokens() {
        assert!(String::from_utf8(get("/").unwrap().into_body())
            .unwrap()
            .contains("id=\"messages\""));
        assert_eq!(
            get("/app.js").unwrap().headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let token: serde_json::Value =
            serde_json::from_slice(get("/token?user=Ada+L").unwrap().body()).unwrap();
        assert_eq!(
            Jwt::new("s")
                .verify(token["token"].as_str().unwrap())
                .unwrap()
                .id,
            "Ada L"
        );
        assert_eq!(
            get("/token?user=").unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get(&format!("/token?user={}", "x".repeat(41)))
                .unwrap()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert!(get("/nope").is_none());
    }
}
