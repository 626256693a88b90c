//! Errors: [`ProtocolError`] for what a peer sent, [`EncodeError`] for what we tried to send.
//!
//! Every variant renders as one line that names the offending field and, where it helps, the
//! value and the limit, so a server can log it once and close that connection.

use std::fmt;

/// A malformed or oversized frame, or a stream that ended inside a frame.
///
/// Any of these means the byte stream can no longer be split into frames: the caller should
/// close the connection (after an optional error reply, see
/// [`encode_error`](crate::protocol::encode_error)).
///
/// # Examples
/// A server [`Handler`](crate::Handler) speaking the protocol: it answers each request, and
/// a malformed frame gets an error reply and a close as a
/// [`CloseReason::Protocol`](crate::CloseReason::Protocol).
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use mio_reactor::protocol::{encode_error, encode_json, Content, Decoder};
/// use mio_reactor::{CloseReason, Context, Handler, ListenOptions, Reactor};
/// use serde_json::json;
///
/// #[derive(Default)]
/// struct Server {
///     decoder: Decoder,
/// }
///
/// impl Handler for Server {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         let mut consumed = 0;
///         // Every whole frame in `data`: what is left is offered again only with new bytes.
///         loop {
///             match self.decoder.decode(&data[consumed..]) {
///                 Ok(Some(frame)) => {
///                     consumed += frame.consumed;
///                     let mut reply = Vec::new();
///                     encode_json(&json!({"ok": true}), &mut reply);
///                     ctx.write(&reply);
///                 }
///                 Ok(None) => return consumed,
///                 Err(err) => {
///                     let mut reply = Vec::new();
///                     encode_error(&err.to_string(), &mut reply);
///                     ctx.write(&reply); // flushed before the FIN
///                     ctx.close_with(CloseReason::Protocol(err.to_string()));
///                     return data.len();
///                 }
///             }
///         }
///     }
///
///     fn on_eof(&mut self, ctx: &mut Context<'_>) {
///         match self.decoder.check_eof(ctx.buffered_input()) {
///             Ok(()) => ctx.close(),
///             Err(truncated) => ctx.close_with(CloseReason::Protocol(truncated.to_string())),
///         }
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Server::default()))?.local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
/// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
///     stream.write_all(b"\x00\x00")?; // a header length of zero
///     let mut reply = Vec::new();
///     stream.read_to_end(&mut reply)?;
///     Ok(reply)
/// });
/// while !client.is_finished() {
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// let reply = client.join().unwrap()?;
/// let frame = Decoder::default().decode(&reply)?.expect("the error reply");
/// assert_eq!(
///     frame.parse_content()?,
///     Content::Json(json!({"error": "header length is zero"}))
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The 2-byte length prefix was zero: a header is at least `{}`.
    EmptyHeader,
    /// The length prefix announces a header longer than the configured maximum.
    HeaderTooLong {
        /// Announced header length in bytes.
        len: usize,
        /// The limit, [`Limits::max_header`](crate::protocol::Limits::max_header).
        max: usize,
    },
    /// The header bytes are not valid UTF-8.
    HeaderNotUtf8,
    /// The header is not valid JSON; carries serde_json's description.
    InvalidJson(String),
    /// The header is valid JSON but not an object (for example an array).
    HeaderNotObject,
    /// One of the four required keys is absent from the header.
    MissingKey(&'static str),
    /// A header key holds a JSON value of the wrong type.
    WrongType {
        /// The header key.
        key: &'static str,
        /// What the key should hold, e.g. `"a string"`.
        expected: &'static str,
    },
    /// `content-length` is a number but not a non-negative integer that fits in `usize`
    /// (negative, fractional, or too large); carries the number as it appeared.
    InvalidContentLength(String),
    /// `content-length` is larger than the configured maximum.
    ContentTooLong {
        /// Announced content length in bytes.
        len: usize,
        /// The limit, [`Limits::max_content`](crate::protocol::Limits::max_content).
        max: usize,
    },
    /// `text/json` content in an encoding other than UTF-8.
    UnsupportedEncoding(String),
    /// `text/json` content declared UTF-8 is not valid UTF-8.
    ContentNotUtf8,
    /// `text/json` content is not valid JSON; carries serde_json's description.
    InvalidJsonContent(String),
    /// The peer closed the connection in the middle of a frame.
    ///
    /// The decoder never returns this itself (it cannot see EOF); callers build it with
    /// [`Decoder::check_eof`](crate::protocol::Decoder::check_eof) or
    /// [`ProtocolError::truncated`].
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
}

impl ProtocolError {
    /// The error for a connection that reached EOF with `buffered` bytes of an unfinished frame.
    pub fn truncated(buffered: usize) -> Self {
        ProtocolError::Truncated { buffered }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolError::*;
        match self {
            EmptyHeader => f.write_str("header length is zero"),
            HeaderTooLong { len, max } => {
                write!(f, "header length {len} exceeds the limit of {max} bytes")
            }
            HeaderNotUtf8 => f.write_str("header is not valid UTF-8"),
            InvalidJson(e) => write!(f, "header is not valid JSON: {e}"),
            HeaderNotObject => f.write_str("header is not a JSON object"),
            MissingKey(key) => write!(f, "header is missing required key {key:?}"),
            WrongType { key, expected } => write!(f, "header key {key:?} must be {expected}"),
            InvalidContentLength(v) => {
                write!(f, "content-length {v} is not a non-negative integer")
            }
            ContentTooLong { len, max } => {
                write!(f, "content-length {len} exceeds the limit of {max} bytes")
            }
            UnsupportedEncoding(enc) => {
                write!(f, "unsupported content-encoding {enc:?} for text/json")
            }
            ContentNotUtf8 => f.write_str("text/json content is not valid UTF-8"),
            InvalidJsonContent(e) => write!(f, "text/json content is not valid JSON: {e}"),
            Truncated { buffered } => {
                write!(
                    f,
                    "connection closed mid-frame with {buffered} bytes buffered"
                )
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A frame that cannot be encoded; nothing was appended to the output.
///
/// # Examples
/// ```
/// use mio_reactor::protocol::{encode, EncodeError, Header};
///
/// let mut out = Vec::new();
/// let err = encode(&Header::json(10), b"{}", &mut out).unwrap_err();
/// assert_eq!(err, EncodeError::LengthMismatch { header: 10, content: 2 });
/// assert!(out.is_empty()); // no half frame in the output
/// assert_eq!(err.to_string(), "header says content-length 10 but the content is 2 bytes");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The JSON header would not fit the 2-byte length prefix (longer than `u16::MAX`),
    /// typically because of a very long `content-type`.
    HeaderTooLong {
        /// Length the header JSON would have had, in bytes.
        len: usize,
    },
    /// `header.content_length` does not match the content passed in.
    LengthMismatch {
        /// The header's `content_length`.
        header: usize,
        /// The actual content length.
        content: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::HeaderTooLong { len } => write!(
                f,
                "header JSON is {len} bytes, more than the {} a 2-byte prefix can announce",
                u16::MAX
            ),
            EncodeError::LengthMismatch { header, content } => write!(
                f,
                "header says content-length {header} but the content is {content} bytes"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let all = [
            ProtocolError::EmptyHeader,
            ProtocolError::HeaderTooLong { len: 9, max: 8 },
            ProtocolError::HeaderNotUtf8,
            ProtocolError::InvalidJson("x".into()),
            ProtocolError::HeaderNotObject,
            ProtocolError::MissingKey("byteorder"),
            ProtocolError::WrongType {
                key: "content-type",
                expected: "a string",
            },
            ProtocolError::InvalidContentLength("-1".into()),
            ProtocolError::ContentTooLong { len: 9, max: 8 },
            ProtocolError::UnsupportedEncoding("latin-1".into()),
            ProtocolError::ContentNotUtf8,
            ProtocolError::InvalidJsonContent("x".into()),
            ProtocolError::truncated(3),
        ];
        for e in all {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
        }
        let enc = EncodeError::LengthMismatch {
            header: 1,
            content: 2,
        };
        assert!(!enc.to_string().contains('\n'));
    }

    #[test]
    fn truncated_helper_carries_count() {
        assert_eq!(
            ProtocolError::truncated(7).to_string(),
            "connection closed mid-frame with 7 bytes buffered"
        );
    }
}
