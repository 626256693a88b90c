//! [`Decoder`]: splits a byte stream into [`Frame`]s, incrementally.
//!
//! The decoder is a two-state machine:
//!
//! ```text
//!            prefix + whole header arrived,          all content arrived:
//!            header valid and within limits          return Frame, reset
//!  Header ─────────────────────────────────▶ Content ───────────────────▶ Header
//!    │                                          │
//!    └── prefix 0 / too long / bad header ──▶ Err (decoder reset; the stream is unusable)
//! ```
//!
//! The parsed header is kept in the `Content` state, so content arriving in many reads costs
//! one length comparison per call, not a JSON parse.

use crate::protocol::{Frame, Header, Limits, ProtocolError, LEN_PREFIX};

/// Stateful, incremental, zero-copy frame decoder.
///
/// Feed it all unconsumed input each time more arrives; it returns a [`Frame`] borrowing that
/// input once a whole frame is there, and remembers the parsed header in between so the JSON
/// is parsed once per frame.
///
/// # Contract
///
/// `input` always starts at the first byte of the current frame, and holds at least the bytes
/// of the previous call (the caller only appends, until it drops
/// [`Frame::consumed`] bytes after a frame). Breaking this never panics, but the frames
/// returned are then meaningless.
///
/// # Examples
///
/// ```
/// use mio_reactor::protocol::{encode_json, Content, Decoder};
/// use serde_json::json;
///
/// let mut wire = Vec::new();
/// encode_json(&json!({"action": "search", "value": "ring"}), &mut wire);
///
/// let mut decoder = Decoder::default();
/// let mut input = Vec::new();
/// for byte in wire {
///     input.push(byte); // bytes trickling in one at a time
///     if let Some(frame) = decoder.decode(&input)? {
///         assert_eq!(frame.parse_content()?, Content::Json(json!({"action": "search", "value": "ring"})));
///         let consumed = frame.consumed;
///         input.drain(..consumed);
///     }
/// }
/// assert!(input.is_empty());
/// decoder.check_eof(input.len())?; // clean EOF: not mid-frame
/// # Ok::<(), mio_reactor::protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    state: State,
}

#[derive(Debug, Clone, Default)]
enum State {
    /// Waiting for the length prefix and the whole header.
    #[default]
    Header,
    /// The header is parsed; waiting until the input holds `frame_len` bytes.
    Content {
        header: Header,
        /// Offset of the content in the input: prefix + header length.
        content_start: usize,
        /// content_start + content length (checked for overflow when computed).
        frame_len: usize,
    },
}

impl Decoder {
    /// A decoder enforcing `limits`.
    ///
    /// # Examples
    /// An oversized frame is refused as soon as its header is in, before any of its content
    /// has to be buffered:
    /// ```
    /// use mio_reactor::protocol::{encode_binary, Decoder, Limits, ProtocolError};
    ///
    /// let mut decoder = Decoder::new(Limits { max_content: 64, ..Limits::default() });
    /// let mut wire = Vec::new();
    /// encode_binary("blob", &[0; 100], &mut wire)?;
    /// let header_only = &wire[..wire.len() - 100];
    /// assert_eq!(
    ///     decoder.decode(header_only),
    ///     Err(ProtocolError::ContentTooLong { len: 100, max: 64 })
    /// );
    /// # Ok::<(), mio_reactor::protocol::EncodeError>(())
    /// ```
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::Header,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes the next frame from `input`, all unconsumed input starting at a frame boundary.
    ///
    /// Returns `Ok(None)` while more bytes are needed, and `Ok(Some(frame))` once the frame
    /// is complete; the decoder is then ready for the next frame, which starts at
    /// `input[frame.consumed..]`. Bytes past the frame are left alone.
    ///
    /// Limits are checked as early as possible: the header length as soon as the prefix is
    /// there, the content length as soon as the header is parsed, so the caller never has to
    /// buffer an oversized frame to learn it is oversized.
    ///
    /// # Errors
    ///
    /// [`EmptyHeader`](ProtocolError::EmptyHeader),
    /// [`HeaderTooLong`](ProtocolError::HeaderTooLong),
    /// [`ContentTooLong`](ProtocolError::ContentTooLong), or any error of
    /// [`Header::parse`]. The stream cannot be resynchronised after an error: close the
    /// connection. The decoder is reset, so it does not keep a half-parsed frame.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Option<Frame<'a>>, ProtocolError> {
        if let State::Header = self.state {
            match self.parse_header(input) {
                Ok(Some(state)) => self.state = state,
                Ok(None) => return Ok(None),
                Err(e) => {
                    log::debug!("protocol: bad frame: {e}");
                    self.reset();
                    return Err(e);
                }
            }
        }
        Ok(self.take_frame(input))
    }

    /// Whether an EOF now would cut a frame short: bytes are buffered (`buffered` is the
    /// length of the unconsumed input) or a header has been parsed.
    pub fn is_mid_frame(&self, buffered: usize) -> bool {
        buffered > 0 || self.pending_header().is_some()
    }

    /// For the caller that just saw EOF with `buffered` unconsumed bytes: `Ok` if the stream
    /// ended cleanly between frames, [`ProtocolError::Truncated`] otherwise.
    ///
    /// # Errors
    ///
    /// [`Truncated`](ProtocolError::Truncated) when [`is_mid_frame`](Decoder::is_mid_frame).
    pub fn check_eof(&self, buffered: usize) -> Result<(), ProtocolError> {
        if self.is_mid_frame(buffered) {
            Err(ProtocolError::truncated(buffered))
        } else {
            Ok(())
        }
    }

    /// The header of the frame being received, once parsed and until the frame completes.
    pub fn pending_header(&self) -> Option<&Header> {
        match &self.state {
            State::Header => None,
            State::Content { header, .. } => Some(header),
        }
    }

    /// Total length of the frame being received (prefix + header + content), once its header
    /// is parsed. Lets a caller reserve buffer space for the rest in one go.
    pub fn frame_len(&self) -> Option<usize> {
        match &self.state {
            State::Header => None,
            State::Content { frame_len, .. } => Some(*frame_len),
        }
    }

    /// Forgets any partly received frame, for reuse on a fresh stream.
    pub fn reset(&mut self) {
        self.state = State::Header;
    }

    /// Header state: checks the prefix, then parses the header once it is all there.
    fn parse_header(&self, input: &[u8]) -> Result<Option<State>, ProtocolError> {
        let Some(header_len) = self.header_len(input)? else {
            return Ok(None);
        };
        // Cannot overflow: header_len <= u16::MAX.
        let content_start = LEN_PREFIX + header_len;
        let Some(header_bytes) = input.get(LEN_PREFIX..content_start) else {
            return Ok(None);
        };
        let header = Header::parse(header_bytes)?;
        let frame_len = self.check_content_len(content_start, header.content_length)?;
        log::trace!(
            "protocol: header parsed, {} content bytes of {:?}",
            header.content_length,
            header.content_type
        );
        Ok(Some(State::Content {
            header,
            content_start,
            frame_len,
        }))
    }

    /// Reads and checks the length prefix; `None` until both bytes are there.
    fn header_len(&self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let Some(&[hi, lo]) = input.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(ProtocolError::EmptyHeader);
        }
        if len > self.limits.max_header {
            return Err(ProtocolError::HeaderTooLong {
                len,
                max: self.limits.max_header,
            });
        }
        Ok(Some(len))
    }

    /// Checks the announced content length against the limit; returns the frame length.
    fn check_content_len(&self, content_start: usize, len: usize) -> Result<usize, ProtocolError> {
        let too_long = ProtocolError::ContentTooLong {
            len,
            max: self.limits.max_content,
        };
        if len > self.limits.max_content {
            return Err(too_long);
        }
        // Only overflows with a max_content near usize::MAX; still a frame we cannot hold.
        content_start.checked_add(len).ok_or(too_long)
    }

    /// Content state: returns the frame and resets once `input` holds all of it.
    fn take_frame<'a>(&mut self, input: &'a [u8]) -> Option<Frame<'a>> {
        let State::Content {
            content_start,
            frame_len,
            ..
        } = self.state
        else {
            return None;
        };
        // `get` rather than indexing: a caller breaking the contract gets None, not a panic.
        let content = input.get(content_start..frame_len)?;
        let State::Content { header, .. } = std::mem::take(&mut self.state) else {
            return None;
        };
        Some(Frame {
            header,
            content,
            consumed: frame_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode, encode_binary, Content};
    use serde_json::json;

    /// The tutorial's search request, byte for byte as Python's json.dumps emits it.
    const SEARCH_HEADER: &[u8] = br#"{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", "content-length": 38}"#;
    const SEARCH_CONTENT: &[u8] = br#"{"action":"search","value":"morpheus"}"#;

    fn search_request() -> Vec<u8> {
        let mut wire = (SEARCH_HEADER.len() as u16).to_be_bytes().to_vec();
        wire.extend_from_slice(SEARCH_HEADER);
        wire.extend_from_slice(SEARCH_CONTENT);
        wire
    }

    /// A frame with the given raw header bytes and content.
    fn raw_frame(header: &[u8], content: &[u8]) -> Vec<u8> {
        let mut wire = (header.len() as u16).to_be_bytes().to_vec();
        wire.extend_from_slice(header);
        wire.extend_from_slice(content);
        wire
    }

    fn header_json(content_length: &str) -> Vec<u8> {
        format!(
            r#"{{"byteorder":"big","content-type":"text/json","content-encoding":"utf-8","content-length":{content_length}}}"#
        )
        .into_bytes()
    }

    fn decode_all(input: &[u8]) -> Result<Option<Frame<'_>>, ProtocolError> {
        Decoder::default().decode(input)
    }

    #[test]
    fn known_good_request() {
        let wire = search_request();
        assert_eq!(&wire[..2], &[0x00, 0x67]); // 103-byte header
        let frame = decode_all(&wire).unwrap().unwrap();
        assert_eq!(frame.consumed, wire.len());
        assert_eq!(frame.header.content_length, 38);
        assert_eq!(frame.content, SEARCH_CONTENT);
        assert_eq!(
            frame.parse_content().unwrap(),
            Content::Json(json!({"action": "search", "value": "morpheus"}))
        );
    }

    #[test]
    fn known_good_request_round_trips_through_encode() {
        let wire = search_request();
        let frame = decode_all(&wire).unwrap().unwrap();
        let mut again = Vec::new();
        encode(&frame.header, frame.content, &mut again).unwrap();
        let back = decode_all(&again).unwrap().unwrap();
        assert_eq!((back.header, back.content), (frame.header, frame.content));
    }

    #[test]
    fn empty_input_and_partial_prefix_need_more() {
        assert_eq!(decode_all(b""), Ok(None));
        assert_eq!(decode_all(b"\x00"), Ok(None));
    }

    #[test]
    fn zero_header_length_is_rejected() {
        assert_eq!(decode_all(b"\x00\x00"), Err(ProtocolError::EmptyHeader));
    }

    #[test]
    fn oversized_header_is_rejected_from_the_prefix_alone() {
        assert_eq!(
            decode_all(b"\xff\xff"),
            Err(ProtocolError::HeaderTooLong {
                len: 65535,
                max: 16 * 1024
            })
        );
        let tight = Limits {
            max_header: 10,
            ..Limits::default()
        };
        assert_eq!(
            Decoder::new(tight).decode(b"\x00\x0b"),
            Err(ProtocolError::HeaderTooLong { len: 11, max: 10 })
        );
        assert_eq!(Decoder::new(tight).decode(b"\x00\x0a"), Ok(None));
    }

    #[test]
    fn oversized_content_is_rejected_once_the_header_is_parsed() {
        let limits = Limits {
            max_header: 1024,
            max_content: 100,
        };
        // No content bytes at all: the error must not wait for them.
        let wire = raw_frame(&header_json("101"), b"");
        assert_eq!(
            Decoder::new(limits).decode(&wire),
            Err(ProtocolError::ContentTooLong { len: 101, max: 100 })
        );
        let at_limit = raw_frame(&header_json("100"), b"");
        assert_eq!(Decoder::new(limits).decode(&at_limit), Ok(None));
    }

    #[test]
    fn content_length_near_usize_max_does_not_overflow() {
        let limits = Limits {
            max_header: 1024,
            max_content: usize::MAX,
        };
        let wire = raw_frame(&header_json(&usize::MAX.to_string()), b"");
        assert!(matches!(
            Decoder::new(limits).decode(&wire),
            Err(ProtocolError::ContentTooLong { .. })
        ));
    }

    #[test]
    fn impossible_content_lengths() {
        for bad in ["-1", "1.5", "18446744073709551616"] {
            assert!(
                matches!(
                    decode_all(&raw_frame(&header_json(bad), b"")),
                    Err(ProtocolError::InvalidContentLength(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            decode_all(&raw_frame(&header_json(r#""12""#), b"")),
            Err(ProtocolError::WrongType {
                key: "content-length",
                expected: "a non-negative integer"
            })
        );
        assert!(matches!(
            decode_all(&raw_frame(&header_json("2000000"), b"")),
            Err(ProtocolError::ContentTooLong {
                len: 2_000_000,
                max: 1_048_576
            })
        ));
    }

    #[test]
    fn malformed_headers() {
        assert!(matches!(
            decode_all(&raw_frame(b"{not json}", b"")),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert_eq!(
            decode_all(&raw_frame(b"[1,2,3]", b"")),
            Err(ProtocolError::HeaderNotObject)
        );
        assert_eq!(
            decode_all(&raw_frame(b"{\"\xc3\x28\":1}", b"")),
            Err(ProtocolError::HeaderNotUtf8)
        );
        assert_eq!(
            decode_all(&raw_frame(
                br#"{"content-type":"a","content-encoding":"b","content-length":0}"#,
                b""
            )),
            Err(ProtocolError::MissingKey("byteorder"))
        );
    }

    #[test]
    fn an_error_resets_the_decoder() {
        let mut d = Decoder::default();
        assert!(d.decode(b"\x00\x00").is_err());
        assert!(!d.is_mid_frame(0));
        assert!(d.decode(&search_request()).unwrap().is_some());
    }

    #[test]
    fn back_to_back_frames_leave_the_next_unconsumed() {
        let mut wire = search_request();
        encode_binary("binary/x", b"\x01\x02\x03", &mut wire).unwrap();
        wire.extend_from_slice(b"\x00"); // first byte of a third frame
        let first_len = search_request().len();

        let mut d = Decoder::default();
        let first = d.decode(&wire).unwrap().unwrap();
        assert_eq!(first.consumed, first_len);
        assert_eq!(first.content, SEARCH_CONTENT);

        let rest = &wire[first_len..];
        let second = d.decode(rest).unwrap().unwrap();
        assert_eq!(second.content, b"\x01\x02\x03");
        assert_eq!(second.header.content_type, "binary/x");

        let tail = &rest[second.consumed..];
        assert_eq!(tail, b"\x00");
        assert_eq!(d.decode(tail), Ok(None));
        assert_eq!(
            d.check_eof(tail.len()),
            Err(ProtocolError::Truncated { buffered: 1 })
        );
    }

    #[test]
    fn one_byte_at_a_time() {
        let wire = search_request();
        let mut d = Decoder::default();
        for end in 0..wire.len() {
            assert_eq!(d.decode(&wire[..end]), Ok(None), "prefix of {end} bytes");
            assert!(d.is_mid_frame(end) || end == 0);
            // The header becomes pending exactly when its last byte arrives.
            assert_eq!(d.pending_header().is_some(), end >= 2 + SEARCH_HEADER.len());
        }
        let frame = d.decode(&wire).unwrap().unwrap();
        assert_eq!(frame.content, SEARCH_CONTENT);
        assert_eq!(frame.consumed, wire.len());
        assert!(!d.is_mid_frame(0));
        assert_eq!(d.pending_header(), None);
    }

    #[test]
    fn header_is_parsed_once_per_frame() {
        // By construction: once the header is parsed, overwrite its bytes with garbage of the
        // same length. A decoder that re-parsed on every call would now fail; ours must not
        // look at those bytes again.
        let wire = search_request();
        let content_start = 2 + SEARCH_HEADER.len();
        let mut d = Decoder::default();
        assert_eq!(d.decode(&wire[..content_start]), Ok(None));
        assert_eq!(d.frame_len(), Some(wire.len()));

        let mut garbled = wire.clone();
        garbled[2..content_start].fill(b'!');
        for end in content_start..garbled.len() {
            assert_eq!(d.decode(&garbled[..end]), Ok(None));
        }
        let frame = d.decode(&garbled).unwrap().unwrap();
        assert_eq!(frame.header.content_length, 38);
        assert_eq!(frame.content, SEARCH_CONTENT);
    }

    #[test]
    fn empty_content_completes_with_the_header() {
        let mut wire = Vec::new();
        encode_binary("x/empty", b"", &mut wire).unwrap();
        let frame = decode_all(&wire).unwrap().unwrap();
        assert_eq!((frame.content, frame.consumed), (&b""[..], wire.len()));
    }

    #[test]
    fn eof_between_frames_is_clean() {
        let d = Decoder::default();
        assert_eq!(d.check_eof(0), Ok(()));
        assert!(d.is_mid_frame(1));
    }

    #[test]
    fn contract_violation_does_not_panic() {
        let wire = search_request();
        let mut d = Decoder::default();
        assert_eq!(d.decode(&wire[..wire.len() - 1]), Ok(None));
        // The caller wrongly passes less than before: no frame, no panic.
        assert_eq!(d.decode(&wire[..3]), Ok(None));
        assert!(d.decode(&wire).unwrap().is_some());
    }
}
