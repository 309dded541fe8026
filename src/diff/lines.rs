//! Walking a diff line by line over bytes: diffs need not be UTF-8, and a line's `\r` is
//! content (a CRLF file's lines end in `\r\n` in its diff), so only `\n` ends a line.

/// One line of the input: `start..end` is its content without the `\n`, and `next` is where
/// the following line begins.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

/// A position in the input that hands out lines and counts them, so errors can name a line.
pub(super) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// How many lines have been taken so far: the number of the last line taken.
    taken: usize,
    /// The next line, once [`Cursor::peek`] has looked for its end.
    peeked: Option<Line>,
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Cursor<'a> {
        Cursor {
            input,
            pos: 0,
            taken: 0,
            peeked: None,
        }
    }

    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// Where the next line starts.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The number (1-based) of the last line taken.
    pub fn line_no(&self) -> usize {
        self.taken
    }

    /// The next line without taking it.
    pub fn peek(&mut self) -> Option<Line> {
        if self.peeked.is_none() {
            self.peeked = self.find(self.pos);
        }
        self.peeked
    }

    /// The content of the next line without taking it.
    pub fn peek_bytes(&mut self) -> Option<&'a [u8]> {
        let input = self.input;
        self.peek().map(|l| &input[l.start..l.end])
    }

    /// Takes the next line.
    pub fn next_line(&mut self) -> Option<Line> {
        let line = match self.peeked.take() {
            Some(line) => line,
            None => self.find(self.pos)?,
        };
        self.pos = line.next;
        self.taken += 1;
        Some(line)
    }

    /// Takes the next line and returns its content.
    pub fn next_bytes(&mut self) -> Option<&'a [u8]> {
        let input = self.input;
        self.next_line().map(|l| &input[l.start..l.end])
    }

    fn find(&self, start: usize) -> Option<Line> {
        let rest = self.input.get(start..)?;
        if rest.is_empty() {
            return None;
        }
        Some(match find_newline(rest) {
            Some(i) => Line {
                start,
                end: start + i,
                next: start + i + 1,
            },
            None => Line {
                start,
                end: self.input.len(),
                next: self.input.len(),
            },
        })
    }
}

/// The index of the first `\n`, eight bytes at a time: most of a diff's parse time is spent
/// looking for line ends, and the `memchr` crate is not a dependency of Critic.
pub(super) fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const NL: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word) ^ NL;
        // Non-zero iff some byte of `x` is zero, i.e. some byte of the chunk is `\n`.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

/// The line without one trailing `\r`: header lines of a diff sent with CRLF line ends.
pub(super) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// At most 120 characters of a line, for error messages: a malformed line may be huge.
pub(super) fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(trim_cr(line));
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_newlines_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'\n';
                assert_eq!(find_newline(&hay), Some(at), "len {len} at {at}");
            }
            assert_eq!(find_newline(&vec![0x8a; len]), None);
        }
    }

    #[test]
    fn cursor_keeps_carriage_returns_and_counts_lines() {
        let mut c = Cursor::new(b"a\r\n\nlast");
        assert_eq!(c.peek_bytes(), Some(&b"a\r"[..]));
        assert_eq!(c.next_bytes(), Some(&b"a\r"[..]));
        assert_eq!(c.next_bytes(), Some(&b""[..]));
        assert_eq!(c.line_no(), 2);
        assert_eq!(c.next_bytes(), Some(&b"last"[..]));
        assert_eq!(c.next_bytes(), None);
        assert_eq!(c.line_no(), 3);
    }

    #[test]
    fn excerpt_is_bounded() {
        assert_eq!(excerpt(&[b'y'; 500]).chars().count(), 121);
        assert_eq!(excerpt(b"ok\r"), "ok");
    }
}
