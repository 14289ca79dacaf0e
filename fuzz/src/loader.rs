//! Loader inputs, tried in this process: a worker thread validates each one (the function
//! `mktme-sim check` and `run` use, [`scenarios::validate::parse_bytes_with`], with the
//! input's `--set` arguments, if any) under
//! `catch_unwind`, while the main thread waits with a wall-clock limit (the watchdog). A
//! panic comes back as a [`Verdict::Panicked`]; an input still running at the limit is a hang,
//! after which the worker is abandoned (it cannot be stopped) and the fuzzer ends.

use crate::alloc::{self, Phase};
use scenarios::validate::Override;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// What the loader said.
pub enum Verdict {
    /// A valid scenario.
    Accepted,
    /// Refused, with this message.
    Refused(String),
    /// It panicked, with this message and place.
    Panicked(String),
}

/// One input's outcome.
pub struct Outcome {
    /// What the loader said.
    pub verdict: Verdict,
    /// How long it took.
    pub elapsed: Duration,
    /// The peak of the bytes in use above those in use before the input.
    pub peak: usize,
    /// An allocation was refused for the budget, and the loader survived it.
    pub breached: bool,
}

/// The worker thread and its channels.
pub struct Loader {
    to_worker: Sender<Job>,
    from_worker: Receiver<Outcome>,
}

/// One input for the worker: its index, file name, bytes and `--set` arguments.
type Job = (u64, String, Vec<u8>, Vec<String>);

/// The worker's stack: the size of a main thread's (8 MiB), as the CLI has.
const STACK_BYTES: usize = 8 << 20;

impl Loader {
    /// Starts the worker.
    pub fn start() -> std::io::Result<Loader> {
        let (to_worker, inputs) = channel::<Job>();
        let (outcomes, from_worker) = channel();
        std::thread::Builder::new()
            .name("loader".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                for (index, file, bytes, sets) in inputs {
                    let before = alloc::in_use();
                    alloc::begin(Phase::Loader, index);
                    let start = Instant::now();
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        // As `mktme-sim check [--set PATH=VALUE]...` reads a file.
                        let overrides = sets
                            .iter()
                            .map(|s| Override::parse(s))
                            .collect::<Result<Vec<_>, _>>()?;
                        scenarios::validate::parse_bytes_with(&bytes, &file, &overrides)
                            .map_err(|e| e.message)
                    }));
                    let elapsed = start.elapsed();
                    let verdict = match result {
                        Ok(Ok(_)) => Verdict::Accepted,
                        Ok(Err(message)) => Verdict::Refused(message),
                        Err(_) => Verdict::Panicked(crate::panics::take()),
                    };
                    let outcome = Outcome {
                        verdict,
                        elapsed,
                        peak: alloc::peak().saturating_sub(before),
                        breached: alloc::breached(),
                    };
                    if outcomes.send(outcome).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Loader {
            to_worker,
            from_worker,
        })
    }

    /// Tries one input; `Err(Timeout)` when it is still running after `limit` (a hang).
    pub fn try_one(
        &self,
        index: u64,
        file: &str,
        bytes: &[u8],
        sets: &[String],
        limit: Duration,
    ) -> Result<Outcome, RecvTimeoutError> {
        self.to_worker
            .send((index, file.to_owned(), bytes.to_vec(), sets.to_vec()))
            .map_err(|_| RecvTimeoutError::Disconnected)?;
        self.from_worker.recv_timeout(limit)
    }
}
