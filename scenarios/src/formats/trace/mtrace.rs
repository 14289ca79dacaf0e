//! The mtrace text format: one access per line, `R|W 0xADDR SIZE`.
//!
//! ```text
//! # comment lines start with '#'; blank lines are ignored
//! R 0x10000000 8
//! W 0x7ffc1234abcd 4      # a comment may also end a line
//! ```
//!
//! Fields are separated by spaces or tabs. `ADDR` is hexadecimal with a `0x` (or `0X`) prefix
//! and at most 64 significant bits; `SIZE` is decimal, from 1 to 2^32 - 1, and the access may
//! not run past the end of the address space. This is the DineroIV-style format of the
//! validation data (validation-data.md, section 1).

use super::lines::{LineFormat, Step, TextCursor, parse_whole_line, to_end_of_line};
use super::parse::{NumError, Reason, check_extent, dec_u32, hex_u64, is_blank, skip_blanks};
use super::{Access, AccessKind, TraceError, TraceFormat};
use std::io::Read;

/// What a malformed line should have looked like, as error messages say it.
pub const EXPECTED: &str = "\"R|W 0xADDR SIZE\"";

/// The mtrace line format, for the cursor.
pub(crate) struct MtraceLines;

impl LineFormat for MtraceLines {
    type Item = Option<Access>;

    #[inline(always)]
    fn step(avail: &[u8], eof: bool) -> Step<Option<Access>> {
        match fields(avail, eof) {
            Ok(step) => step,
            Err(reason) => Step::Bad(reason),
        }
    }
}

/// Parses the line at the start of `avail`; `Err` for a malformed line (or one cut short by
/// the buffer, which the cursor tells apart).
#[inline(always)]
fn fields(avail: &[u8], eof: bool) -> Result<Step<Option<Access>>, Reason> {
    let mut i = skip_blanks(avail, 0);
    let kind = match avail.get(i) {
        None if eof => return Ok(Step::Line { len: i, item: None }),
        None => return Ok(Step::NeedMore),
        Some(b'\n') => {
            return Ok(Step::Line {
                len: i + 1,
                item: None,
            });
        }
        Some(b'#') => return Ok(to_end_of_line(avail, i, eof, None)),
        Some(b'R') => AccessKind::Read,
        Some(b'W') => AccessKind::Write,
        Some(_) => return Err(None),
    };
    i += 1;
    let j = skip_blanks(avail, i);
    if j == i {
        return Err(None);
    }
    i = j;
    const NOT_HEX: Reason = Some("ADDR must be hexadecimal with a 0x prefix");
    if !(avail.len() >= i + 2 && avail[i] == b'0' && (avail[i + 1] | 0x20) == b'x') {
        return Err(NOT_HEX);
    }
    let (addr, k) = hex_u64(avail, i + 2).map_err(|e| match e {
        NumError::Missing => NOT_HEX,
        NumError::Overflow => Some("ADDR does not fit in 64 bits"),
    })?;
    if k < avail.len() && !is_blank(avail[k]) && avail[k] != b'\n' {
        return Err(NOT_HEX);
    }
    i = skip_blanks(avail, k);
    let (size, k) = dec_u32(avail, i).map_err(|e| match e {
        NumError::Missing => Some("SIZE must be a decimal number of bytes"),
        NumError::Overflow => Some("SIZE does not fit in 32 bits"),
    })?;
    i = skip_blanks(avail, k);
    let item = Some(Access { kind, addr, size });
    let step = match avail.get(i) {
        Some(b'\n') => Step::Line { len: i + 1, item },
        None if eof => Step::Line { len: i, item },
        // A comment may end the line, after a blank.
        Some(b'#') if i > k => to_end_of_line(avail, i, eof, item),
        _ => return Err(None),
    };
    check_extent(addr, size)?;
    Ok(step)
}

/// Parses one whole line: `Ok(None)` for a blank or comment line.
pub(crate) fn parse_line(line: &[u8]) -> Result<Option<Access>, Reason> {
    parse_whole_line::<MtraceLines>(line)
}

/// Streams the accesses of an mtrace text through a fixed buffer.
pub struct MtraceReader<R> {
    cursor: TextCursor<R>,
    name: String,
    done: bool,
}

impl<R: Read> MtraceReader<R> {
    /// A reader of the (already decompressed) text `src`; `name` is what errors call it,
    /// normally the file's path.
    pub fn new(src: R, name: impl Into<String>) -> MtraceReader<R> {
        MtraceReader {
            cursor: TextCursor::new(src),
            name: name.into(),
            done: false,
        }
    }

    /// A reader whose buffer holds `bytes` bytes (so lines of at most `bytes - 1`), to test
    /// lines cut by refills.
    #[cfg(test)]
    pub(crate) fn with_buffer_bytes(src: R, name: &str, bytes: usize) -> MtraceReader<R> {
        MtraceReader {
            cursor: TextCursor::with_capacity(src, bytes),
            name: name.into(),
            done: false,
        }
    }

    /// The next access, `Ok(None)` at the end of the trace. After an error the reader stays
    /// at its end.
    #[inline]
    pub fn next_access(&mut self) -> Result<Option<Access>, TraceError> {
        while !self.done {
            match self.cursor.next::<MtraceLines>() {
                Ok(Some(Some(access))) => return Ok(Some(access)),
                Ok(Some(None)) => {}
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Err(TraceError::from_cursor_error(
                        &self.name,
                        TraceFormat::Mtrace,
                        EXPECTED,
                        e,
                    ));
                }
            }
        }
        Ok(None)
    }
}

impl<R: Read> Iterator for MtraceReader<R> {
    type Item = Result<Access, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_access().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Access>, Reason> {
        parse_line(s.as_bytes())
    }

    #[test]
    fn well_formed_lines() {
        assert_eq!(
            parse("R 0x10000000 8"),
            Ok(Some(Access::read(0x1000_0000, 8)))
        );
        assert_eq!(parse("W\t0XaBc  16\r"), Ok(Some(Access::write(0xabc, 16))));
        assert_eq!(
            parse("  R 0x0 1 # trailing comment"),
            Ok(Some(Access::read(0, 1)))
        );
        assert_eq!(
            parse("R 0xffffffffffffffff 1"),
            Ok(Some(Access::read(u64::MAX, 1)))
        );
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \r"), Ok(None));
        assert_eq!(parse("# synthetic strided trace v1"), Ok(None));
        assert_eq!(parse("  # indented comment"), Ok(None));
    }

    #[test]
    fn malformed_lines_say_why_when_they_can() {
        for bad in [
            "Q 0x10 8",
            "r 0x10 8",
            "R0x10 8",
            "R 0x10 8 9",
            "R 0x10 8#x",
            "RW 0x10 8",
        ] {
            assert_eq!(parse(bad), Err(None), "{bad}");
        }
        let hex = Some("ADDR must be hexadecimal with a 0x prefix");
        assert_eq!(parse("R 10 8"), Err(hex));
        assert_eq!(parse("R 0x 8"), Err(hex));
        assert_eq!(parse("R 0x10g 8"), Err(hex));
        assert_eq!(parse("R 0x10,8"), Err(hex));
        assert_eq!(
            parse("R 0x10000000000000000 8"),
            Err(Some("ADDR does not fit in 64 bits"))
        );
        assert_eq!(
            parse("W 0x10"),
            Err(Some("SIZE must be a decimal number of bytes"))
        );
        assert_eq!(
            parse("W 0x10 -8"),
            Err(Some("SIZE must be a decimal number of bytes"))
        );
        assert_eq!(
            parse("W 0x10 99999999999"),
            Err(Some("SIZE does not fit in 32 bits"))
        );
        assert_eq!(parse("W 0x10 0"), Err(Some("the size must be at least 1")));
        assert_eq!(
            parse("W 0xfffffffffffffff8 9"),
            Err(Some(
                "the access runs past the end of the 64-bit address space"
            ))
        );
    }

    #[test]
    fn reader_reports_file_line_and_expectation() {
        let text = "# header\nR 0x10 8\n\nW 0x20 4\nQ 0x10 8\nR 0x30 8\n";
        let mut r = MtraceReader::new(text.as_bytes(), "t.mtrace");
        assert_eq!(r.next().unwrap().unwrap(), Access::read(0x10, 8));
        assert_eq!(r.next().unwrap().unwrap(), Access::write(0x20, 4));
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.mtrace: line 5: expected \"R|W 0xADDR SIZE\", found \"Q 0x10 8\""
        );
        assert!(r.next().is_none(), "a reader stops at its first error");
    }

    #[test]
    fn reasons_follow_the_found_text() {
        let mut r = MtraceReader::new("R 0x10 0\n".as_bytes(), "z.mtrace");
        assert_eq!(
            r.next().unwrap().unwrap_err().to_string(),
            "z.mtrace: line 1: expected \"R|W 0xADDR SIZE\", found \"R 0x10 0\" \
             (the size must be at least 1)"
        );
    }

    #[test]
    fn a_missing_size_is_named_in_a_stream_too() {
        let mut r = MtraceReader::new("W 0x10\nR 0x20 4\n".as_bytes(), "s.mtrace");
        assert_eq!(
            r.next().unwrap().unwrap_err().to_string(),
            "s.mtrace: line 1: expected \"R|W 0xADDR SIZE\", found \"W 0x10\" \
             (SIZE must be a decimal number of bytes)"
        );
    }

    #[test]
    fn last_line_without_newline_counts() {
        let r = MtraceReader::new("R 0x10 8\nW 0x18 8".as_bytes(), "t");
        let all: Vec<Access> = r.map(Result::unwrap).collect();
        assert_eq!(all, [Access::read(0x10, 8), Access::write(0x18, 8)]);
    }
}
