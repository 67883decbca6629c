//! Turning a byte stream into lines, and keeping a bounded tail of text.

use crate::secrets::Redactor;

/// A line longer than this is cut into pieces, so one newline-free gigabyte
/// cannot grow memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Splits chunks into complete lines; holds back a partial last line.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feed bytes; `on_line` gets each line without its newline, and whether
    /// it ended with one (a piece of an over-long line does not). An
    /// over-long line is never cut inside one of `redactor`'s secrets.
    pub fn push(&mut self, mut chunk: &[u8], redactor: &Redactor, mut on_line: impl FnMut(&[u8], bool)) {
        while let Some(nl) = memchr(chunk) {
            if self.pending.is_empty() {
                on_line(strip_cr(&chunk[..nl]), true);
            } else {
                self.pending.extend_from_slice(&chunk[..nl]);
                on_line(strip_cr(&self.pending), true);
                self.pending.clear();
            }
            chunk = &chunk[nl + 1..];
        }
        self.pending.extend_from_slice(chunk);
        while self.pending.len() > MAX_LINE {
            // Cut before a secret that spans the limit, and on a UTF-8
            // boundary so no character is split in two.
            let mut cut = match redactor.safe_cut(&self.pending, MAX_LINE) {
                c if c >= MAX_LINE / 2 => c,
                _ => MAX_LINE,
            };
            // The byte at `cut` starts the next piece; step back while it
            // is a UTF-8 continuation byte (at most three). A buffer of
            // exactly `cut` bytes has no next piece.
            let limit = cut;
            while cut > limit - 4 && self.pending.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
                cut -= 1;
            }
            let rest = self.pending.split_off(cut);
            on_line(&self.pending, false);
            self.pending = rest;
        }
    }

    /// End of stream: a final line without newline.
    pub fn finish(&mut self, mut on_line: impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            on_line(&self.pending, false);
            self.pending.clear();
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The last `limit` bytes (about) of a stream, cut at line boundaries.
pub struct Tail {
    text: String,
    limit: usize,
    truncated: bool,
}

impl Tail {
    pub fn new(limit: usize) -> Self {
        Self { text: String::new(), limit, truncated: false }
    }

    /// Append a line; `newline` is false only for a stream's unterminated last line.
    pub fn push_line(&mut self, line: &str, newline: bool) {
        self.text.push_str(line);
        if newline {
            self.text.push('\n');
        }
        // Trim only when twice over the limit, so trimming stays amortised O(1).
        if self.text.len() > self.limit.saturating_mul(2).max(1) {
            let mut cut = self.text.len() - self.limit;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            let cut = self.text[cut..].find('\n').map_or(cut, |i| cut + i + 1);
            self.text.drain(..cut);
            self.truncated = true;
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn into_string(self) -> String {
        let mut text = self.text;
        if text.len() > self.limit {
            let mut cut = text.len() - self.limit;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        split_with(chunks, &Redactor::new())
    }

    fn split_with(chunks: &[&[u8]], redactor: &Redactor) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, redactor, |l, _| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        s.finish(|l, _| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn joins_lines_across_chunks() {
        assert_eq!(split(&[b"ab", b"c\nde", b"f\r\n", b"tail"]), ["abc", "def", "tail"]);
    }

    #[test]
    fn cuts_endless_lines() {
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        let lines = split(&[&big]);
        assert_eq!(lines.iter().map(String::len).collect::<Vec<_>>(), [MAX_LINE, MAX_LINE, 10]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_one_piece() {
        for extra in [0, 1] {
            let big = vec![b'x'; MAX_LINE + extra];
            let lines = split(&[&big]);
            let expected: &[usize] = if extra == 0 { &[MAX_LINE] } else { &[MAX_LINE, 1] };
            assert_eq!(lines.iter().map(String::len).collect::<Vec<_>>(), expected);
        }
        // Arriving in chunks that fill the buffer exactly, then its newline:
        // one line, not a piece and an empty line.
        let half = vec![b'y'; MAX_LINE / 2];
        assert_eq!(split(&[&half, &half, b"\n"]).iter().map(String::len).collect::<Vec<_>>(), [MAX_LINE]);
    }

    #[test]
    fn a_cut_does_not_split_a_character() {
        let mut big = vec![b'x'; MAX_LINE - 1];
        big.extend_from_slice("é and more".as_bytes());
        let lines = split(&[&big]);
        assert_eq!(lines[0].len(), MAX_LINE - 1);
        assert!(lines[1].starts_with('é'));
    }

    #[test]
    fn an_endless_line_is_not_cut_inside_a_secret() {
        let redactor = Redactor::new();
        redactor.add("s3cr3t-value-at-the-cut");
        let mut big = vec![b'x'; MAX_LINE - 5];
        big.extend_from_slice(b"s3cr3t-value-at-the-cut");
        big.extend(vec![b'y'; 100]);
        let lines = split_with(&[&big], &redactor);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE - 5, "cut before the secret");
        assert!(lines[1].starts_with("s3cr3t-value-at-the-cut"));
        assert_eq!(redactor.redact(&lines[1]), format!("***{}", "y".repeat(100)));
    }

    #[test]
    fn tail_stays_bounded() {
        let mut t = Tail::new(100);
        for i in 0..1000 {
            t.push_line(&format!("line {i}"), true);
        }
        assert!(t.truncated());
        let s = t.into_string();
        assert!(s.len() <= 100);
        assert!(s.ends_with("line 999\n"));
    }
}
