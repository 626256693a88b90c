//! The JSON header: the [`Header`] type, its parser and its emitter.
//!
//! The header is the part of a frame between the 2-byte length prefix and the content. It is
//! a JSON object with four required keys; other keys are allowed and ignored, so a peer can
//! add its own without breaking us.

use serde_json::{Map, Value};

use crate::protocol::ProtocolError;

/// Size of the big-endian `u16` that announces the header length.
pub const LEN_PREFIX: usize = 2;

/// The `content-type` whose content is a JSON document.
pub const JSON_CONTENT_TYPE: &str = "text/json";

/// The only `content-encoding` supported for [`JSON_CONTENT_TYPE`] content.
pub const UTF8_ENCODING: &str = "utf-8";

/// The `content-encoding` used for opaque content by [`Header::binary`].
pub const BINARY_ENCODING: &str = "binary";

/// The required keys, in the order they are checked and emitted (the tutorial's order).
const BYTEORDER: &str = "byteorder";
const CONTENT_TYPE: &str = "content-type";
const CONTENT_ENCODING: &str = "content-encoding";
const CONTENT_LENGTH: &str = "content-length";

/// The decoded JSON header of one frame.
///
/// # Examples
///
/// ```
/// use mio_reactor::protocol::Header;
///
/// let h = Header::parse(br#"{"byteorder":"big","content-type":"text/json",
///     "content-encoding":"utf-8","content-length":2,"x-extra":true}"#)?;
/// assert_eq!(h, Header { byteorder: "big".into(), ..Header::json(2) });
/// # Ok::<(), mio_reactor::protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `"little"` or `"big"`: the sender's native byte order. Informational only: it is
    /// neither validated nor used, since the content is JSON text or opaque bytes.
    pub byteorder: String,
    /// MIME-like type of the content; [`JSON_CONTENT_TYPE`] means a JSON document.
    pub content_type: String,
    /// Encoding of the content, e.g. [`UTF8_ENCODING`] or [`BINARY_ENCODING`].
    pub content_encoding: String,
    /// Number of content bytes that follow the header.
    pub content_length: usize,
}

impl Header {
    /// A header for `content_length` bytes of UTF-8 JSON content (`text/json`, `utf-8`).
    pub fn json(content_length: usize) -> Self {
        Header {
            byteorder: native_byteorder().to_owned(),
            content_type: JSON_CONTENT_TYPE.to_owned(),
            content_encoding: UTF8_ENCODING.to_owned(),
            content_length,
        }
    }

    /// A header for `content_length` opaque bytes of `content_type`, encoding `binary`.
    pub fn binary(content_type: impl Into<String>, content_length: usize) -> Self {
        Header {
            byteorder: native_byteorder().to_owned(),
            content_type: content_type.into(),
            content_encoding: BINARY_ENCODING.to_owned(),
            content_length,
        }
    }

    /// Whether the content is declared to be a JSON document (`content-type` `text/json`).
    ///
    /// The comparison is exact, as in the tutorial: `TEXT/JSON` is opaque bytes.
    pub fn is_json(&self) -> bool {
        self.content_type == JSON_CONTENT_TYPE
    }

    /// Parses the header bytes (without the length prefix).
    ///
    /// Checks UTF-8, JSON syntax, that it is an object, and each required key in the order
    /// `byteorder`, `content-type`, `content-encoding`, `content-length`: the first problem
    /// found is reported. Limits are not checked here; [`Decoder`](crate::protocol::Decoder)
    /// applies them.
    ///
    /// # Errors
    ///
    /// [`HeaderNotUtf8`](ProtocolError::HeaderNotUtf8),
    /// [`InvalidJson`](ProtocolError::InvalidJson),
    /// [`HeaderNotObject`](ProtocolError::HeaderNotObject),
    /// [`MissingKey`](ProtocolError::MissingKey),
    /// [`WrongType`](ProtocolError::WrongType) or
    /// [`InvalidContentLength`](ProtocolError::InvalidContentLength).
    pub fn parse(bytes: &[u8]) -> Result<Header, ProtocolError> {
        // Checked separately so a binary header gets a precise error rather than whatever
        // serde_json says about the first bad byte.
        let text = std::str::from_utf8(bytes).map_err(|_| ProtocolError::HeaderNotUtf8)?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
        let object = value.as_object().ok_or(ProtocolError::HeaderNotObject)?;
        Ok(Header {
            byteorder: string_field(object, BYTEORDER)?,
            content_type: string_field(object, CONTENT_TYPE)?,
            content_encoding: string_field(object, CONTENT_ENCODING)?,
            content_length: content_length(required(object, CONTENT_LENGTH)?)?,
        })
    }

    /// Emits the header as compact JSON, keys in the tutorial's order.
    ///
    /// # Examples
    ///
    /// ```
    /// use mio_reactor::protocol::Header;
    ///
    /// let mut h = Header::binary("image/png", 3);
    /// h.byteorder = "little".into();
    /// assert_eq!(
    ///     h.to_json(),
    ///     r#"{"byteorder":"little","content-type":"image/png","content-encoding":"binary","content-length":3}"#
    /// );
    /// ```
    pub fn to_json(&self) -> String {
        // Written key by key rather than through a serde_json::Map, which sorts its keys unless
        // the crate-wide `preserve_order` feature is on. Values still go through serde_json
        // (Value's Display) so strings are escaped correctly.
        format!(
            r#"{{"{BYTEORDER}":{},"{CONTENT_TYPE}":{},"{CONTENT_ENCODING}":{},"{CONTENT_LENGTH}":{}}}"#,
            Value::from(self.byteorder.as_str()),
            Value::from(self.content_type.as_str()),
            Value::from(self.content_encoding.as_str()),
            self.content_length,
        )
    }
}

/// `"little"` or `"big"`, like Python's `sys.byteorder`.
///
/// What [`Header::json`] and [`Header::binary`] put in `byteorder`:
/// ```
/// use mio_reactor::protocol::{native_byteorder, Header};
///
/// assert_eq!(Header::json(0).byteorder, native_byteorder());
/// assert!(["little", "big"].contains(&native_byteorder()));
/// ```
pub fn native_byteorder() -> &'static str {
    if cfg!(target_endian = "big") {
        "big"
    } else {
        "little"
    }
}

fn required<'v>(
    object: &'v Map<String, Value>,
    key: &'static str,
) -> Result<&'v Value, ProtocolError> {
    object.get(key).ok_or(ProtocolError::MissingKey(key))
}

fn string_field(object: &Map<String, Value>, key: &'static str) -> Result<String, ProtocolError> {
    match required(object, key)? {
        Value::String(s) => Ok(s.clone()),
        _ => Err(ProtocolError::WrongType {
            key,
            expected: "a string",
        }),
    }
}

/// A JSON number that is a non-negative integer fitting in `usize`.
///
/// serde_json keeps integers that fit in `u64`/`i64` exact and turns anything else (fractions,
/// exponents, 2^64 and beyond) into `f64`, so `as_u64` rejects all of those at once.
fn content_length(value: &Value) -> Result<usize, ProtocolError> {
    let Value::Number(n) = value else {
        return Err(ProtocolError::WrongType {
            key: CONTENT_LENGTH,
            expected: "a non-negative integer",
        });
    };
    n.as_u64()
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(|| ProtocolError::InvalidContentLength(n.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid header with `key` replaced by the raw JSON `value` (or removed if `None`).
    fn header_with(key: &str, value: Option<&str>) -> Vec<u8> {
        let fields = [
            (BYTEORDER, r#""little""#),
            (CONTENT_TYPE, r#""text/json""#),
            (CONTENT_ENCODING, r#""utf-8""#),
            (CONTENT_LENGTH, "5"),
        ];
        let body: Vec<String> = fields
            .iter()
            .filter_map(|&(k, v)| {
                let v = if k == key { value? } else { v };
                Some(format!("\"{k}\":{v}"))
            })
            .collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    }

    #[test]
    fn parses_the_tutorial_header() {
        let raw = br#"{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", "content-length": 39}"#;
        let h = Header::parse(raw).unwrap();
        assert_eq!(h.byteorder, "little");
        assert_eq!(h.content_type, "text/json");
        assert_eq!(h.content_encoding, "utf-8");
        assert_eq!(h.content_length, 39);
        assert!(h.is_json());
    }

    #[test]
    fn extra_keys_are_ignored() {
        let raw = br#"{"byteorder":"big","content-type":"a/b","content-encoding":"binary","content-length":0,"x":[1,{}]}"#;
        assert_eq!(Header::parse(raw).unwrap().content_length, 0);
    }

    #[test]
    fn each_missing_key_is_named() {
        for key in [BYTEORDER, CONTENT_TYPE, CONTENT_ENCODING, CONTENT_LENGTH] {
            assert_eq!(
                Header::parse(&header_with(key, None)),
                Err(ProtocolError::MissingKey(key)),
                "{key}"
            );
        }
    }

    #[test]
    fn string_keys_reject_other_types() {
        for key in [BYTEORDER, CONTENT_TYPE, CONTENT_ENCODING] {
            for bad in ["1", "null", "true", "[]", "{}"] {
                assert_eq!(
                    Header::parse(&header_with(key, Some(bad))),
                    Err(ProtocolError::WrongType {
                        key,
                        expected: "a string"
                    }),
                    "{key}={bad}"
                );
            }
        }
    }

    #[test]
    fn content_length_must_be_a_number() {
        for bad in [r#""12""#, "null", "[5]", "true"] {
            assert_eq!(
                Header::parse(&header_with(CONTENT_LENGTH, Some(bad))),
                Err(ProtocolError::WrongType {
                    key: CONTENT_LENGTH,
                    expected: "a non-negative integer"
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn impossible_content_lengths() {
        for bad in ["-1", "1.5", "1.0", "1e3", "18446744073709551616", "-0.0"] {
            assert!(
                matches!(
                    Header::parse(&header_with(CONTENT_LENGTH, Some(bad))),
                    Err(ProtocolError::InvalidContentLength(_))
                ),
                "{bad}"
            );
        }
        // u64::MAX is an integer; whether it fits depends on usize, and it must not panic.
        let max = Header::parse(&header_with(CONTENT_LENGTH, Some("18446744073709551615")));
        if usize::BITS == 64 {
            assert_eq!(max.unwrap().content_length, usize::MAX);
        } else {
            assert!(max.is_err());
        }
    }

    #[test]
    fn not_utf8_not_json_not_object() {
        assert_eq!(
            Header::parse(b"{\"a\xff\":1}"),
            Err(ProtocolError::HeaderNotUtf8)
        );
        assert!(matches!(
            Header::parse(b"{\"byteorder\":"),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert!(matches!(
            Header::parse(b"{} trailing"),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert_eq!(Header::parse(b"[1,2]"), Err(ProtocolError::HeaderNotObject));
        assert_eq!(Header::parse(b"\"s\""), Err(ProtocolError::HeaderNotObject));
    }

    #[test]
    fn emit_then_parse_round_trips_awkward_strings() {
        let h = Header {
            byteorder: "big".into(),
            content_type: "a\"b\\c\n\u{1F430}".into(),
            content_encoding: "\u{0}".into(),
            content_length: usize::MAX,
        };
        assert_eq!(Header::parse(h.to_json().as_bytes()).unwrap(), h);
    }

    #[test]
    fn constructors() {
        let j = Header::json(4);
        assert_eq!(
            (j.content_type.as_str(), j.content_encoding.as_str()),
            ("text/json", "utf-8")
        );
        assert_eq!(j.byteorder, native_byteorder());
        let b = Header::binary(String::from("binary/x"), 9);
        assert_eq!(b.content_encoding, "binary");
        assert!(!b.is_json());
    }
}
