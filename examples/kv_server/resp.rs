//! RESP2, the Redis serialization protocol: requests in (multibulk `*2\r\n$3\r\nGET\r\n...`
//! and inline `GET key\r\n`), replies out.
//!
//! A request is parsed in place from the connection's input: its arguments are ranges of
//! the input slice (an inline request's, which may hold escapes, are copied to a scratch
//! buffer first), so a request costs no allocation. Each call parses from the start of the
//! unconsumed input and either finds a whole request or says how it is incomplete; the
//! rules, limits and error texts are Redis 7.0's (`processMultibulkBuffer` and
//! `processInlineBuffer` in networking.c, `sdssplitargs` in sds.c).

use std::fmt;

/// Longest inline request line, and longest `*N` or `$N` line of a multibulk request,
/// without its end of line: Redis's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX: usize = 64 * 1024;

/// Largest multibulk count Redis takes (`INT_MAX`).
const MAX_MULTIBULK: i64 = i32::MAX as i64;

/// Why a request cannot be read: Redis replies `-ERR Protocol error: {this}` and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    UnbalancedQuotes,
    TooBigMultibulkCount,
    InvalidMultibulkLength,
    TooBigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::ExpectedDollar(byte) => {
                write!(f, "expected '$', got '{}'", byte.escape_ascii())
            }
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
        }
    }
}

impl ProtocolError {
    /// The whole error reply, as Redis writes it.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        let mut text = b"Protocol error: ".to_vec();
        match self {
            // Redis prints the byte with %c, raw, into a C string: a NUL ends the text.
            ProtocolError::ExpectedDollar(byte) => {
                text.extend_from_slice(b"expected '$', got '");
                if *byte != 0 {
                    text.extend_from_slice(&[*byte, b'\'']);
                }
            }
            other => text.extend_from_slice(other.to_string().as_bytes()),
        }
        reply::error(out, &text);
    }
}

/// What [`Request::parse`] found at the front of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A request of this many bytes; its arguments are in the [`Request`].
    Command(usize),
    /// This many bytes that hold no command (an empty line, `*0\r\n`): consume and go on.
    Nothing(usize),
    /// Not a whole request yet: wait for more bytes.
    Incomplete,
    /// The input breaks the protocol: reply with it and close.
    Error(ProtocolError),
}

/// The arguments of the last request parsed, kept between requests so that their storage
/// is reused.
#[derive(Debug, Default)]
pub struct Request {
    /// Each argument as `start..end` in the input (multibulk) or in `scratch` (inline).
    ranges: Vec<(usize, usize)>,
    scratch: Vec<u8>,
    inline: bool,
    /// How far an incomplete multibulk request was read (its arguments so far are in
    /// `ranges`).
    progress: Option<Progress>,
    /// Argument lines looked at, resumed reads included: the cost a test keeps linear.
    #[cfg(test)]
    lines_read: usize,
}

/// Where reading an incomplete multibulk request stopped. The request is offered again from
/// its first byte with more bytes behind it (the handler consumes only whole requests), and
/// reading resumes here: a request of ten million arguments arriving over a thousand reads is
/// read once, not once per read (Redis keeps `multibulklen` and `bulklen` in its client for
/// the same reason).
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Arguments still to read.
    left: usize,
    /// Where the next argument's `$` line starts.
    at: usize,
}

/// The arguments of one request: the command name first.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    source: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// How many arguments, the command name included (Redis's `argc`).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Argument `i` (0 is the command name).
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.ranges[i];
        &self.source[start..end]
    }

    /// Arguments `from..`.
    pub fn from(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let source = self.source;
        self.ranges[from..]
            .iter()
            .map(move |&(start, end)| &source[start..end])
    }
}

impl Request {
    /// Reads the request at the front of `input`; bulk arguments longer than `max_bulk`
    /// are a protocol error (`proto-max-bulk-len`).
    ///
    /// After [`Parsed::Incomplete`] the next call must offer the same request again, from its
    /// first byte, with whatever arrived since: reading resumes where it stopped.
    pub fn parse(&mut self, input: &[u8], max_bulk: usize) -> Parsed {
        if let Some(progress) = self.progress.take() {
            return self.parse_arguments(input, max_bulk, progress);
        }
        self.ranges.clear();
        match input.first() {
            None => Parsed::Incomplete,
            Some(b'*') => {
                self.inline = false;
                self.parse_multibulk(input, max_bulk)
            }
            Some(_) => {
                self.inline = true;
                self.parse_inline(input)
            }
        }
    }

    /// The arguments of the request just parsed from `input`.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        Args {
            source: if self.inline { &self.scratch } else { input },
            ranges: &self.ranges,
        }
    }

    fn parse_multibulk(&mut self, input: &[u8], max_bulk: usize) -> Parsed {
        let Some(count_end) = line_end(input, 0) else {
            return if input.len() > INLINE_MAX {
                Parsed::Error(ProtocolError::TooBigMultibulkCount)
            } else {
                Parsed::Incomplete
            };
        };
        if count_end + 1 >= input.len() {
            return Parsed::Incomplete; // the \n after the \r
        }
        let count = match string_to_i64(&input[1..count_end]) {
            Some(count) if count <= MAX_MULTIBULK => count,
            _ => return Parsed::Error(ProtocolError::InvalidMultibulkLength),
        };
        let at = count_end + 2;
        if count <= 0 {
            return Parsed::Nothing(at);
        }
        let left = count as usize; // at most MAX_MULTIBULK
        self.parse_arguments(input, max_bulk, Progress { left, at })
    }

    /// Reads the bulk arguments of a multibulk request from `progress` on.
    fn parse_arguments(&mut self, input: &[u8], max_bulk: usize, progress: Progress) -> Parsed {
        let Progress { mut left, mut at } = progress;
        while left > 0 {
            #[cfg(test)]
            {
                self.lines_read += 1;
            }
            let Some(length_end) = line_end(input, at) else {
                if input.len() - at > INLINE_MAX {
                    return Parsed::Error(ProtocolError::TooBigBulkCount);
                }
                self.progress = Some(Progress { left, at });
                return Parsed::Incomplete;
            };
            if length_end + 1 >= input.len() {
                self.progress = Some(Progress { left, at });
                return Parsed::Incomplete;
            }
            if input[at] != b'$' {
                return Parsed::Error(ProtocolError::ExpectedDollar(input[at]));
            }
            let length = match string_to_i64(&input[at + 1..length_end]) {
                Some(length) if length >= 0 && length as u64 <= max_bulk as u64 => length as usize,
                _ => return Parsed::Error(ProtocolError::InvalidBulkLength),
            };
            if input.len() - (length_end + 2) < length + 2 {
                self.progress = Some(Progress { left, at });
                return Parsed::Incomplete;
            }
            at = length_end + 2;
            self.ranges.push((at, at + length));
            at += length + 2; // Redis does not check that the two bytes are \r\n either
            left -= 1;
        }
        Parsed::Command(at)
    }

    fn parse_inline(&mut self, input: &[u8]) -> Parsed {
        let Some(newline) = input.iter().position(|&b| b == b'\n') else {
            return if input.len() > INLINE_MAX {
                Parsed::Error(ProtocolError::TooBigInline)
            } else {
                Parsed::Incomplete
            };
        };
        let mut line = &input[..newline];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        // Redis splits the line as a C string: a NUL byte ends it.
        if let Some(nul) = line.iter().position(|&b| b == 0) {
            line = &line[..nul];
        }
        if !split_args(line, &mut self.scratch, &mut self.ranges) {
            return Parsed::Error(ProtocolError::UnbalancedQuotes);
        }
        if self.ranges.is_empty() {
            Parsed::Nothing(newline + 1)
        } else {
            Parsed::Command(newline + 1)
        }
    }
}

/// Where the `\r` that ends the line starting at `from` is (Redis looks for `\r` alone).
fn line_end(input: &[u8], from: usize) -> Option<usize> {
    input[from..]
        .iter()
        .position(|&b| b == b'\r')
        .map(|at| from + at)
}

/// C's `isspace` in the "C" locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits an inline request line into arguments as `redis-cli` and `sdssplitargs` do:
/// blanks separate them; `"..."` takes escapes (`\n`, `\r`, `\t`, `\b`, `\a`, `\xHH`, `\`
/// and any other character); `'...'` takes `\'`; a closing quote must be followed by a
/// blank or the end. Returns false for unbalanced quotes.
fn split_args(line: &[u8], scratch: &mut Vec<u8>, ranges: &mut Vec<(usize, usize)>) -> bool {
    scratch.clear();
    let mut at = 0;
    loop {
        while at < line.len() && is_space(line[at]) {
            at += 1;
        }
        if at == line.len() {
            return true;
        }
        let start = scratch.len();
        match split_one(line, &mut at, scratch) {
            true => ranges.push((start, scratch.len())),
            false => return false,
        }
    }
}

/// Copies one argument from `line[*at..]` to `scratch`, unescaped, and moves `at` past it.
fn split_one(line: &[u8], at: &mut usize, scratch: &mut Vec<u8>) -> bool {
    #[derive(PartialEq)]
    enum Quoting {
        Bare,
        Double,
        Single,
    }
    let mut quoting = Quoting::Bare;
    let byte_at = |i: usize| line.get(i).copied().unwrap_or(0);
    loop {
        let byte = byte_at(*at);
        match quoting {
            Quoting::Double => {
                if byte == b'\\'
                    && byte_at(*at + 1) == b'x'
                    && byte_at(*at + 2).is_ascii_hexdigit()
                    && byte_at(*at + 3).is_ascii_hexdigit()
                {
                    scratch.push(hex(byte_at(*at + 2)) * 16 + hex(byte_at(*at + 3)));
                    *at += 3;
                } else if byte == b'\\' && *at + 1 < line.len() {
                    *at += 1;
                    scratch.push(match line[*at] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if byte == b'"' {
                    return closing_quote_ends(line, at);
                } else if *at >= line.len() {
                    return false;
                } else {
                    scratch.push(byte);
                }
            }
            Quoting::Single => {
                if byte == b'\\' && byte_at(*at + 1) == b'\'' {
                    *at += 1;
                    scratch.push(b'\'');
                } else if byte == b'\'' {
                    return closing_quote_ends(line, at);
                } else if *at >= line.len() {
                    return false;
                } else {
                    scratch.push(byte);
                }
            }
            Quoting::Bare => match byte {
                _ if *at >= line.len() => return true,
                b' ' | b'\n' | b'\r' | b'\t' => {
                    *at += 1;
                    return true;
                }
                b'"' => quoting = Quoting::Double,
                b'\'' => quoting = Quoting::Single,
                _ => scratch.push(byte),
            },
        }
        *at += 1;
    }
}

/// After a closing quote at `*at`: the argument ends there if a blank or the end follows.
fn closing_quote_ends(line: &[u8], at: &mut usize) -> bool {
    *at += 1;
    match line.get(*at) {
        None => true,
        Some(&next) if is_space(next) => {
            *at += 1;
            true
        }
        Some(_) => false,
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero (`0` alone is
/// fine), nothing else, within `i64`. The one integer syntax of the protocol and of
/// integer arguments and values.
pub fn string_to_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [] => return None,
        [b'0'] => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        // Up to 2^63: i64::MIN has no positive counterpart.
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(value).ok()
    }
}

/// Reply writers: each appends one RESP2 value to `out`.
pub mod reply {
    /// `+OK`: the most common reply.
    pub const OK: &[u8] = b"+OK\r\n";
    /// The null bulk string, RESP2's "no value".
    pub const NULL: &[u8] = b"$-1\r\n";

    /// A simple string: `+text\r\n` (`text` has no CR or LF).
    pub fn simple(out: &mut Vec<u8>, text: &[u8]) {
        out.push(b'+');
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }

    /// An error: `-ERR text\r\n`, or `-text\r\n` when `text` starts with its own code
    /// (`-WRONGTYPE ...`), as Redis's `addReplyError` does. CR and LF in `text` become
    /// spaces, so that the reply stays one line.
    pub fn error(out: &mut Vec<u8>, text: &[u8]) {
        if text.first() != Some(&b'-') {
            out.extend_from_slice(b"-ERR ");
        }
        out.extend(text.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            _ => b,
        }));
        out.extend_from_slice(b"\r\n");
    }

    /// An integer: `:n\r\n`.
    pub fn integer(out: &mut Vec<u8>, n: i64) {
        out.push(b':');
        decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }

    /// A bulk string's header: `$len\r\n` (the bytes and `\r\n` follow).
    pub fn bulk_header(out: &mut Vec<u8>, len: usize) {
        out.push(b'$');
        decimal(out, len as i64);
        out.extend_from_slice(b"\r\n");
    }

    /// A bulk string: `$len\r\nbytes\r\n`.
    pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
        bulk_header(out, bytes.len());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }

    /// An integer as a bulk string (what `GET` answers for a counter).
    pub fn bulk_integer(out: &mut Vec<u8>, n: i64) {
        let mut digits = Vec::with_capacity(20);
        decimal(&mut digits, n);
        bulk(out, &digits);
    }

    /// An array's header: `*len\r\n` (its `len` elements follow).
    pub fn array(out: &mut Vec<u8>, len: usize) {
        out.push(b'*');
        decimal(out, len as i64);
        out.extend_from_slice(b"\r\n");
    }

    /// `n` in decimal, without allocating.
    pub fn decimal(out: &mut Vec<u8>, n: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut magnitude = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        if n < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX_BULK: usize = 1 << 20;

    fn parse_all(input: &[u8]) -> (Parsed, Vec<Vec<u8>>) {
        let mut request = Request::default();
        let parsed = request.parse(input, MAX_BULK);
        let args = request.args(input);
        (parsed, args.from(0).map(<[u8]>::to_vec).collect())
    }

    #[test]
    fn a_multibulk_request_is_read_in_place() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1";
        let (parsed, args) = parse_all(input);
        assert_eq!(parsed, Parsed::Command(input.len() - 2));
        assert_eq!(args, [b"GET".to_vec(), b"k".to_vec()]);
    }

    #[test]
    fn inline_requests_split_and_unescape_like_redis() {
        let (parsed, args) = parse_all(b"set 'a b' \"c\\x41\\n\"  d\r\n");
        assert_eq!(parsed, Parsed::Command(24));
        assert_eq!(
            args,
            [
                b"set".to_vec(),
                b"a b".to_vec(),
                b"cA\n".to_vec(),
                b"d".to_vec()
            ]
        );
    }

    #[test]
    fn malformed_requests_are_the_errors_redis_names() {
        let cases: [(&[u8], ProtocolError); 5] = [
            (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\nx\r\n", ProtocolError::ExpectedDollar(b'x')),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$01\r\n", ProtocolError::InvalidBulkLength),
            (b"get \"a\r\n", ProtocolError::UnbalancedQuotes),
        ];
        for (input, error) in cases {
            assert_eq!(parse_all(input).0, Parsed::Error(error), "{input:?}");
        }
    }

    #[test]
    fn lines_past_the_inline_limit_are_errors() {
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(
            parse_all(&long).0,
            Parsed::Error(ProtocolError::TooBigInline)
        );
        assert_eq!(parse_all(&long[..INLINE_MAX]).0, Parsed::Incomplete);
    }

    #[test]
    fn string_to_i64_is_strict() {
        assert_eq!(string_to_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string_to_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"01",
            b"-0",
            b"+1",
            b"",
            b"1 ",
            b"-",
        ] {
            assert_eq!(string_to_i64(bad), None, "{bad:?}");
        }
    }

    fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..5).prop_map(|args| {
            let mut out = Vec::new();
            reply::array(&mut out, args.len());
            for arg in &args {
                reply::bulk(&mut out, arg);
            }
            out
        })
    }

    #[test]
    fn a_request_of_many_arguments_in_many_reads_is_read_once() {
        // 10,000 arguments offered in 100 growing pieces, as the handler offers them: each
        // piece resumes where the last stopped (re-reading at most the argument it cut),
        // where starting over would read ~500,000 argument lines.
        let args: Vec<&[u8]> = vec![b"x"; 10_000];
        let mut bytes = Vec::new();
        reply::array(&mut bytes, args.len());
        for arg in &args {
            reply::bulk(&mut bytes, arg);
        }
        let mut request = Request::default();
        let step = bytes.len() / 100;
        for cut in (step..bytes.len()).step_by(step) {
            assert_eq!(request.parse(&bytes[..cut], MAX_BULK), Parsed::Incomplete);
        }
        assert_eq!(
            request.parse(&bytes, MAX_BULK),
            Parsed::Command(bytes.len())
        );
        assert_eq!(request.args(&bytes).len(), 10_000);
        assert!(request.lines_read <= 10_000 + 101, "{}", request.lines_read);
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunking_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            cut in 0usize..300,
        ) {
            let mut request = Request::default();
            let (first, second) = bytes.split_at(cut.min(bytes.len()));
            let mut pending = Vec::new();
            for chunk in [first, second] {
                pending.extend_from_slice(chunk);
                while let Parsed::Command(n) | Parsed::Nothing(n) = request.parse(&pending, 64) {
                    let _ = request.args(&pending).from(0).count();
                    pending.drain(..n);
                }
            }
        }

        #[test]
        fn a_request_read_in_growing_pieces_resumes_to_the_same_arguments(
            bytes in request_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            // As the handler offers it: the same request from its first byte, longer each
            // time, to the same Request, which resumes where it stopped.
            let mut request = Request::default();
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % bytes.len()).collect();
            cuts.sort_unstable();
            for cut in cuts {
                prop_assert_eq!(request.parse(&bytes[..cut], MAX_BULK), Parsed::Incomplete);
            }
            prop_assert_eq!(request.parse(&bytes, MAX_BULK), Parsed::Command(bytes.len()));
            let args: Vec<Vec<u8>> = request.args(&bytes).from(0).map(<[u8]>::to_vec).collect();
            prop_assert_eq!(args, parse_all(&bytes).1);
        }

        #[test]
        fn a_request_split_anywhere_parses_the_same(bytes in request_bytes()) {
            let whole = parse_all(&bytes);
            prop_assert_eq!(whole.0, Parsed::Command(bytes.len()));
            for cut in 0..bytes.len() {
                prop_assert_eq!(parse_all(&bytes[..cut]).0, Parsed::Incomplete);
            }
        }
    }
}
