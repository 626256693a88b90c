//! A blocking, raw-bytes client for the application protocol: it sends exactly the bytes a
//! test gives it (well-formed or not) and decodes the one reply frame with the crate's codec.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use mio_reactor::protocol::{encode_json, Decoder, Header};
use serde_json::{json, Value};

/// Connects with every read and write bounded, and `TCP_NODELAY` so that a message sent
/// byte by byte arrives that way.
pub fn connect(addr: SocketAddr) -> TcpStream {
    super::client(addr)
}

/// A frame around any header bytes: only the length prefix is computed, so tests can send
/// headers the encoder would never produce.
pub fn raw_frame(header: &[u8], content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(header.len()).expect("a header that fits the prefix");
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(header);
    frame.extend_from_slice(content);
    frame
}

/// A header with the four keys; `content_length` is raw JSON, so it can be anything.
pub fn header(content_type: &str, encoding: &str, content_length: &str) -> Vec<u8> {
    format!(
        r#"{{"byteorder":"little","content-type":"{content_type}","content-encoding":"{encoding}","content-length":{content_length}}}"#
    )
    .into_bytes()
}

/// A `text/json` request whose content is `content`, whatever it holds.
pub fn json_request(content: &[u8]) -> Vec<u8> {
    let header = header("text/json", "utf-8", &content.len().to_string());
    raw_frame(&header, content)
}

/// The tutorial's search request.
pub fn search(value: &str) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_json(&json!({"action": "search", "value": value}), &mut frame);
    frame
}

/// One decoded reply.
#[derive(Debug)]
pub struct Reply {
    pub header: Header,
    pub content: Vec<u8>,
}

impl Reply {
    /// The content of a `text/json` reply.
    pub fn json(&self) -> Value {
        assert_eq!(
            (
                self.header.content_type.as_str(),
                self.header.content_encoding.as_str()
            ),
            ("text/json", "utf-8"),
            "{self:?}"
        );
        serde_json::from_slice(&self.content).expect("JSON content")
    }

    /// The `error` text of an error reply.
    pub fn error(&self) -> String {
        match self.json() {
            Value::Object(map) if map.len() == 1 => match map.get("error") {
                Some(Value::String(error)) => error.clone(),
                _ => panic!("not an error reply: {map:?}"),
            },
            other => panic!("not an error reply: {other}"),
        }
    }
}

/// Reads until the server closes, then decodes the reply: exactly one frame, nothing after.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the server replies and closes in time");
    let frame = Decoder::default()
        .decode(&bytes)
        .expect("a well-formed reply")
        .unwrap_or_else(|| panic!("an incomplete reply: {bytes:?}"));
    assert_eq!(frame.consumed, bytes.len(), "bytes after the reply frame");
    Reply {
        header: frame.header,
        content: frame.content.to_vec(),
    }
}

/// Sends `request` on a new connection and returns the reply.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    read_reply(&mut stream)
}
