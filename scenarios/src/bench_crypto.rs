//! `mktme-sim bench-crypto`'s measurement and report: the AES-XTS-128 engine's throughput on
//! this machine, next to OpenSSL's when an `openssl` binary is on the `PATH`.
//!
//! This module measures wall-clock and CPU time, which is why it lives here and not in a model
//! crate: nothing in the model may depend on the clock. Its figures are never part of a
//! simulation's report.
//!
//! What is measured (each figure once per round, the rounds interleaved with OpenSSL, medians
//! reported):
//!
//! - **lines**: `encrypt_lines` on batches of `--batch` 64-byte lines at scattered DRAM
//!   addresses (each line its own XTS data unit tweaked by its own address).
//! - **pages**: `encrypt_run` on 4 KiB pages, 64 lines each, every line tweaked by its own
//!   address (the MKTME convention; a page is not one 4096-byte data unit).
//! - **per line**: one `encrypt_line` call per line, as the simulator's hot path makes them,
//!   in nanoseconds per line.
//! - the lines and pages figures again on all cores (rayon, one working set per thread).
//! - **the grid** (`grid`): lines by batch size ([`GRID_BATCHES`]) and thread count (1, 2, 4,
//!   ... up to `--threads`), and pages by thread count, each on the wall clock for a quarter
//!   of `--seconds`, with ratios to OpenSSL's figure of the same round.
//! - **OpenSSL**: `openssl speed -evp aes-128-xts -bytes 4096 -seconds N -mr`, one process,
//!   one thread.
//!
//! Clocks, to compare like with like: by default (`--clock cpu`) the single-thread figures
//! divide by the measuring thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), and OpenSSL runs
//! without `-elapsed`, so it divides by its user CPU time. On a shared, busy machine both then
//! ignore the time the other processes took. `--clock wall` uses wall-clock time for ours and
//! `-elapsed` for OpenSSL. The all-cores figures always use wall-clock time (CPU time cannot
//! show parallel speed-up).
//!
//! GB/s = 1e9 bytes of plaintext per second. The working set (`--buffer-kib` per thread,
//! default 256 KiB) stays in the core's L2 cache, as OpenSSL's 4 KiB buffer stays in L1: this
//! measures the engine, not DRAM.

use mem_ctrl::xts::{Backend, XtsAlgorithm, XtsCipher, XtsSetupError};
use rayon::prelude::*;
use serde_json::json;
use sim_core::addr::LINES_PER_PAGE;
use sim_core::{DramAddr, LINE_BYTES, LineBytes, PAGE_BYTES};
use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// How elapsed time is measured for the single-thread figures.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Clock {
    /// CPU time of the measuring thread; OpenSSL's default user CPU time.
    Cpu,
    /// Wall-clock time; OpenSSL with `-elapsed`.
    Wall,
}

impl Clock {
    /// True when this OS can measure `self` (thread CPU time needs a Unix).
    pub const fn available(self) -> bool {
        match self {
            Clock::Cpu => cfg!(unix),
            Clock::Wall => true,
        }
    }
}

/// What to measure, and how.
#[derive(Copy, Clone, Debug)]
pub struct BenchOptions {
    /// Interleaved measurement rounds (ours, OpenSSL, ours, ...); every figure reported is
    /// the median over the rounds. At least 1.
    pub rounds: u32,
    /// Seconds per sample; OpenSSL gets the same time rounded up to whole seconds.
    pub seconds: f64,
    /// The engine's backend.
    pub backend: Backend,
    /// Lines per `encrypt_lines` call for the lines figures (at least 1).
    pub batch: usize,
    /// Working set per thread, in bytes (a whole number of 4 KiB pages).
    pub buffer_bytes: usize,
    /// Threads for the all-cores figures (at least 1).
    pub threads: usize,
    /// Clock of the single-thread figures; must be [`Clock::available`].
    pub clock: Clock,
    /// Run OpenSSL when it is on the PATH.
    pub openssl: bool,
    /// Measure the grid of batch sizes and thread counts too.
    pub grid: bool,
}

/// Lines per `encrypt_lines` call of the grid.
pub const GRID_BATCHES: [usize; 6] = [1, 4, 16, 64, 256, 1024];

/// The grid's thread counts for `threads`: 1, 2, 4, ... below it, and `threads`.
pub fn grid_threads(threads: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1usize), |t| t.checked_mul(2))
        .take_while(|&t| t < threads)
        .collect();
    out.push(threads.max(1));
    out
}

/// Why the benchmark cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine cannot be built with this backend (not on this CPU).
    #[error(transparent)]
    Cipher(XtsSetupError),
    /// The all-cores thread pool could not start.
    #[error("building the thread pool: {0}")]
    ThreadPool(rayon::ThreadPoolBuildError),
}

/// Fixed, public benchmark keys (key1 = 00..0f, key2 = 10..1f).
const KEY1: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];
const KEY2: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// DRAM addresses of the workload stay below 2^46 (the default 52-bit layout with 6 KeyID bits).
const DRAM_BITS: u32 = 46;

/// SplitMix64: a tiny deterministic generator for the workload's addresses and bytes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One thread's working set: lines with scattered line addresses, and the same buffer as
/// pages with scattered page addresses.
struct Workload {
    lines: Vec<LineBytes>,
    line_addrs: Vec<DramAddr>,
    page_addrs: Vec<DramAddr>,
}

impl Workload {
    fn new(bytes: usize, seed: u64) -> Workload {
        let mut rng = SplitMix(seed);
        let n = bytes / LINE_BYTES;
        let mask = (1u64 << DRAM_BITS) - 1;
        let lines = (0..n)
            .map(|_| {
                let mut l = [0u8; LINE_BYTES];
                for c in l.chunks_exact_mut(8) {
                    c.copy_from_slice(&rng.next().to_le_bytes());
                }
                l
            })
            .collect();
        let line_addrs = (0..n)
            .map(|_| DramAddr::new(rng.next() & mask & !(LINE_BYTES as u64 - 1)))
            .collect();
        let page_addrs = (0..n / LINES_PER_PAGE)
            .map(|_| DramAddr::new(rng.next() & mask & !(PAGE_BYTES as u64 - 1)))
            .collect();
        Workload {
            lines,
            line_addrs,
            page_addrs,
        }
    }

    fn bytes(&self) -> u64 {
        (self.lines.len() * LINE_BYTES) as u64
    }
}

/// What one pass over a working set does.
#[derive(Copy, Clone, Debug)]
enum Pass {
    /// `encrypt_lines`, `batch` lines per call.
    Lines { batch: usize },
    /// `encrypt_run`, one page per call.
    Pages,
    /// `encrypt_line`, one line per call.
    PerLine,
}

/// Encrypts the whole working set once, as `pass` says.
fn one_pass(c: &XtsCipher, pass: Pass, w: &mut Workload) {
    match pass {
        Pass::Lines { batch } => {
            for (lines, addrs) in w.lines.chunks_mut(batch).zip(w.line_addrs.chunks(batch)) {
                c.encrypt_lines(addrs, lines);
            }
        }
        Pass::Pages => {
            for (page, addr) in w.lines.chunks_exact_mut(LINES_PER_PAGE).zip(&w.page_addrs) {
                c.encrypt_run(*addr, page);
            }
        }
        Pass::PerLine => {
            for (line, addr) in w.lines.iter_mut().zip(&w.line_addrs) {
                c.encrypt_line(*addr, line);
            }
        }
    }
}

/// CPU time consumed by the calling thread.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on every
    // Unix that Rust's std supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    unreachable!("--clock cpu is refused on this OS")
}

/// A stopwatch on the chosen clock.
struct Stopwatch {
    clock: Clock,
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start(clock: Clock) -> Stopwatch {
        Stopwatch {
            clock,
            wall: Instant::now(),
            cpu: if clock == Clock::Cpu {
                thread_cpu_time()
            } else {
                Duration::ZERO
            },
        }
    }

    fn elapsed(&self) -> Duration {
        match self.clock {
            Clock::Cpu => thread_cpu_time().saturating_sub(self.cpu),
            Clock::Wall => self.wall.elapsed(),
        }
    }
}

/// Single thread: passes until `seconds` have elapsed on `clock`; returns (bytes, elapsed).
fn sample(
    c: &XtsCipher,
    pass: Pass,
    w: &mut Workload,
    clock: Clock,
    seconds: f64,
) -> (u64, Duration) {
    let target = Duration::from_secs_f64(seconds);
    let watch = Stopwatch::start(clock);
    let mut bytes = 0;
    loop {
        one_pass(c, pass, w);
        bytes += w.bytes();
        let t = watch.elapsed();
        if t >= target {
            return (bytes, t);
        }
    }
}

/// All threads of `pool`, one working set each, for `seconds` of wall-clock time; returns
/// GB/s over the wall-clock time of the whole parallel section.
fn sample_all_cores(
    c: &XtsCipher,
    pass: Pass,
    sets: &mut [Workload],
    pool: &rayon::ThreadPool,
    seconds: f64,
) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let bytes: u64 = pool.install(|| {
        sets.par_chunks_mut(1)
            .map(|set| {
                let w = &mut set[0];
                let mut bytes = 0;
                loop {
                    one_pass(c, pass, w);
                    bytes += w.bytes();
                    if Instant::now() >= deadline {
                        return bytes;
                    }
                }
            })
            .sum()
    });
    bytes as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// One OpenSSL measurement, in GB/s.
struct OpenSsl {
    version: String,
    command: String,
}

impl OpenSsl {
    /// Finds `openssl` on the PATH; `None` when it is not there.
    fn find() -> Option<OpenSsl> {
        let out = Command::new("openssl").arg("version").output().ok()?;
        if !out.status.success() {
            return None;
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(OpenSsl {
            version,
            command: String::new(),
        })
    }

    fn args(seconds: f64, clock: Clock) -> Vec<String> {
        let secs = (seconds.ceil() as u64).max(1);
        let mut args = vec!["speed".to_string()];
        if clock == Clock::Wall {
            args.push("-elapsed".into());
        }
        for a in ["-mr", "-evp", "aes-128-xts", "-bytes", "4096", "-seconds"] {
            args.push(a.into());
        }
        args.push(secs.to_string());
        args
    }

    /// Runs `openssl speed` and parses its machine-readable `+F:` line (bytes per second);
    /// GB/s, or why there is no figure.
    fn measure(&mut self, seconds: f64, clock: Clock) -> Result<f64, String> {
        let args = OpenSsl::args(seconds, clock);
        self.command = format!("openssl {}", args.join(" "));
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .map_err(|e| format!("running {}: {e}", self.command))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{} exited with {}: {}",
                self.command,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        parse_openssl_mr(&stdout)
            .map(|bps| bps / 1e9)
            .ok_or_else(|| {
                format!(
                    "no +F:...:AES-128-XTS:... line in the output of {}",
                    self.command
                )
            })
    }
}

/// The bytes-per-second figure of an `openssl speed -mr` run with one block size.
fn parse_openssl_mr(stdout: &str) -> Option<f64> {
    stdout.lines().find_map(|l| {
        let rest = l.strip_prefix("+F:")?;
        let mut parts = rest.split(':');
        let _index = parts.next()?;
        let name = parts.next()?;
        if !name.eq_ignore_ascii_case("aes-128-xts") {
            return None;
        }
        parts.next()?.trim().parse::<f64>().ok()
    })
}

/// The median (the mean of the two middle values for an even count).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The CPU's model name, from `/proc/cpuinfo` (Linux).
fn cpu_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Per-round samples of every figure.
#[derive(Default)]
struct Samples {
    lines: Vec<f64>,
    pages: Vec<f64>,
    ns_per_line: Vec<f64>,
    lines_all: Vec<f64>,
    pages_all: Vec<f64>,
    openssl: Vec<f64>,
    /// `(batch, threads, GB/s per round)`: lines; batch 0 is pages.
    grid: Vec<(usize, usize, Vec<f64>)>,
}

/// A benchmark ready to run: the engine, the thread pool, the working sets, and OpenSSL if
/// found.
pub struct Bench {
    options: BenchOptions,
    cipher: XtsCipher,
    pool: rayon::ThreadPool,
    single: Workload,
    sets: Vec<Workload>,
    openssl: Option<OpenSsl>,
    /// The grid's pools, one per thread count.
    grid_pools: Vec<(usize, rayon::ThreadPool)>,
}

impl Bench {
    /// Builds the engine and the thread pool, fills the working sets, and looks for OpenSSL.
    pub fn new(options: BenchOptions) -> Result<Bench, BenchError> {
        let cipher = XtsCipher::with_backend(options.backend, XtsAlgorithm::Aes128, &KEY1, &KEY2)
            .map_err(BenchError::Cipher)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .build()
            .map_err(BenchError::ThreadPool)?;
        let single = Workload::new(options.buffer_bytes, 1);
        let sets = (0..options.threads)
            .map(|t| Workload::new(options.buffer_bytes, 100 + t as u64))
            .collect();
        let openssl = if options.openssl {
            OpenSsl::find()
        } else {
            None
        };
        let grid_pools = if options.grid {
            grid_threads(options.threads)
                .into_iter()
                .map(|t| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(t)
                        .build()
                        .map(|p| (t, p))
                        .map_err(BenchError::ThreadPool)
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Bench {
            options,
            cipher,
            pool,
            single,
            sets,
            openssl,
            grid_pools,
        })
    }

    /// Roughly how long one round of [`Self::measure`] takes, in seconds (five samples of
    /// ours, and OpenSSL's whole seconds when it runs).
    pub fn seconds_per_round(&self) -> f64 {
        let seconds = self.options.seconds;
        let grid = self.grid_pools.len() * (GRID_BATCHES.len() + 1);
        seconds * 5.0
            + seconds / 4.0 * grid as f64
            + if self.openssl.is_some() {
                seconds.ceil()
            } else {
                0.0
            }
    }

    /// Warms up, then measures every figure once per round.
    pub fn measure(mut self) -> BenchResults {
        let o = self.options;
        let batch = o.batch;
        // Warm-up: page in the buffers and let the clock frequency settle.
        for pass in [Pass::Lines { batch }, Pass::Pages, Pass::PerLine] {
            sample(&self.cipher, pass, &mut self.single, Clock::Wall, 0.1);
        }

        let gbps = |(bytes, t): (u64, Duration)| bytes as f64 / t.as_secs_f64() / 1e9;
        let mut s = Samples::default();
        let mut openssl_error = None;
        for _ in 0..o.rounds {
            s.lines.push(gbps(sample(
                &self.cipher,
                Pass::Lines { batch },
                &mut self.single,
                o.clock,
                o.seconds,
            )));
            if let Some(ssl) = self.openssl.as_mut() {
                match ssl.measure(o.seconds, o.clock) {
                    Ok(v) => s.openssl.push(v),
                    Err(e) => {
                        openssl_error = Some(e);
                        self.openssl = None;
                    }
                }
            }
            s.pages.push(gbps(sample(
                &self.cipher,
                Pass::Pages,
                &mut self.single,
                o.clock,
                o.seconds,
            )));
            let (b, t) = sample(
                &self.cipher,
                Pass::PerLine,
                &mut self.single,
                o.clock,
                o.seconds,
            );
            s.ns_per_line
                .push(t.as_secs_f64() * 1e9 / (b / LINE_BYTES as u64) as f64);
            s.lines_all.push(sample_all_cores(
                &self.cipher,
                Pass::Lines { batch },
                &mut self.sets,
                &self.pool,
                o.seconds,
            ));
            s.pages_all.push(sample_all_cores(
                &self.cipher,
                Pass::Pages,
                &mut self.sets,
                &self.pool,
                o.seconds,
            ));
            let mut k = 0;
            for (threads, pool) in &self.grid_pools {
                let sets = &mut self.sets[..*threads];
                for batch in GRID_BATCHES.into_iter().chain([0]) {
                    let pass = if batch == 0 {
                        Pass::Pages
                    } else {
                        Pass::Lines { batch }
                    };
                    let v = sample_all_cores(&self.cipher, pass, sets, pool, o.seconds / 4.0);
                    if s.grid.len() <= k {
                        s.grid.push((batch, *threads, Vec::new()));
                    }
                    s.grid[k].2.push(v);
                    k += 1;
                }
            }
        }
        // A failed OpenSSL run drops every OpenSSL figure: a partial set would not pair up with
        // the rounds.
        if self.openssl.is_none() {
            s.openssl.clear();
        }
        BenchResults {
            options: o,
            samples: s,
            openssl: self.openssl,
            openssl_error,
        }
    }
}

/// Every figure of a benchmark run, per round, and how it was made.
pub struct BenchResults {
    options: BenchOptions,
    samples: Samples,
    /// OpenSSL, when it was measured in every round.
    openssl: Option<OpenSsl>,
    /// Why OpenSSL could not be measured, when it was found but failed.
    openssl_error: Option<String>,
}

/// One figure of a report: `(figure, batch, threads, clock, unit, per-round values)`.
type Figure = (
    String,
    Option<usize>,
    usize,
    &'static str,
    &'static str,
    Vec<f64>,
);

impl BenchResults {
    /// What the single-thread clock was, as the report says it.
    fn clock_name(&self) -> &'static str {
        match self.options.clock {
            Clock::Cpu => "thread CPU time (OpenSSL: user CPU time)",
            Clock::Wall => "wall-clock time (OpenSSL: -elapsed)",
        }
    }

    /// Per-round ratios of one of our figures to OpenSSL's.
    fn ratios(&self, ours: &[f64]) -> Vec<f64> {
        ours.iter()
            .zip(&self.samples.openssl)
            .map(|(a, b)| a / b)
            .collect()
    }

    /// The results as one pretty-printed JSON object, with a final newline.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        let (o, s) = (&self.options, &self.samples);
        let mut j = json!({
            "algorithm": "aes-128-xts",
            "backend": o.backend.name(),
            "available_backends": Backend::available().iter().map(|b| b.name()).collect::<Vec<_>>(),
            "cpu": cpu_name(),
            "logical_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "threads_all_cores": o.threads,
            "clock": self.clock_name(),
            "rounds": o.rounds,
            "seconds_per_sample": o.seconds,
            "batch_lines": o.batch,
            "buffer_bytes_per_thread": o.buffer_bytes,
            "lines_gbps": median(&s.lines),
            "pages_gbps": median(&s.pages),
            "ns_per_line": median(&s.ns_per_line),
            "lines_gbps_all_cores": median(&s.lines_all),
            "pages_gbps_all_cores": median(&s.pages_all),
            "samples": {
                "lines_gbps": s.lines,
                "pages_gbps": s.pages,
                "ns_per_line": s.ns_per_line,
                "lines_gbps_all_cores": s.lines_all,
                "pages_gbps_all_cores": s.pages_all,
                "openssl_4k_gbps": s.openssl,
            },
        });
        if let Some(ssl) = &self.openssl {
            j["openssl_version"] = json!(ssl.version);
            j["openssl_command"] = json!(ssl.command);
            j["openssl_4k_gbps"] = json!(median(&s.openssl));
            j["lines_vs_openssl"] = json!(median(&self.ratios(&s.lines)));
            j["pages_vs_openssl"] = json!(median(&self.ratios(&s.pages)));
        }
        if let Some(e) = &self.openssl_error {
            j["openssl_error"] = json!(e);
        }
        if !s.grid.is_empty() {
            j["grid"] = s
                .grid
                .iter()
                .map(|(batch, threads, v)| {
                    let mut g = json!({
                        "what": if *batch == 0 { "pages" } else { "lines" },
                        "threads": threads,
                        "gbps": median(v),
                        "samples": v,
                    });
                    if *batch > 0 {
                        g["batch_lines"] = json!(batch);
                    }
                    if self.openssl.is_some() {
                        g["vs_openssl"] = json!(median(&self.ratios(v)));
                    }
                    g
                })
                .collect();
        }
        let mut text = serde_json::to_string_pretty(&j)?;
        text.push('\n');
        Ok(text)
    }

    /// Every figure as `(figure, batch, threads, clock, unit, per-round values)`.
    fn figures(&self) -> Vec<Figure> {
        let (o, s) = (&self.options, &self.samples);
        let single = match o.clock {
            Clock::Cpu => "cpu",
            Clock::Wall => "wall",
        };
        let mut out = vec![
            (
                "lines".to_owned(),
                Some(o.batch),
                1,
                single,
                "GB/s",
                s.lines.clone(),
            ),
            ("pages".to_owned(), None, 1, single, "GB/s", s.pages.clone()),
            (
                "encrypt_line".to_owned(),
                Some(1),
                1,
                single,
                "ns/line",
                s.ns_per_line.clone(),
            ),
            (
                "lines".to_owned(),
                Some(o.batch),
                o.threads,
                "wall",
                "GB/s",
                s.lines_all.clone(),
            ),
            (
                "pages".to_owned(),
                None,
                o.threads,
                "wall",
                "GB/s",
                s.pages_all.clone(),
            ),
        ];
        for (batch, threads, v) in &s.grid {
            let what = if *batch == 0 {
                "grid pages"
            } else {
                "grid lines"
            };
            let batch = (*batch > 0).then_some(*batch);
            out.push((what.to_owned(), batch, *threads, "wall", "GB/s", v.clone()));
        }
        if self.openssl.is_some() {
            let clock = match o.clock {
                Clock::Cpu => "user cpu",
                Clock::Wall => "wall",
            };
            out.push((
                "openssl 4k".to_owned(),
                None,
                1,
                clock,
                "GB/s",
                s.openssl.clone(),
            ));
            let ratios: Vec<_> = out
                .iter()
                .filter(|f| f.4 == "GB/s" && f.0 != "openssl 4k")
                .map(|f| {
                    (
                        format!("{} / openssl", f.0),
                        f.1,
                        f.2,
                        f.3,
                        "ratio",
                        self.ratios(&f.5),
                    )
                })
                .collect();
            out.extend(ratios);
        }
        out
    }

    /// The results as CSV: one line per figure (`figure, batch_lines, threads, clock, unit,
    /// median`, then each round's value), ratios to OpenSSL last.
    pub fn csv(&self) -> String {
        let rounds = self.options.rounds as usize;
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .flexible(true)
            .from_writer(Vec::new());
        let mut header: Vec<String> = [
            "figure",
            "batch_lines",
            "threads",
            "clock",
            "unit",
            "median",
        ]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
        header.extend((1..=rounds).map(|r| format!("round_{r}")));
        let _ = w.write_record(&header);
        for (what, batch, threads, clock, unit, v) in self.figures() {
            let mut rec = vec![
                what,
                batch.map_or_else(String::new, |b| b.to_string()),
                threads.to_string(),
                clock.to_owned(),
                unit.to_owned(),
                format!("{:.4}", median(&v)),
            ];
            rec.extend(v.iter().map(|x| format!("{x:.4}")));
            let _ = w.write_record(&rec);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// The curves of bench-crypto's picture (`plots::bench_crypto`), as (name, points):
    /// grid lines GB/s against batch size, one per thread count; the pages figure per thread
    /// count at 64 lines (a page); OpenSSL's 4 KiB figure as a flat line.
    pub fn curves(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let s = &self.samples;
        let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for (batch, threads, v) in &s.grid {
            let name = if *batch == 0 {
                format!("4 KiB pages, {threads} thread(s)")
            } else {
                format!("lines, {threads} thread(s)")
            };
            let x = if *batch == 0 { 64.0 } else { *batch as f64 };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push((x, median(v))),
                None => out.push((name, vec![(x, median(v))])),
            }
        }
        if s.grid.is_empty() {
            out.push((
                format!("lines, 1 thread ({})", self.clock_name()),
                vec![(self.options.batch as f64, median(&s.lines))],
            ));
        }
        if self.openssl.is_some() {
            let v = median(&s.openssl);
            out.push((
                "OpenSSL aes-128-xts 4 KiB, 1 thread".to_owned(),
                vec![(1.0, v), (GRID_BATCHES[GRID_BATCHES.len() - 1] as f64, v)],
            ));
        }
        out
    }

    /// The results as a table: one row per figure, its median and every round's value.
    pub fn table(&self) -> String {
        let (o, s) = (&self.options, &self.samples);
        let (batch, threads) = (o.batch, o.threads);
        let mut out = String::new();
        let row = |out: &mut String, what: &str, unit: &str, v: &[f64]| {
            let all: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
            let _ = writeln!(
                out,
                "{what:<52} {:>8.2} {unit:<8} {}",
                median(v),
                all.join(" ")
            );
        };
        let _ = writeln!(
            out,
            "AES-XTS-128 engine, backend {} (available: {})",
            o.backend,
            Backend::available()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "CPU: {} ({} logical CPUs)",
            cpu_name().unwrap_or_else(|| "unknown".into()),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let _ = writeln!(
            out,
            "{} rounds x {} s per sample; single-thread clock: {}; GB/s = 1e9 plaintext bytes/s",
            o.rounds,
            o.seconds,
            self.clock_name()
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<52} {:>8} {:<8} per round",
            "what", "median", "unit"
        );
        row(
            &mut out,
            &format!("lines at scattered addresses, {batch} per call, 1 thread"),
            "GB/s",
            &s.lines,
        );
        row(
            &mut out,
            "4 KiB pages (64 lines each), 1 thread",
            "GB/s",
            &s.pages,
        );
        row(
            &mut out,
            "encrypt_line, one call per line, 1 thread",
            "ns/line",
            &s.ns_per_line,
        );
        row(
            &mut out,
            &format!("lines, all cores ({threads} threads, wall clock)"),
            "GB/s",
            &s.lines_all,
        );
        row(
            &mut out,
            &format!("4 KiB pages, all cores ({threads} threads, wall clock)"),
            "GB/s",
            &s.pages_all,
        );
        for (batch, threads, v) in &s.grid {
            let what = if *batch == 0 {
                format!("grid: 4 KiB pages, {threads} thread(s), wall clock")
            } else {
                format!("grid: lines, {batch} per call, {threads} thread(s), wall clock")
            };
            row(&mut out, &what, "GB/s", v);
        }
        match (&self.openssl, &self.openssl_error) {
            (Some(ssl), _) => {
                row(
                    &mut out,
                    "OpenSSL aes-128-xts 4 KiB, 1 thread",
                    "GB/s",
                    &s.openssl,
                );
                let _ = writeln!(out);
                let _ = writeln!(out, "OpenSSL: {} ({})", ssl.version, ssl.command);
                let _ = writeln!(
                    out,
                    "ours / OpenSSL (median of per-round ratios): lines {:.2}x, pages {:.2}x",
                    median(&self.ratios(&s.lines)),
                    median(&self.ratios(&s.pages))
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "\nOpenSSL: not measured: {e}");
            }
            (None, None) if !o.openssl => {
                let _ = writeln!(out, "\nOpenSSL: not measured (--no-openssl)");
            }
            (None, None) => {
                let _ = writeln!(out, "\nOpenSSL: not measured (no `openssl` on the PATH)");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_machine_readable_output() {
        let out = "+DT:AES-128-XTS:1:4096\n+R:1819331:AES-128-XTS:1.000000\n+H:4096\n\
                   +F:25:AES-128-XTS:7451979776.00\n";
        assert_eq!(parse_openssl_mr(out), Some(7_451_979_776.0));
        assert_eq!(parse_openssl_mr("+F:25:AES-256-XTS:1.0\n"), None);
        assert_eq!(parse_openssl_mr("garbage"), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn openssl_arguments_follow_the_clock() {
        let cpu = OpenSsl::args(0.5, Clock::Cpu).join(" ");
        assert_eq!(cpu, "speed -mr -evp aes-128-xts -bytes 4096 -seconds 1");
        let wall = OpenSsl::args(2.2, Clock::Wall).join(" ");
        assert_eq!(
            wall,
            "speed -elapsed -mr -evp aes-128-xts -bytes 4096 -seconds 3"
        );
    }

    #[test]
    fn workload_addresses_are_aligned_and_in_range() {
        let w = Workload::new(64 * 1024, 7);
        assert_eq!(w.lines.len(), 1024);
        assert_eq!(w.page_addrs.len(), 16);
        assert!(
            w.line_addrs
                .iter()
                .all(|a| a.is_line_aligned() && a.raw() >> DRAM_BITS == 0)
        );
        assert!(
            w.page_addrs
                .iter()
                .all(|a| a.is_page_aligned() && a.raw() >> DRAM_BITS == 0)
        );
    }
}
