//! One HTTP/1.x request read from the front of a connection's unconsumed input, with
//! `httparse` doing the parsing and this file deciding what the headers mean for framing
//! (RFC 9112 section 6: where the body ends) and for the connection (keep-alive or close).
//!
//! Nothing here copies the input: a [`Request`] borrows the path and the body from it, and
//! its `len` is what the handler reports as consumed.

use crate::response::Status;

/// The most header fields a request may have; more is a 431.
const MAX_HEADERS: usize = 64;

/// Limits on one request, checked before anything of it is buffered past them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of request line and headers, blank line included (the 431 limit).
    pub max_head: usize,
    /// Bytes of body a `Content-Length` may announce (the 413 limit).
    pub max_body: usize,
}

/// The request methods this server implements; any other method is a 501.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

/// A complete request, borrowed from the input.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    /// The path of the request target, without the query.
    pub path: &'a str,
    /// Whether the client asked for the connection to stay open after the response: the
    /// HTTP/1.1 default unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// HTTP/1.0, whose keep-alive must be confirmed in the response.
    pub is_http10: bool,
    pub body: &'a [u8],
    /// Bytes of input this request took: head and body.
    pub len: usize,
}

/// What the front of the input holds.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A whole request.
    Complete(Request<'a>),
    /// The start of one: wait for more bytes. `wants_continue` is set when the head is
    /// complete, the body is not, and the client sent `Expect: 100-continue`.
    Partial { wants_continue: bool },
    /// A request this server refuses with `status`; the connection cannot go on, since
    /// where the next request would start is unknown or the peer is not speaking HTTP/1.x.
    Refused { status: Status, why: String },
}

/// Reads the request at the front of `input`.
pub fn parse(input: &[u8], limits: Limits) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_head => len,
        Ok(httparse::Status::Complete(_)) => return too_large_head(limits),
        Ok(httparse::Status::Partial) if input.len() > limits.max_head => {
            return too_large_head(limits)
        }
        Ok(httparse::Status::Partial) => {
            return Parsed::Partial {
                wants_continue: false,
            }
        }
        Err(httparse::Error::TooManyHeaders) => {
            return refused(
                Status::HeaderFieldsTooLarge,
                format!("more than {MAX_HEADERS} header fields"),
            )
        }
        Err(httparse::Error::Version) => {
            return refused(
                Status::VersionNotSupported,
                "not HTTP/1.0 or HTTP/1.1".into(),
            )
        }
        Err(err) => return refused(Status::BadRequest, format!("malformed request: {err}")),
    };
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        other => {
            let method = other.unwrap_or_default();
            return refused(
                Status::NotImplemented,
                format!("method {method} not implemented"),
            );
        }
    };
    let is_http10 = request.version == Some(0);
    let fields = match HeaderFields::read(request.headers) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    if !is_http10 && !fields.has_host {
        // RFC 9112 section 3.2: an HTTP/1.1 request without Host gets a 400.
        return refused(Status::BadRequest, "HTTP/1.1 request without Host".into());
    }
    if fields.content_length > limits.max_body as u64 {
        return refused(
            Status::ContentTooLarge,
            format!(
                "body of {} B over the limit of {} B",
                fields.content_length, limits.max_body
            ),
        );
    }
    let body_len = fields.content_length as usize; // at most max_body: fits
    let Some(body) = input.get(head_len..head_len + body_len) else {
        return Parsed::Partial {
            wants_continue: fields.expects_continue,
        };
    };
    let target = request.path.unwrap_or("/");
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let keep_alive = if is_http10 {
        fields.connection_keep_alive
    } else {
        !fields.connection_close
    };
    Parsed::Complete(Request {
        method,
        path,
        keep_alive,
        is_http10,
        body,
        len: head_len + body_len,
    })
}

fn refused(status: Status, why: String) -> Parsed<'static> {
    Parsed::Refused { status, why }
}

fn too_large_head(limits: Limits) -> Parsed<'static> {
    refused(
        Status::HeaderFieldsTooLarge,
        format!("request head over {} B", limits.max_head),
    )
}

/// What the header fields say about framing and about the connection.
#[derive(Debug, Default)]
struct HeaderFields {
    content_length: u64,
    has_host: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    expects_continue: bool,
}

impl HeaderFields {
    fn read(headers: &[httparse::Header<'_>]) -> Result<HeaderFields, Parsed<'static>> {
        let mut fields = HeaderFields::default();
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding = false;
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let length = parse_content_length(header.value)
                    .ok_or_else(|| refused(Status::BadRequest, "invalid Content-Length".into()))?;
                // Two different lengths are the classic request-smuggling shape (RFC 9112
                // section 6.3): refuse rather than pick one.
                if content_length.is_some_and(|earlier| earlier != length) {
                    return Err(refused(
                        Status::BadRequest,
                        "conflicting Content-Length fields".into(),
                    ));
                }
                content_length = Some(length);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
            } else if name.eq_ignore_ascii_case("host") {
                fields.has_host = true;
            } else if name.eq_ignore_ascii_case("connection") {
                for option in header.value.split(|&b| b == b',') {
                    let option = trim_spaces(option);
                    fields.connection_close |= option.eq_ignore_ascii_case(b"close");
                    fields.connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                fields.expects_continue = header.value.eq_ignore_ascii_case(b"100-continue");
            }
        }
        if transfer_encoding && content_length.is_some() {
            // Also a smuggling shape: two framings that a proxy and a server may read
            // differently. RFC 9112 section 6.1 allows a server to refuse it outright.
            return Err(refused(
                Status::BadRequest,
                "both Content-Length and Transfer-Encoding".into(),
            ));
        }
        if transfer_encoding {
            return Err(refused(
                Status::NotImplemented,
                "Transfer-Encoding request bodies are not supported".into(),
            ));
        }
        fields.content_length = content_length.unwrap_or(0);
        Ok(fields)
    }
}

/// `1*DIGIT`, nothing else (no sign, no spaces inside, no list), and no overflow.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = trim_spaces(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `bytes` without the optional whitespace (spaces and tabs, RFC 9110 `OWS`) around it.
/// (`<[u8]>::trim_ascii` would do, but needs Rust 1.80.)
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}
