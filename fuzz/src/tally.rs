//! What a phase saw: inputs, verdicts, refusals by kind, the slowest input, the peak of
//! memory, and the findings (what is not allowed to happen, whatever the input).

use crate::loader::{Outcome, Verdict};
use crate::runs::{RunOutcome, RunVerdict};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Something no input may cause.
pub enum Finding {
    /// A panic, with its message and place.
    Panic(String),
    /// Still running at the time limit.
    Hang,
    /// Past the memory budget (the allocator's message, or the peak seen).
    Memory(String),
    /// The child process ended otherwise (a signal such as a stack overflow's).
    Crash(String),
}

impl Finding {
    /// A word for file names.
    pub fn name(&self) -> &'static str {
        match self {
            Finding::Panic(_) => "panic",
            Finding::Hang => "hang",
            Finding::Memory(_) => "memory",
            Finding::Crash(_) => "crash",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Panic(m) => write!(f, "PANIC: {m}"),
            Finding::Hang => f.write_str("HANG: still running at the time limit"),
            Finding::Memory(m) => write!(f, "MEMORY: {m}"),
            Finding::Crash(m) => write!(f, "CRASH: {m}"),
        }
    }
}

/// One phase's counts.
pub struct Tally {
    phase: &'static str,
    inputs: u64,
    bytes: u64,
    /// Verdicts (`accepted`, `refused`, `ran: finished`, ...), counted.
    verdicts: BTreeMap<String, u64>,
    /// Refusals by kind (the message with its numbers and quoted text taken out).
    refusals: BTreeMap<String, u64>,
    findings: BTreeMap<&'static str, u64>,
    /// The slowest input: time, index, size.
    slowest: (Duration, u64, usize),
    /// The highest peak of memory: bytes, index.
    peak: (usize, u64),
}

impl Tally {
    /// An empty tally.
    pub fn new(phase: &'static str) -> Tally {
        Tally {
            phase,
            inputs: 0,
            bytes: 0,
            verdicts: BTreeMap::new(),
            refusals: BTreeMap::new(),
            findings: BTreeMap::new(),
            slowest: (Duration::ZERO, 0, 0),
            peak: (0, 0),
        }
    }

    /// Scenarios run.
    pub fn ran(&self) -> u64 {
        self.verdicts
            .iter()
            .filter(|(v, _)| v.starts_with("ran"))
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&mut self, index: u64, size: usize, elapsed: Duration, peak: usize, verdict: String) {
        self.inputs += 1;
        self.bytes += size as u64;
        *self.verdicts.entry(verdict).or_default() += 1;
        if elapsed > self.slowest.0 {
            self.slowest = (elapsed, index, size);
        }
        if peak > self.peak.0 {
            self.peak = (peak, index);
        }
    }

    fn refused(&mut self, message: &str) {
        *self.refusals.entry(kind_of(message)).or_default() += 1;
    }

    fn found(&mut self, finding: Finding) -> Option<Finding> {
        *self.findings.entry(finding.name()).or_default() += 1;
        Some(finding)
    }

    /// Counts a loader input; its finding, if any.
    pub fn loader(
        &mut self,
        index: u64,
        size: usize,
        o: &Outcome,
        budget: usize,
    ) -> Option<Finding> {
        let verdict = match &o.verdict {
            Verdict::Accepted => "accepted",
            Verdict::Refused(_) => "refused",
            Verdict::Panicked(_) => "panicked",
        };
        self.count(index, size, o.elapsed, o.peak, verdict.to_owned());
        match &o.verdict {
            Verdict::Panicked(m) => return self.found(Finding::Panic(m.clone())),
            Verdict::Refused(m) => self.refused(m),
            Verdict::Accepted => {}
        }
        if o.breached || o.peak > budget {
            return self.found(Finding::Memory(format!(
                "an allocation was refused for the budget of {budget} bytes (peak {} bytes)",
                o.peak
            )));
        }
        None
    }

    /// Counts a run input; its finding, if any.
    pub fn run(
        &mut self,
        index: u64,
        size: usize,
        o: &RunOutcome,
        budget: usize,
    ) -> Option<Finding> {
        let verdict = match &o.verdict {
            RunVerdict::Ran { end, passed } => {
                format!("ran: {end}, {}", if *passed { "passed" } else { "failed" })
            }
            RunVerdict::Refused(_) => "refused by the validator".to_owned(),
            RunVerdict::RunError(_) => "refused by the runner".to_owned(),
            RunVerdict::Panicked(_) => "panicked".to_owned(),
            RunVerdict::Hang => "hang".to_owned(),
            RunVerdict::Memory(_) => "past the memory budget".to_owned(),
            RunVerdict::Crashed(_) => "crashed".to_owned(),
        };
        self.count(index, size, o.elapsed, o.peak, verdict);
        match &o.verdict {
            RunVerdict::Ran { .. } if o.peak > budget => self.found(Finding::Memory(format!(
                "peak {} bytes, past the budget of {budget}",
                o.peak
            ))),
            RunVerdict::Ran { .. } => None,
            RunVerdict::Refused(m) | RunVerdict::RunError(m) => {
                self.refused(m);
                None
            }
            RunVerdict::Panicked(m) => self.found(Finding::Panic(m.clone())),
            RunVerdict::Hang => self.found(Finding::Hang),
            RunVerdict::Memory(m) => self.found(Finding::Memory(m.clone())),
            RunVerdict::Crashed(m) => self.found(Finding::Crash(m.clone())),
        }
    }

    /// Prints the summary.
    pub fn print(&self, wall: Duration) {
        let mib = |b: usize| b as f64 / f64::from(1 << 20);
        println!(
            "{}: {} inputs ({:.1} MiB) in {:.1} s",
            self.phase,
            self.inputs,
            mib(self.bytes as usize),
            wall.as_secs_f64()
        );
        for (verdict, n) in &self.verdicts {
            println!("  {n:>9}  {verdict}");
        }
        let findings: u64 = self.findings.values().sum();
        print!("  findings: {findings}");
        for (name, n) in &self.findings {
            print!(", {name} {n}");
        }
        println!();
        println!(
            "  slowest: input {} ({} bytes), {:.1} ms; highest memory peak: input {}, {:.1} MiB",
            self.slowest.1,
            self.slowest.2,
            self.slowest.0.as_secs_f64() * 1e3,
            self.peak.1,
            mib(self.peak.0)
        );
        let mut kinds: Vec<(&String, &u64)> = self.refusals.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("  refusals: {} kinds; the most common:", kinds.len());
        for (kind, n) in kinds.iter().take(15) {
            println!("  {n:>9}  {kind}");
        }
    }
}

/// A refusal's kind: its message with numbers as `#`, quoted text as `..`, the argument of
/// a `--set` left out, cut to 80 characters.
fn kind_of(message: &str) -> String {
    let mut out = String::new();
    let message = match message.strip_prefix("--set ") {
        Some(rest) => {
            out.push_str("--set ..: ");
            rest.split_once(": ").map_or("", |(_, m)| m)
        }
        None => message,
    };
    let mut quote: Option<char> = None;
    let mut last_digit = false;
    for c in message.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
                out.push(c);
            }
            continue;
        }
        match c {
            '`' | '"' => {
                quote = Some(c);
                out.push(c);
                out.push_str("..");
            }
            '0'..='9' => {
                if !last_digit {
                    out.push('#');
                }
            }
            _ => out.push(c),
        }
        last_digit = c.is_ascii_hexdigit() && (last_digit || c.is_ascii_digit());
        if out.chars().count() >= 80 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_leave_out_numbers_and_quoted_text() {
        assert_eq!(
            kind_of("expected `cores` at most 64, found 0x1234 in \"abc\""),
            "expected `..` at most #, found #x# in \"..\""
        );
        assert_eq!(
            kind_of("--set a.b=64g: Unexpected field named `x`"),
            "--set ..: Unexpected field named `..`"
        );
    }
}
