//! The trace readers on real files: a Lackey trace of a real program (checked against an
//! independent, deliberately naive parse), a ChampSim `.xz` trace, format guessing, and the
//! errors a user sees for malformed or truncated files.

use scenarios::formats::trace::champsim::encode_record;
use scenarios::formats::trace::{self, Access, AccessKind, TraceError, TraceFormat};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name)
}

/// A scratch file unique to this test process and `name`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, contents: &[u8]) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "scenarios-trace-test-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    enc.finish().unwrap()
}

/// Reads the whole trace, returning the accesses or the first error.
fn read_all(path: &Path, format: Option<TraceFormat>) -> Result<Vec<Access>, TraceError> {
    trace::open(path, format)?.collect()
}

/// `valgrind --tool=lackey --trace-mem=yes --log-file=true.lackey /bin/true`, gzip'd.
#[test]
fn lackey_trace_of_a_real_program() {
    let path = data("true.lackey.gz");
    // The naive reading: whole lines as strings, split by hand, std's radix parsing.
    let text = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&path).unwrap(),
    ));
    let (mut expected, mut loads, mut stores, mut modifies, mut fetches) = (Vec::new(), 0, 0, 0, 0);
    for line in text.lines() {
        let line = line.unwrap();
        if line.starts_with("==") {
            continue;
        }
        let (op, rest) = line.trim_start().split_at(1);
        let (addr, size) = rest.trim().split_once(',').unwrap();
        let addr = u64::from_str_radix(addr, 16).unwrap();
        let size: u32 = size.parse().unwrap();
        match op {
            "I" => fetches += 1,
            "L" => {
                loads += 1;
                expected.push(Access::read(addr, size));
            }
            "S" => {
                stores += 1;
                expected.push(Access::write(addr, size));
            }
            "M" => {
                modifies += 1;
                expected.push(Access::read(addr, size));
                expected.push(Access::write(addr, size));
            }
            other => panic!("unexpected Lackey line kind {other:?}"),
        }
    }
    // A real program's trace has every kind of line.
    assert!(loads > 10_000 && stores > 1_000 && modifies > 100 && fetches > 100_000);

    let mut reader = trace::open(&path, None).unwrap();
    assert_eq!(reader.format(), TraceFormat::Lackey);
    let got: Vec<Access> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    assert_eq!(reader.instructions(), Some(fetches));
    let reads = got.iter().filter(|a| a.kind == AccessKind::Read).count();
    assert_eq!(reads, loads + modifies);
    assert_eq!(got.len() - reads, stores + modifies);
}

/// The synthetic ChampSim trace: 1000 records built by the formula below, written with
/// Python's `lzma` module (docs/trace-format.md), so both the record layout and the xz
/// decoding are checked against an outside producer.
#[test]
fn champsim_xz_trace() {
    let mut expected = Vec::new();
    for i in 0..1000u64 {
        let src = [
            if i % 2 == 0 { 0x1000_0000 + 72 * i } else { 0 },
            if i % 3 == 0 {
                0x2000_0000 + 4096 * (i % 64)
            } else {
                0
            },
            0,
            if i % 5 == 0 { 0x3000_0000 + 8 * i } else { 0 },
        ];
        let dst = [
            if i % 4 == 1 {
                0x4000_0000 + 64 * (i % 100)
            } else {
                0
            },
            0,
        ];
        for a in src.into_iter().filter(|&a| a != 0) {
            expected.push(Access::read(a & !63, 64));
        }
        for a in dst.into_iter().filter(|&a| a != 0) {
            expected.push(Access::write(a & !63, 64));
        }
    }
    let mut reader = trace::open(&data("synthetic.champsimtrace.xz"), None).unwrap();
    assert_eq!(reader.format(), TraceFormat::Champsim);
    let got: Vec<Access> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(got, expected);
    assert_eq!(reader.instructions(), Some(1000));
}

#[test]
fn champsim_truncated_file() {
    let mut bytes: Vec<u8> = (0..3u64)
        .flat_map(|i| encode_record(i, [0, 0], [0x1000 * (i + 1), 0, 0, 0]))
        .collect();
    bytes.extend_from_slice(&[0xab; 40]);
    let f = Scratch::new("cut.champsimtrace", &bytes);
    let mut reader = trace::open(&f.0, None).unwrap();
    for want in [0x1000, 0x2000, 0x3000] {
        assert_eq!(reader.next().unwrap().unwrap().addr, want);
    }
    let e = reader.next().unwrap().unwrap_err();
    assert!(matches!(
        e,
        TraceError::TruncatedRecord {
            record: 4,
            offset: 192,
            bytes: 40,
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("cut.champsimtrace: record 4 (byte offset 192)")
    );
}

#[test]
fn mtrace_malformed_line_in_a_gzip_file() {
    let mut text = String::from("# header\n");
    for i in 0..15 {
        text.push_str(&format!("R 0x{:x} 8\n", 0x1000 + 8 * i));
    }
    text.push_str("Q 0x10 8\nW 0x10 8\n");
    let f = Scratch::new("bad.mtrace.gz", &gzip(text.as_bytes()));
    let e = read_all(&f.0, None).unwrap_err().to_string();
    assert!(
        e.ends_with("bad.mtrace.gz: line 17: expected \"R|W 0xADDR SIZE\", found \"Q 0x10 8\""),
        "{e}"
    );
}

#[test]
fn lackey_malformed_line_in_a_file() {
    let text = "==1== Lackey\nI  0400000,3\n L 1000,8\n L 1000;8\n";
    let f = Scratch::new("bad.lackey", text.as_bytes());
    let e = read_all(&f.0, None).unwrap_err();
    assert!(matches!(e, TraceError::Malformed { line: 4, .. }), "{e}");
    assert!(
        e.to_string().ends_with(
            "line 4: expected a Lackey line (\" L|S|M ADDR,SIZE\", \"I  ADDR,SIZE\" or a \
             valgrind \"==PID==\" message), found \" L 1000;8\" (ADDR and SIZE are separated \
             by a comma)"
        ),
        "{e}"
    );
}

#[test]
fn corrupt_compressed_files_are_read_errors() {
    let mut gz = gzip(b"R 0x10 8\n".repeat(1000).as_slice());
    // Cut inside the deflate stream: the decoder hits the end of the file mid-stream.
    gz.truncate(gz.len() / 2);
    let f = Scratch::new("corrupt.mtrace.gz", &gz);
    assert!(matches!(read_all(&f.0, None), Err(TraceError::Read { .. })));

    let mut xz = std::fs::read(data("synthetic.champsimtrace.xz")).unwrap();
    xz.truncate(xz.len() / 2);
    let f = Scratch::new("corrupt.champsimtrace.xz", &xz);
    assert!(matches!(read_all(&f.0, None), Err(TraceError::Read { .. })));
}

#[test]
fn format_is_guessed_from_contents_and_can_be_forced() {
    let f = Scratch::new("trace.txt", b"# c\nW 0x40 8\n");
    assert_eq!(
        trace::open(&f.0, None).unwrap().format(),
        TraceFormat::Mtrace
    );
    // Forced to Lackey, the same file is malformed at its first access.
    let e = read_all(&f.0, Some(TraceFormat::Lackey)).unwrap_err();
    assert!(matches!(e, TraceError::Malformed { line: 1, .. }), "{e}");

    let f = Scratch::new("mystery.txt", b"hello\n");
    let e = trace::open(&f.0, None).err().unwrap();
    assert!(matches!(e, TraceError::UnknownFormat { .. }));
    assert!(
        e.to_string()
            .contains("mystery.txt: cannot tell the trace format")
    );

    let e = trace::open(Path::new("/nonexistent/trace.mtrace"), None)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/trace.mtrace: cannot open")
    );
}

#[test]
fn a_binary_file_read_as_text_stops_at_an_overlong_line() {
    // 2 MiB without a newline: the reader refuses rather than growing its buffer.
    let f = Scratch::new("noline.mtrace", &vec![b'R'; 2 << 20]);
    let e = read_all(&f.0, None).unwrap_err();
    assert!(matches!(e, TraceError::LineTooLong { line: 1, .. }), "{e}");
}
