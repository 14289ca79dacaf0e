//! Readers stream: a trace far larger than any buffer goes through each of them while the
//! heap stays small. A counting global allocator (this test binary's only) measures the peak.

use scenarios::formats::trace::champsim::{RECORD_BYTES, encode_record};
use scenarios::formats::trace::{
    Access, AccessKind, ChampsimReader, LackeyReader, MtraceReader, TraceError,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A trace produced on the fly, line by line (or record by record), never held whole.
struct Generated<F> {
    next: F,
    pending: Vec<u8>,
    at: usize,
    left: u64,
    produced: u64,
}

impl<F: FnMut(u64, &mut Vec<u8>)> Generated<F> {
    fn new(items: u64, next: F) -> Self {
        Generated {
            next,
            pending: Vec::with_capacity(64),
            at: 0,
            left: items,
            produced: 0,
        }
    }
}

impl<F: FnMut(u64, &mut Vec<u8>)> Read for Generated<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.at == self.pending.len() {
                if self.left == 0 {
                    break;
                }
                self.pending.clear();
                self.at = 0;
                (self.next)(self.produced, &mut self.pending);
                self.produced += 1;
                self.left -= 1;
            }
            let k = (out.len() - n).min(self.pending.len() - self.at);
            out[n..n + k].copy_from_slice(&self.pending[self.at..self.at + k]);
            self.at += k;
            n += k;
        }
        Ok(n)
    }
}

/// Items per trace (2.1 million text lines in all, 700,000 records): over 60 MB of traces,
/// which a reader that held its input would need on the heap many times over the bound below.
const ITEMS: u64 = 700_000;
/// The heap the whole test may use at its peak: the readers' fixed buffers (1 MiB for text,
/// 256 KiB for records) and the test harness's own allocations.
const PEAK_MAX: usize = 2 << 20;

/// A checksum of a stream of accesses, to compare against what was generated.
fn fold(sum: u64, a: Access) -> u64 {
    sum.wrapping_mul(31)
        .wrapping_add(a.addr ^ u64::from(a.size) ^ u64::from(a.kind == AccessKind::Write))
}

fn addr(i: u64) -> u64 {
    0x7f00_0000_0000 + i.wrapping_mul(0x9e37_79b9) % (1 << 30)
}

/// Appends `v` in lower-case hex (cheaper than `format!` in a debug build).
fn push_hex(out: &mut Vec<u8>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for d in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (4 * d)) & 0xf) as usize]);
    }
}

/// Counts the accesses of a reader, failing on the first error.
fn count_ok(reader: impl Iterator<Item = Result<Access, TraceError>>) -> u64 {
    let mut n = 0;
    for access in reader {
        access.unwrap();
        n += 1;
    }
    n
}

#[test]
fn readers_stream_in_bounded_memory() {
    let produced = std::cell::Cell::new(0u64);

    // mtrace
    let src = Generated::new(ITEMS, |i, out| {
        out.extend_from_slice(if i % 3 == 0 { b"W 0x" } else { b"R 0x" });
        push_hex(out, addr(i));
        out.push(b' ');
        out.extend_from_slice((1 + i % 16).to_string().as_bytes());
        out.push(b'\n');
        produced.set(produced.get() + out.len() as u64);
    });
    let want = (0..ITEMS).fold(0, |sum, i| {
        let size = 1 + (i % 16) as u32;
        fold(
            sum,
            Access {
                kind: AccessKind::from_is_write(i % 3 == 0),
                addr: addr(i),
                size,
            },
        )
    });
    let (mut count, mut got) = (0u64, 0u64);
    for a in MtraceReader::new(src, "generated.mtrace") {
        got = fold(got, a.unwrap());
        count += 1;
    }
    assert_eq!((count, got), (ITEMS, want));

    // Lackey: an instruction line before every access, M every fifth.
    let src = Generated::new(ITEMS, |i, out| {
        out.extend_from_slice(b"I  ");
        push_hex(out, 0x40_0000 + i);
        out.extend_from_slice(b",4\n ");
        out.push([b'L', b'S', b'L', b'L', b'M'][(i % 5) as usize]);
        out.push(b' ');
        push_hex(out, addr(i));
        out.extend_from_slice(b",8\n");
        produced.set(produced.get() + out.len() as u64);
    });
    let mut reader = LackeyReader::new(src, "generated.lackey");
    assert_eq!(count_ok(reader.by_ref()), ITEMS + ITEMS / 5);
    assert_eq!(reader.instructions(), ITEMS);

    // ChampSim records.
    let src = Generated::new(ITEMS, |i, out| {
        out.extend_from_slice(&encode_record(i, [addr(i), 0], [addr(i + 1), 0, 0, 0]));
        produced.set(produced.get() + RECORD_BYTES as u64);
    });
    let mut reader = ChampsimReader::new(src, "generated.champsimtrace");
    assert_eq!(count_ok(reader.by_ref()), 2 * ITEMS);
    assert_eq!(reader.instructions(), ITEMS);

    let peak = PEAK.load(Ordering::Relaxed);
    let produced = produced.get();
    assert!(
        peak < PEAK_MAX,
        "peak heap {peak} bytes while streaming {produced} bytes of traces"
    );
    assert!(
        produced > 20 * PEAK_MAX as u64,
        "only {produced} bytes generated"
    );
    eprintln!("streamed {produced} bytes of traces with a peak heap of {peak} bytes");
}
