//! Writing responses: the status line, the headers every response carries (`Server`, `Date`,
//! `Content-Length`, and `Connection` where it differs from the version's default), and the
//! body, appended to one buffer so that all the responses to one read leave in one write.

use std::io::Write;

/// The statuses this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Continue,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    /// The request was not complete within the deadline (slowloris).
    RequestTimeout,
    /// The announced body is over the limit.
    ContentTooLarge,
    /// The request head is over the limit, or has too many fields.
    HeaderFieldsTooLarge,
    /// A method, or a request framing (chunked bodies), this server does not implement.
    NotImplemented,
    /// Not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
}

impl Status {
    /// The status line, with its line ending.
    fn line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::Continue => b"HTTP/1.1 100 Continue\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::RequestTimeout => b"HTTP/1.1 408 Request Timeout\r\n",
            Status::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Status::HeaderFieldsTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        }
    }
}

/// What the response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive: the default, no header needed.
    KeepAlive,
    /// An HTTP/1.0 client asked for keep-alive: say yes, or it will assume close.
    KeepAliveHttp10,
    /// The server closes after this response: `Connection: close`.
    Close,
}

/// One response to append.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: Status,
    pub content_type: &'static str,
    pub body: &'a [u8],
    /// A response to `HEAD`: the same headers, no body.
    pub head_only: bool,
    pub persistence: Persistence,
    /// An extra header line, without its line ending (`Allow: GET, HEAD` on a 405).
    pub extra_header: Option<&'static str>,
}

/// The `Server` header's value.
const SERVER: &str = "mio-reactor";

impl Response<'_> {
    /// Appends the whole response to `out`; `date` is the current IMF-fixdate.
    pub fn write_to(&self, out: &mut Vec<u8>, date: &[u8]) {
        out.extend_from_slice(self.status.line());
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\r\nContent-Length: {}\r\n", self.body.len());
        match self.persistence {
            Persistence::KeepAlive => {}
            Persistence::KeepAliveHttp10 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        if let Some(header) = self.extra_header {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(self.body);
        }
    }
}

/// The interim response that tells a client waiting on `Expect: 100-continue` to send its
/// body (RFC 9110 section 10.1.1).
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(Status::Continue.line());
    out.extend_from_slice(b"\r\n");
}
