//! Encoding: appending whole frames to an output buffer.
//!
//! Each function appends exactly one frame, or nothing at all if it returns an error, so a
//! connection's output buffer never holds half a frame.

use serde_json::Value;

use crate::protocol::{EncodeError, Header, LEN_PREFIX};

/// Appends one frame (prefix, `header` as JSON, `content`) to `out`.
///
/// # Errors
///
/// [`EncodeError::LengthMismatch`] if `header.content_length != content.len()`, and
/// [`EncodeError::HeaderTooLong`] if the header JSON exceeds `u16::MAX` bytes. On error
/// `out` is unchanged.
///
/// # Examples
///
/// ```
/// use mio_reactor::protocol::{encode, Header};
///
/// let mut out = Vec::new();
/// encode(&Header::binary("image/png", 3), b"\x89PN", &mut out)?;
/// let header_len = usize::from(u16::from_be_bytes([out[0], out[1]]));
/// assert_eq!(out.len(), 2 + header_len + 3);
/// # Ok::<(), mio_reactor::protocol::EncodeError>(())
/// ```
pub fn encode(header: &Header, content: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if header.content_length != content.len() {
        return Err(EncodeError::LengthMismatch {
            header: header.content_length,
            content: content.len(),
        });
    }
    let json = header.to_json();
    if json.len() > usize::from(u16::MAX) {
        return Err(EncodeError::HeaderTooLong { len: json.len() });
    }
    push_frame(&json, content, out);
    Ok(())
}

/// Appends a `text/json` frame whose content is `value` serialized as compact UTF-8 JSON.
///
/// Infallible: the header is built from the serialized length, and a `text/json` header is
/// about 100 bytes.
///
/// # Examples
/// Frames append: a reply and a notification, queued in one buffer for one write.
/// ```
/// use mio_reactor::protocol::{encode_json, Decoder};
/// use serde_json::json;
///
/// let mut out = Vec::new();
/// encode_json(&json!({"result": "ok"}), &mut out);
/// let first = out.len();
/// encode_json(&json!({"event": "joined"}), &mut out);
///
/// let frame = Decoder::default().decode(&out)?.expect("a whole frame");
/// assert_eq!(frame.consumed, first);
/// assert_eq!(frame.content, br#"{"result":"ok"}"#); // compact JSON
/// # Ok::<(), mio_reactor::protocol::ProtocolError>(())
/// ```
pub fn encode_json(value: &Value, out: &mut Vec<u8>) {
    // Value's Display is serde_json's compact serializer; it cannot fail for a Value (keys are
    // always strings, numbers always finite).
    let body = value.to_string();
    let header = Header::json(body.len()).to_json();
    push_frame(&header, body.as_bytes(), out);
}

/// Appends a frame of opaque `content` with the given `content_type` and encoding `binary`.
///
/// # Errors
///
/// [`EncodeError::HeaderTooLong`] if `content_type` is so long the header exceeds
/// `u16::MAX` bytes; `out` is then unchanged.
///
/// # Examples
/// ```
/// use mio_reactor::protocol::{encode_binary, Content, Decoder};
///
/// let mut out = Vec::new();
/// encode_binary("application/octet-stream", &[0, 1, 2, 255], &mut out)?;
/// let frame = Decoder::default().decode(&out)?.expect("a whole frame");
/// assert_eq!(frame.header.content_encoding, "binary");
/// assert_eq!(frame.parse_content()?, Content::Binary(&[0, 1, 2, 255]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_binary(
    content_type: &str,
    content: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(&Header::binary(content_type, content.len()), content, out)
}

/// Appends the `text/json` error reply `{"error": message}`.
///
/// # Examples
///
/// ```
/// use mio_reactor::protocol::{encode_error, Content, Decoder};
///
/// let mut out = Vec::new();
/// encode_error("header length is zero", &mut out);
/// let frame = Decoder::default().decode(&out)?.expect("a whole frame");
/// assert_eq!(
///     frame.parse_content()?,
///     Content::Json(serde_json::json!({"error": "header length is zero"}))
/// );
/// # Ok::<(), mio_reactor::protocol::ProtocolError>(())
/// ```
pub fn encode_error(message: &str, out: &mut Vec<u8>) {
    encode_json(&serde_json::json!({ "error": message }), out);
}

/// Appends prefix, header and content. Callers guarantee `header.len() <= u16::MAX`.
fn push_frame(header: &str, content: &[u8], out: &mut Vec<u8>) {
    debug_assert!(
        header.len() <= usize::from(u16::MAX),
        "caller checks the header length"
    );
    // Saturation is unreachable given the callers' checks; it keeps this function panic-free.
    let prefix = u16::try_from(header.len()).unwrap_or(u16::MAX);
    // One reservation, so a large content does not trigger repeated growth. Saturating: a
    // length that overflows would fail in `reserve` anyway, with the allocation error.
    out.reserve(
        LEN_PREFIX
            .saturating_add(header.len())
            .saturating_add(content.len()),
    );
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(content);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Content, Decoder};
    use serde_json::json;

    #[test]
    fn wire_layout_is_prefix_header_content() {
        let mut h = Header::json(2);
        h.byteorder = "little".into();
        let mut out = b"existing".to_vec();
        encode(&h, b"{}", &mut out).unwrap();
        let expected_header = br#"{"byteorder":"little","content-type":"text/json","content-encoding":"utf-8","content-length":2}"#;
        let mut expected = b"existing".to_vec();
        expected.extend_from_slice(&(expected_header.len() as u16).to_be_bytes());
        expected.extend_from_slice(expected_header);
        expected.extend_from_slice(b"{}");
        assert_eq!(out, expected);
    }

    #[test]
    fn length_mismatch_leaves_out_unchanged() {
        let mut out = vec![7];
        assert_eq!(
            encode(&Header::json(3), b"{}", &mut out),
            Err(EncodeError::LengthMismatch {
                header: 3,
                content: 2
            })
        );
        assert_eq!(out, [7]);
    }

    #[test]
    fn oversized_header_leaves_out_unchanged() {
        let long_type = "x".repeat(usize::from(u16::MAX));
        let mut out = Vec::new();
        assert!(matches!(
            encode_binary(&long_type, b"", &mut out),
            Err(EncodeError::HeaderTooLong { len }) if len > usize::from(u16::MAX)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn json_and_error_replies_decode() {
        let mut out = Vec::new();
        let value = json!({"result": "Follow the white rabbit. \u{1F430}"});
        encode_json(&value, &mut out);
        encode_error("Error: invalid action 'x'.", &mut out);

        let mut d = Decoder::default();
        let first = d.decode(&out).unwrap().unwrap();
        assert_eq!(first.parse_content().unwrap(), Content::Json(value));
        let rest = &out[first.consumed..];
        let second = d.decode(rest).unwrap().unwrap();
        assert_eq!(
            second.parse_content().unwrap(),
            Content::Json(json!({"error": "Error: invalid action 'x'."}))
        );
        assert_eq!(second.consumed, rest.len());
    }
}
