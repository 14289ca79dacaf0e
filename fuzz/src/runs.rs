//! Run inputs, each in a child process (this program again, `run-one`), so that whatever one
//! does (abort on the memory budget, overflow its stack, run past the time limit and be
//! killed) the fuzzer sees it and goes on. The child validates the input with
//! `run.cycles_max` set small (as `mktme-sim run --set run.cycles_max=N` would) and runs it
//! through the runner `mktme-sim run` uses ([`scenarios::runner::run`]), then prints one line
//! of tab-separated fields for the parent.

use crate::alloc::{self, Phase};
use scenarios::runner::{self, RunOptions};
use scenarios::validate::{self, Override};
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What became of one run input.
pub enum RunVerdict {
    /// It validated and ran: the end reason (`finished`, `cycles_max`, `deadlock`,
    /// `cold_boot`) and whether every expectation held.
    Ran {
        /// The end's reason.
        end: String,
        /// Every expectation held.
        passed: bool,
    },
    /// The validator refused it (with `run.cycles_max` set), with this message.
    Refused(String),
    /// It validated but the runner refused it, with this message.
    RunError(String),
    /// It panicked, with this message and place.
    Panicked(String),
    /// It was still running at the time limit, and was killed.
    Hang,
    /// An allocation went past the memory budget (the allocator's message).
    Memory(String),
    /// The child ended otherwise (a signal, an unknown status), with what it said.
    Crashed(String),
}

/// One run input's outcome.
pub struct RunOutcome {
    /// What became of it.
    pub verdict: RunVerdict,
    /// Wall-clock time, the child's start and end included.
    pub elapsed: Duration,
    /// The child's peak of bytes in use (0 when it did not say).
    pub peak: usize,
}

/// How the parent runs children.
pub struct Child<'a> {
    /// This program.
    pub exe: &'a Path,
    /// `run.cycles_max` for every run.
    pub cycles_max: u64,
    /// The children's memory budget, bytes.
    pub budget: usize,
    /// The wall-clock limit.
    pub limit: Duration,
    /// Where the child's standard error goes (overwritten each time).
    pub stderr: &'a Path,
}

impl Child<'_> {
    /// Runs input `index` (`bytes`, named `file`) in a child.
    pub fn try_one(
        &self,
        index: u64,
        file: &str,
        bytes: &[u8],
        sets: &[String],
    ) -> std::io::Result<RunOutcome> {
        let start = Instant::now();
        let mut child = Command::new(self.exe)
            .arg("run-one")
            .args(sets.iter().map(|s| format!("--set={s}")))
            .arg(format!("--index={index}"))
            .arg(format!("--file={file}"))
            .arg(format!("--cycles-max={}", self.cycles_max))
            .arg(format!("--budget-bytes={}", self.budget))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.stderr)?)
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A child that died before reading all of it is seen below.
            let _ = stdin.write_all(bytes);
        }
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if start.elapsed() > self.limit {
                child.kill()?;
                child.wait()?;
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let elapsed = start.elapsed();
        let mut line = String::new();
        if let Some(mut out) = child.stdout.take() {
            out.read_to_string(&mut line)?;
        }
        let fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        let peak = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let breached = fields.get(2) == Some(&"breached");
        let said = || std::fs::read_to_string(self.stderr).unwrap_or_default();
        let memory = |said: &str| {
            said.lines()
                .find(|l| l.starts_with("mktme-fuzz: MEMORY"))
                .map(str::to_owned)
        };
        let text = fields.get(3).copied().unwrap_or("").to_owned();
        let verdict = match status {
            None => RunVerdict::Hang,
            Some(_) if breached => {
                RunVerdict::Memory(memory(&said()).unwrap_or_else(|| "(no message)".into()))
            }
            Some(s) if s.success() => match fields[0] {
                "ran" => RunVerdict::Ran {
                    end: fields.get(4).copied().unwrap_or("").to_owned(),
                    passed: fields.get(5) == Some(&"passed"),
                },
                "refused" => RunVerdict::Refused(text),
                "runerror" => RunVerdict::RunError(text),
                _ => RunVerdict::Crashed(format!("unexpected output {line:?}")),
            },
            Some(_) if fields[0] == "panicked" => RunVerdict::Panicked(text),
            Some(s) => {
                let said = said();
                match memory(&said) {
                    Some(m) => RunVerdict::Memory(m),
                    None => RunVerdict::Crashed(format!("{s}: {}", tail(&said))),
                }
            }
        };
        Ok(RunOutcome {
            verdict,
            elapsed,
            peak,
        })
    }
}

/// The last few lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A message on one line, without tabs.
fn flat(text: &str) -> String {
    text.replace(['\n', '\t', '\r'], " ")
}

/// The child: reads the input on standard input, validates and runs it, prints one line
/// (`verdict`, peak bytes, `breached` or `ok`, message, end, `passed` or `failed`) and exits
/// 0, or 3 after a panic.
pub fn child(index: u64, file: &str, sets: &[String], cycles_max: u64) -> std::process::ExitCode {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("mktme-fuzz run-one: cannot read the input: {e}");
        return std::process::ExitCode::from(2);
    }
    alloc::begin(Phase::Run, index);
    let mut overrides: Vec<Override> = match sets.iter().map(|s| Override::parse(s)).collect() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mktme-fuzz run-one: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    overrides.push(Override {
        path: "run.cycles_max".to_owned(),
        value: cycles_max.to_string(),
    });
    let result = catch_unwind(AssertUnwindSafe(|| {
        // Without the overrides first: with them, a mistake elsewhere in the file may be
        // reported less precisely (an override needs the file's structure).
        let validated = validate::parse_bytes(&bytes, file)
            .and_then(|_| validate::parse_bytes_with(&bytes, file, &overrides));
        match validated {
            Err(e) => ("refused", e.message, String::new(), false),
            Ok(scenario) => match runner::run(&scenario, &RunOptions::default()) {
                Err(e) => ("runerror", e.problem, String::new(), false),
                Ok(report) => (
                    "ran",
                    String::new(),
                    report.end.reason.to_owned(),
                    report.passed,
                ),
            },
        }
    }));
    let (verdict, message, end, passed, code) = match result {
        Ok((verdict, message, end, passed)) => (verdict, message, end, passed, 0),
        Err(_) => ("panicked", crate::panics::take(), String::new(), false, 3),
    };
    println!(
        "{verdict}\t{}\t{}\t{}\t{end}\t{}",
        alloc::peak(),
        if alloc::breached() { "breached" } else { "ok" },
        flat(&message),
        if passed { "passed" } else { "failed" }
    );
    std::process::ExitCode::from(code)
}
