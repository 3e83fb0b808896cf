//! The HTTP/1.1 side of an upgrade: parsing a request head with `httparse` under a size limit,
//! and writing a response head. Nothing here reads a socket.

use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use std::fmt::Write as _;

/// Most headers an upgrade request may carry (more get 431).
pub const MAX_HEADERS: usize = 64;

/// Why a request head could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is longer than the limit (431).
    #[error("request head larger than {limit} bytes")]
    TooLarge {
        /// The limit that was passed.
        limit: usize,
    },
    /// More than [`MAX_HEADERS`] headers (431).
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// Not a valid HTTP/1.x request head (400).
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
}

impl HeadError {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::TooLarge { .. } | HeadError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The full response bytes (the connection is closed after it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut res = Response::new(format!("{self}\n"));
        *res.status_mut() = self.status();
        response_bytes(&res)
    }
}

/// Whether `req` asks for a WebSocket upgrade (an `Upgrade` header naming `websocket`), well
/// formed or not: such requests always go to the core, which answers malformed ones itself.
pub fn is_websocket_upgrade(req: &Request<()>) -> bool {
    req.headers()
        .get_all(http::header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// A complete request head, and the bytes the client sent after it (its first frames).
pub type HeadAndRest = (Request<()>, Vec<u8>);

/// Collects a request head from socket reads, bounded by `max` bytes (sans-IO: the adapter
/// reads into [`spare`](Self::spare) and reports how much with [`filled`](Self::filled)).
///
/// ```
/// use wskit_adapter::http::HeadReader;
/// let mut reader = HeadReader::new(16 * 1024);
/// let wire = b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n\x81\x00";
/// let spare = reader.spare().unwrap();
/// spare[..wire.len()].copy_from_slice(wire);
/// let (req, leftover) = reader.filled(wire.len()).unwrap().expect("complete");
/// assert_eq!(req.uri().path(), "/ws");
/// assert_eq!(leftover, b"\x81\x00"); // the client's first frame, already read
/// ```
#[derive(Debug)]
pub struct HeadReader {
    buf: Vec<u8>,
    filled: usize,
    max: usize,
}

impl HeadReader {
    /// A reader for heads of at most `max` bytes (larger ones are [`HeadError::TooLarge`]).
    pub fn new(max: usize) -> Self {
        HeadReader {
            buf: Vec::new(),
            filled: 0,
            max,
        }
    }

    /// Where the next read goes. Grows geometrically up to one byte past the limit, so a head
    /// that is too large is detected rather than cut.
    pub fn spare(&mut self) -> Result<&mut [u8], HeadError> {
        if self.filled == self.buf.len() {
            let size = (self.buf.len() * 2).clamp(1024, self.max + 1);
            if size == self.buf.len() {
                return Err(HeadError::TooLarge { limit: self.max });
            }
            self.buf.resize(size, 0);
        }
        Ok(&mut self.buf[self.filled..])
    }

    /// `n` bytes were read into [`spare`](Self::spare) (`n > 0`; EOF is the caller's). Returns
    /// the request and the bytes read past its head once the head is complete.
    pub fn filled(&mut self, n: usize) -> Result<Option<HeadAndRest>, HeadError> {
        self.filled = (self.filled + n).min(self.buf.len());
        Ok(parse_request_head(&self.buf[..self.filled], self.max)?
            .map(|(req, len)| (req, self.buf[len..self.filled].to_vec())))
    }
}

/// Parses the request head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (read more), or the request and the head's
/// length (bytes after it already belong to the WebSocket stream).
pub fn parse_request_head(
    buf: &[u8],
    max_bytes: usize,
) -> Result<Option<(Request<()>, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max_bytes => {
            return Err(HeadError::TooLarge { limit: max_bytes })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request")),
    };
    if len > max_bytes {
        return Err(HeadError::TooLarge { limit: max_bytes });
    }
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let uri: Uri = req
        .path
        .unwrap_or_default()
        .parse()
        .map_err(|_| HeadError::Malformed("invalid request target"))?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut builder = Request::builder().method(method).uri(uri).version(version);
    let map = builder.headers_mut().expect("builder has no error yet");
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| HeadError::Malformed("invalid header value"))?;
        map.append(name, value);
    }
    let request = builder
        .body(())
        .map_err(|_| HeadError::Malformed("invalid request"))?;
    Ok(Some((request, len)))
}

/// Serializes a response: status line, headers, and for anything but a 101 a
/// `Content-Length` and `Connection: close` (refusals end the connection).
pub fn response_bytes<B: AsRef<[u8]>>(res: &Response<B>) -> Vec<u8> {
    render(res.status(), res.headers(), res.body().as_ref())
}

/// Serializes a bodiless response, e.g. the core's `101 Switching Protocols`.
pub fn head_bytes(res: &Response<()>) -> Vec<u8> {
    render(res.status(), res.headers(), &[])
}

fn render(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut out = head.into_bytes();
    for (name, value) in headers {
        if !upgrade && (name == CONNECTION || name == CONTENT_LENGTH) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !upgrade {
        out.extend_from_slice(b"connection: close\r\ncontent-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !upgrade {
        out.extend_from_slice(body);
    }
    out
}

/// The bytes of a refusal decided by the core (404, 426, 401, 403, ...).
pub fn rejection_bytes(rejection: &wskit::Rejection) -> Vec<u8> {
    response_bytes(&rejection.to_response())
}

#[cfg(test)]
mod tests {
    /// A head that trickles in one byte per read is assembled; the bytes after it are kept.
    #[test]
    fn head_reader_takes_a_trickle_and_keeps_the_rest() {
        let wire = b"GET /ws?x=1 HTTP/1.1\r\nHost: x\r\n\r\nAB";
        let mut reader = HeadReader::new(1024);
        let mut done = None;
        for &b in wire.iter() {
            reader.spare().unwrap()[0] = b;
            if let Some(d) = reader.filled(1).unwrap() {
                done = Some(d);
                break;
            }
        }
        let (req, rest) = done.expect("complete head");
        assert_eq!(req.uri(), "/ws?x=1");
        assert!(
            rest.is_empty(),
            "the head ends before the extra bytes arrive"
        );
    }

    /// More than `max` bytes without the end of a head is `TooLarge` (431), not a cut head.
    #[test]
    fn head_reader_refuses_an_endless_head() {
        let mut reader = HeadReader::new(2000);
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut wire = b"GET / HTTP/1.1\r\n".to_vec();
        while wire.len() < 4000 {
            wire.extend_from_slice(line);
        }
        let mut at = 0;
        let err = loop {
            let spare = match reader.spare() {
                Ok(spare) => spare,
                Err(e) => break e,
            };
            let n = spare.len().min(wire.len() - at);
            spare[..n].copy_from_slice(&wire[at..at + n]);
            at += n;
            if let Err(e) = reader.filled(n) {
                break e;
            }
        };
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    use super::*;

    const UPGRADE: &[u8] = b"GET /ws/chat?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n\x81\x85";

    #[test]
    fn complete_head_keeps_trailing_frame_bytes() {
        let (req, len) = parse_request_head(UPGRADE, 16 * 1024).unwrap().unwrap();
        assert_eq!(req.uri().path(), "/ws/chat");
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(&UPGRADE[len..], b"\x81\x85");
    }

    #[test]
    fn partial_head_asks_for_more_until_the_limit() {
        assert!(matches!(parse_request_head(&UPGRADE[..40], 1024), Ok(None)));
        assert_eq!(
            parse_request_head(&UPGRADE[..40], 40).unwrap_err(),
            HeadError::TooLarge { limit: 40 }
        );
        assert_eq!(
            parse_request_head(UPGRADE, 60).unwrap_err(),
            HeadError::TooLarge { limit: 60 }
        );
    }

    #[test]
    fn garbage_is_a_400_and_header_floods_a_431() {
        let err = parse_request_head(b"\x16\x03\x01 hello\r\n\r\n", 1024).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            flood.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        let err = parse_request_head(&flood, 1 << 20).unwrap_err();
        assert_eq!(err, HeadError::TooManyHeaders);
        assert!(String::from_utf8(err.to_bytes())
            .unwrap()
            .starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn refusals_close_the_connection_and_101_has_no_body_headers() {
        let mut res = Response::new("nope\n");
        *res.status_mut() = StatusCode::NOT_FOUND;
        let text = String::from_utf8(response_bytes(&res)).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("content-length: 5\r\n\r\nnope\n"));
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        res.headers_mut()
            .insert("upgrade", HeaderValue::from_static("websocket"));
        let text = String::from_utf8(head_bytes(&res)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"
        );
    }
}
