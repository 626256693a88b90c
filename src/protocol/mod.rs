//! An application protocol with its own header and content.
//!
//! The framing of the classic Python sockets tutorial ("Socket Programming in Python",
//! `libclient.py`/`libserver.py`), so a reactor-based server talks to its client and the
//! other way round. The same format is used in both directions.
//!
//! # Wire format
//!
//! ```text
//!  0      2                      2 + H                    2 + H + C
//!  ├──────┼───────────────────────┼────────────────────────┤
//!  │  H   │  JSON header, H bytes │  content, C bytes      │
//!  │ u16  │  UTF-8 object         │  C = "content-length"  │
//!  │  BE  │                       │                        │
//!  └──────┴───────────────────────┴────────────────────────┘
//!
//!  e.g. 00 67 {"byteorder": "little", "content-type": "text/json",
//!              "content-encoding": "utf-8", "content-length": 38}
//!             {"action":"search","value":"morpheus"}
//! ```
//!
//! 1. [`LEN_PREFIX`] = 2 bytes, unsigned big-endian: the header length `H`. Zero is an error.
//! 2. The header: a UTF-8 JSON object with all of `byteorder` (`"little"`/`"big"`,
//!    informational), `content-type`, `content-encoding` (strings) and `content-length`
//!    (non-negative integer). Other keys are ignored. See [`Header`].
//! 3. Exactly `content-length` bytes of content. `text/json` content is a JSON document in
//!    the named encoding (only UTF-8 is supported); anything else is opaque bytes. See
//!    [`Frame::parse_content`].
//!
//! # Pieces
//!
//! - [`Decoder`]: incremental and zero-copy. Give it all unconsumed input; it returns a
//!   [`Frame`] borrowing that input once complete. It parses each header once, and enforces
//!   [`Limits`] before anything needs buffering, so an oversized frame is refused from its
//!   prefix or header alone.
//! - [`encode`], [`encode_json`], [`encode_binary`], [`encode_error`]: append one whole frame
//!   to an output buffer.
//! - [`ProtocolError`] (peer's fault: close that connection) and [`EncodeError`] (ours).
//!
//! # Examples
//!
//! A server's view of one request and its reply:
//!
//! ```
//! use mio_reactor::protocol::{encode_json, Content, Decoder, ProtocolError};
//! use serde_json::json;
//!
//! // What a tutorial client sends (here produced by our own encoder).
//! let mut input = Vec::new();
//! encode_json(&json!({"action": "search", "value": "morpheus"}), &mut input);
//!
//! let mut decoder = Decoder::default();
//! let frame = decoder.decode(&input)?.expect("a whole frame");
//! let reply = match frame.parse_content()? {
//!     Content::Json(request) if request["action"] == "search" => {
//!         json!({"result": "Follow the white rabbit. 🐰"})
//!     }
//!     _ => json!({"result": "Error: invalid action."}),
//! };
//! let consumed = frame.consumed;
//! input.drain(..consumed); // the frame's bytes are done with
//!
//! let mut output = Vec::new();
//! encode_json(&reply, &mut output);
//! assert!(input.is_empty() && output.len() > 2);
//! # Ok::<(), ProtocolError>(())
//! ```

mod decoder;
mod encoder;
mod error;
mod frame;
mod header;
mod limits;

pub use decoder::Decoder;
pub use encoder::{encode, encode_binary, encode_error, encode_json};
pub use error::{EncodeError, ProtocolError};
pub use frame::{Content, Frame};
pub use header::{
    native_byteorder, Header, BINARY_ENCODING, JSON_CONTENT_TYPE, LEN_PREFIX, UTF8_ENCODING,
};
pub use limits::Limits;
