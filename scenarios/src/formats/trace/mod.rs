//! Memory-trace readers: streaming iterators of [`Access`]es from mtrace text, valgrind Lackey
//! output and ChampSim binary traces, gzip- or xz-compressed or not.
//!
//! The readers live here, with the project's other file formats, rather than in `cache-model`:
//! the model takes [`Access`]es (defined in [`cache_model::access`] and re-exported here) and
//! knows nothing of files, compression or line numbers.
//!
//! ```text
//!   file --> [gzip | xz | plain, by magic bytes] --> [mtrace | lackey | champsim] --> Access...
//! ```
//!
//! Every reader holds one fixed buffer (1 MiB for text, 256 KiB for ChampSim records) however
//! long the trace is, parses bytes directly (no regular expressions, no per-line allocation),
//! and reports a malformed line as a [`TraceError`] naming the file, the line number, what it
//! found and what it expected. Readers never panic on their input.
//!
//! ```
//! use scenarios::formats::trace::{Access, MtraceReader};
//!
//! let text = "# two accesses\nR 0x1000 8\nW 0x1008 4\n";
//! let accesses: Vec<Access> = MtraceReader::new(text.as_bytes(), "example")
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(accesses, [Access::read(0x1000, 8), Access::write(0x1008, 4)]);
//! ```

pub mod champsim;
pub mod lackey;
mod lines;
pub mod mtrace;
pub(crate) mod parse;

pub use cache_model::access::{Access, AccessKind};
pub use champsim::ChampsimReader;
pub use lackey::LackeyReader;
pub use mtrace::MtraceReader;

use crate::limits::FILE_CHARS_SHOWN;
use lines::CursorError;
use sim_core::text::{shown, shown_max};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A trace file format.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum TraceFormat {
    /// `R|W 0xADDR SIZE` text lines ([`mtrace`]).
    Mtrace,
    /// valgrind Lackey output ([`lackey`]).
    Lackey,
    /// ChampSim 64-byte binary records ([`champsim`]).
    Champsim,
}

impl TraceFormat {
    /// Every format.
    pub const ALL: [TraceFormat; 3] = [
        TraceFormat::Mtrace,
        TraceFormat::Lackey,
        TraceFormat::Champsim,
    ];

    /// The format's name: `mtrace`, `lackey` or `champsim`.
    pub const fn name(self) -> &'static str {
        match self {
            TraceFormat::Mtrace => "mtrace",
            TraceFormat::Lackey => "lackey",
            TraceFormat::Champsim => "champsim",
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceFormat {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<TraceFormat, TraceError> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| TraceError::UnknownFormatName(s.to_owned()))
    }
}

/// Why a trace could not be read. Every variant names the file; line-level errors name the
/// line (1-based, counting every line of the decompressed text) too.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened.
    #[error("{}: cannot open: {error}", shown_max(path, FILE_CHARS_SHOWN))]
    Open {
        /// The trace's name.
        path: String,
        /// The operating system's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// Reading or decompressing failed (a corrupt or truncated `.gz` or `.xz` lands here).
    #[error(
        "{}: {at}: read failed: {error}{}",
        shown_max(path, FILE_CHARS_SHOWN),
        truncation_hint(error)
    )]
    Read {
        /// The trace's name.
        path: String,
        /// Where the stream failed: a line or a record and its offset in the decompressed
        /// stream, or its first bytes.
        at: String,
        /// The reader's or decompressor's error (part of the message, so not also a
        /// `source()`).
        error: io::Error,
    },
    /// A text line is not what its format allows.
    #[error(
        "{}: line {line}: expected {expected}, found \"{found}\"{}",
        shown_max(path, FILE_CHARS_SHOWN),
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    Malformed {
        /// The trace's name.
        path: String,
        /// Line number, 1-based.
        line: u64,
        /// What the format expects, as the message says it.
        expected: &'static str,
        /// The offending line (cut to 80 characters, escaped).
        found: String,
        /// What exactly is wrong, when more can be said than "not the expected shape".
        reason: Option<&'static str>,
    },
    /// A text line longer than the reader's buffer.
    #[error(
        "{}: line {line} is longer than {max_bytes} bytes: this is not a {format} trace",
        shown_max(path, FILE_CHARS_SHOWN)
    )]
    LineTooLong {
        /// The trace's name.
        path: String,
        /// Line number, 1-based.
        line: u64,
        /// The longest line accepted.
        max_bytes: usize,
        /// The format being read.
        format: TraceFormat,
    },
    /// A ChampSim trace whose length is not a whole number of records.
    #[error(
        "{}: record {record} (byte offset {offset}) is truncated: the trace ends {bytes} \
         bytes into the 64-byte record",
        shown_max(path, FILE_CHARS_SHOWN)
    )]
    TruncatedRecord {
        /// The trace's name.
        path: String,
        /// Record number, 1-based.
        record: u64,
        /// Offset of the record in the decompressed stream.
        offset: u64,
        /// Bytes of the record present.
        bytes: usize,
    },
    /// The format was not given and neither the name nor the contents tell it.
    #[error(
        "{}: cannot tell the trace format from the file name or the contents",
        shown_max(path, FILE_CHARS_SHOWN)
    )]
    UnknownFormat {
        /// The trace's name.
        path: String,
    },
    /// A format name that is none of the known ones.
    #[error("unknown trace format \"{}\": expected mtrace, lackey or champsim", shown(.0))]
    UnknownFormatName(String),
}

/// What a stream that ends early means, for [`TraceError::Read`]: decompressors report a
/// truncated file as an unexpected end ("failed to fill whole buffer", "incomplete deflate
/// stream").
fn truncation_hint(error: &io::Error) -> &'static str {
    let text = error.to_string();
    if error.kind() == io::ErrorKind::UnexpectedEof
        || text.contains("incomplete")
        || text.contains("unexpected end")
    {
        " (the compressed stream ends early: is the file truncated?)"
    } else {
        ""
    }
}

impl TraceError {
    fn from_cursor_error(
        path: &str,
        format: TraceFormat,
        expected: &'static str,
        e: CursorError,
    ) -> TraceError {
        let path = path.to_owned();
        match e {
            CursorError::Io {
                line,
                offset,
                error,
            } => TraceError::Read {
                path,
                at: format!("line {line} (byte {offset} of the decompressed text)"),
                error,
            },
            CursorError::TooLong { line } => TraceError::LineTooLong {
                path,
                line,
                max_bytes: lines::LINE_BUFFER_BYTES - 1,
                format,
            },
            CursorError::Malformed {
                line,
                found,
                reason,
            } => TraceError::Malformed {
                path,
                line,
                expected,
                found,
                reason,
            },
        }
    }
}

/// A decompressed byte stream of unknown origin.
pub type TraceSource = Box<dyn Read + Send>;

/// A reader of any format, as [`open`] returns it. One closed enum rather than a trait object,
/// so the per-access call is a predictable branch.
pub enum TraceReader {
    /// An mtrace reader.
    Mtrace(MtraceReader<TraceSource>),
    /// A Lackey reader.
    Lackey(LackeyReader<TraceSource>),
    /// A ChampSim reader.
    Champsim(ChampsimReader<TraceSource>),
}

impl TraceReader {
    /// A reader of `format` over the decompressed stream `src`, called `name` in errors.
    pub fn new(format: TraceFormat, src: TraceSource, name: impl Into<String>) -> TraceReader {
        match format {
            TraceFormat::Mtrace => TraceReader::Mtrace(MtraceReader::new(src, name)),
            TraceFormat::Lackey => TraceReader::Lackey(LackeyReader::new(src, name)),
            TraceFormat::Champsim => TraceReader::Champsim(ChampsimReader::new(src, name)),
        }
    }

    /// The format being read.
    pub fn format(&self) -> TraceFormat {
        match self {
            TraceReader::Mtrace(_) => TraceFormat::Mtrace,
            TraceReader::Lackey(_) => TraceFormat::Lackey,
            TraceReader::Champsim(_) => TraceFormat::Champsim,
        }
    }

    /// Instructions seen so far, for the formats that record them: Lackey's `I` lines and
    /// ChampSim's records. `None` for mtrace, which records data accesses only.
    pub fn instructions(&self) -> Option<u64> {
        match self {
            TraceReader::Mtrace(_) => None,
            TraceReader::Lackey(r) => Some(r.instructions()),
            TraceReader::Champsim(r) => Some(r.instructions()),
        }
    }

    /// The next access, `Ok(None)` at the end of the trace.
    #[inline]
    pub fn next_access(&mut self) -> Result<Option<Access>, TraceError> {
        match self {
            TraceReader::Mtrace(r) => r.next_access(),
            TraceReader::Lackey(r) => r.next_access(),
            TraceReader::Champsim(r) => r.next_access(),
        }
    }
}

impl Iterator for TraceReader {
    type Item = Result<Access, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_access().transpose()
    }
}

/// How a file is compressed, from its first bytes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (magic `1f 8b`); concatenated members are read as one stream.
    Gzip,
    /// xz (magic `fd 37 7a 58 5a 00`); concatenated streams are read as one.
    Xz,
}

impl Compression {
    /// The compression whose magic number `head` starts with.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// The most memory the xz decoder may allocate for its dictionary, in KiB: 1 GiB, above the
/// 64 MiB of `xz -9`, so that a crafted header cannot make the reader allocate without bound.
const XZ_MEM_LIMIT_KB: u32 = 1 << 20;

/// Bytes of the decompressed stream examined to guess a format.
const SNIFF_BYTES: usize = 64 * 1024;

/// A stream whose first bytes were read ahead and are replayed before the rest.
type Replayed<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// A reader that counts the bytes it hands out.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressor whose errors say how much of the (compressed) file had been read: a
/// truncated file fails at its end, a corrupt one somewhere before.
struct FileOffsetOnError<R> {
    inner: R,
    file_bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for FileOffsetOnError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let read = self.file_bytes.load(Ordering::Relaxed);
            io::Error::new(
                e.kind(),
                format!("{e}, after byte {read} of the compressed file"),
            )
        })
    }
}

/// Reads up to `n` bytes from the start of `src` and returns them with a stream that replays
/// them before the rest; on failure, the bytes read before it and the error.
fn peek<R: Read>(mut src: R, n: usize) -> Result<(Vec<u8>, Replayed<R>), (usize, io::Error)> {
    let mut head = vec![0; n];
    let mut got = 0;
    while got < n {
        match src.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((got, e)),
        }
    }
    head.truncate(got);
    Ok((head.clone(), Cursor::new(head).chain(src)))
}

/// Opens a trace file: detects gzip or xz compression by magic number, takes the format from
/// `format` or else guesses it ([`guess_format`]), and returns a streaming reader.
pub fn open(path: &Path, format: Option<TraceFormat>) -> Result<TraceReader, TraceError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|error| TraceError::Open {
        path: name.clone(),
        error,
    })?;
    let read_err = |(got, error)| TraceError::Read {
        path: name.clone(),
        at: format!("byte {got} of the decompressed text"),
        error,
    };
    // The bytes of the file read so far, for a decompressor's error to say where it stopped.
    let file_bytes = Arc::new(AtomicU64::new(0));
    let file = CountingReader {
        inner: file,
        count: Arc::clone(&file_bytes),
    };
    // The buffer only serves the decompressors' small reads; plain text is read in 1 MiB
    // blocks that bypass it.
    let (magic, raw) =
        peek(BufReader::with_capacity(1 << 16, file), 6).map_err(|(got, error)| {
            TraceError::Read {
                path: name.clone(),
                at: format!("byte {got} of the file"),
                error,
            }
        })?;
    let decoded: TraceSource = match Compression::detect(&magic) {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(FileOffsetOnError {
            inner: flate2::read::MultiGzDecoder::new(raw),
            file_bytes,
        }),
        Compression::Xz => Box::new(FileOffsetOnError {
            inner: lzma_rust2::XzReader::new_mem_limit(raw, true, XZ_MEM_LIMIT_KB),
            file_bytes,
        }),
    };
    let (format, decoded): (TraceFormat, TraceSource) = match format {
        Some(f) => (f, decoded),
        None => {
            let (head, stream) = peek(decoded, SNIFF_BYTES).map_err(read_err)?;
            let file_name = path.file_name().map(|n| n.to_string_lossy());
            let f = guess_format(file_name.as_deref().unwrap_or(""), &head)
                .ok_or_else(|| TraceError::UnknownFormat { path: name.clone() })?;
            (f, Box::new(stream))
        }
    };
    Ok(TraceReader::new(format, decoded, name))
}

/// Guesses a trace's format from its file name, then from the first bytes of its
/// decompressed contents.
///
/// By name (after dropping a `.gz` or `.xz` suffix): a name containing `champsim` is ChampSim,
/// one ending in `.mtrace` mtrace, one ending in `.lackey` Lackey. By contents: bytes that
/// cannot be text (NUL, other control characters, invalid UTF-8) mean ChampSim; otherwise the
/// first line that is neither blank nor a `#` comment decides: a valgrind message or a Lackey
/// access line means Lackey, `R` or `W` followed by a blank means mtrace.
pub fn guess_format(file_name: &str, head: &[u8]) -> Option<TraceFormat> {
    let lower = file_name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".xz"))
        .unwrap_or(&lower);
    if stem.contains("champsim") {
        return Some(TraceFormat::Champsim);
    }
    if stem.ends_with(".mtrace") {
        return Some(TraceFormat::Mtrace);
    }
    if stem.ends_with(".lackey") {
        return Some(TraceFormat::Lackey);
    }
    // A multi-byte character may be cut at the end of the sniffed block: only reject UTF-8
    // that is invalid before that.
    let text_ok = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let binary = head
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'));
    if binary || !text_ok {
        return Some(TraceFormat::Champsim);
    }
    for line in head.split(|&b| b == b'\n') {
        match lackey::parse_line(line) {
            Ok(lackey::LackeyLine::Skip) if parse::skip_blanks(line, 0) == line.len() => {
                continue;
            }
            Ok(_) => return Some(TraceFormat::Lackey),
            Err(_) => {}
        }
        return match mtrace::parse_line(line) {
            Ok(None) => continue,
            Ok(Some(_)) => Some(TraceFormat::Mtrace),
            Err(_) => {
                let t = &line[parse::skip_blanks(line, 0)..];
                (t.len() > 1 && matches!(t[0], b'R' | b'W') && parse::is_blank(t[1]))
                    .then_some(TraceFormat::Mtrace)
            }
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hands out the bytes in reads of the given sizes (cycling), to cut lines anywhere.
    struct Chopped<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chopped<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            let n = want.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Everything a reader yields, the error as its message.
    fn outcome(
        reader: impl Iterator<Item = Result<Access, TraceError>>,
    ) -> Vec<Result<Access, String>> {
        reader.map(|r| r.map_err(|e| e.to_string())).collect()
    }

    /// Eight well-formed lines, then four malformed ones.
    const MTRACE_LINES: [&str; 12] = [
        "R 0x10000000 8",
        "W 0x7ffc1234abc8 4",
        "# a comment",
        "",
        "  R 0X1fFF 16  # c",
        "W\t0x0 1\r",
        "R 0x123456789abcdef0 64",
        "W 0xffffffffffffffff 1",
        "Q 0x10 8",
        "R 0x10 0",
        "W 0x10",
        "R 0x10 8 9",
    ];
    /// Eight well-formed lines, then four malformed ones.
    const LACKEY_LINES: [&str; 12] = [
        "I  0401ab70,3",
        " L 04229e0,8",
        " S 1fff000768,8",
        " M 0422c90,4",
        "==16182== Lackey, an example Valgrind tool",
        "",
        "I  04017a0,10",
        "--1-- warning",
        " L 1000;8",
        " Q 1000,8",
        "I  zz,3",
        " S 1000,0",
    ];

    proptest! {
        /// Lines cut across reads and buffer refills read exactly as whole ones: the same
        /// accesses, and the same error (line number included) at the same place.
        #[test]
        fn buffer_boundaries_do_not_change_what_is_read(
            picks in prop::collection::vec(0usize..12, 0..40),
            good_only in any::<bool>(),
            sizes in prop::collection::vec(1usize..40, 1..6),
            buffer in 64usize..96,
        ) {
            let pick = |i: usize| if good_only { i % 8 } else { i };
            let mtrace: String = picks.iter().map(|&i| format!("{}\n", MTRACE_LINES[pick(i)])).collect();
            let whole = outcome(MtraceReader::new(mtrace.as_bytes(), "t"));
            let chopped = Chopped { data: mtrace.as_bytes(), sizes: sizes.clone(), next: 0 };
            prop_assert_eq!(&outcome(MtraceReader::with_buffer_bytes(chopped, "t", buffer)), &whole);
            prop_assert_eq!(whole.iter().all(Result::is_ok), good_only || picks.iter().all(|&i| i < 8));

            let lackey: String = picks.iter().map(|&i| format!("{}\n", LACKEY_LINES[pick(i)])).collect();
            let whole = outcome(LackeyReader::new(lackey.as_bytes(), "t"));
            let chopped = Chopped { data: lackey.as_bytes(), sizes, next: 0 };
            prop_assert_eq!(&outcome(LackeyReader::with_buffer_bytes(chopped, "t", buffer)), &whole);
            prop_assert_eq!(whole.iter().all(Result::is_ok), good_only || picks.iter().all(|&i| i < 8));
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in TraceFormat::ALL {
            assert_eq!(f.name().parse::<TraceFormat>().unwrap(), f);
        }
        assert_eq!(
            "dinero".parse::<TraceFormat>().unwrap_err().to_string(),
            "unknown trace format \"dinero\": expected mtrace, lackey or champsim"
        );
    }

    #[test]
    fn compression_by_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(Compression::detect(b"R 0x"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
    }

    #[test]
    fn guesses_by_name_first() {
        assert_eq!(
            guess_format("600.perlbench_s-210B.champsimtrace.xz", b""),
            Some(TraceFormat::Champsim)
        );
        assert_eq!(
            guess_format("x.MTRACE.gz", b"==1== hi"),
            Some(TraceFormat::Mtrace)
        );
        assert_eq!(
            guess_format("ls.lackey", b"R 0x1 1"),
            Some(TraceFormat::Lackey)
        );
    }

    #[test]
    fn guesses_by_contents() {
        let lackey = b"==16182== Lackey, an example Valgrind tool\nI  0401ab70,3\n";
        assert_eq!(guess_format("trace.txt", lackey), Some(TraceFormat::Lackey));
        assert_eq!(guess_format("t", b"\n I  0401ab70,3"), None);
        assert_eq!(
            guess_format("t", b"I  0401ab70,3\n"),
            Some(TraceFormat::Lackey)
        );
        assert_eq!(guess_format("t", b" L 1000,8"), Some(TraceFormat::Lackey));
        assert_eq!(
            guess_format("t", b"# synthetic strided trace v1\nR 0x10000000 8\n"),
            Some(TraceFormat::Mtrace)
        );
        // A malformed first access still says what the file is meant to be: the reader then
        // reports the line precisely.
        assert_eq!(
            guess_format("t", b"W 0x10 zero\n"),
            Some(TraceFormat::Mtrace)
        );
        assert_eq!(
            guess_format("t", &[0x00, 0x10, 0x40, 0x00]),
            Some(TraceFormat::Champsim)
        );
        assert_eq!(
            guess_format("t", &[0xc3]),
            None,
            "a cut multi-byte character is text"
        );
        assert_eq!(
            guess_format("t", &[0xff, 0xfe, b'a']),
            Some(TraceFormat::Champsim)
        );
        assert_eq!(guess_format("t", b""), None);
        assert_eq!(guess_format("t", b"# only comments\n\n"), None);
        assert_eq!(guess_format("t", b"hello world\n"), None);
    }
}
