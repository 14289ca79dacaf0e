//! valgrind Lackey memory traces (`valgrind --tool=lackey --trace-mem=yes PROGRAM`).
//!
//! ```text
//! ==16182== Lackey, an example Valgrind tool        <- valgrind's messages: skipped
//! I  0401ab70,3                                     <- instruction fetch: dropped
//!  S 1fff000768,8                                   <- store: a write
//!  L 04229e0,8                                      <- load: a read
//!  M 0422c90,4                                      <- modify: a read, then a write
//! ```
//!
//! Addresses are hexadecimal without a prefix, sizes decimal (Lackey prints them with
//! `%08lx,%lu`). Lackey's own conversion rule is the reference's (validation-data.md,
//! section 1): L is a read, S a write, M a read then a write of the same bytes, I is dropped.
//! Lines of valgrind messages (`==PID==`, and `--PID--` or `**PID**` for warnings) and blank
//! lines are skipped; anything else is an error.

use super::lines::{LineFormat, Step, TextCursor, line_ends_at, parse_whole_line, to_end_of_line};
use super::parse::{
    HEX_DIGIT, NumError, Reason, all_hex, check_extent, dec_u32, eight_hex_digits, hex_u64,
    is_blank, skip_blanks,
};
use super::{Access, AccessKind, TraceError, TraceFormat};
use std::io::Read;

/// What a malformed line should have looked like, as error messages say it.
pub const EXPECTED: &str =
    "a Lackey line (\" L|S|M ADDR,SIZE\", \"I  ADDR,SIZE\" or a valgrind \"==PID==\" message)";

/// One classified Lackey line.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum LackeyLine {
    /// Blank, or a valgrind message.
    Skip,
    /// An instruction fetch (dropped from the data trace, counted as an instruction).
    Instruction,
    /// A load (`L`): one read.
    Load(u64, u32),
    /// A store (`S`): one write.
    Store(u64, u32),
    /// A modify (`M`): a read, then a write of the same bytes.
    Modify(u64, u32),
}

/// Parses `ADDR,SIZE` starting at `i`; returns them and the index after the last field's
/// trailing blanks.
#[inline(always)]
fn addr_size(avail: &[u8], i: usize) -> Result<(u64, u32, usize), Reason> {
    let (addr, k) = hex_u64(avail, i).map_err(|e| match e {
        NumError::Missing => Some("ADDR must be hexadecimal"),
        NumError::Overflow => Some("ADDR does not fit in 64 bits"),
    })?;
    if avail.get(k) != Some(&b',') {
        return Err(Some("ADDR and SIZE are separated by a comma"));
    }
    let (size, k) = dec_u32(avail, k + 1).map_err(|e| match e {
        NumError::Missing => Some("SIZE must be a decimal number of bytes"),
        NumError::Overflow => Some("SIZE does not fit in 32 bits"),
    })?;
    Ok((addr, size, skip_blanks(avail, k)))
}

/// True when `avail` starts with one of valgrind's own line prefixes: `==PID==`, `--PID--`
/// or `**PID**`.
fn is_valgrind_message(avail: &[u8]) -> bool {
    let Some(&mark) = avail.first() else {
        return false;
    };
    if !matches!(mark, b'=' | b'-' | b'*') || avail.get(1) != Some(&mark) {
        return false;
    }
    let digits = avail[2..].iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && avail[2 + digits..].starts_with(&[mark, mark])
}

/// A line of blanks only.
#[inline(always)]
fn blank_line(avail: &[u8], eof: bool) -> Step<LackeyLine> {
    line_ends_at(avail, skip_blanks(avail, 0), eof, LackeyLine::Skip)
}

/// The length of the fetch line at the start of `avail` if it has exactly the shape Lackey
/// prints (`"I  %08lx,%lu\n"` with a one- or two-digit size), else `None`.
///
/// Fetches are three lines in four of a Lackey trace and are dropped, so they get a fast path:
/// eight address bytes checked at once, no value computed.
#[inline(always)]
fn fetch_as_lackey_prints_it(avail: &[u8]) -> Option<usize> {
    let line: &[u8; 16] = avail.get(..16)?.try_into().ok()?;
    let address = u64::from_le_bytes(line[3..11].try_into().ok()?);
    if line[0] != b'I'
        || line[1] != b' '
        || line[2] != b' '
        || !all_hex(address)
        || line[11] != b','
    {
        return None;
    }
    match (line[12], line[13], line[14]) {
        (b'0'..=b'9', b'\n', _) => Some(14),
        (b'0'..=b'9', b'0'..=b'9', b'\n') => Some(15),
        _ => None,
    }
}

/// The access line at the start of `avail` and its length if it has exactly the shape Lackey
/// prints (`" X %08lx,%lu\n"`: X one of `L`, `S`, `M`, 8 to 16 address digits, a size of
/// one or two digits, not 0), else `None`, and the general parser reads it (and says what is
/// wrong with it, if anything).
///
/// A quarter of a Lackey trace's lines are accesses; this reads the first eight address
/// digits at once and skips the general parser's dispatch.
#[inline(always)]
fn access_as_lackey_prints_it(avail: &[u8]) -> Option<(LackeyLine, usize)> {
    let head: &[u8; 11] = avail.get(..11)?.try_into().ok()?;
    let first8 = u64::from_le_bytes(head[3..11].try_into().ok()?);
    if head[0] != b' ' || head[2] != b' ' || !all_hex(first8) {
        return None;
    }
    let mut addr = eight_hex_digits(first8);
    let mut i = 11;
    loop {
        let digit = HEX_DIGIT[usize::from(*avail.get(i)?)];
        if digit == 0xff {
            break;
        }
        if i == 19 {
            // A 17th digit: too long for a u64, as the general parser says.
            return None;
        }
        addr = (addr << 4) | u64::from(digit);
        i += 1;
    }
    if avail[i] != b',' {
        return None;
    }
    let (size, len) = match (avail.get(i + 1)?, avail.get(i + 2)?) {
        (&d @ b'1'..=b'9', b'\n') => (u32::from(d - b'0'), i + 3),
        (&d1 @ b'1'..=b'9', &d2 @ b'0'..=b'9') if avail.get(i + 3) == Some(&b'\n') => {
            (u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0'), i + 4)
        }
        _ => return None,
    };
    check_extent(addr, size).ok()?;
    let item = match head[1] {
        b'L' => LackeyLine::Load(addr, size),
        b'S' => LackeyLine::Store(addr, size),
        b'M' => LackeyLine::Modify(addr, size),
        _ => return None,
    };
    Some((item, len))
}

/// The Lackey line format, for the cursor.
pub(crate) struct LackeyLines;

impl LineFormat for LackeyLines {
    type Item = LackeyLine;

    #[inline(always)]
    fn step(avail: &[u8], eof: bool) -> Step<LackeyLine> {
        match fields(avail, eof) {
            Ok(step) => step,
            Err(reason) => Step::Bad(reason),
        }
    }
}

/// Classifies the line at the start of `avail`; `Err` for a malformed line (or one cut short
/// by the buffer, which the cursor tells apart).
#[inline(always)]
fn fields(avail: &[u8], eof: bool) -> Result<Step<LackeyLine>, Reason> {
    match avail.first() {
        Some(b'I') => {
            if let Some(len) = fetch_as_lackey_prints_it(avail) {
                return Ok(Step::Line {
                    len,
                    item: LackeyLine::Instruction,
                });
            }
            if !avail.get(1).is_some_and(|&b| is_blank(b)) {
                return Err(None);
            }
            // The address and size of a fetch are checked for shape only: the fetch is
            // dropped, so its extent does not matter.
            let (_, _, end) = addr_size(avail, skip_blanks(avail, 1))?;
            Ok(line_ends_at(avail, end, eof, LackeyLine::Instruction))
        }
        Some(b' ') => {
            let op = avail.get(1).copied().unwrap_or(b' ');
            if !matches!(op, b'L' | b'S' | b'M') {
                return Ok(blank_line(avail, eof));
            }
            if !avail.get(2).is_some_and(|&b| is_blank(b)) {
                return Err(None);
            }
            let (addr, size, end) = addr_size(avail, skip_blanks(avail, 2))?;
            let item = match op {
                b'L' => LackeyLine::Load(addr, size),
                b'S' => LackeyLine::Store(addr, size),
                _ => LackeyLine::Modify(addr, size),
            };
            let step = line_ends_at(avail, end, eof, item);
            if matches!(step, Step::Line { .. }) {
                check_extent(addr, size)?;
            }
            Ok(step)
        }
        Some(_) if is_valgrind_message(avail) => {
            Ok(to_end_of_line(avail, 0, eof, LackeyLine::Skip))
        }
        _ => Ok(blank_line(avail, eof)),
    }
}

/// Classifies one whole line.
pub(crate) fn parse_line(line: &[u8]) -> Result<LackeyLine, Reason> {
    parse_whole_line::<LackeyLines>(line)
}

/// Streams the data accesses of a Lackey trace through a fixed buffer.
pub struct LackeyReader<R> {
    cursor: TextCursor<R>,
    name: String,
    /// The write half of an `M` line, returned by the next call.
    pending: Option<Access>,
    instructions: u64,
    done: bool,
}

impl<R: Read> LackeyReader<R> {
    /// A reader of the (already decompressed) text `src`; `name` is what errors call it.
    pub fn new(src: R, name: impl Into<String>) -> LackeyReader<R> {
        LackeyReader {
            cursor: TextCursor::new(src),
            name: name.into(),
            pending: None,
            instructions: 0,
            done: false,
        }
    }

    /// Instruction-fetch (`I`) lines read so far.
    pub fn instructions(&self) -> u64 {
        self.instructions
    }

    /// A reader whose buffer holds `bytes` bytes (so lines of at most `bytes - 1`), to test
    /// lines cut by refills.
    #[cfg(test)]
    pub(crate) fn with_buffer_bytes(src: R, name: &str, bytes: usize) -> LackeyReader<R> {
        LackeyReader {
            cursor: TextCursor::with_capacity(src, bytes),
            name: name.into(),
            pending: None,
            instructions: 0,
            done: false,
        }
    }

    /// The next access, `Ok(None)` at the end of the trace. After an error the reader stays
    /// at its end.
    #[inline]
    pub fn next_access(&mut self) -> Result<Option<Access>, TraceError> {
        if let Some(access) = self.pending.take() {
            return Ok(Some(access));
        }
        while !self.done {
            // Fetches are most lines: those printed as Lackey prints them are skipped in a
            // tight loop, the rest parsed below.
            self.instructions += self.cursor.skip_lines(fetch_as_lackey_prints_it);
            let line = match self.cursor.take_line(access_as_lackey_prints_it) {
                Some(access) => Ok(Some(access)),
                None => self.cursor.next::<LackeyLines>(),
            };
            // Fetches are most lines: count them before the general dispatch.
            if let Ok(Some(LackeyLine::Instruction)) = line {
                self.instructions += 1;
                continue;
            }
            match line {
                Ok(Some(LackeyLine::Skip | LackeyLine::Instruction)) => {}
                Ok(Some(LackeyLine::Load(addr, size))) => {
                    return Ok(Some(Access::read(addr, size)));
                }
                Ok(Some(LackeyLine::Store(addr, size))) => {
                    return Ok(Some(Access::write(addr, size)));
                }
                Ok(Some(LackeyLine::Modify(addr, size))) => {
                    self.pending = Some(Access {
                        kind: AccessKind::Write,
                        addr,
                        size,
                    });
                    return Ok(Some(Access::read(addr, size)));
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Err(TraceError::from_cursor_error(
                        &self.name,
                        TraceFormat::Lackey,
                        EXPECTED,
                        e,
                    ));
                }
            }
        }
        Ok(None)
    }
}

impl<R: Read> Iterator for LackeyReader<R> {
    type Item = Result<Access, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_access().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LackeyLine, Reason> {
        parse_line(s.as_bytes())
    }

    #[test]
    fn classifies_every_kind_of_line() {
        assert_eq!(parse("I  0401ab70,3"), Ok(LackeyLine::Instruction));
        assert_eq!(
            parse(" S 1fff000768,8"),
            Ok(LackeyLine::Store(0x1f_ff00_0768, 8))
        );
        assert_eq!(parse(" L 04229e0,8"), Ok(LackeyLine::Load(0x42_29e0, 8)));
        assert_eq!(parse(" M 0422c90,4"), Ok(LackeyLine::Modify(0x42_2c90, 4)));
        assert_eq!(parse(" L 04229e0,8\r"), Ok(LackeyLine::Load(0x42_29e0, 8)));
        assert_eq!(
            parse("==16182== Lackey, an example Valgrind tool"),
            Ok(LackeyLine::Skip)
        );
        assert_eq!(parse("==16182== "), Ok(LackeyLine::Skip));
        assert_eq!(parse("--16182-- WARNING: something"), Ok(LackeyLine::Skip));
        assert_eq!(parse("**16182** fatal"), Ok(LackeyLine::Skip));
        assert_eq!(parse(""), Ok(LackeyLine::Skip));
        assert_eq!(parse("  "), Ok(LackeyLine::Skip));
        assert_eq!(parse("   \t\r"), Ok(LackeyLine::Skip));
        assert_eq!(parse("\t"), Ok(LackeyLine::Skip));
    }

    #[test]
    fn rejects_what_lackey_never_prints() {
        for bad in [
            " X 0400000,8",
            "L 0400000,8",
            " L0400000,8",
            " L 0400000,8 extra",
            "I0400000,3",
            "== Lackey",
            "==12 Lackey",
            "hello",
            "R 0x10 8",
        ] {
            assert_eq!(parse(bad), Err(None), "{bad}");
        }
        assert_eq!(
            parse(" L 0400000 8"),
            Err(Some("ADDR and SIZE are separated by a comma"))
        );
        assert_eq!(parse(" L zz,8"), Err(Some("ADDR must be hexadecimal")));
        assert_eq!(
            parse(" S 0400000,"),
            Err(Some("SIZE must be a decimal number of bytes"))
        );
        assert_eq!(
            parse(" S 0400000,0"),
            Err(Some("the size must be at least 1"))
        );
    }

    #[test]
    fn modify_is_a_read_then_a_write_and_fetches_are_counted() {
        let text = "==1== Lackey\nI  0400000,3\n M 1000,4\n L 2000,8\nI  0400003,2\n S 3000,1\n";
        let mut r = LackeyReader::new(text.as_bytes(), "l.txt");
        let all: Vec<Access> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(
            all,
            [
                Access::read(0x1000, 4),
                Access::write(0x1000, 4),
                Access::read(0x2000, 8),
                Access::write(0x3000, 1),
            ]
        );
        assert_eq!(r.instructions(), 2);
    }

    /// Every line either fast path takes, the general parser reads the same way: the same
    /// meaning and length. Lines of many shapes near Lackey's (every op, address lengths 1 to
    /// 18, sizes 0 to 100 with and without leading zeros, odd blanks and ends), each followed
    /// by another line, as in a buffer.
    #[test]
    fn the_fast_paths_agree_with_the_parser() {
        let mut taken = [0usize; 2];
        let mut lines = 0;
        for lead in [" ", "  ", "", "I", "\t"] {
            for op in ["L", "S", "M", "I", "X", " "] {
                for gap in [" ", "  ", "\t", ""] {
                    for digits in 1..=18 {
                        let addr: String = "0f9Ac3B1e07d5264a8".chars().take(digits).collect();
                        for size in ["1", "8", "16", "64", "99", "0", "08", "100", "", "7 "] {
                            for end in ["\n", "\r\n", " \n", "x\n"] {
                                let line = format!("{lead}{op}{gap}{addr},{size}{end}");
                                let mut buf = line.clone().into_bytes();
                                buf.extend_from_slice(b"I  04000000,3\n");
                                let general = LackeyLines::step(&buf, false);
                                if let Some((item, len)) = access_as_lackey_prints_it(&buf) {
                                    assert_eq!(general, Step::Line { len, item }, "{line:?}");
                                    taken[0] += 1;
                                }
                                if let Some(len) = fetch_as_lackey_prints_it(&buf) {
                                    let item = LackeyLine::Instruction;
                                    assert_eq!(general, Step::Line { len, item }, "{line:?}");
                                    taken[1] += 1;
                                }
                                lines += 1;
                            }
                        }
                    }
                }
            }
        }
        // The fast paths took the lines Lackey prints (not vacuous), and not most lines.
        assert!(taken[0] >= 3 * 9 * 5 && taken[1] >= 9, "{taken:?}");
        assert!(taken[0] + taken[1] < lines / 10, "{taken:?} of {lines}");
        // The end of the buffer: a line the buffer cuts is left to the general parser.
        assert_eq!(access_as_lackey_prints_it(b" L 04229e0a,8"), None);
        assert_eq!(access_as_lackey_prints_it(b" L 04229e0a,1"), None);
        assert_eq!(
            access_as_lackey_prints_it(b" L 04229e0a,16\n"),
            Some((LackeyLine::Load(0x0422_9e0a, 16), 15))
        );
        assert_eq!(
            access_as_lackey_prints_it(b" M 1fff000768,8\nI"),
            Some((LackeyLine::Modify(0x1f_ff00_0768, 8), 16))
        );
        // An access running past the end of the address space is the parser's to report.
        assert_eq!(access_as_lackey_prints_it(b" L ffffffffffffffff,2\n"), None);
    }

    /// Lines shaped like a fetch but for their first byte are errors, not fetches skipped.
    #[test]
    fn only_fetches_are_skipped_as_fetches() {
        for bad in [
            "   0400d7d4,8",
            "X  0400d7d4,8",
            "L  0400d7d4,8",
            "\t  0400d7d4,8",
        ] {
            let text = format!("I  0400d7d0,4\n{bad}\n L 1000,8\n");
            let mut r = LackeyReader::new(text.as_bytes(), "t.lackey");
            let e = r.next().unwrap().unwrap_err().to_string();
            assert!(
                e.starts_with("t.lackey: line 2: expected a Lackey line"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        let text = "==1== Lackey\n L 1000,8\n Q 1000,8\n";
        let mut r = LackeyReader::new(text.as_bytes(), "prog.lackey");
        assert!(r.next().unwrap().is_ok());
        let e = r.next().unwrap().unwrap_err().to_string();
        assert_eq!(
            e,
            "prog.lackey: line 3: expected a Lackey line (\" L|S|M ADDR,SIZE\", \"I  ADDR,SIZE\" \
             or a valgrind \"==PID==\" message), found \" Q 1000,8\""
        );
        assert!(r.next().is_none());
    }
}
