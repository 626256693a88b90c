//! Property tests for the header+content protocol codec: the decoder survives any bytes in
//! any chunking, and whatever the encoder writes the decoder reads back unchanged.

use mio_reactor::protocol::{
    encode, encode_binary, encode_json, Content, Decoder, Frame, Header, Limits, ProtocolError,
};
use proptest::prelude::*;
use serde_json::Value;

/// Feeds `wire` to a decoder in chunks of the given sizes, the way a reactor would: the
/// input buffer grows by a chunk, and frames are drained from its front as they complete.
fn feed(decoder: &mut Decoder, wire: &[u8], chunks: &[usize]) -> Fed {
    let mut frames = Vec::new();
    let mut input = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().chain(std::iter::repeat(1));
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        input.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match decoder.decode(&input) {
                Ok(Some(Frame {
                    header,
                    content,
                    consumed,
                })) => {
                    assert!(consumed <= input.len());
                    frames.push((header, content.to_vec()));
                    input.drain(..consumed);
                }
                Ok(None) => break,
                Err(e) => {
                    return Fed {
                        frames,
                        error: Some(e),
                        left: input,
                    }
                }
            }
        }
    }
    Fed {
        frames,
        error: None,
        left: input,
    }
}

/// What [`feed`] saw.
struct Fed {
    /// Decoded frames as (header, content).
    frames: Vec<(Header, Vec<u8>)>,
    /// The error that stopped decoding, if any.
    error: Option<ProtocolError>,
    /// Unconsumed input at the end.
    left: Vec<u8>,
}

fn small_limits() -> Limits {
    // Small limits so random bytes sometimes get past the length checks.
    Limits {
        max_header: 512,
        max_content: 4096,
    }
}

fn header_strategy() -> impl Strategy<Value = (String, String, String)> {
    (
        prop_oneof![Just("little".to_string()), Just("big".to_string())],
        any::<String>(),
        any::<String>(),
    )
}

/// Arbitrary JSON values, a few levels deep.
fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Multiples of 1/8: exact in binary, so they survive serde_json's default float
        // parsing (exact round trips of arbitrary f64 need its `float_roundtrip` feature).
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        wire in prop::collection::vec(any::<u8>(), 0..2048),
        chunks in prop::collection::vec(1usize..64, 0..64),
    ) {
        let mut decoder = Decoder::new(small_limits());
        let left = feed(&mut decoder, &wire, &chunks).left;
        // Whatever happened, the EOF check must agree with what is left.
        prop_assert_eq!(decoder.is_mid_frame(left.len()), !left.is_empty());
    }

    #[test]
    fn plausible_frames_with_random_headers_never_panic(
        header in prop::collection::vec(any::<u8>(), 1..300),
        tail in prop::collection::vec(any::<u8>(), 0..300),
        chunks in prop::collection::vec(1usize..32, 0..32),
    ) {
        // A correct prefix, so the random bytes reach the JSON parser.
        let mut wire = (header.len() as u16).to_be_bytes().to_vec();
        wire.extend_from_slice(&header);
        wire.extend_from_slice(&tail);
        let _ = feed(&mut Decoder::new(small_limits()), &wire, &chunks);
    }

    #[test]
    fn binary_frames_round_trip(
        frames in prop::collection::vec(
            (header_strategy(), prop::collection::vec(any::<u8>(), 0..512)),
            1..5,
        ),
        chunks in prop::collection::vec(1usize..200, 0..40),
    ) {
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for ((byteorder, content_type, content_encoding), content) in frames {
            let header = Header {
                byteorder,
                content_type,
                content_encoding,
                content_length: content.len(),
            };
            encode(&header, &content, &mut wire).unwrap();
            sent.push((header, content));
        }
        let fed = feed(&mut Decoder::default(), &wire, &chunks);
        prop_assert_eq!(fed.error, None);
        prop_assert!(fed.left.is_empty());
        prop_assert_eq!(fed.frames, sent);
    }

    #[test]
    fn encode_binary_round_trips_as_binary_content(
        content_type in "[a-z]{1,10}/[a-z-]{1,20}",
        content in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        prop_assume!(content_type != "text/json");
        let mut wire = Vec::new();
        encode_binary(&content_type, &content, &mut wire).unwrap();
        let frame = Decoder::default().decode(&wire).unwrap().unwrap();
        prop_assert_eq!(frame.consumed, wire.len());
        prop_assert_eq!(&frame.header.content_type, &content_type);
        prop_assert_eq!(frame.parse_content().unwrap(), Content::Binary(&content[..]));
    }

    #[test]
    fn json_frames_round_trip(
        values in prop::collection::vec(json_strategy(), 1..4),
        chunks in prop::collection::vec(1usize..100, 0..40),
    ) {
        let mut wire = Vec::new();
        for v in &values {
            encode_json(v, &mut wire);
        }
        let fed = feed(&mut Decoder::default(), &wire, &chunks);
        prop_assert_eq!(fed.error, None);
        prop_assert!(fed.left.is_empty());
        prop_assert_eq!(fed.frames.len(), values.len());
        for ((header, content), value) in fed.frames.iter().zip(&values) {
            let frame = Frame { header: header.clone(), content, consumed: 0 };
            prop_assert_eq!(frame.parse_content().unwrap(), Content::Json(value.clone()));
        }
    }
}

/// Text that JSON reads as a number: integers of any size and sign, fractions, exponents.
fn json_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{15,40}",
        "-?[0-9]{1,5}\\.[0-9]{1,5}",
        "-?[1-9][eE][+-]?[0-9]{1,3}",
    ]
}

proptest! {
    #[test]
    fn any_content_length_is_accepted_only_within_limits(
        len in json_number_text(),
        content in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let header = format!(
            r#"{{"byteorder":"big","content-type":"a/b","content-encoding":"binary","content-length":{len}}}"#
        );
        let mut wire = (header.len() as u16).to_be_bytes().to_vec();
        wire.extend_from_slice(header.as_bytes());
        wire.extend_from_slice(&content);
        let limits = small_limits();
        match Decoder::new(limits).decode(&wire) {
            Ok(Some(frame)) => {
                prop_assert_eq!(frame.content.len(), frame.header.content_length);
                prop_assert!(frame.header.content_length <= content.len());
            }
            Ok(None) => prop_assert!(len.parse::<usize>().is_ok_and(|n| n <= limits.max_content)),
            Err(ProtocolError::ContentTooLong { len: n, max }) => prop_assert!(n > max),
            Err(ProtocolError::InvalidContentLength(_)) => {}
            Err(ProtocolError::InvalidJson(_)) => {} // e.g. exponents beyond f64
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
