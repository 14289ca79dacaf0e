//! Drives one [`DramController`] alone from a request trace: the engine behind
//! `mktme-sim dram-trace`, and the harness the validation tests use.
//!
//! Trace semantics follow DRAMsim3's `TraceBasedCPU`: requests are offered in input order, each
//! no earlier than its cycle, at most one per cycle, and a request the controller refuses
//! (queue full) is offered again every cycle until accepted, holding back every later request.
//!
//! The run ends when the input is exhausted and every accepted request has completed. Once the
//! input is exhausted the controller drains buffered writes even below its drain threshold
//! ([`DramController::set_flush_writes`]), so every write reaches DRAM.
//!
//! Every loop is bounded: an optional absolute cycle cap, and a stall watchdog that fails the
//! run with the controller's state when work is waiting but nothing has happened for
//! `stall_cycles_max` cycles. Idle time is skipped to the controller's next event (a refresh)
//! or the next request's cycle; a controller idle until a request past the cap stops at once,
//! without ticking through the refreshes between.

use super::config::DramConfig;
use super::controller::{DramCompletion, DramController, DramRequest, Encryption, IssuedCommand};
use super::mapping::DramAddrOutOfRange;
use super::stats::DramStats;
use sim_core::{Cycle, DramAddr, MemOp, RequestId};
use std::fmt;

/// One trace line: `addr` `op` offered no earlier than DRAM cycle `cycle`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct TraceRecord {
    /// DRAM address (any byte of the line).
    pub addr: DramAddr,
    /// Read or write.
    pub op: MemOp,
    /// The DRAM cycle at which the request is first offered.
    pub cycle: Cycle,
}

/// Bounds on a run.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct DriverLimits {
    /// Fail once simulated time passes this cycle.
    pub cycles_max: Option<u64>,
    /// Fail when the controller has work waiting (or a request is stalled on a full queue)
    /// and nothing was accepted, issued or delivered for this many cycles.
    pub stall_cycles_max: u64,
}

impl DriverLimits {
    /// No cycle cap, and a stall watchdog far above anything a healthy controller of `config`
    /// can spend waiting (a refresh, a full encrypt pipeline, the idle write drain timeout):
    /// at least 100,000 cycles.
    pub fn for_config(config: &DramConfig) -> DriverLimits {
        let p = config.params();
        let t = &p.timing;
        let crypto = &p.crypto;
        let per_line =
            u64::from(crypto.throughput.per_cycles).div_ceil(u64::from(crypto.throughput.lines));
        let healthy = u64::from(t.t_refi_cycles)
            + u64::from(t.t_rfc_cycles)
            + u64::from(t.t_rc_cycles)
            + u64::from(t.t_faw_cycles)
            + u64::from(crypto.encrypt_latency_cycles)
            + u64::from(crypto.decrypt_latency_cycles)
            + per_line * u64::from(p.controller.transaction_queue_entries)
            + p.controller.idle_write_drain_cycles.map_or(0, u64::from);
        DriverLimits {
            cycles_max: None,
            stall_cycles_max: (4 * healthy).max(100_000),
        }
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum DriverError<E> {
    /// The input produced an error.
    Input(E),
    /// Record `index` (0-based) addresses a byte beyond the DRAM.
    AddressOutOfRange {
        /// Position of the record in the input.
        index: u64,
        /// The address and the DRAM's width.
        error: DramAddrOutOfRange,
    },
    /// Simulated time passed the cycle cap.
    CycleCap {
        /// The cap.
        cycles_max: u64,
        /// The cycle the run had reached.
        cycle: Cycle,
        /// The controller's state.
        state: String,
    },
    /// Work was waiting but nothing happened for too long: a model bug.
    Deadlock {
        /// The cycle the watchdog fired: the first more than `stall_cycles_max` after
        /// `last_activity`.
        cycle: Cycle,
        /// The last cycle anything happened.
        last_activity: Cycle,
        /// The controller's state.
        state: String,
    },
}

impl<E: fmt::Display> fmt::Display for DriverError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Input(e) => write!(f, "{e}"),
            DriverError::AddressOutOfRange { index, error } => {
                write!(f, "trace record {}: {error}", index + 1)
            }
            DriverError::CycleCap {
                cycles_max,
                cycle,
                state,
            } => write!(
                f,
                "cycle cap of {cycles_max} DRAM cycles reached (next cycle {cycle}) before the \
                 trace finished\n{state}"
            ),
            DriverError::Deadlock {
                cycle,
                last_activity,
                state,
            } => write!(
                f,
                "deadlock: at cycle {cycle} work is waiting but nothing has happened since cycle \
                 {last_activity}\n{state}"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for DriverError<E> {}

/// What a run measured. All cycles are DRAM cycles.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceReport {
    /// The DRAM configuration's name.
    pub dram: String,
    /// Whether the encryption stage's timing applied.
    pub encryption: Encryption,
    /// Everything the controller counted.
    pub stats: DramStats,
    /// Cycles simulated: the cycle the last request completed (its `done`) plus one, i.e. the
    /// run covers cycles `0..cycles`; 0 for an empty trace.
    pub cycles: u64,
    /// Bytes that crossed the data bus: 64 per READ(A) and per WRITE(A) command.
    pub bus_bytes: u64,
    /// The DRAM clock period.
    pub t_ck_ps: u32,
    /// The configuration's peak data-bus bandwidth in GB/s.
    pub peak_bandwidth_gbps: f64,
}

impl TraceReport {
    /// Fraction of READ(A) commands that were row hits (`None` without reads).
    pub fn row_hit_rate(&self) -> Option<f64> {
        self.stats.read_row_hit_rate()
    }

    /// Mean read latency in cycles (`None` without reads).
    pub fn avg_read_latency_cycles(&self) -> Option<f64> {
        self.stats.read_latency.mean()
    }

    /// Achieved data-bus bandwidth in GB/s (10^9 B/s): `bus_bytes / (cycles * tCK)`; 0 for an
    /// empty run.
    pub fn bandwidth_gbps(&self) -> f64 {
        if self.cycles == 0 {
            return 0.0;
        }
        // bytes / (cycles * ps) * 1000 = bytes per ns = GB/s.
        self.bus_bytes as f64 * 1000.0 / (self.cycles as f64 * f64::from(self.t_ck_ps))
    }

    /// The `n` most frequent read latencies as `(latency, count)`, most frequent first (ties:
    /// shorter latency first).
    pub fn most_common_read_latencies(&self, n: usize) -> Vec<(u64, u64)> {
        let mut all: Vec<(u64, u64)> = self.stats.read_latency.iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// Sees every completion and every DRAM command of a run as it happens (for command traces
/// and cycle-exact tests). Both methods default to doing nothing.
pub trait TraceObserver {
    /// A request completed (called in delivery order).
    fn completion(&mut self, completion: &DramCompletion) {
        let _ = completion;
    }

    /// A command issued.
    fn command(&mut self, command: &IssuedCommand) {
        let _ = command;
    }

    /// Whether [`TraceObserver::command`] wants to see the commands (true unless the observer
    /// says otherwise); when false the run does not collect them.
    fn wants_commands(&self) -> bool {
        true
    }
}

/// The observer that ignores everything.
impl TraceObserver for () {
    fn wants_commands(&self) -> bool {
        false
    }
}

/// An observer that keeps everything, for tests and short traces (memory grows with the run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorder {
    /// Every completion, in delivery order.
    pub completions: Vec<DramCompletion>,
    /// Every command, in issue order.
    pub commands: Vec<IssuedCommand>,
}

impl TraceObserver for Recorder {
    fn completion(&mut self, completion: &DramCompletion) {
        self.completions.push(*completion);
    }

    fn command(&mut self, command: &IssuedCommand) {
        self.commands.push(*command);
    }
}

/// Runs `records` through a fresh controller for `config`, in bounded memory.
pub fn run_trace<I, E>(
    config: &DramConfig,
    encryption: Encryption,
    records: I,
    limits: DriverLimits,
) -> Result<TraceReport, DriverError<E>>
where
    I: IntoIterator<Item = Result<TraceRecord, E>>,
{
    run_trace_observed(config, encryption, records, limits, &mut ())
}

/// [`run_trace`], showing every completion and command to `observer`.
pub fn run_trace_observed<I, E, O>(
    config: &DramConfig,
    encryption: Encryption,
    records: I,
    limits: DriverLimits,
    observer: &mut O,
) -> Result<TraceReport, DriverError<E>>
where
    I: IntoIterator<Item = Result<TraceRecord, E>>,
    O: TraceObserver + ?Sized,
{
    let mut records = records.into_iter();
    let mut ctrl = DramController::new(config, encryption);
    let mapping = *config.mapping();
    let mut index = 0u64;
    let mut pull = |ctrl: &mut DramController| -> Result<Option<TraceRecord>, DriverError<E>> {
        match records.next() {
            None => {
                ctrl.set_flush_writes(true);
                Ok(None)
            }
            Some(Err(e)) => Err(DriverError::Input(e)),
            Some(Ok(r)) => {
                mapping
                    .check(r.addr)
                    .map_err(|error| DriverError::AddressOutOfRange { index, error })?;
                index += 1;
                Ok(Some(r))
            }
        }
    };

    let mut pending = pull(&mut ctrl)?;
    let mut next_id = 0u64;
    let mut now = Cycle::ZERO;
    let mut delivered: Vec<DramCompletion> = Vec::new();
    let mut issued: Vec<IssuedCommand> = Vec::new();
    let mut last_done: Option<Cycle> = None;
    let wants_commands = observer.wants_commands();
    loop {
        if let Some(cap) = limits.cycles_max
            && now.get() > cap
        {
            return Err(DriverError::CycleCap {
                cycles_max: cap,
                cycle: now,
                state: ctrl.describe_state(),
            });
        }
        if wants_commands {
            ctrl.tick_with_commands(now, &mut delivered, &mut issued);
            for c in issued.drain(..) {
                observer.command(&c);
            }
        } else {
            ctrl.tick(now, &mut delivered);
        }
        for c in delivered.drain(..) {
            observer.completion(&c);
            last_done = Some(last_done.map_or(c.done, |d| d.max(c.done)));
        }

        // DRAMsim3's trace CPU offers at most one request per cycle, in file order.
        let mut stalled = false;
        if let Some(rec) = pending
            && rec.cycle <= now
        {
            let request = DramRequest {
                id: RequestId(next_id),
                op: rec.op,
                addr: rec.addr,
                // A trace run encrypts every line when the stage is on.
                crypto: true,
            };
            match ctrl.try_submit(now, request) {
                Ok(()) => {
                    next_id += 1;
                    pending = pull(&mut ctrl)?;
                }
                Err(_full) => stalled = true,
            }
        }

        if pending.is_none() && ctrl.outstanding() == 0 {
            break;
        }

        let mut next = ctrl.next_event_cycle();
        // The next request is offered on its cycle, or on the next cycle when it is already
        // due (one request per cycle). One just refused waits for the controller's next event:
        // a queue gains room only on a cycle the controller does something.
        if let Some(rec) = pending
            && !stalled
        {
            next = next.min(rec.cycle.max(now.plus(1)));
        }
        let next = next.max(now.plus(1));
        if let (Some(cap), Some(rec)) = (limits.cycles_max, pending)
            && rec.cycle.get() > cap
            && !stalled
            && ctrl.outstanding() == 0
            && !ctrl.has_work()
        {
            // Idle until a request past the cap: only refreshes could happen before it, so the
            // run would tick through them to the cap and stop there. It stops now instead,
            // however far away the request is.
            return Err(DriverError::CycleCap {
                cycles_max: cap,
                cycle: rec.cycle,
                state: ctrl.describe_state(),
            });
        }
        if next.since(ctrl.last_activity()) > limits.stall_cycles_max
            && (stalled || ctrl.has_work())
        {
            // Nothing changes before `next`, so the watchdog fires on the first cycle past its
            // limit, however far the controller lets the driver skip.
            let deadline = ctrl.last_activity().plus(limits.stall_cycles_max + 1);
            return Err(DriverError::Deadlock {
                cycle: next.min(deadline),
                last_activity: ctrl.last_activity(),
                state: ctrl.describe_state(),
            });
        }
        now = next;
    }

    let stats = ctrl.stats();
    let bus_bytes = stats.bursts() * sim_core::LINE_BYTES as u64;
    Ok(TraceReport {
        dram: config.name().to_owned(),
        encryption,
        stats,
        cycles: last_done.map_or(0, |c| c.get() + 1),
        bus_bytes,
        t_ck_ps: config.params().timing.t_ck_ps,
        peak_bandwidth_gbps: config.peak_bandwidth_gbps(),
    })
}
