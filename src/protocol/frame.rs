//! [`Frame`]: one decoded message borrowing its content, and [`Content`], its interpretation.

use serde_json::Value;

use crate::protocol::{Header, ProtocolError, UTF8_ENCODING};

/// One complete frame, as returned by [`Decoder::decode`](crate::protocol::Decoder::decode).
///
/// The content borrows the caller's input buffer (no copy); drop
/// [`consumed`](Frame::consumed) bytes from the front of that buffer once done with it.
///
/// # Examples
/// Several frames in one buffer, as one read may bring them: decode until `None`, stepping
/// over each frame with `consumed`.
/// ```
/// use mio_reactor::protocol::{encode_binary, encode_json, Content, Decoder};
/// use serde_json::json;
///
/// let mut input = Vec::new();
/// encode_json(&json!({"n": 1}), &mut input);
/// encode_binary("text/plain", b"two", &mut input)?;
///
/// let mut decoder = Decoder::default();
/// let mut rest = &input[..];
/// let mut contents = Vec::new();
/// while let Some(frame) = decoder.decode(rest)? {
///     contents.push(frame.parse_content()?);
///     rest = &rest[frame.consumed..];
/// }
/// assert!(rest.is_empty());
/// assert_eq!(
///     contents,
///     [Content::Json(json!({"n": 1})), Content::Binary(&b"two"[..])]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The parsed JSON header.
    pub header: Header,
    /// Exactly `header.content_length` bytes of content.
    pub content: &'a [u8],
    /// Bytes of input this frame occupied: prefix + header + content.
    pub consumed: usize,
}

/// The content of a frame, interpreted according to its header.
///
/// # Examples
/// ```
/// use mio_reactor::protocol::{encode_binary, Content, Decoder, Frame, ProtocolError};
///
/// fn describe(frame: &Frame<'_>) -> Result<String, ProtocolError> {
///     Ok(match frame.parse_content()? {
///         Content::Json(value) => format!("JSON: {value}"),
///         Content::Binary(bytes) => {
///             format!("{} bytes of {}", bytes.len(), frame.header.content_type)
///         }
///     })
/// }
///
/// let mut wire = Vec::new();
/// encode_binary("image/png", b"\x89PNG", &mut wire)?;
/// let frame = Decoder::default().decode(&wire)?.expect("a whole frame");
/// assert_eq!(describe(&frame)?, "4 bytes of image/png");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'a> {
    /// `text/json` content in UTF-8, parsed.
    Json(Value),
    /// Any other content type: the raw bytes.
    Binary(&'a [u8]),
}

impl<'a> Frame<'a> {
    /// Interprets the content: `text/json` is parsed as JSON, anything else is
    /// [`Content::Binary`].
    ///
    /// For `text/json` the encoding must be UTF-8 (`utf-8` or `utf8`, any ASCII case, as
    /// Python's codec lookup accepts).
    ///
    /// # Errors
    ///
    /// [`UnsupportedEncoding`](ProtocolError::UnsupportedEncoding),
    /// [`ContentNotUtf8`](ProtocolError::ContentNotUtf8) or
    /// [`InvalidJsonContent`](ProtocolError::InvalidJsonContent), for `text/json` only.
    pub fn parse_content(&self) -> Result<Content<'a>, ProtocolError> {
        if !self.header.is_json() {
            return Ok(Content::Binary(self.content));
        }
        if !is_utf8_label(&self.header.content_encoding) {
            return Err(ProtocolError::UnsupportedEncoding(
                self.header.content_encoding.clone(),
            ));
        }
        parse_json_content(self.content).map(Content::Json)
    }
}

fn is_utf8_label(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case(UTF8_ENCODING) || encoding.eq_ignore_ascii_case("utf8")
}

fn parse_json_content(bytes: &[u8]) -> Result<Value, ProtocolError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ProtocolError::ContentNotUtf8)?;
    serde_json::from_str(text).map_err(|e| ProtocolError::InvalidJsonContent(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame<'a>(header: Header, content: &'a [u8]) -> Frame<'a> {
        Frame {
            header,
            content,
            consumed: 0,
        }
    }

    #[test]
    fn json_content_is_parsed() {
        let body = br#"{"action":"search","value":"morpheus"}"#;
        let f = frame(Header::json(body.len()), body);
        assert_eq!(
            f.parse_content(),
            Ok(Content::Json(json!({"action":"search","value":"morpheus"})))
        );
    }

    #[test]
    fn binary_content_is_passed_through() {
        let f = frame(Header::binary("binary/x", 3), b"\xff\x00a");
        assert_eq!(f.parse_content(), Ok(Content::Binary(&b"\xff\x00a"[..])));
    }

    #[test]
    fn utf8_label_variants_are_accepted() {
        for enc in ["utf-8", "UTF-8", "utf8", "Utf8"] {
            let mut h = Header::json(2);
            h.content_encoding = enc.into();
            assert!(frame(h, b"{}").parse_content().is_ok(), "{enc}");
        }
    }

    #[test]
    fn json_content_errors() {
        let mut latin = Header::json(2);
        latin.content_encoding = "latin-1".into();
        assert_eq!(
            frame(latin, b"{}").parse_content(),
            Err(ProtocolError::UnsupportedEncoding("latin-1".into()))
        );
        assert_eq!(
            frame(Header::json(3), b"\"\xff\"").parse_content(),
            Err(ProtocolError::ContentNotUtf8)
        );
        assert!(matches!(
            frame(Header::json(2), b"{,").parse_content(),
            Err(ProtocolError::InvalidJsonContent(_))
        ));
        // Empty content is not a JSON document.
        assert!(matches!(
            frame(Header::json(0), b"").parse_content(),
            Err(ProtocolError::InvalidJsonContent(_))
        ));
    }
}
