//! A cursor over a text stream with one fixed buffer: memory stays bounded whatever the trace's
//! length, and a line longer than the buffer is an error rather than a reason to grow.
//!
//! The cursor does not split lines ahead of the parser. A format's parser reads a line straight
//! from the buffered bytes and says where it ended (at the `\n` it must see after the last
//! field), so a well-formed line is scanned once. Only a malformed line, or one that runs past
//! the buffered bytes, costs a separate search for its end.

use super::parse::Reason;
use std::io::{self, Read};

/// Size of the buffer, 1 MiB: a line and its newline must fit in it. Trace lines are a few
/// dozen bytes; a longer "line" means the file is not a text trace.
pub(crate) const LINE_BUFFER_BYTES: usize = 1 << 20;

/// What a parser made of the bytes at the cursor.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Step<T> {
    /// One line, `len` bytes long including its `\n` (without one only for a last line at the
    /// end of the stream), parsed into `item`.
    Line {
        /// Bytes to consume.
        len: usize,
        /// What the line meant.
        item: T,
    },
    /// The line does not end within the bytes given and the stream has more: read on.
    NeedMore,
    /// The line is malformed, or ends beyond the bytes given: the cursor tells which.
    Bad(Reason),
}

/// A line-oriented text format, as the cursor drives it.
///
/// A trait with an associated function rather than a closure argument, so that the format's
/// parser is a direct call the compiler inlines into the reading loop.
pub(crate) trait LineFormat {
    /// What one line means.
    type Item;

    /// Parses the line at the start of `avail` (every buffered byte from there on); `eof`
    /// says that the stream ends after `avail`. Must return [`Step::Line`] only after seeing
    /// the line's `\n`, or the end of `avail` when `eof`.
    fn step(avail: &[u8], eof: bool) -> Step<Self::Item>;
}

/// Where a line ends: `Line` at the first `\n` from `from` on, or at the end of `avail` when
/// the stream ends there.
#[inline(always)]
pub(crate) fn to_end_of_line<T>(avail: &[u8], from: usize, eof: bool, item: T) -> Step<T> {
    match find_newline(&avail[from..]) {
        Some(i) => Step::Line {
            len: from + i + 1,
            item,
        },
        None if eof => Step::Line {
            len: avail.len(),
            item,
        },
        None => Step::NeedMore,
    }
}

/// The end of a line whose fields end at `i`: the `\n` there, or the end of a final line.
/// Anything else is malformed (or cut short by the buffer, which the cursor sorts out).
#[inline(always)]
pub(crate) fn line_ends_at<T>(avail: &[u8], i: usize, eof: bool, item: T) -> Step<T> {
    match avail.get(i) {
        Some(b'\n') => Step::Line { len: i + 1, item },
        None if eof => Step::Line { len: i, item },
        _ => Step::Bad(None),
    }
}

/// Index of the first `\n` in `hay`.
///
/// Trace lines are short (Lackey's are 13 to 20 bytes), so the fixed cost of a vectorised
/// search per call outweighs its speed; this tests eight bytes at a time in a general-purpose
/// register instead ("has a zero byte" on `word ^ 0x0a0a...`, Hacker's Delight 6-1). Long
/// stretches without a newline go to `memchr`.
#[inline]
pub(crate) fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut i = 0;
    // Up to four words (32 bytes) by hand, covering every line of a well-formed trace.
    while i + 8 <= hay.len() && i < 32 {
        let word = u64::from_le_bytes(hay[i..i + 8].try_into().expect("8 bytes"));
        let x = word ^ NEWLINES;
        // The lowest set high bit marks the first zero byte of x exactly (borrows only
        // propagate upwards from a zero byte, so false positives lie above the first).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr::memchr(b'\n', &hay[i..]).map(|p| p + i)
}

/// What can go wrong at the cursor.
#[derive(Debug)]
pub(crate) enum CursorError {
    /// The underlying reader (or decompressor) failed while reading line `line` (1-based),
    /// which starts `offset` bytes into the decompressed text.
    Io {
        /// Line number.
        line: u64,
        /// Offset of the line's first byte in the decompressed text.
        offset: u64,
        /// What the reader said.
        error: io::Error,
    },
    /// Line `line` (1-based) does not end within the buffer.
    TooLong {
        /// Line number.
        line: u64,
    },
    /// Line `line` is malformed.
    Malformed {
        /// Line number.
        line: u64,
        /// The line as an error message shows it.
        found: String,
        /// What exactly is wrong, if known.
        reason: Reason,
    },
}

/// A text stream read through a fixed buffer, one parsed line at a time.
pub(crate) struct TextCursor<R> {
    src: R,
    buf: Box<[u8]>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// Lines consumed so far.
    lines: u64,
    /// Bytes of the stream before `buf[0]`.
    shifted: u64,
    eof: bool,
}

impl<R: Read> TextCursor<R> {
    /// A cursor with a [`LINE_BUFFER_BYTES`] buffer.
    pub(crate) fn new(src: R) -> TextCursor<R> {
        TextCursor::with_capacity(src, LINE_BUFFER_BYTES)
    }

    /// A cursor whose longest accepted line is `capacity - 1` bytes (plus its newline).
    pub(crate) fn with_capacity(src: R, capacity: usize) -> TextCursor<R> {
        TextCursor {
            src,
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            pos: 0,
            end: 0,
            lines: 0,
            shifted: 0,
            eof: false,
        }
    }

    /// Parses the next line as format `F`, or returns `None` at the end of the stream.
    ///
    /// When `F::step` returns [`Step::Bad`] and the line's end is not buffered yet, the cursor
    /// reads more and asks again, so a parser never has to tell a malformed line from one cut
    /// short by the buffer.
    #[inline(always)]
    pub(crate) fn next<F: LineFormat>(&mut self) -> Result<Option<F::Item>, CursorError> {
        loop {
            if self.pos == self.end {
                if self.eof {
                    return Ok(None);
                }
                self.refill()?;
                continue;
            }
            let avail = &self.buf[self.pos..self.end];
            match F::step(avail, self.eof) {
                Step::Line { len, item } => {
                    debug_assert!(len > 0 && len <= avail.len());
                    self.pos += len;
                    self.lines += 1;
                    return Ok(Some(item));
                }
                Step::NeedMore => {}
                Step::Bad(reason) => {
                    let line = match find_newline(avail) {
                        Some(nl) => &avail[..nl],
                        None if self.eof => avail,
                        None => {
                            self.refill()?;
                            continue;
                        }
                    };
                    return Err(CursorError::Malformed {
                        line: self.lines + 1,
                        found: super::parse::shown(line),
                        reason,
                    });
                }
            }
            self.refill()?;
        }
    }

    /// Consumes buffered lines for as long as `skip` recognises the one at the cursor (it
    /// returns the line's length, newline included, having seen that newline); returns how
    /// many it consumed. A tight loop for lines a format drops, such as Lackey's fetches:
    /// whatever `skip` does not recognise (or a line the buffer cuts) is left to [`Self::next`].
    #[inline(always)]
    pub(crate) fn skip_lines(&mut self, skip: impl Fn(&[u8]) -> Option<usize>) -> u64 {
        let mut pos = self.pos;
        let mut skipped = 0;
        while let Some(len) = skip(&self.buf[pos..self.end]) {
            debug_assert!(len > 0 && self.buf[pos + len - 1] == b'\n');
            pos += len;
            skipped += 1;
        }
        self.pos = pos;
        self.lines += skipped;
        skipped
    }

    /// The line at the cursor as `take` reads it (its meaning and its length, newline
    /// included, having seen that newline), consumed; `None`, consuming nothing, when `take`
    /// does not recognise it. A fast path for the lines a format's writer prints: anything
    /// else (or a line the buffer cuts) is left to [`Self::next`], which says what is wrong.
    #[inline(always)]
    pub(crate) fn take_line<T>(&mut self, take: impl Fn(&[u8]) -> Option<(T, usize)>) -> Option<T> {
        let (item, len) = take(&self.buf[self.pos..self.end])?;
        debug_assert!(len > 0 && self.buf[self.pos + len - 1] == b'\n');
        self.pos += len;
        self.lines += 1;
        Some(item)
    }

    /// Moves the unfinished line to the front of the buffer and reads more after it.
    #[cold]
    fn refill(&mut self) -> Result<(), CursorError> {
        if self.eof {
            // Only a parser breaking its contract asks for more at the end of the stream.
            return Err(CursorError::Malformed {
                line: self.lines + 1,
                found: super::parse::shown(&self.buf[self.pos..self.end]),
                reason: None,
            });
        }
        if self.pos > 0 {
            self.shifted += self.pos as u64;
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            return Err(CursorError::TooLong {
                line: self.lines + 1,
            });
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(CursorError::Io {
                        line: self.lines + 1,
                        offset: self.shifted + self.pos as u64,
                        error,
                    });
                }
            }
        }
    }
}

/// Parses one complete line as format `F` (for format guessing and tests): the item, or why
/// the line is malformed.
pub(crate) fn parse_whole_line<F: LineFormat>(line: &[u8]) -> Result<F::Item, Reason> {
    let line = match find_newline(line) {
        Some(nl) => &line[..nl],
        None => line,
    };
    match F::step(line, true) {
        Step::Line { len, item } if len == line.len() => Ok(item),
        Step::Line { .. } | Step::NeedMore => Err(None),
        Step::Bad(reason) => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, to cut lines across refills.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// A toy format: lines of lower-case letters, returned whole; anything else is malformed.
    struct Letters;

    impl LineFormat for Letters {
        type Item = Vec<u8>;

        fn step(avail: &[u8], eof: bool) -> Step<Vec<u8>> {
            let n = avail.iter().take_while(|b| b.is_ascii_lowercase()).count();
            line_ends_at(avail, n, eof, avail[..n].to_vec())
        }
    }

    fn collect(data: &[u8], step: usize, capacity: usize) -> Result<Vec<Vec<u8>>, String> {
        let mut c = TextCursor::with_capacity(Trickle { data, step }, capacity);
        let mut out = Vec::new();
        loop {
            match c.next::<Letters>() {
                Ok(Some(l)) => out.push(l),
                Ok(None) => return Ok(out),
                Err(CursorError::TooLong { line }) => return Err(format!("too long {line}")),
                Err(CursorError::Malformed { line, found, .. }) => {
                    return Err(format!("bad {line} {found}"));
                }
                Err(CursorError::Io { error, .. }) => panic!("{error}"),
            }
        }
    }

    #[test]
    fn lines_parse_whole_whatever_the_read_sizes() {
        let data = b"ab\n\ncd\nlast";
        let want: Vec<Vec<u8>> = vec![b"ab".to_vec(), vec![], b"cd".to_vec(), b"last".to_vec()];
        for step in 1..=data.len() {
            for capacity in [8, 16, 1024] {
                assert_eq!(collect(data, step, capacity).unwrap(), want, "step {step}");
            }
        }
        assert_eq!(collect(b"", 1, 8).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(collect(b"x\n", 1, 8).unwrap(), vec![b"x".to_vec()]);
    }

    #[test]
    fn a_malformed_line_is_reported_whole_with_its_number() {
        for step in 1..12 {
            assert_eq!(
                collect(b"ab\ncd\nxY z\nef\n", step, 16),
                Err("bad 3 xY z".into())
            );
            assert_eq!(collect(b"ab\nQ", step, 16), Err("bad 2 Q".into()));
        }
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_an_error() {
        assert_eq!(collect(b"ok\n0123456789\n", 3, 8), Err("too long 2".into()));
        assert_eq!(collect(b"ok\nabcdefghij\n", 3, 8), Err("too long 2".into()));
        // A line and its newline must fit in the buffer together.
        assert_eq!(collect(b"abcdefg\n", 3, 8).unwrap().len(), 1);
        assert_eq!(collect(b"abcdefg", 3, 8).unwrap().len(), 1);
        assert_eq!(collect(b"abcdefgh", 3, 8), Err("too long 1".into()));
    }

    #[test]
    fn newline_search_agrees_with_a_plain_scan() {
        // Every position of the first newline in every length, with bytes next to '\n' in
        // value (0x0b, 0x09, 0x8a) around it to trip a careless zero-byte test.
        for len in 0..80 {
            for nl in 0..=len {
                let mut hay: Vec<u8> = (0..len).map(|i| [0x0b, 0x09, 0x8a, b'x'][i % 4]).collect();
                if nl < len {
                    hay[nl] = b'\n';
                    if nl + 1 < len {
                        hay[nl + 1] = b'\n';
                    }
                }
                let want = hay.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&hay), want, "len {len}, newline at {nl}");
            }
        }
    }

    /// Lines of one `z` and a newline, as a skipping rule would recognise them.
    fn z_line(avail: &[u8]) -> Option<usize> {
        avail.starts_with(b"z\n").then_some(2)
    }

    #[test]
    fn skipped_lines_are_counted_and_the_rest_parse_as_before() {
        let mut skipped_in_all = 0;
        for step in 1..=12 {
            let data = b"z\nz\nab\nz\nz\nz\ncd\nz";
            let mut c = TextCursor::with_capacity(Trickle { data, step }, 8);
            let mut skipped = 0;
            let mut kept = Vec::new();
            loop {
                skipped += c.skip_lines(z_line);
                match c.next::<Letters>() {
                    Ok(Some(line)) => kept.push(line),
                    Ok(None) => break,
                    Err(_) => panic!("step {step}: error"),
                }
            }
            // Lines the buffer cuts, and the last one (no newline), are left to `next`.
            let kept_z = kept.iter().filter(|l| l.as_slice() == b"z").count();
            assert_eq!(skipped as usize + kept_z, 6, "step {step}");
            let letters: Vec<&[u8]> = kept
                .iter()
                .map(Vec::as_slice)
                .filter(|l| *l != b"z")
                .collect();
            assert_eq!(letters, [b"ab", b"cd"], "step {step}");
            assert_eq!(c.lines, 8, "step {step}");
            skipped_in_all += skipped;
        }
        assert!(skipped_in_all > 12, "the tight loop took lines");
    }

    #[test]
    fn whole_line_helper() {
        assert_eq!(parse_whole_line::<Letters>(b"abc"), Ok(b"abc".to_vec()));
        assert_eq!(
            parse_whole_line::<Letters>(b"abc\nrest"),
            Ok(b"abc".to_vec())
        );
        assert_eq!(parse_whole_line::<Letters>(b"aBc"), Err(None));
    }
}
