//! DRAM request traces, DRAMsim3/Ramulator style: one request per line, `0xADDR READ|WRITE
//! CYCLE`, CYCLE in DRAM clock cycles (blank lines and lines starting with `#` are skipped).
//!
//! ```text
//! # sequential reads, one every 200 cycles
//! 0x0 READ 0
//! 0x40 READ 200
//! 0x80 WRITE 400
//! ```
//!
//! The trace is read as a stream, one bounded line at a time, so a trace of any length is read
//! in bounded memory; a malformed line, or an address beyond the DRAM, is an error naming the
//! file and the line. `mktme-sim dram-trace` feeds the records to
//! [`mem_ctrl::dram::run_trace`].

use super::trace::parse::hex_u64;
use crate::validate::FILE_CHARS_SHOWN;
use mem_ctrl::dram::{DramConfig, TraceRecord};
use sim_core::text::{one_line, shown_max};
use sim_core::{Cycle, DramAddr, MemOp};
use std::fmt;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// Longest trace line accepted, in bytes (a well-formed line is under 60).
pub const TRACE_LINE_BYTES_MAX: usize = 4096;

/// A malformed trace line, or a trace that could not be read: `path:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DramTraceError {
    /// The trace's path.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for DramTraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            shown_max(&self.path.display().to_string(), FILE_CHARS_SHOWN),
            self.line,
            one_line(&self.message)
        )
    }
}

impl std::error::Error for DramTraceError {}

/// Streams trace records out of a reader, one bounded line at a time. The first error ends
/// the stream.
pub struct DramTraceReader<'a, R> {
    path: &'a Path,
    reader: R,
    config: &'a DramConfig,
    line_no: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl<'a, R: BufRead> DramTraceReader<'a, R> {
    /// A reader of `reader`'s lines, called `path` in errors; addresses are checked against
    /// `config`'s DRAM.
    pub fn new(path: &'a Path, reader: R, config: &'a DramConfig) -> Self {
        DramTraceReader {
            path,
            reader,
            config,
            line_no: 0,
            buf: Vec::with_capacity(128),
            failed: false,
        }
    }

    fn error(&self, message: String) -> DramTraceError {
        DramTraceError {
            path: self.path.to_owned(),
            line: self.line_no,
            message,
        }
    }

    /// Reads the next line into `buf` (without its terminator); `false` at end of file.
    fn read_line(&mut self) -> Result<bool, DramTraceError> {
        self.buf.clear();
        self.line_no += 1;
        let limit = TRACE_LINE_BYTES_MAX as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.error(format!("cannot read: {e}")))?;
        if n == 0 {
            return Ok(false);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 == limit {
            return Err(self.error(format!(
                "line is longer than {TRACE_LINE_BYTES_MAX} bytes; expected `0xADDR READ|WRITE CYCLE`"
            )));
        }
        Ok(true)
    }

    fn parse(&self) -> Result<Option<TraceRecord>, DramTraceError> {
        let text = std::str::from_utf8(&self.buf).map_err(|_| {
            self.error("line is not UTF-8 text; expected `0xADDR READ|WRITE CYCLE`".into())
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        let mut tokens = trimmed.split_whitespace();
        let addr_tok = tokens.next().expect("non-empty line has a token");
        let digits = addr_tok
            .strip_prefix("0x")
            .or_else(|| addr_tok.strip_prefix("0X"))
            .ok_or_else(|| {
                self.error(format!(
                    "expected a hexadecimal address starting with 0x, found `{addr_tok}`"
                ))
            })?;
        let addr = u64::from_str_radix(digits, 16).map_err(|_| {
            self.error(format!(
                "expected a hexadecimal address that fits in 64 bits, found `{addr_tok}`"
            ))
        })?;
        let op = match tokens.next() {
            Some("READ") => MemOp::Read,
            Some("WRITE") => MemOp::Write,
            Some(other) => {
                return Err(self.error(format!("expected READ or WRITE, found `{other}`")));
            }
            None => {
                return Err(self.error(
                    "expected READ or WRITE after the address, found the end of the line".into(),
                ));
            }
        };
        let cycle_tok = tokens.next().ok_or_else(|| {
            self.error(
                "expected a decimal DRAM cycle after the operation, found the end of the line"
                    .into(),
            )
        })?;
        let cycle: u64 = cycle_tok.parse().map_err(|_| {
            self.error(format!(
                "expected a decimal DRAM cycle that fits in 64 bits, found `{cycle_tok}`"
            ))
        })?;
        if let Some(extra) = tokens.next() {
            return Err(self.error(format!(
                "expected the end of the line after the cycle, found `{extra}`"
            )));
        }
        let addr = DramAddr::new(addr);
        self.config.mapping().check(addr).map_err(|e| {
            self.error(format!(
                "{e}; expected an address below {:#x}",
                self.config.capacity_bytes()
            ))
        })?;
        Ok(Some(TraceRecord {
            addr,
            op,
            cycle: Cycle::new(cycle),
        }))
    }
}

/// The record of the line at the start of `buf` if it has the exact shape traces are written
/// in (`0xHEX READ|WRITE DECIMAL`, single spaces or tabs, an optional `\r`) and its newline is
/// in `buf`, with the line's length (newline included); `None` for anything else: the general
/// parser then reads the line and either accepts it (other spacing, a comment, leading zeros
/// past 16 digits) or says what is wrong. Whatever this accepts, the general parser accepts
/// the same. The line is read once, up to its newline: no separate search for the newline.
fn parse_plain(buf: &[u8]) -> Option<(u64, MemOp, u64, usize)> {
    let (&[b'0', x], rest) = buf.split_first_chunk::<2>()? else {
        return None;
    };
    if x != b'x' && x != b'X' {
        return None;
    }
    // Eight digits at once when there are eight (addresses have 8 to 10), then one by one;
    // more than 16 digits (leading zeros) are the general parser's.
    let (addr, digits) = hex_u64(rest, 0).ok()?;
    if digits > 16 {
        return None;
    }
    let rest = skip_blanks(&rest[digits..])?;
    let (op, rest) = match rest {
        [b'R', b'E', b'A', b'D', tail @ ..] => (MemOp::Read, tail),
        [b'W', b'R', b'I', b'T', b'E', tail @ ..] => (MemOp::Write, tail),
        _ => return None,
    };
    let mut rest = skip_blanks(rest)?;
    let mut cycle = 0u64;
    let mut decimals = 0;
    while let [b @ b'0'..=b'9', tail @ ..] = rest {
        cycle = cycle.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        decimals += 1;
        rest = tail;
    }
    if decimals == 0 || decimals > 19 {
        return None;
    }
    let rest = match rest {
        [b'\r', tail @ ..] => tail,
        _ => rest,
    };
    match rest {
        [b'\n', tail @ ..] => Some((addr, op, cycle, buf.len() - tail.len())),
        _ => None,
    }
}

/// `bytes` after at least one space or tab, or `None` when it does not start with one.
fn skip_blanks(mut bytes: &[u8]) -> Option<&[u8]> {
    let start = bytes.len();
    while let [b' ' | b'\t', tail @ ..] = bytes {
        bytes = tail;
    }
    (bytes.len() < start).then_some(bytes)
}

impl<R: BufRead> DramTraceReader<'_, R> {
    /// The next record when its whole line is already buffered and [`parse_plain`] takes it
    /// with an address inside the DRAM, consuming the line; `None` (consuming nothing)
    /// otherwise.
    fn next_plain(&mut self) -> Option<TraceRecord> {
        let buf = self.reader.fill_buf().ok()?;
        let (addr, op, cycle, len) = parse_plain(buf)?;
        // A line longer than the limit (spaces between fields can make one) is the general
        // parser's to refuse.
        if len > TRACE_LINE_BYTES_MAX + 1 {
            return None;
        }
        let addr = DramAddr::new(addr);
        self.config.mapping().check(addr).ok()?;
        self.reader.consume(len);
        self.line_no += 1;
        Some(TraceRecord {
            addr,
            op,
            cycle: Cycle::new(cycle),
        })
    }
}

impl<R: BufRead> Iterator for DramTraceReader<'_, R> {
    type Item = Result<TraceRecord, DramTraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Nearly every line of a trace takes the fast path; the rest (comments, blank lines,
        // unusual spacing, the last line without a newline, mistakes) the general one.
        if let Some(record) = self.next_plain() {
            return Some(Ok(record));
        }
        loop {
            match self.read_line() {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            match self.parse() {
                Ok(None) => continue,
                Ok(Some(record)) => return Some(Ok(record)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn parse_all(text: &str) -> Vec<Result<TraceRecord, String>> {
        let config = DramConfig::preset("ddr4-2400").unwrap();
        DramTraceReader::new(Path::new("t.trace"), text.as_bytes(), &config)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn parses_records_and_skips_blank_and_comment_lines() {
        let got = parse_all("# header\n0x40 READ 0\n\n0X80 WRITE 17\r\n");
        assert_eq!(
            got,
            vec![
                Ok(TraceRecord {
                    addr: DramAddr::new(0x40),
                    op: MemOp::Read,
                    cycle: Cycle::new(0)
                }),
                Ok(TraceRecord {
                    addr: DramAddr::new(0x80),
                    op: MemOp::Write,
                    cycle: Cycle::new(17)
                }),
            ]
        );
    }

    #[test]
    fn malformed_lines_name_file_line_and_expectation() {
        let cases = [
            (
                "40 READ 0",
                "t.trace:1: expected a hexadecimal address starting with 0x",
            ),
            (
                "0xZZ READ 0",
                "t.trace:1: expected a hexadecimal address that fits",
            ),
            (
                "0x40 LOAD 0",
                "t.trace:1: expected READ or WRITE, found `LOAD`",
            ),
            (
                "0x40",
                "t.trace:1: expected READ or WRITE after the address",
            ),
            ("0x40 READ", "t.trace:1: expected a decimal DRAM cycle"),
            (
                "0x40 READ -1",
                "t.trace:1: expected a decimal DRAM cycle that fits",
            ),
            (
                "0x40 READ 1 2",
                "t.trace:1: expected the end of the line after the cycle",
            ),
            (
                "0x400000000 READ 1",
                "t.trace:1: DRAM address 0x400000000 is beyond",
            ),
        ];
        for (line, expected) in cases {
            let got = parse_all(&format!("{line}\n"));
            assert_eq!(got.len(), 1, "{line}");
            let err = got[0].clone().unwrap_err();
            assert!(err.starts_with(expected), "{line}: {err}");
        }
        // The error stops the stream, and the line number counts every line.
        let got = parse_all("0x40 READ 0\n# c\n0x40 READ x\n0x40 READ 9\n");
        assert_eq!(got.len(), 2);
        assert!(got[1].clone().unwrap_err().starts_with("t.trace:3:"));
    }

    #[test]
    fn the_fast_path_reads_what_the_general_parser_reads() {
        // Lines the fast path takes, and lines it leaves to the general parser, mixed: every
        // record comes out as the general parser alone reads it.
        let text = "0x40 READ 0\n0XfF WRITE 17\r\n 0x80 READ 3\n0x80\tREAD\t4\n\
                    0x00000000000000000c0 READ 5\n0x100  WRITE  6 \n# c\n\n0x140 READ 7";
        let config = DramConfig::preset("ddr4-2400").unwrap();
        let fast: Vec<_> = parse_all(text);
        let slow: Vec<Result<TraceRecord, String>> = text
            .lines()
            .filter_map(|l| {
                let r = DramTraceReader::new(Path::new("t.trace"), &b""[..], &config);
                let mut r = DramTraceReader {
                    buf: l.as_bytes().to_vec(),
                    ..r
                };
                r.line_no = 1;
                r.parse().map_err(|e| e.to_string()).transpose()
            })
            .collect();
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 7);
        assert_eq!(
            parse_plain(b"0x40 READ 0\n0x80"),
            Some((0x40, MemOp::Read, 0, 12))
        );
        assert_eq!(
            parse_plain(b"0XfF WRITE 17\r\n"),
            Some((0xff, MemOp::Write, 17, 15))
        );
        for shape in [
            &b" 0x40 READ 0\n"[..],
            b"0x40 READ 0 \n",
            b"0x40 LOAD 0\n",
            b"0x40 READ\n",
            b"0x40 READ -1\n",
            b"0x40 READ 99999999999999999999\n",
            b"0x00000000000000040 READ 0\n",
            b"0x READ 0\n",
            b"0x40 READ 0",
            b"0x40 READ 0\r",
            b"0x40 READ 0\r\r\n",
            b"0x40 READ 1x\n",
        ] {
            assert_eq!(
                parse_plain(shape),
                None,
                "{}",
                String::from_utf8_lossy(shape)
            );
        }
        // An address beyond the DRAM still fails with its message, through the general parser.
        let got = parse_all("0x40 READ 0\n0x400000000 READ 1\n");
        assert!(
            got[1]
                .clone()
                .unwrap_err()
                .starts_with("t.trace:2: DRAM address")
        );
    }

    #[test]
    fn overlong_lines_are_rejected_without_reading_them_whole() {
        let long = "0x40 READ 0 ".to_owned() + &" ".repeat(TRACE_LINE_BYTES_MAX);
        let got = parse_all(&format!("{long}\n"));
        assert!(
            got[0]
                .clone()
                .unwrap_err()
                .contains("longer than 4096 bytes")
        );
        // Also when the blanks lie between the fields, in the shape the fast path reads, and
        // the whole line is in the buffer: the limit is the same for both paths.
        for blanks in [TRACE_LINE_BYTES_MAX - 10, TRACE_LINE_BYTES_MAX - 9] {
            let line = format!("0x40{}READ 0\n", " ".repeat(blanks));
            let config = DramConfig::preset("ddr4-2400").unwrap();
            let reader = std::io::BufReader::with_capacity(1 << 16, line.as_bytes());
            let got: Vec<_> = DramTraceReader::new(Path::new("t.trace"), reader, &config)
                .map(|r| r.map_err(|e| e.to_string()))
                .collect();
            // The line without its newline is 10 bytes plus the blanks.
            if blanks + 10 <= TRACE_LINE_BYTES_MAX {
                assert!(got[0].is_ok(), "{blanks}: {got:?}");
            } else {
                assert!(
                    got[0]
                        .clone()
                        .unwrap_err()
                        .contains("longer than 4096 bytes"),
                    "{blanks}"
                );
            }
        }
    }

    /// Yields `0x40 READ 0` lines forever.
    struct Endless {
        pos: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let line = b"0x40 READ 0\n";
            for b in buf.iter_mut() {
                *b = line[self.pos % line.len()];
                self.pos += 1;
            }
            Ok(buf.len())
        }
    }

    #[test]
    fn the_trace_streams_without_reading_to_the_end() {
        let config = DramConfig::preset("ddr4-2400").unwrap();
        let reader = BufReader::with_capacity(64, Endless { pos: 0 });
        let n = DramTraceReader::new(Path::new("endless"), reader, &config)
            .take(10_000)
            .filter(Result::is_ok)
            .count();
        assert_eq!(n, 10_000);
    }
}
