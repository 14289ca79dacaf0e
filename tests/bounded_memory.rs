//! Issue 15: whatever sizes a valid scenario asks for, a run costs memory in proportion to what
//! it touches. Each test runs one scenario and measures the memory its thread allocated at its
//! peak with a counting allocator (per thread, so that tests running side by side do not count
//! each other's allocations).

use scenarios::runner::{self, RunOptions};
use scenarios::validate;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the bytes the current thread holds and its peak.
struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = HELD.try_with(|held| {
        held.set(held.get() + bytes);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(held.get())));
    });
}

fn shrank(bytes: usize) {
    let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; the counting only reads
// and writes thread-local cells that need no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Runs `f` and returns its result and the peak of the bytes this thread held meanwhile, above
/// what it held before.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

const MB: usize = 1 << 20;

/// Validates and runs `text`, returning the report's summary line and the peak memory.
fn run(text: &str) -> (String, usize) {
    peak_bytes(|| {
        let scenario = validate::parse(text, "t.ron").unwrap_or_else(|e| panic!("{e}"));
        let report =
            runner::run(&scenario, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        runner::summary(&report, runner::Detail::Normal)
    })
}

/// Finding 1: caches were allocated whole when built (about 67 bytes a line), so 64 cores with
/// 4 GiB L1Ds and L2s and a 4 GiB LLC needed about 290 GB. Their sets are now stored as a run
/// first fills them: what is left is a directory of 4 bytes per 1024 lines.
#[test]
fn huge_caches_cost_what_a_run_touches() {
    let text = r#"(
        name: "huge-caches",
        machine: (caches: (cores: 64, l1d: (size: "4g", ways: 16), l2: (size: "4g", ways: 16),
                           llc: (size: "4g", ways: 16))),
        cores: [(ops: [
            store(at: phys(keyid: 0, addr: 0x1000), data: u64(7)),
            load(at: phys(keyid: 0, addr: 0x1000), len: 8, label: "l", expect: u64(7)),
        ])],
    )"#;
    let (summary, peak) = run(text);
    assert!(summary.contains("PASSED"), "{summary}");
    assert!(peak < 100 * MB, "peak {} MB", peak / MB);
}

/// Finding 2: one `mmap` of 15 GiB took 4.9 GB (64 GiB: an allocation failure), one zeroing
/// step per line queued at once. `check` and `run` now refuse an `mmap` above 1 GiB, naming
/// the field, the limit and the memory it would take; one just below the limit is accepted.
#[test]
fn a_huge_mmap_is_refused_in_validation() {
    let scenario = |len: &str| {
        format!(
            r#"(
            name: "huge-mmap",
            run: (cycles_max: 1000),
            cores: [(ring0: false, ops: [mmap(addr: 0x1_0000_0000, len: "{len}", prot: rw)])],
        )"#
        )
    };
    for len in ["15g", "64g"] {
        let err = validate::parse(&scenario(len), "t.ron")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.ron:4:73: mmap len 0x")
                && err.contains("above the limit of 0x4000_0000 (1 GiB)")
                && err.contains("MB of the simulator's memory"),
            "{err}"
        );
    }
    let (summary, peak) = run(&scenario("1m"));
    assert!(summary.contains("stats:"), "{summary}");
    assert!(peak < 100 * MB, "peak {} MB", peak / MB);
}

/// Finding 3: one trace access spanning 4 GiB (`R 0x0 4294967295`) made full-system `trace`
/// queue all its 67 M line pieces up front (5.7 GB and climbing). The pieces are now made as
/// they issue: a run stopped at a cycle cap has used a few MB, and its state counts the
/// pieces still to issue.
#[test]
fn a_huge_trace_access_is_streamed() {
    use cache_model::{Access, AccessKind};
    use cpu_model::trace_run::{TraceRunConfig, TraceRunError, Translation, run_trace};
    use cpu_model::{Machine, MachineConfig};
    use std::convert::Infallible;

    let config = MachineConfig::preset("default").unwrap();
    let mut machine = Machine::new(&config, 0).unwrap();
    let access = Access {
        kind: AccessKind::Read,
        addr: 0,
        size: u32::MAX,
    };
    let run_config = TraceRunConfig {
        translation: Translation::Identity,
        cycles_max: 20_000,
        ..TraceRunConfig::default()
    };
    let (result, peak) =
        peak_bytes(|| run_trace(&mut machine, [Ok::<_, Infallible>(access)], &run_config));
    let Err(TraceRunError::CycleLimit { state, .. }) = result else {
        panic!("the run stops at its cycle cap");
    };
    assert!(state.contains("pieces waiting to issue 671"), "{state}");
    assert!(peak < 20 * MB, "peak {} MB", peak / MB);
}
