//! ChampSim binary traces (`*.champsimtrace.xz`): a stream of fixed 64-byte `input_instr`
//! records, one per instruction, little-endian (ChampSim `inc/trace_instruction.h`):
//!
//! ```text
//!  offset  size  field
//!       0     8  ip                          instruction pointer (not a data access)
//!       8     1  is_branch
//!       9     1  branch_taken
//!      10     2  destination_registers[2]
//!      12     4  source_registers[4]
//!      16    16  destination_memory[2]       u64 each: addresses written, 0 = unused
//!      32    32  source_memory[4]            u64 each: addresses read, 0 = unused
//! ```
//!
//! Each record yields its reads (non-zero `source_memory` entries, in order) and then its
//! writes (non-zero `destination_memory` entries, in order): an instruction reads its operands
//! before it writes its result. The records carry no access size; ChampSim itself moves whole
//! 64-byte blocks, so each access here is the whole 64-byte line holding the address
//! ([`ACCESS_BYTES`] bytes at the line's first byte). Entries are not de-duplicated: an
//! instruction that names one address twice makes two accesses.

use super::{Access, AccessKind, TraceError};
use sim_core::{LINE_BYTES, PhysAddr};
use std::io::{self, Read};

/// Bytes per ChampSim `input_instr` record.
pub const RECORD_BYTES: usize = 64;

/// Size of every access the reader yields: one 64-byte line, line-aligned.
pub const ACCESS_BYTES: u32 = LINE_BYTES as u32;

/// Records per buffer refill (256 KiB).
const BUFFER_RECORDS: usize = 4096;

/// Offset of `destination_memory` in a record.
const DEST_OFFSET: usize = 16;
/// Offset of `source_memory` in a record.
const SRC_OFFSET: usize = 32;

/// Streams the data accesses of a ChampSim trace.
pub struct ChampsimReader<R> {
    src: R,
    name: String,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Records decoded so far (one per instruction).
    records: u64,
    /// Accesses of the current record not yet returned.
    pending: [Access; 6],
    pending_len: usize,
    pending_pos: usize,
    done: bool,
}

impl<R: Read> ChampsimReader<R> {
    /// A reader of the (already decompressed) record stream `src`; `name` is what errors
    /// call it.
    pub fn new(src: R, name: impl Into<String>) -> ChampsimReader<R> {
        ChampsimReader {
            src,
            name: name.into(),
            buf: vec![0; BUFFER_RECORDS * RECORD_BYTES].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            records: 0,
            pending: [Access::read(0, 0); 6],
            pending_len: 0,
            pending_pos: 0,
            done: false,
        }
    }

    /// Records (instructions) decoded so far.
    pub fn instructions(&self) -> u64 {
        self.records
    }

    /// Tops the buffer up until it holds a whole record or the stream ends.
    #[cold]
    fn refill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while !self.eof && self.end < RECORD_BYTES {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Decodes the record at `pos` into `pending`.
    #[inline]
    fn decode(&mut self) {
        let record = &self.buf[self.pos..self.pos + RECORD_BYTES];
        let word = |offset: usize| {
            u64::from_le_bytes(record[offset..offset + 8].try_into().expect("8 bytes"))
        };
        let mut n = 0;
        for i in 0..4 {
            let addr = word(SRC_OFFSET + 8 * i);
            if addr != 0 {
                self.pending[n] = line_access(AccessKind::Read, addr);
                n += 1;
            }
        }
        for i in 0..2 {
            let addr = word(DEST_OFFSET + 8 * i);
            if addr != 0 {
                self.pending[n] = line_access(AccessKind::Write, addr);
                n += 1;
            }
        }
        self.pending_len = n;
        self.pending_pos = 0;
        self.pos += RECORD_BYTES;
        self.records += 1;
    }

    /// The next access, `Ok(None)` at the end of the trace. After an error the reader stays
    /// at its end.
    #[inline]
    pub fn next_access(&mut self) -> Result<Option<Access>, TraceError> {
        loop {
            if self.pending_pos < self.pending_len {
                self.pending_pos += 1;
                return Ok(Some(self.pending[self.pending_pos - 1]));
            }
            if self.done {
                return Ok(None);
            }
            if self.end - self.pos < RECORD_BYTES {
                if let Err(error) = self.refill() {
                    self.done = true;
                    return Err(TraceError::Read {
                        path: self.name.clone(),
                        at: format!(
                            "record {} (byte offset {})",
                            self.records + 1,
                            self.records * RECORD_BYTES as u64
                        ),
                        error,
                    });
                }
                let left = self.end - self.pos;
                if left == 0 {
                    self.done = true;
                    return Ok(None);
                }
                if left < RECORD_BYTES {
                    self.done = true;
                    return Err(TraceError::TruncatedRecord {
                        path: self.name.clone(),
                        record: self.records + 1,
                        offset: self.records * RECORD_BYTES as u64,
                        bytes: left,
                    });
                }
            }
            self.decode();
        }
    }
}

/// The access to the whole line holding `addr`.
#[inline]
fn line_access(kind: AccessKind, addr: u64) -> Access {
    Access {
        kind,
        addr: PhysAddr::new(addr).line().base().raw(),
        size: ACCESS_BYTES,
    }
}

impl<R: Read> Iterator for ChampsimReader<R> {
    type Item = Result<Access, TraceError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_access().transpose()
    }
}

/// Encodes one `input_instr` record (for tests and for writing traces).
pub fn encode_record(ip: u64, destination_memory: [u64; 2], source_memory: [u64; 4]) -> [u8; 64] {
    let mut r = [0u8; RECORD_BYTES];
    r[0..8].copy_from_slice(&ip.to_le_bytes());
    for (i, a) in destination_memory.iter().enumerate() {
        r[DEST_OFFSET + 8 * i..DEST_OFFSET + 8 * i + 8].copy_from_slice(&a.to_le_bytes());
    }
    for (i, a) in source_memory.iter().enumerate() {
        r[SRC_OFFSET + 8 * i..SRC_OFFSET + 8 * i + 8].copy_from_slice(&a.to_le_bytes());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_then_writes_of_whole_lines() {
        let mut bytes = Vec::new();
        bytes.extend(encode_record(
            0x400000,
            [0x7000_0008, 0],
            [0x1000, 0, 0x2043, 0],
        ));
        bytes.extend(encode_record(0x400004, [0, 0], [0, 0, 0, 0]));
        bytes.extend(encode_record(
            0x400008,
            [0x10, 0x20],
            [0x30, 0x40, 0x50, 0x60],
        ));
        let mut r = ChampsimReader::new(bytes.as_slice(), "t.champsimtrace");
        let all: Vec<Access> = r.by_ref().map(Result::unwrap).collect();
        let line = |kind, addr| Access {
            kind,
            addr,
            size: 64,
        };
        use AccessKind::{Read as R, Write as W};
        assert_eq!(
            all,
            [
                line(R, 0x1000),
                line(R, 0x2040),
                line(W, 0x7000_0000),
                line(R, 0x00),
                line(R, 0x40),
                line(R, 0x40),
                line(R, 0x40),
                line(W, 0x00),
                line(W, 0x00),
            ]
        );
        assert_eq!(r.instructions(), 3);
    }

    #[test]
    fn ip_and_register_fields_are_not_accesses() {
        let mut rec = encode_record(0xdead_beef, [0, 0], [0, 0, 0, 0]);
        rec[8..16].copy_from_slice(&[1, 1, 5, 6, 7, 8, 9, 10]);
        let mut r = ChampsimReader::new(&rec[..], "t");
        assert!(r.next().is_none());
        assert_eq!(r.instructions(), 1);
    }

    #[test]
    fn a_truncated_record_is_an_error() {
        let mut bytes = Vec::new();
        bytes.extend(encode_record(1, [0, 0], [0x1000, 0, 0, 0]));
        bytes.extend(&encode_record(2, [0, 0], [0x2000, 0, 0, 0])[..17]);
        let mut r = ChampsimReader::new(bytes.as_slice(), "cut.champsimtrace");
        assert_eq!(r.next().unwrap().unwrap().addr, 0x1000);
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "cut.champsimtrace: record 2 (byte offset 64) is truncated: the trace ends 17 bytes \
             into the 64-byte record"
        );
        assert!(r.next().is_none());
    }

    #[test]
    fn records_split_across_reads_decode_whole() {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || out.is_empty() {
                    return Ok(0);
                }
                out[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let bytes: Vec<u8> = (0..10u64)
            .flat_map(|i| encode_record(i, [0, 0], [(i + 1) << 12, 0, 0, 0]))
            .collect();
        let all: Vec<u64> = ChampsimReader::new(OneByte(&bytes), "t")
            .map(|a| a.unwrap().addr)
            .collect();
        assert_eq!(all, (1..=10u64).map(|i| i << 12).collect::<Vec<_>>());
    }
}
