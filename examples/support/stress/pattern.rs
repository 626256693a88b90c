//! Reproducible byte streams. A scripted client sends a stream and regenerates it to check
//! the echo, so no client keeps a copy of what it sent: 1 GiB costs no memory.

use mio_reactor::protocol::encode_binary;

/// The shape of a stream's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Uniformly random bytes: garbage for any text protocol, with a newline every 256
    /// bytes on average.
    Random,
    /// Printable ASCII, with a newline ending every line of `line_len` bytes; `0` means no
    /// newline ever (a line that never ends).
    Lines {
        /// Bytes per line, newline included; `0` for none.
        line_len: u64,
    },
    /// Whole frames of the application protocol (`mio_reactor::protocol`), each with random
    /// binary content of up to `max_content` bytes.
    Frames {
        /// The largest content of a frame.
        max_content: usize,
    },
}

/// An endless byte stream: the same seed and kind always give the same bytes, however the
/// stream is cut into pieces.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Explicit bytes sent before the generated ones (a crafted frame header, say).
    prefix: Vec<u8>,
    prefix_at: usize,
    kind: Kind,
    /// `Kind::Frames`: the frame being sent, and how much of it is.
    frame: Vec<u8>,
    frame_at: usize,
    state: u64,
    /// Bytes produced so far (places the newlines of `Kind::Lines`).
    position: u64,
    word: [u8; 8],
    /// Bytes of `word` already used.
    used: usize,
}

impl Pattern {
    pub fn new(seed: u64, kind: Kind) -> Pattern {
        Pattern {
            prefix: Vec::new(),
            prefix_at: 0,
            kind,
            frame: Vec::new(),
            frame_at: 0,
            // Any non-zero state works for xorshift; spread nearby seeds apart.
            state: (seed ^ 0x5DEE_CE66_D1B5_4A32).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            position: 0,
            word: [0; 8],
            used: 8,
        }
    }

    /// The same stream, after `prefix`.
    pub fn after(prefix: Vec<u8>, rest: Pattern) -> Pattern {
        Pattern { prefix, ..rest }
    }

    /// For `Kind::Frames`: the length and number of the whole frames that the stream of
    /// `seed` starts with, as few as make at least `at_least` bytes.
    pub fn whole_frames(seed: u64, max_content: usize, at_least: u64) -> (u64, u64) {
        let mut pattern = Pattern::new(seed, Kind::Frames { max_content });
        let (mut len, mut frames) = (0, 0);
        while len < at_least {
            pattern.next_frame();
            len += pattern.frame.len() as u64;
            frames += 1;
        }
        (len, frames)
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let from_prefix = (self.prefix.len() - self.prefix_at).min(buf.len());
        let (head, buf) = buf.split_at_mut(from_prefix);
        head.copy_from_slice(&self.prefix[self.prefix_at..self.prefix_at + from_prefix]);
        self.prefix_at += from_prefix;
        if let Kind::Frames { .. } = self.kind {
            return self.fill_frames(buf);
        }
        self.fill_random(buf);
    }

    fn fill_frames(&mut self, buf: &mut [u8]) {
        let mut filled = 0;
        while filled < buf.len() {
            if self.frame_at == self.frame.len() {
                self.next_frame();
            }
            let n = (self.frame.len() - self.frame_at).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.frame[self.frame_at..self.frame_at + n]);
            self.frame_at += n;
            filled += n;
        }
    }

    fn next_frame(&mut self) {
        let Kind::Frames { max_content } = self.kind else {
            return;
        };
        let len = (self.next_word() % (max_content as u64 + 1)) as usize;
        let mut content = vec![0; len];
        self.fill_random(&mut content);
        self.frame.clear();
        self.frame_at = 0;
        encode_binary("binary/stress", &content, &mut self.frame)
            .expect("a short content type always encodes");
    }

    /// Random bytes (or printable lines) from the generator.
    fn fill_random(&mut self, buf: &mut [u8]) {
        let mut filled = 0;
        // Leftover bytes of the current word first, then whole words, then a partial one.
        while filled < buf.len() && self.used < 8 {
            buf[filled] = self.word[self.used];
            self.used += 1;
            filled += 1;
        }
        let mut chunks = buf[filled..].chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_word().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            self.word = self.next_word().to_le_bytes();
            self.used = tail.len();
            tail.copy_from_slice(&self.word[..tail.len()]);
        }
        if let Kind::Lines { line_len } = self.kind {
            for byte in buf.iter_mut() {
                self.position += 1;
                *byte = if line_len > 0 && self.position % line_len == 0 {
                    b'\n'
                } else {
                    b' ' + *byte % 95
                };
            }
        }
    }

    /// xorshift64: cheap, and plenty random for traffic.
    fn next_word(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

/// FNV-1a, fed in pieces: hashes of a stream compare megabytes without keeping them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.0 = (self.0 ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
