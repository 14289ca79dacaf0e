//! The fuzzer's global allocator: the system's, counting the bytes in use and their peak, and
//! refusing any allocation that would take the bytes in use past a budget.
//!
//! The budget is the memory bound the fuzzer checks. A refused allocation usually ends the
//! process (Rust aborts on allocation failure): before refusing, the allocator writes what
//! happened and which input was being tried to standard error, with `write(2)` on a stack
//! buffer (an allocator must not allocate). An allocation the code survives (a `try_reserve`)
//! is still counted as a breach ([`breached`]). Under `ulimit -v`, an allocation the system
//! itself refuses is reported the same way.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The counting allocator (installed as `#[global_allocator]` in `main.rs`).
pub struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static BREACHED: AtomicBool = AtomicBool::new(false);
/// The input being tried, for the message: phase (0 none, 1 loader, 2 run) and index.
static PHASE: AtomicUsize = AtomicUsize::new(0);
static INDEX: AtomicU64 = AtomicU64::new(0);

/// Sets the budget: the bytes in use the process may reach.
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, Relaxed);
}

/// Bytes in use now.
pub fn in_use() -> usize {
    IN_USE.load(Relaxed)
}

/// Starts measuring one input: the peak restarts from the bytes in use now, and a message
/// about a breach will name `(phase, index)`.
pub fn begin(phase: Phase, index: u64) {
    PHASE.store(phase as usize, Relaxed);
    INDEX.store(index, Relaxed);
    BREACHED.store(false, Relaxed);
    PEAK.store(IN_USE.load(Relaxed), Relaxed);
}

/// The peak of the bytes in use since [`begin`].
pub fn peak() -> usize {
    PEAK.load(Relaxed)
}

/// True when an allocation was refused since [`begin`].
pub fn breached() -> bool {
    BREACHED.load(Relaxed)
}

/// Which kind of input is being tried.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A scenario file for the loader.
    Loader = 1,
    /// A scenario to run.
    Run = 2,
    /// An input being made (by the fuzzer itself, before it is tried).
    Making = 3,
}

/// Notes that the fuzzer is making input `index`: a breach now is the fuzzer's own.
pub fn making(index: u64) {
    PHASE.store(Phase::Making as usize, Relaxed);
    INDEX.store(index, Relaxed);
}

/// Counts `size` more bytes in use, unless that passes the budget.
fn reserve(size: usize) -> bool {
    let before = IN_USE.fetch_add(size, Relaxed);
    let now = before.saturating_add(size);
    if now > BUDGET.load(Relaxed) {
        IN_USE.fetch_sub(size, Relaxed);
        refused(size, before, "it would pass the budget");
        return false;
    }
    PEAK.fetch_max(now, Relaxed);
    true
}

/// Says on standard error that an allocation of `size` bytes is refused, without allocating.
fn refused(size: usize, in_use: usize, why: &str) {
    BREACHED.store(true, Relaxed);
    let mut buf = Line::default();
    buf.push(b"mktme-fuzz: MEMORY: an allocation of ");
    buf.number(size as u64);
    buf.push(b" bytes refused with ");
    buf.number(in_use as u64);
    buf.push(b" in use (budget ");
    buf.number(BUDGET.load(Relaxed) as u64);
    buf.push(b"): ");
    buf.push(why.as_bytes());
    buf.push(match PHASE.load(Relaxed) {
        1 => b"; loader input ".as_slice(),
        2 => b"; run input ".as_slice(),
        3 => b"; while making input ".as_slice(),
        _ => b"; no input".as_slice(),
    });
    if PHASE.load(Relaxed) != 0 {
        buf.number(INDEX.load(Relaxed));
    }
    buf.push(b"\n");
    // SAFETY: writes `len` initialised bytes of a live stack buffer to fd 2; nothing else is
    // touched, and a failed write is ignored (there is nowhere else to say it).
    unsafe {
        libc::write(2, buf.bytes.as_ptr().cast(), buf.len);
    }
}

/// A line of text on the stack.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.bytes.len() {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// An allocation of `layout` by `allocate`, counted: refused (null) over the budget; a null
/// from the system gives its bytes back and says so.
fn counted(layout: Layout, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    if !reserve(layout.size()) {
        return std::ptr::null_mut();
    }
    let p = allocate();
    if p.is_null() {
        IN_USE.fetch_sub(layout.size(), Relaxed);
        refused(
            layout.size(),
            in_use(),
            "the system has no more (ulimit -v?)",
        );
    }
    p
}

// SAFETY: every call goes to `System` with the caller's layout; the counting only adds
// bookkeeping, and a refused or failed allocation returns null as the contract allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        counted(layout, || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        counted(layout, || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from this allocator with `layout`, as the caller guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                IN_USE.fetch_sub(new_size - old, Relaxed);
                refused(new_size, in_use(), "the system has no more (ulimit -v?)");
            }
        } else if new_size < old {
            IN_USE.fetch_sub(old - new_size, Relaxed);
        }
        p
    }
}
