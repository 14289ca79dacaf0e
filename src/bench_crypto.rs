//! `mktme-sim bench-crypto`: the AES-XTS-128 engine's throughput on this machine, next to
//! OpenSSL's when an `openssl` binary is on the `PATH`.
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

use anyhow::{Context, bail};
use mem_ctrl::xts::{Backend, XtsAlgorithm, XtsCipher};
use rayon::prelude::*;
use serde_json::json;
use sim_core::addr::LINES_PER_PAGE;
use sim_core::{DramAddr, LINE_BYTES, LineBytes, PAGE_BYTES};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// How elapsed time is measured for the single-thread figures.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// CPU time of the measuring thread; OpenSSL's default user CPU time.
    Cpu,
    /// Wall-clock time; OpenSSL with `-elapsed`.
    Wall,
}

/// Options of `mktme-sim bench-crypto`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interleaved measurement rounds (ours, OpenSSL, ours, ...); every figure reported is the
    /// median over the rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Seconds per sample; OpenSSL gets the same time rounded up to whole seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Engine backend: portable, aes-ni, vaes-256 or vaes-512 [default: the fastest this CPU
    /// has].
    #[arg(long, value_parser = parse_backend)]
    backend: Option<Backend>,
    /// Lines per `encrypt_lines` call for the lines figures.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// Working set per thread, in KiB (a whole number of 4 KiB pages).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..=1_048_576))]
    buffer_kib: u32,
    /// Threads for the all-cores figures [default: every logical CPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: Option<u32>,
    /// Clock of the single-thread figures [default: cpu where the OS has thread CPU time,
    /// else wall].
    #[arg(long, value_enum)]
    clock: Option<Clock>,
    /// Do not run OpenSSL even when it is on the PATH.
    #[arg(long)]
    no_openssl: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse::<Backend>().map_err(|e| e.to_string())
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

    /// Runs `openssl speed` and parses its machine-readable `+F:` line (bytes per second).
    fn measure(&mut self, seconds: f64, clock: Clock) -> anyhow::Result<f64> {
        let args = OpenSsl::args(seconds, clock);
        self.command = format!("openssl {}", args.join(" "));
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .with_context(|| format!("running {}", self.command))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "{} exited with {}: {}",
                self.command,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        parse_openssl_mr(&stdout)
            .map(|bps| bps / 1e9)
            .with_context(|| {
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

fn cpu_model() -> Option<String> {
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
}

/// Runs the benchmark; returns an error (exit code 2) for unusable options.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!(
            "--seconds must be a number of seconds above 0 and at most 3600, got {}",
            args.seconds
        );
    }
    if !args.buffer_kib.is_multiple_of(4) {
        bail!(
            "--buffer-kib must be a whole number of 4 KiB pages, got {}",
            args.buffer_kib
        );
    }
    let clock = match args.clock {
        Some(c) => c,
        None if cfg!(unix) => Clock::Cpu,
        None => Clock::Wall,
    };
    if clock == Clock::Cpu && !cfg!(unix) {
        bail!("--clock cpu needs thread CPU time, which this OS does not offer; use --clock wall");
    }
    let backend = args.backend.unwrap_or_else(Backend::detect);
    let cipher = XtsCipher::with_backend(backend, XtsAlgorithm::Aes128, &KEY1, &KEY2)?;
    let threads = match args.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the thread pool")?;
    let bytes = args.buffer_kib as usize * 1024;
    let batch = args.batch as usize;
    let mut single = Workload::new(bytes, 1);
    let mut sets: Vec<Workload> = (0..threads)
        .map(|t| Workload::new(bytes, 100 + t as u64))
        .collect();
    let mut openssl = if args.no_openssl {
        None
    } else {
        OpenSsl::find()
    };
    if cfg!(debug_assertions) {
        // Figures from an unoptimised build are 50-100x too slow and mean nothing.
        eprintln!(
            "warning: this is a debug build; measure with `cargo run --release -- bench-crypto`"
        );
    }
    if !args.json {
        eprintln!(
            "measuring: {} rounds of ~{:.1} s ...",
            args.rounds,
            args.seconds * 5.0
                + if openssl.is_some() {
                    args.seconds.ceil()
                } else {
                    0.0
                }
        );
    }

    // Warm-up: page in the buffers and let the clock frequency settle.
    for pass in [Pass::Lines { batch }, Pass::Pages, Pass::PerLine] {
        sample(&cipher, pass, &mut single, Clock::Wall, 0.1);
    }

    let gbps = |(bytes, t): (u64, Duration)| bytes as f64 / t.as_secs_f64() / 1e9;
    let mut s = Samples::default();
    let mut openssl_error = None;
    for _ in 0..args.rounds {
        s.lines.push(gbps(sample(
            &cipher,
            Pass::Lines { batch },
            &mut single,
            clock,
            args.seconds,
        )));
        if let Some(o) = openssl.as_mut() {
            match o.measure(args.seconds, clock) {
                Ok(v) => s.openssl.push(v),
                Err(e) => {
                    openssl_error = Some(format!("{e:#}"));
                    openssl = None;
                }
            }
        }
        s.pages.push(gbps(sample(
            &cipher,
            Pass::Pages,
            &mut single,
            clock,
            args.seconds,
        )));
        let (b, t) = sample(&cipher, Pass::PerLine, &mut single, clock, args.seconds);
        s.ns_per_line
            .push(t.as_secs_f64() * 1e9 / (b / LINE_BYTES as u64) as f64);
        s.lines_all.push(sample_all_cores(
            &cipher,
            Pass::Lines { batch },
            &mut sets,
            &pool,
            args.seconds,
        ));
        s.pages_all.push(sample_all_cores(
            &cipher,
            Pass::Pages,
            &mut sets,
            &pool,
            args.seconds,
        ));
    }
    // A failed OpenSSL run drops every OpenSSL figure: a partial set would not pair up with
    // the rounds.
    if openssl.is_none() {
        s.openssl.clear();
    }
    let ratios =
        |ours: &[f64]| -> Vec<f64> { ours.iter().zip(&s.openssl).map(|(a, b)| a / b).collect() };
    let lines_ratio = ratios(&s.lines);
    let pages_ratio = ratios(&s.pages);
    let clock_name = match clock {
        Clock::Cpu => "thread CPU time (OpenSSL: user CPU time)",
        Clock::Wall => "wall-clock time (OpenSSL: -elapsed)",
    };

    if args.json {
        let mut j = json!({
            "algorithm": "aes-128-xts",
            "backend": backend.name(),
            "available_backends": Backend::available().iter().map(|b| b.name()).collect::<Vec<_>>(),
            "cpu": cpu_model(),
            "logical_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "threads_all_cores": threads,
            "clock": clock_name,
            "rounds": args.rounds,
            "seconds_per_sample": args.seconds,
            "batch_lines": batch,
            "buffer_bytes_per_thread": bytes,
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
        if let Some(o) = &openssl {
            j["openssl_version"] = json!(o.version);
            j["openssl_command"] = json!(o.command);
            j["openssl_4k_gbps"] = json!(median(&s.openssl));
            j["lines_vs_openssl"] = json!(median(&lines_ratio));
            j["pages_vs_openssl"] = json!(median(&pages_ratio));
        }
        if let Some(e) = &openssl_error {
            j["openssl_error"] = json!(e);
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(ExitCode::SUCCESS);
    }

    let row = |what: &str, unit: &str, v: &[f64]| {
        let all: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        println!("{what:<52} {:>8.2} {unit:<8} {}", median(v), all.join(" "));
    };
    println!(
        "AES-XTS-128 engine, backend {backend} (available: {})",
        Backend::available()
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "CPU: {} ({} logical CPUs)",
        cpu_model().unwrap_or_else(|| "unknown".into()),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{} rounds x {} s per sample; single-thread clock: {clock_name}; GB/s = 1e9 plaintext bytes/s",
        args.rounds, args.seconds
    );
    println!();
    println!("{:<52} {:>8} {:<8} per round", "what", "median", "unit");
    row(
        &format!("lines at scattered addresses, {batch} per call, 1 thread"),
        "GB/s",
        &s.lines,
    );
    row("4 KiB pages (64 lines each), 1 thread", "GB/s", &s.pages);
    row(
        "encrypt_line, one call per line, 1 thread",
        "ns/line",
        &s.ns_per_line,
    );
    row(
        &format!("lines, all cores ({threads} threads, wall clock)"),
        "GB/s",
        &s.lines_all,
    );
    row(
        &format!("4 KiB pages, all cores ({threads} threads, wall clock)"),
        "GB/s",
        &s.pages_all,
    );
    match (&openssl, &openssl_error) {
        (Some(o), _) => {
            row("OpenSSL aes-128-xts 4 KiB, 1 thread", "GB/s", &s.openssl);
            println!();
            println!("OpenSSL: {} ({})", o.version, o.command);
            println!(
                "ours / OpenSSL (median of per-round ratios): lines {:.2}x, pages {:.2}x",
                median(&lines_ratio),
                median(&pages_ratio)
            );
        }
        (None, Some(e)) => println!("\nOpenSSL: not measured: {e}"),
        (None, None) if args.no_openssl => println!("\nOpenSSL: not measured (--no-openssl)"),
        (None, None) => println!("\nOpenSSL: not measured (no `openssl` on the PATH)"),
    }
    Ok(ExitCode::SUCCESS)
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
