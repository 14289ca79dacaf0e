//! The timing controller: transaction queues, per-bank (or per-rank) command queues, FR-FCFS
//! command selection, refresh and the encryption stage, cycle by cycle.
//!
//! One [`DramController`] drives every channel of a [`DramConfig`]; each channel is an
//! independent copy of DRAMsim3's `Controller` (`src/controller.cc`). All cycles here are DRAM
//! (controller) clock cycles.
//!
//! ## One cycle of one channel (`tick(now)`)
//!
//! ```text
//!   1. writes leaving the encrypt stage enter the write buffer (or merge)
//!   2. completions whose data cycle is `now` are delivered (reads pass the decrypt stage here)
//!   3. refresh: at every multiple of tREFI/ranks the next rank becomes due
//!   4. one command is issued, if any is ready:
//!        a due refresh first (PRE of an open bank of that rank, then REF);
//!        else the command queues, round-robin from the one after the last that issued,
//!        each scanned oldest first for the first command whose timing is met (FR-FCFS)
//!   5. one transaction moves from the read queue (or, while draining, the write buffer)
//!      into its command queue, if that queue has room
//! ```
//!
//! A request offered with [`DramController::try_submit`] during cycle `t` (after `tick(t)`) is
//! accepted at `t + 1`; step 5 of cycle `t + 1` moves it into its command queue and its first
//! command can issue at `t + 2`. A READ issued at `c` returns data at `c + CL + tBurst`: an
//! unloaded row hit takes `CL + tBurst + 1` cycles from acceptance (22 on ddr4-2400), exactly
//! as validation-data.md section 2 measures DRAMsim3.
//!
//! ## Skipping idle cycles
//!
//! A tick changes something only on a cycle where a write leaves the encrypt stage, a
//! completion is due, a refresh triggers, some queued command's constraints are met (under the
//! FR-FCFS rules, with a rank held by its refresh skipped) or step 5 can move a transaction.
//! Each channel keeps a lower bound on the first such cycle ([`DramController::next_event_cycle`]);
//! a tick before it returns at once, and a tick that does work visits only the command queues
//! that hold entries and whose own lower bound (`queue_ready`) has come. A queue's bound is
//! reset whenever its entries or the state of one of its banks change; any other command can
//! only delay its entries (timing constraints only rise), so an old bound stays a lower bound.
//! [`DramController::set_exhaustive`] turns the shortcuts off (DRAMsim3's full search on every
//! cycle); `tests/dram_skipping.rs` runs both in lockstep and debug builds compare them on
//! every tick. `docs/dram-model.md` section 10 has the details.
//!
//! `describe` (a submodule) holds what a controller tells about itself when a run stops
//! ([`DramController::describe_state`]) and its [`sim_core::TimedComponent`] view;
//! `completions` the queue of completions on their way.

mod completions;
mod describe;

use super::bank::{self, BankCommand, BankState, ColumnCommand, CommandKind};
use super::config::{DramConfig, PagePolicy, QueueStructure, WriteDrain};
use super::crypto_stage::{CryptoStage, EngineStats};
use super::mapping::DramLocation;
use super::refresh::RefreshScheduler;
use super::stats::DramStats;
use super::timing::{BankId, ChannelTiming};
use completions::CompletionQueue;
use sim_core::{Cycle, DetHashMap, DramAddr, MemOp, RequestId, StatsReport};
use std::cmp;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

/// Whether the encryption stage's timing applies.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Encryption {
    /// Reads and writes bypass the AES stage (plain DRAMsim3 timing).
    Off,
    /// Reads pass the decrypt pipeline after their burst, writes the encrypt pipeline before
    /// they enter the write buffer.
    On,
}

/// A line-sized request to the timing model.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct DramRequest {
    /// Echoed in the completion; must be unique among outstanding requests.
    pub id: RequestId,
    /// Read or write of the whole line.
    pub op: MemOp,
    /// Any byte of the line (the line-offset bits are ignored). Must lie inside the DRAM: check
    /// with [`super::AddressMapping::check`] first.
    pub addr: DramAddr,
    /// Whether the line passes the AES stage (when the controller's [`Encryption`] is on).
    /// False for lines that cross the bus as plaintext (TME bypass, NO_ENCRYPT, the exclusion
    /// range), which skip the stage's latency.
    pub crypto: bool,
}

/// The queue a request needs is full: retry on a later cycle (modelled back-pressure).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("channel {channel}: the {queue} is full ({entries} entries)")]
pub struct QueueFull {
    /// The channel the request maps to.
    pub channel: u32,
    /// `"read queue"` or `"write buffer"`.
    pub queue: &'static str,
    /// Its size.
    pub entries: u32,
}

/// Where a completed request's data went or came from.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum CompletionSource {
    /// The data crossed the DRAM data bus during cycles `[burst_start, burst_end)`.
    Bus {
        /// First cycle of the burst (READ + CL, or WRITE + CWL).
        burst_start: Cycle,
        /// One past the last cycle of the burst; the completion's `data_cycle`.
        burst_end: Cycle,
    },
    /// A read answered from a write to the same line still waiting in the controller, without
    /// a DRAM access (DRAMsim3 does the same). The data is that of the newest write to the line
    /// accepted before this read.
    ForwardedFromWrite,
    /// A write merged into an earlier write to the same line whose WRITE had not issued yet: its
    /// bytes travel with `into`'s burst, which must carry the newest data.
    MergedInto {
        /// The write that carries the data.
        into: RequestId,
    },
}

/// A finished request, delivered by `tick(data_cycle)` in the order data crossed the bus (ties
/// in issue order), so a functional layer that applies write completions to its DRAM store and
/// reads the store for read completions, in delivery order, sees exactly what the bus saw.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct DramCompletion {
    /// The request.
    pub id: RequestId,
    /// Read or write.
    pub op: MemOp,
    /// The line (line-aligned DRAM address).
    pub addr: DramAddr,
    /// The cycle the controller accepted the request (offer cycle + 1).
    pub accepted: Cycle,
    /// The cycle the data crossed the bus: for reads the cycle the data returned (READ + CL +
    /// tBurst), for writes the end of the write burst (WRITE + CWL + tBurst); for forwarded
    /// reads and merged writes the cycle they were answered. The completion is delivered by
    /// `tick(data_cycle)`.
    pub data_cycle: Cycle,
    /// The cycle the requester may use the result: for reads `data_cycle` plus the decrypt
    /// stage when encryption is on, otherwise `data_cycle`.
    pub done: Cycle,
    /// How the data moved.
    pub source: CompletionSource,
}

/// One DRAM command, as issued (for command traces and cycle-exact tests).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct IssuedCommand {
    /// Issue cycle.
    pub cycle: Cycle,
    /// Channel.
    pub channel: u32,
    /// Rank.
    pub rank: u32,
    /// Bank group (0 for REF, which addresses the whole rank).
    pub bankgroup: u32,
    /// Bank (0 for REF).
    pub bank: u32,
    /// The command.
    pub kind: CommandKind,
    /// The row (ACT, READ(A), WRITE(A)).
    pub row: Option<u32>,
    /// The request a column command serves (the first one, for coalesced reads).
    pub request: Option<RequestId>,
}

impl fmt::Display for IssuedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>10} ch{} rank{} bg{} bank{} {}",
            self.cycle, self.channel, self.rank, self.bankgroup, self.bank, self.kind
        )?;
        if let Some(row) = self.row {
            write!(f, " row {row}")?;
        }
        if let Some(RequestId(id)) = self.request {
            write!(f, " req {id}")?;
        }
        Ok(())
    }
}

#[derive(Copy, Clone, Debug)]
struct Txn {
    id: RequestId,
    op: MemOp,
    line: DramAddr,
    loc: DramLocation,
    accepted: Cycle,
    crypto: bool,
    /// The command queue it goes to (set by the channel that accepts it).
    queue: u32,
}

impl Txn {
    fn bank(&self) -> BankId {
        BankId {
            rank: self.loc.rank,
            bankgroup: self.loc.bankgroup,
            bank: self.loc.bank,
        }
    }
}

#[derive(Copy, Clone, Debug)]
struct QueuedCmd {
    txn: Txn,
    column: ColumnCommand,
    /// `txn.bank()` and its flattened index, computed once (the scheduler looks them up on
    /// every scan).
    bank: BankId,
    bank_index: u32,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Origin {
    /// The command serves the entry at `index` of command queue `queue`.
    Queue { queue: usize, index: usize },
    /// Preparing or issuing a due refresh.
    Refresh,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Selected {
    bank: BankId,
    command: BankCommand,
    origin: Origin,
}

/// Where [`Channel::schedule_transaction`] takes a transaction from.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum TxnSource {
    ReadQueue,
    WriteBuffer,
}

/// A transaction to move into command queue `queue`: entry `index` of `from`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct TxnMove {
    from: TxnSource,
    index: usize,
    queue: usize,
}

/// What step 5 would do now: the new `write_draining` and `drain_aborted`, and the
/// transaction to move.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct StepFive {
    write_draining: usize,
    drain_aborted: bool,
    chosen: Option<TxnMove>,
}

#[derive(Copy, Clone, Debug)]
struct PendingCompletion {
    txn: Txn,
    source: CompletionSource,
}

/// One channel: DRAMsim3's `Controller` + `CommandQueue` + `ChannelState` + `Refresh`.
struct Channel {
    index: u32,
    ranks: u32,
    bankgroups: u32,
    banks_per_group: u32,
    page_policy: PagePolicy,
    queue_structure: QueueStructure,
    command_queue_entries: usize,
    transaction_queue_entries: usize,
    write_drain: WriteDrain,
    idle_write_drain_cycles: Option<u64>,
    row_hit_cap: u32,
    t_cl_cycles: u64,
    t_cwl_cycles: u64,
    t_burst_cycles: u64,
    crypto: Option<CryptoStage>,

    banks: Vec<BankState>,
    timing: ChannelTiming,
    refresh: RefreshScheduler,

    read_queue: VecDeque<Txn>,
    write_buffer: VecDeque<Txn>,
    /// Writes in the encrypt pipeline: (cycle they enter the write buffer, write).
    encrypting: VecDeque<(Cycle, Txn)>,
    /// Reads not yet issued, by line: the first is queued, the others (usually none, so no
    /// allocation) wait on its READ. These three maps are only looked up by line, never
    /// iterated, so their order cannot leak into results.
    pending_reads: DetHashMap<u64, (Txn, Vec<Txn>)>,
    /// Reads waiting on another read's READ. Like DRAMsim3's, they take no read-queue slot.
    coalesced_waiting: usize,
    /// Per line: writes accepted whose WRITE has not issued and that were not merged.
    pending_writes: DetHashMap<u64, u32>,
    /// Per line: the write in the write buffer or a command queue, WRITE not yet issued.
    queued_writes: DetHashMap<u64, RequestId>,
    /// At most `command_queue_entries` each (8 in the presets): plain vectors, which scan as
    /// slices; an entry leaves from anywhere, shifting the few behind it.
    command_queues: Vec<Vec<QueuedCmd>>,
    /// DRAMsim3 `queue_idx_`: the queue the last search ended on.
    queue_cursor: usize,
    /// Writes still to move before reads resume (DRAMsim3 `write_draining_`).
    write_draining: usize,
    /// The last scheduling decision aborted a write drain at a write whose line has an older
    /// read still waiting in the read queue. DRAMsim3 restarts the drain at once when the
    /// write buffer is full, which aborts again: the read never moves and the channel
    /// livelocks. After such an abort the next decision serves the read queue instead (see
    /// [`Channel::transaction_move`]).
    drain_aborted: bool,
    /// Drain writes below the drain rule's threshold (set by drivers at end of input): the
    /// rule's threshold drops to its least (see [`Channel::drain_rule`]).
    flush_writes: bool,
    completions: CompletionQueue<PendingCompletion>,
    /// Requests that have left the read queue, the write buffer or the encrypt stage (or
    /// merged without taking a slot): a request refused for a full queue can be accepted only
    /// after this has grown ([`DramController::departures`]).
    departures: u64,
    outstanding: usize,
    last_activity: Cycle,
    stats: DramStats,

    // ---- event skipping (docs/dram-model.md section 10) ----------------------------------
    /// The command queues that hold entries, so a tick visits only those.
    nonempty: QueueSet,
    /// The command queues that are full (`command_queue_entries` entries), so step 5 tells
    /// whether a transaction's queue has room without reading the queue.
    full: QueueSet,
    /// Per command queue: no entry of the queue can issue before this cycle. A lower bound,
    /// kept valid by resetting it to `Cycle::ZERO` ("unknown") whenever the queue's entries or
    /// the state of one of its banks change; every other command only delays entries (timing
    /// constraints only ever rise), which keeps an old bound a lower bound.
    queue_ready: Vec<Cycle>,
    /// Steps 4 and 5 of a tick cannot change anything before this cycle: computed at the end of
    /// each tick that did work, lowered by requests accepted since.
    wake: Cycle,
    /// No tick before this cycle can change anything: the earliest of `wake`, the next
    /// completion, the next write leaving the encrypt stage and the next refresh trigger. Kept
    /// up to date by every change to those (the end of a tick that did work, an accepted
    /// request, a new drain threshold), so a quiet tick costs one comparison.
    next_event: Cycle,
    /// Step 5 is known to have nothing to do ([`Channel::transaction_move`] would return no move
    /// and the current `write_draining`): set when it did nothing, cleared by whatever changes
    /// its inputs (the read queue, the write buffer, command queue room, pending reads, the
    /// drain threshold).
    step5_settled: bool,
    /// Tick every cycle like DRAMsim3, without the shortcuts: the reference the shortcuts are
    /// tested against ([`DramController::set_exhaustive`]).
    exhaustive: bool,
}

/// A set of command queue indexes, one bit each: which queues hold entries. A tick walks it in
/// round-robin order instead of looking at every (mostly empty) queue.
#[derive(Clone, Debug)]
struct QueueSet {
    words: Vec<u64>,
    members: usize,
}

impl QueueSet {
    fn new(queues: usize) -> QueueSet {
        QueueSet {
            words: vec![0; queues.div_ceil(64)],
            members: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.members == 0
    }

    #[inline]
    fn contains(&self, q: usize) -> bool {
        self.words[q / 64] & (1u64 << (q % 64)) != 0
    }

    fn insert(&mut self, q: usize) {
        let (w, bit) = (q / 64, 1u64 << (q % 64));
        if self.words[w] & bit == 0 {
            self.words[w] |= bit;
            self.members += 1;
        }
    }

    fn remove(&mut self, q: usize) {
        let (w, bit) = (q / 64, 1u64 << (q % 64));
        if self.words[w] & bit != 0 {
            self.words[w] &= !bit;
            self.members -= 1;
        }
    }

    /// The members in `within` but not in `except` that word `w` holds, as a mask of the word
    /// (member `q` is bit `q % 64` of word `q / 64`). Visit them lowest first with
    /// `trailing_zeros` and `bits &= bits - 1`.
    fn word(&self, w: usize, within: &Range<usize>, except: &Range<usize>) -> u64 {
        self.words[w] & range_mask(w, within) & !range_mask(w, except)
    }

    /// Of `bits` (members of word `w`), those whose queue's bound in `bounds` has come (is at or
    /// before `now`), found without a branch per queue: which bounds have passed is
    /// unpredictable, and a mispredicted branch per queue costs more than looking at them all.
    #[inline]
    fn passed(mut bits: u64, w: usize, bounds: &[Cycle], now: Cycle) -> u64 {
        let mut passed = 0;
        while bits != 0 {
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            passed |= u64::from(bounds[w * 64 + i as usize] <= now) << i;
        }
        passed
    }

    /// The words that hold members of `range` (empty for an empty range).
    fn words_of(range: &Range<usize>) -> Range<usize> {
        if range.is_empty() {
            0..0
        } else {
            range.start / 64..(range.end - 1) / 64 + 1
        }
    }
}

/// The bits of word `w` (queues `64 w ..= 64 w + 63`) that lie in `range`.
fn range_mask(w: usize, range: &Range<usize>) -> u64 {
    let (lo, hi) = (w * 64, w * 64 + 64);
    let (from, end) = (range.start.max(lo), range.end.min(hi));
    if from >= end {
        return 0;
    }
    let width = end - from;
    let ones = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    ones << (from - lo)
}

impl Channel {
    fn new(index: u32, config: &DramConfig, encryption: Encryption) -> Channel {
        let p = config.params();
        let g = &p.geometry;
        let c = &p.controller;
        let banks = (g.ranks * g.banks_per_rank()) as usize;
        let queues = match c.queue_structure {
            QueueStructure::PerBank => banks,
            QueueStructure::PerRank => g.ranks as usize,
        };
        let command_queue_entries = c.command_queue_entries as usize;
        let transaction_queue_entries = c.transaction_queue_entries as usize;
        Channel {
            index,
            ranks: g.ranks,
            bankgroups: g.bankgroups,
            banks_per_group: g.banks_per_group,
            page_policy: c.page_policy,
            queue_structure: c.queue_structure,
            command_queue_entries,
            transaction_queue_entries,
            write_drain: c.write_drain,
            idle_write_drain_cycles: c.idle_write_drain_cycles.map(u64::from),
            row_hit_cap: c.row_hit_cap,
            t_cl_cycles: u64::from(p.timing.t_cl_cycles),
            t_cwl_cycles: u64::from(p.timing.t_cwl_cycles),
            t_burst_cycles: u64::from(p.timing.t_burst_cycles),
            crypto: match encryption {
                Encryption::Off => None,
                Encryption::On => Some(CryptoStage::new(&p.crypto)),
            },
            banks: vec![BankState::Closed; banks],
            timing: ChannelTiming::new(&p.timing, g),
            refresh: RefreshScheduler::new(p.timing.t_refi_cycles, g.ranks),
            read_queue: VecDeque::with_capacity(transaction_queue_entries),
            write_buffer: VecDeque::with_capacity(transaction_queue_entries),
            encrypting: VecDeque::with_capacity(transaction_queue_entries),
            pending_reads: DetHashMap::default(),
            coalesced_waiting: 0,
            pending_writes: DetHashMap::default(),
            queued_writes: DetHashMap::default(),
            command_queues: (0..queues)
                .map(|_| Vec::with_capacity(command_queue_entries))
                .collect(),
            // DRAMsim3 starts at 0 and advances before looking, so queue 1 is searched first.
            queue_cursor: 0,
            write_draining: 0,
            drain_aborted: false,
            flush_writes: false,
            completions: CompletionQueue::new(),
            departures: 0,
            outstanding: 0,
            last_activity: Cycle::ZERO,
            stats: DramStats::default(),
            nonempty: QueueSet::new(queues),
            full: QueueSet::new(queues),
            queue_ready: vec![Cycle::ZERO; queues],
            wake: Cycle::ZERO,
            next_event: Cycle::ZERO,
            step5_settled: false,
            exhaustive: false,
        }
    }

    fn bank_index(&self, b: BankId) -> usize {
        self.timing.bank_index(b)
    }

    fn queue_index(&self, b: BankId) -> usize {
        match self.queue_structure {
            QueueStructure::PerBank => self.bank_index(b),
            QueueStructure::PerRank => b.rank as usize,
        }
    }

    fn queue_rank(&self, queue: usize) -> u32 {
        match self.queue_structure {
            QueueStructure::PerBank => (queue as u32) / (self.bankgroups * self.banks_per_group),
            QueueStructure::PerRank => queue as u32,
        }
    }

    /// The command queues of `rank` (contiguous: queues are numbered rank-major).
    fn rank_queues(&self, rank: u32) -> Range<usize> {
        let per_rank = match self.queue_structure {
            QueueStructure::PerBank => (self.bankgroups * self.banks_per_group) as usize,
            QueueStructure::PerRank => 1,
        };
        let first = rank as usize * per_rank;
        first..first + per_rank
    }

    fn column_command(&self, op: MemOp) -> ColumnCommand {
        match (self.page_policy, op) {
            (PagePolicy::Open, MemOp::Read) => ColumnCommand::Read,
            (PagePolicy::Open, MemOp::Write) => ColumnCommand::Write,
            (PagePolicy::Closed, MemOp::Read) => ColumnCommand::ReadPrecharge,
            (PagePolicy::Closed, MemOp::Write) => ColumnCommand::WritePrecharge,
        }
    }

    /// The drain rule in force: the configured one, or while flushing the same rule with its
    /// least threshold (any write at all).
    fn drain_rule(&self) -> WriteDrain {
        match (self.flush_writes, self.write_drain) {
            (false, rule) => rule,
            (true, WriteDrain::CommandQueuesEmpty { .. }) => {
                WriteDrain::CommandQueuesEmpty { above: 0 }
            }
            (true, WriteDrain::ReadQueueEmpty { .. }) => WriteDrain::ReadQueueEmpty { at_least: 1 },
        }
    }

    /// Whether step 5 at `now`, with no drain running, starts one (DRAMsim3's
    /// `ScheduleTransaction` decision): the write buffer is full, the drain rule fires, or the
    /// idle drain's timeout has passed.
    fn drain_starts(&self, now: Cycle) -> bool {
        let writes = self.write_buffer.len();
        if writes == 0 {
            return false;
        }
        let rule = match self.drain_rule() {
            WriteDrain::CommandQueuesEmpty { above } => {
                writes > above as usize && self.nonempty.is_empty()
            }
            WriteDrain::ReadQueueEmpty { at_least } => {
                self.read_queue.is_empty() && writes >= at_least as usize
            }
        };
        writes >= self.transaction_queue_entries
            || rule
            || self.idle_drain_deadline().is_some_and(|at| now >= at)
    }

    /// With idle write drain on, writes buffered and the read queue and every command queue
    /// empty: the cycle the buffer drains if the channel stays idle (its last activity plus the
    /// timeout). `None` otherwise, or while a drain runs.
    fn idle_drain_deadline(&self) -> Option<Cycle> {
        let timeout = self.idle_write_drain_cycles?;
        (self.write_draining == 0
            && !self.write_buffer.is_empty()
            && self.read_queue.is_empty()
            && self.nonempty.is_empty())
        .then(|| self.last_activity.plus(timeout))
    }

    // ---- acceptance -------------------------------------------------------------------

    fn try_submit(&mut self, now: Cycle, mut txn: Txn) -> Result<(), QueueFull> {
        txn.queue = self.queue_index(txn.bank()) as u32;
        let line = txn.line.raw();
        match txn.op {
            MemOp::Read => {
                // DRAMsim3 (`WillAcceptTransaction`) refuses any read while the read queue is full,
                // even one that would be forwarded or coalesced and take no slot.
                if self.read_queue.len() >= self.transaction_queue_entries {
                    return Err(QueueFull {
                        channel: self.index,
                        queue: "read queue",
                        entries: self.transaction_queue_entries as u32,
                    });
                }
                self.stats.reads.inc();
                self.outstanding += 1;
                self.last_activity = now;
                if self.pending_writes.contains_key(&line) {
                    // DRAMsim3 answers from the write buffer one cycle after acceptance.
                    self.stats.reads_forwarded.inc();
                    self.completions.push(
                        txn.accepted.plus(1),
                        PendingCompletion {
                            txn,
                            source: CompletionSource::ForwardedFromWrite,
                        },
                    );
                } else if let Some((_, waiting)) = self.pending_reads.get_mut(&line) {
                    self.stats.reads_coalesced.inc();
                    waiting.push(txn);
                    self.coalesced_waiting += 1;
                } else {
                    self.pending_reads.insert(line, (txn, Vec::new()));
                    self.read_queue.push_back(txn);
                }
            }
            MemOp::Write => {
                if self.write_buffer.len() + self.encrypting.len() >= self.transaction_queue_entries
                {
                    return Err(QueueFull {
                        channel: self.index,
                        queue: "write buffer",
                        entries: self.transaction_queue_entries as u32,
                    });
                }
                self.stats.writes.inc();
                self.outstanding += 1;
                self.last_activity = now;
                *self.pending_writes.entry(line).or_insert(0) += 1;
                match &mut self.crypto {
                    Some(crypto) if txn.crypto => {
                        let ready = crypto.encrypt.admit(txn.accepted);
                        self.encrypting.push_back((ready, txn));
                    }
                    // A plaintext write skips the AES latency but not the writes ahead of it in
                    // the write path: it may not overtake an earlier write to the same line.
                    Some(_) => match self.encrypting.back() {
                        Some(&(last_ready, _)) => {
                            self.encrypting
                                .push_back((txn.accepted.max(last_ready), txn));
                        }
                        None => self.enter_write_buffer(txn, txn.accepted),
                    },
                    None => self.enter_write_buffer(txn, txn.accepted),
                }
            }
        }
        // Step 5 had nothing left to do at the end of the last tick (or `wake` already asks
        // for the next cycle); this request may change that, a read by entering the read queue,
        // a write by reaching the write drain threshold.
        if !self.step_five_idle(now) {
            self.wake = self.wake.min(txn.accepted);
            self.step5_settled = false;
        } else if let Some(at) = self.idle_drain_deadline() {
            // A write that went straight to the write buffer may start the idle drain's wait.
            self.wake = self.wake.min(at);
        }
        // A forwarded read, a merged write or a write entering the encrypt stage may also
        // bring the next event forward.
        self.update_next_event();
        Ok(())
    }

    /// A write reaches the write buffer at `at`: it merges into a queued write to the same line
    /// (DRAMsim3 drops the younger write's DRAM access) or takes a slot.
    fn enter_write_buffer(&mut self, txn: Txn, at: Cycle) {
        self.step5_settled = false;
        let line = txn.line.raw();
        if let Some(&into) = self.queued_writes.get(&line) {
            self.departures += 1;
            self.stats.writes_merged.inc();
            self.release_pending_write(line);
            self.completions.push(
                at,
                PendingCompletion {
                    txn,
                    source: CompletionSource::MergedInto { into },
                },
            );
        } else {
            self.queued_writes.insert(line, txn.id);
            self.write_buffer.push_back(txn);
        }
    }

    fn release_pending_write(&mut self, line: u64) {
        let n = self
            .pending_writes
            .get_mut(&line)
            .unwrap_or_else(|| panic!("no pending write to line {line:#x}"));
        *n -= 1;
        if *n == 0 {
            self.pending_writes.remove(&line);
        }
    }

    // ---- one cycle --------------------------------------------------------------------

    fn tick(
        &mut self,
        now: Cycle,
        out: &mut Vec<DramCompletion>,
        log: Option<&mut Vec<IssuedCommand>>,
    ) {
        // Callers may tick on cycles where nothing can happen (a memory system ticks every
        // controller up to the cycle it needs); such a tick changes nothing, so return at once.
        if !self.exhaustive && self.quiet_at(now) {
            #[cfg(debug_assertions)]
            self.assert_quiet(now);
            return;
        }

        // 1. Writes leaving the encrypt stage are added before this cycle's work, as DRAMsim3
        //    adds transactions between two clock ticks.
        while let Some(&(ready, txn)) = self.encrypting.front() {
            if ready > now {
                break;
            }
            self.encrypting.pop_front();
            self.departures += 1;
            self.enter_write_buffer(txn, ready);
        }

        // 2. Deliver completions whose data cycle has come (DRAMsim3 `ReturnDoneTrans`).
        while let Some((data_cycle, pending)) = self.completions.pop_due(now) {
            self.deliver(data_cycle, pending, out);
        }

        // 3. Refresh bookkeeping.
        self.refresh.on_cycle(now);

        // 4. At most one command per cycle on the command bus; a due refresh comes first.
        let mut selected = None;
        if let Some(rank) = self.refresh.due() {
            self.refresh.begin(rank);
            selected = self.refresh_command(rank, now);
        }
        if selected.is_none() {
            selected = if self.exhaustive {
                self.select_exhaustive(now)
            } else {
                self.select_from_queues(now)
            };
        }
        if let Some(sel) = selected {
            let issued = self.issue(sel, now);
            if let Some(log) = log {
                log.push(issued);
            }
        }

        // 5. Move one transaction into its command queue.
        let moved = self.schedule_transaction(now);

        if !self.exhaustive {
            self.plan(now, moved);
        }
    }

    fn deliver(&mut self, data_cycle: Cycle, p: PendingCompletion, out: &mut Vec<DramCompletion>) {
        let done = match (p.txn.op, &mut self.crypto) {
            (MemOp::Read, Some(crypto)) if p.txn.crypto => crypto.decrypt.admit(data_cycle),
            (MemOp::Read, _) | (MemOp::Write, _) => data_cycle,
        };
        match (p.txn.op, p.source) {
            (MemOp::Read, _) => self.stats.read_latency.record(done.since(p.txn.accepted)),
            (MemOp::Write, CompletionSource::Bus { .. }) => self
                .stats
                .write_latency
                .record(data_cycle.since(p.txn.accepted)),
            (MemOp::Write, CompletionSource::MergedInto { .. })
            | (MemOp::Write, CompletionSource::ForwardedFromWrite) => {}
        }
        self.outstanding -= 1;
        self.last_activity = data_cycle;
        out.push(DramCompletion {
            id: p.txn.id,
            op: p.txn.op,
            addr: p.txn.line,
            accepted: p.txn.accepted,
            data_cycle,
            done,
            source: p.source,
        });
    }

    /// DRAMsim3 `CommandQueue::FinishRefresh` + `ChannelState::GetReadyCommand` for REF: the
    /// first open bank of the rank (in bank-group, bank order) whose PRE is ready, else REF if
    /// every bank is closed and ready for it, else nothing this cycle.
    fn refresh_command(&self, rank: u32, now: Cycle) -> Option<Selected> {
        let mut all_ready = true;
        for bankgroup in 0..self.bankgroups {
            for bank in 0..self.banks_per_group {
                let b = BankId {
                    rank,
                    bankgroup,
                    bank,
                };
                let command = bank::required_for_refresh(self.banks[self.bank_index(b)]);
                if self.timing.ready(b, command.kind(), now) {
                    if command == BankCommand::Precharge {
                        return Some(Selected {
                            bank: b,
                            command,
                            origin: Origin::Refresh,
                        });
                    }
                } else {
                    all_ready = false;
                }
            }
        }
        all_ready.then_some(Selected {
            bank: BankId {
                rank,
                bankgroup: 0,
                bank: 0,
            },
            command: BankCommand::Refresh,
            origin: Origin::Refresh,
        })
    }

    /// DRAMsim3 `CommandQueue::GetCommandToIssue`: round-robin over the command queues,
    /// skipping those of a rank being refreshed, as DRAMsim3 does it: every queue, every
    /// entry. The reference for [`Channel::select_from_queues`]; the cursor ends on the queue
    /// that issued, or where it started when none did.
    fn select_exhaustive(&mut self, now: Cycle) -> Option<Selected> {
        let (q, sel) = self.reference_selection(now, self.refresh.held_rank())?;
        self.queue_cursor = q;
        Some(sel)
    }

    /// The queue and command DRAMsim3's search would pick at `now` with the queues of `held`
    /// skipped, without moving the cursor.
    fn reference_selection(&self, now: Cycle, held: Option<u32>) -> Option<(usize, Selected)> {
        let n = self.command_queues.len();
        let mut q = self.queue_cursor;
        for _ in 0..n {
            q = (q + 1) % n;
            if held == Some(self.queue_rank(q)) {
                continue;
            }
            if let Some(sel) = self.first_ready_in_queue(q, now) {
                return Some((q, sel));
            }
        }
        None
    }

    /// [`Channel::select_exhaustive`], visiting only the queues that hold entries and whose
    /// `queue_ready` bound has come. The others would be scanned and yield nothing, and the
    /// cursor only moves when a queue issues, so the choice is the same; the debug build
    /// checks it on every tick.
    fn select_from_queues(&mut self, now: Cycle) -> Option<Selected> {
        let n = self.command_queues.len();
        let held_rank = self.refresh.held_rank();
        let held = held_rank.map_or(0..0, |rank| self.rank_queues(rank));
        let start = (self.queue_cursor + 1) % n;
        let mut selected = None;
        // Round-robin: the queues from `start` on, then those before it.
        'search: for range in [start..n, 0..start] {
            for w in QueueSet::words_of(&range) {
                let members = self.nonempty.word(w, &range, &held);
                let mut bits = QueueSet::passed(members, w, &self.queue_ready, now);
                while bits != 0 {
                    let q = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    match self.scan_queue(q, now) {
                        Ok(sel) => {
                            selected = Some((q, sel));
                            break 'search;
                        }
                        Err(ready) => self.queue_ready[q] = ready,
                    }
                }
            }
        }
        #[cfg(debug_assertions)]
        {
            let reference = self.reference_selection(now, held_rank);
            assert_eq!(
                selected, reference,
                "cycle {now}: channel {}: the skipping scheduler chose differently from the \
                 exhaustive one",
                self.index
            );
        }
        let (q, sel) = selected?;
        self.queue_cursor = q;
        Some(sel)
    }

    /// [`Channel::first_ready_in_queue`] that, when nothing in queue `q` may issue at `now`,
    /// returns the first cycle at which something may if no other command issues before:
    /// the earliest ready cycle among the entries whose command the FR-FCFS rules allow.
    /// Whether a rule allows an entry depends only on the queue and the bank states, not on
    /// time, so an entry disallowed now stays disallowed until one of those changes.
    fn scan_queue(&self, q: usize, now: Cycle) -> Result<Selected, Cycle> {
        if self.queue_structure == QueueStructure::PerBank {
            return self.scan_bank_queue(q, now);
        }
        let queue = &self.command_queues[q];
        // In a per-bank queue every entry is for the same bank, so (1) on a closed bank every
        // entry needs the same ACT, always allowed, and only the oldest can be chosen or set the
        // bound; (2) only the oldest entry may PRE (`arbitrate_precharge`'s first rule).
        let per_bank = self.queue_structure == QueueStructure::PerBank;
        let mut ready = Cycle::NEVER;
        for (index, qc) in queue.iter().enumerate() {
            let bank_index = qc.bank_index as usize;
            let state = self.banks[bank_index];
            let command = bank::required_command(state, qc.txn.loc.row, qc.column);
            if per_bank && index > 0 && command == BankCommand::Precharge {
                continue;
            }
            let at = self.timing.ready_at(qc.bank, bank_index, command.kind());
            // Neither issuable now nor earlier than an entry already found: the (costlier)
            // FR-FCFS rules need not be asked.
            if (at > now && at >= ready) || !self.allowed(q, index, command, state) {
                continue;
            }
            if at <= now {
                return Ok(Selected {
                    bank: qc.bank,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
            ready = at;
            if per_bank && state == BankState::Closed {
                break;
            }
        }
        Err(ready)
    }

    /// [`Channel::scan_queue`] for a per-bank queue, whose entries all share one bank: its
    /// state and the ready cycles of its commands are looked up once for the whole queue, not
    /// entry by entry. On a closed bank every entry needs the same ACT, so the oldest decides;
    /// on an open one an entry needs its column command (READ or WRITE class) if it hits the
    /// open row, else PRE, which only the oldest entry may issue. Then the same FR-FCFS walk,
    /// with [`Channel::allowed`]'s rules asked without comparing banks (every entry has the
    /// same): PRE (of the oldest entry) only when no entry hits the open row or the row has
    /// served `row_hit_cap` column commands; a WRITE only with no older READ of its line.
    #[inline]
    fn scan_bank_queue(&self, q: usize, now: Cycle) -> Result<Selected, Cycle> {
        let queue = &self.command_queues[q];
        let Some(first) = queue.first() else {
            return Err(Cycle::NEVER);
        };
        let (bank, bank_index) = (first.bank, first.bank_index as usize);
        let state = self.banks[bank_index];
        let open = match state {
            BankState::Closed => {
                let at = self
                    .timing
                    .ready_at(bank, bank_index, CommandKind::Activate);
                return if at <= now {
                    Ok(Selected {
                        bank,
                        command: BankCommand::Activate {
                            row: first.txn.loc.row,
                        },
                        origin: Origin::Queue { queue: q, index: 0 },
                    })
                } else {
                    Err(at)
                };
            }
            BankState::Open {
                row,
                column_commands,
            } => (row, column_commands),
        };
        let (open, column_commands) = open;
        let [read_at, write_at, precharge_at] =
            self.timing.ready_at_column_and_precharge(bank, bank_index);
        let mut ready = Cycle::NEVER;
        for (index, qc) in queue.iter().enumerate() {
            let (command, at) = if qc.txn.loc.row == open {
                let at = if qc.column.is_write() {
                    write_at
                } else {
                    read_at
                };
                (qc.column.command(), at)
            } else if index == 0 {
                (BankCommand::Precharge, precharge_at)
            } else {
                continue;
            };
            if at > now && at >= ready {
                continue;
            }
            let allowed = match command {
                BankCommand::Precharge => {
                    column_commands >= self.row_hit_cap
                        || !queue.iter().any(|p| p.txn.loc.row == open)
                }
                BankCommand::Write | BankCommand::WritePrecharge => {
                    !queue[..index].iter().any(|p| {
                        !p.column.is_write()
                            && p.txn.loc.row == qc.txn.loc.row
                            && p.txn.loc.column == qc.txn.loc.column
                    })
                }
                BankCommand::Activate { .. }
                | BankCommand::Read
                | BankCommand::ReadPrecharge
                | BankCommand::Refresh => true,
            };
            if !allowed {
                continue;
            }
            if at <= now {
                return Ok(Selected {
                    bank,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
            ready = at;
        }
        Err(ready)
    }

    /// The first cycle at which the due refresh of `rank` can issue a command if nothing else
    /// issues before ([`Channel::refresh_command`]): the earliest PRE of an open bank, or once
    /// every bank is closed, the cycle all of them allow REF.
    fn refresh_ready_at(&self, rank: u32) -> Cycle {
        let mut pre = Cycle::NEVER;
        let mut refresh = Cycle::ZERO;
        for bankgroup in 0..self.bankgroups {
            for bank in 0..self.banks_per_group {
                let b = BankId {
                    rank,
                    bankgroup,
                    bank,
                };
                let i = self.bank_index(b);
                match self.banks[i] {
                    BankState::Open { .. } => {
                        pre = pre.min(self.timing.ready_at(b, i, CommandKind::Precharge));
                    }
                    BankState::Closed => {
                        let at = self.timing.ready_at(b, i, CommandKind::Refresh);
                        refresh = cmp::max(refresh, at);
                    }
                }
            }
        }
        if pre < Cycle::NEVER { pre } else { refresh }
    }

    /// End of a tick that did work: the first cycle at which steps 4 and 5 can change anything
    /// if no request arrives (`wake`). `moved`: step 5 changed something this tick.
    fn plan(&mut self, now: Cycle, moved: bool) {
        let next = now.plus(1);
        // Step 5 is a function of the queues alone. If it changed nothing this tick (after
        // this tick's command), it changes nothing until a command issues or a request
        // arrives, both of which re-plan; if it did, ask it again.
        if moved {
            self.step5_settled = self.step_five_idle(now);
        }
        let mut wake = if self.step5_settled {
            // Settled step 5 still starts an idle drain once the timeout passes.
            self.idle_drain_deadline().unwrap_or(Cycle::NEVER)
        } else {
            next
        };
        if let Some(rank) = self.refresh.due() {
            wake = wake.min(self.refresh_ready_at(rank));
        }
        // A held rank's queues wait for its REF, whose issue re-plans.
        let held = self
            .refresh
            .next_held_rank()
            .map_or(0..0, |rank| self.rank_queues(rank));
        let all = 0..self.command_queues.len();
        // Once `wake` is the next cycle nothing can lower it and no bound need be refreshed:
        // the walk over the queues stops there (or never starts). Otherwise, first the bounds
        // still to come, then the passed ones (the queue's entries or bank changed, another
        // command delayed it, or round-robin passed it over) are scanned for their real bound
        // until one says the next cycle. A passed bound left alone is still a valid lower bound
        // for the next tick's search, which refreshes it.
        if wake > next {
            for w in QueueSet::words_of(&all) {
                let mut bits = self.nonempty.word(w, &all, &held);
                let mut passed = 0u64;
                while bits != 0 {
                    let i = bits.trailing_zeros();
                    bits &= bits - 1;
                    let bound = self.queue_ready[w * 64 + i as usize];
                    let is_passed = bound <= now;
                    passed |= u64::from(is_passed) << i;
                    wake = wake.min(if is_passed { Cycle::NEVER } else { bound });
                }
                while passed != 0 && wake > next {
                    let q = w * 64 + passed.trailing_zeros() as usize;
                    passed &= passed - 1;
                    let ready = match self.scan_queue(q, now) {
                        Ok(_) => next,
                        Err(ready) => ready,
                    };
                    self.queue_ready[q] = ready;
                    wake = wake.min(ready);
                }
            }
        }
        self.wake = cmp::max(wake, next);
        self.update_next_event();
    }

    /// Recomputes `next_event` after a change to any of its parts.
    fn update_next_event(&mut self) {
        let mut next = self.wake.min(self.refresh.next_trigger());
        if let Some(c) = self.completions.peek_cycle() {
            next = next.min(c);
        }
        if let Some(&(ready, _)) = self.encrypting.front() {
            next = next.min(ready);
        }
        self.next_event = next;
    }

    /// True when `tick(now)` would change nothing: no write leaves the encrypt stage, no
    /// completion is due, no refresh triggers, and steps 4 and 5 have nothing before `wake`.
    fn quiet_at(&self, now: Cycle) -> bool {
        let quiet = now < self.next_event;
        #[cfg(debug_assertions)]
        if quiet {
            assert!(
                now < self.wake
                    && self.completions.peek_cycle().is_none_or(|c| c > now)
                    && self
                        .encrypting
                        .front()
                        .is_none_or(|&(ready, _)| ready > now)
                    && !self.refresh.triggers_at(now),
                "cycle {now}: channel {}: next_event {} is stale",
                self.index,
                self.next_event
            );
        }
        quiet
    }

    /// Debug builds: a tick skipped as quiet would indeed have done nothing.
    #[cfg(debug_assertions)]
    fn assert_quiet(&self, now: Cycle) {
        let index = self.index;
        if let Some(rank) = self.refresh.due() {
            assert!(
                self.refresh_command(rank, now).is_none(),
                "cycle {now}: channel {index}: a quiet tick skipped a refresh command"
            );
        }
        assert!(
            self.reference_selection(now, self.refresh.next_held_rank())
                .is_none(),
            "cycle {now}: channel {index}: a quiet tick skipped a ready command"
        );
        assert!(
            self.step_five_idle(now),
            "cycle {now}: channel {index}: a quiet tick skipped a transaction move"
        );
    }

    /// FR-FCFS within one queue (DRAMsim3 `GetFirstReadyInQueue`): the oldest entry whose next
    /// command meets its timing, where a PRE is only allowed for the oldest entry of its bank
    /// and only when no queued row hit to the open row remains (or the row already served
    /// `row_hit_cap` column commands), and a WRITE never passes an older READ of the same
    /// location.
    fn first_ready_in_queue(&self, q: usize, now: Cycle) -> Option<Selected> {
        let queue = &self.command_queues[q];
        for (index, qc) in queue.iter().enumerate() {
            let b = qc.txn.bank();
            let state = self.banks[self.bank_index(b)];
            let command = bank::required_command(state, qc.txn.loc.row, qc.column);
            if !self.timing.ready(b, command.kind(), now) {
                continue;
            }
            if self.allowed(q, index, command, state) {
                return Some(Selected {
                    bank: b,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
        }
        None
    }

    /// The FR-FCFS rules beyond timing for entry `index` of queue `q`, whose bank is in `state`
    /// and needs `command`.
    #[inline]
    fn allowed(&self, q: usize, index: usize, command: BankCommand, state: BankState) -> bool {
        match command {
            BankCommand::Precharge => self.arbitrate_precharge(q, index, state),
            BankCommand::Write | BankCommand::WritePrecharge => !self.has_rw_dependency(q, index),
            BankCommand::Activate { .. }
            | BankCommand::Read
            | BankCommand::ReadPrecharge
            | BankCommand::Refresh => true,
        }
    }

    /// DRAMsim3 `ArbitratePrecharge`.
    fn arbitrate_precharge(&self, q: usize, index: usize, state: BankState) -> bool {
        let queue = &self.command_queues[q];
        let b = queue[index].txn.bank();
        if queue.iter().take(index).any(|p| p.txn.bank() == b) {
            return false;
        }
        let (open_row, column_commands) = match state {
            BankState::Open {
                row,
                column_commands,
            } => (row, column_commands),
            BankState::Closed => panic!("PRE requested for closed bank {b:?}"),
        };
        let pending_hits = queue
            .iter()
            .skip(index)
            .any(|p| p.txn.bank() == b && p.txn.loc.row == open_row);
        !pending_hits || column_commands >= self.row_hit_cap
    }

    /// DRAMsim3 `HasRWDependency`: an older READ of the same location in the same queue.
    fn has_rw_dependency(&self, q: usize, index: usize) -> bool {
        let queue = &self.command_queues[q];
        let w = queue[index].txn;
        queue.iter().take(index).any(|p| {
            !p.column.is_write()
                && p.txn.bank() == w.bank()
                && p.txn.loc.row == w.loc.row
                && p.txn.loc.column == w.loc.column
        })
    }

    fn issue(&mut self, sel: Selected, now: Cycle) -> IssuedCommand {
        let b = sel.bank;
        let kind = sel.command.kind();
        let mut row = None;
        let mut request = None;
        // Refresh is not progress: a channel that only refreshes while requests wait is stuck,
        // and the trace driver's watchdog must see it.
        if !matches!(sel.command, BankCommand::Refresh) {
            self.last_activity = now;
        }
        match sel.command {
            BankCommand::Refresh => {
                for bankgroup in 0..self.bankgroups {
                    for bank in 0..self.banks_per_group {
                        let id = BankId {
                            rank: b.rank,
                            bankgroup,
                            bank,
                        };
                        let idx = self.bank_index(id);
                        self.banks[idx] = self.apply(id, BankCommand::Refresh, now).next;
                    }
                }
                // Every bank of the rank was closed and stays closed: no queue's entries need
                // another command, they only wait longer (tRFC), so `queue_ready` stays a bound.
                self.stats.refs.inc();
                self.refresh.done(b.rank);
            }
            BankCommand::Activate { row: r } => {
                row = Some(r);
                let idx = self.bank_index(b);
                self.banks[idx] = self.apply(b, sel.command, now).next;
                let q = self.queue_index(b);
                self.queue_ready[q] = Cycle::ZERO;
                self.stats.acts.inc();
            }
            BankCommand::Precharge => {
                let idx = self.bank_index(b);
                self.banks[idx] = self.apply(b, sel.command, now).next;
                // Also for a refresh's PRE: the bank's queue needs ACT now, not PRE.
                let q = self.queue_index(b);
                self.queue_ready[q] = Cycle::ZERO;
                self.stats.pres.inc();
            }
            BankCommand::Read
            | BankCommand::ReadPrecharge
            | BankCommand::Write
            | BankCommand::WritePrecharge => {
                let Origin::Queue { queue, index } = sel.origin else {
                    panic!("cycle {now}: column command {kind} without a queued request");
                };
                let qc = self.command_queues[queue].remove(index);
                self.full.remove(queue);
                if self.command_queues[queue].is_empty() {
                    self.nonempty.remove(queue);
                }
                self.queue_ready[queue] = Cycle::ZERO;
                // A command queue slot is free, and a pending read or queued write is gone.
                self.step5_settled = false;
                row = Some(qc.txn.loc.row);
                request = Some(qc.txn.id);
                let idx = self.bank_index(b);
                let t = self.apply(b, sel.command, now);
                self.banks[idx] = t.next;
                if kind.is_read() {
                    self.stats.read_cmds.inc();
                    if t.row_hit {
                        self.stats.read_row_hits.inc();
                    }
                    self.read_issued(qc.txn, now);
                } else {
                    self.stats.write_cmds.inc();
                    if t.row_hit {
                        self.stats.write_row_hits.inc();
                    }
                    self.write_issued(qc.txn, now);
                }
            }
        }
        self.timing.record(b, kind, now);
        IssuedCommand {
            cycle: now,
            channel: self.index,
            rank: b.rank,
            bankgroup: b.bankgroup,
            bank: b.bank,
            kind,
            row,
            request,
        }
    }

    /// The bank state machine, with the model-bug assertion the style guide asks for.
    fn apply(&self, b: BankId, command: BankCommand, now: Cycle) -> bank::Transition {
        bank::transition(self.banks[self.bank_index(b)], command).unwrap_or_else(|e| {
            panic!(
                "cycle {now}: channel {} rank {} bg {} bank {}: {e}",
                self.index, b.rank, b.bankgroup, b.bank
            )
        })
    }

    fn read_issued(&mut self, txn: Txn, now: Cycle) {
        let (head, coalesced) = self
            .pending_reads
            .remove(&txn.line.raw())
            .unwrap_or_else(|| panic!("cycle {now}: READ for {} with no pending read", txn.line));
        assert_eq!(head.id, txn.id, "the queued read heads its line's waiters");
        self.coalesced_waiting -= coalesced.len();
        let burst_start = now.plus(self.t_cl_cycles);
        let burst_end = burst_start.plus(self.t_burst_cycles);
        for w in std::iter::once(head).chain(coalesced) {
            self.completions.push(
                burst_end,
                PendingCompletion {
                    txn: w,
                    source: CompletionSource::Bus {
                        burst_start,
                        burst_end,
                    },
                },
            );
        }
    }

    fn write_issued(&mut self, txn: Txn, now: Cycle) {
        let line = txn.line.raw();
        let queued = self.queued_writes.remove(&line);
        assert_eq!(
            queued,
            Some(txn.id),
            "cycle {now}: WRITE for {} is not the queued write",
            txn.line
        );
        self.release_pending_write(line);
        let burst_start = now.plus(self.t_cwl_cycles);
        let burst_end = burst_start.plus(self.t_burst_cycles);
        self.completions.push(
            burst_end,
            PendingCompletion {
                txn,
                source: CompletionSource::Bus {
                    burst_start,
                    burst_end,
                },
            },
        );
    }

    /// DRAMsim3 `ScheduleTransaction`. Returns whether anything changed (a transaction moved,
    /// or draining started or stopped).
    fn schedule_transaction(&mut self, now: Cycle) -> bool {
        if self.step5_settled
            && !self.exhaustive
            && self.idle_drain_deadline().is_none_or(|at| now < at)
        {
            #[cfg(debug_assertions)]
            assert!(
                self.step_five_idle(now),
                "cycle {now}: channel {}: step 5 marked settled but has work",
                self.index
            );
            return false;
        }
        let StepFive {
            write_draining,
            drain_aborted,
            chosen,
        } = self.transaction_move(now);
        let changed = write_draining != self.write_draining
            || drain_aborted != self.drain_aborted
            || chosen.is_some();
        self.step5_settled = !changed;
        self.write_draining = write_draining;
        self.drain_aborted = drain_aborted;
        if let Some(mv) = chosen {
            self.departures += 1;
            let txn = match mv.from {
                TxnSource::ReadQueue => self.read_queue.remove(mv.index),
                TxnSource::WriteBuffer => self.write_buffer.remove(mv.index),
            }
            .expect("chosen transaction exists");
            let column = self.column_command(txn.op);
            let bank = txn.bank();
            let bank_index = self.bank_index(bank) as u32;
            self.command_queues[mv.queue].push(QueuedCmd {
                txn,
                column,
                bank,
                bank_index,
            });
            self.nonempty.insert(mv.queue);
            if self.command_queues[mv.queue].len() >= self.command_queue_entries {
                self.full.insert(mv.queue);
            }
            self.queue_ready[mv.queue] = Cycle::ZERO;
        }
        changed
    }

    /// True when step 5 would change nothing at `now`.
    fn step_five_idle(&self, now: Cycle) -> bool {
        self.transaction_move(now)
            == StepFive {
                write_draining: self.write_draining,
                drain_aborted: self.drain_aborted,
                chosen: None,
            }
    }

    /// What [`Channel::schedule_transaction`] does at `now`, without doing it. Draining starts
    /// when the write buffer is full or the drain rule fires ([`Channel::drain_starts`]); while
    /// it lasts, writes move in buffer order, each into a command queue with room, and it stops
    /// early at a write with a pending read of its line (a write never overtakes a read of its
    /// line). All of this is DRAMsim3's `ScheduleTransaction`, with one difference: when that
    /// early stop happens because the read is still in the read queue, DRAMsim3 would restart
    /// the drain on the next cycle (the buffer is still full) and stop again, forever, since
    /// the read can only move when no drain runs. Here the decision after such a stop serves
    /// the read queue instead. Where DRAMsim3 makes progress the two behave identically.
    fn transaction_move(&self, now: Cycle) -> StepFive {
        let mut write_draining = self.write_draining;
        if write_draining == 0 && !self.drain_aborted && self.drain_starts(now) {
            write_draining = self.write_buffer.len();
        }
        let (from, candidates) = if write_draining > 0 {
            (TxnSource::WriteBuffer, &self.write_buffer)
        } else {
            (TxnSource::ReadQueue, &self.read_queue)
        };
        for (index, txn) in candidates.iter().enumerate() {
            let queue = txn.queue as usize;
            debug_assert_eq!(
                self.full.contains(queue),
                self.command_queues[queue].len() >= self.command_queue_entries
            );
            if self.full.contains(queue) {
                continue;
            }
            if from == TxnSource::WriteBuffer {
                if self.pending_reads.contains_key(&txn.line.raw()) {
                    let read_stuck = self.read_queue.iter().any(|r| r.line == txn.line);
                    return StepFive {
                        write_draining: 0,
                        drain_aborted: read_stuck,
                        chosen: None,
                    };
                }
                write_draining -= 1;
            }
            return StepFive {
                write_draining,
                drain_aborted: false,
                chosen: Some(TxnMove { from, index, queue }),
            };
        }
        StepFive {
            write_draining,
            drain_aborted: false,
            chosen: None,
        }
    }

    // ---- introspection -----------------------------------------------------------------

    /// True when a tick could do something other than deliver a completion or start a refresh
    /// that is not yet due.
    fn has_work(&self) -> bool {
        self.refresh.due().is_some()
            || !self.read_queue.is_empty()
            || self.write_draining > 0
            || self.drain_may_start()
            || !self.nonempty.is_empty()
    }

    /// Whether buffered writes may start draining without another request arriving: enough of
    /// them for the drain rule (whatever the queues' state), or idle write drain on.
    fn drain_may_start(&self) -> bool {
        let writes = self.write_buffer.len();
        writes > 0
            && (writes >= self.transaction_queue_entries
                || self.idle_write_drain_cycles.is_some()
                || match self.drain_rule() {
                    WriteDrain::CommandQueuesEmpty { above } => writes > above as usize,
                    WriteDrain::ReadQueueEmpty { at_least } => writes >= at_least as usize,
                })
    }

    fn next_event_cycle(&self, now: Cycle) -> Cycle {
        if !self.exhaustive {
            return cmp::max(self.next_event, now.plus(1));
        }
        // DRAMsim3's view: any queued work may do something next cycle.
        let mut next = self.refresh.next_trigger_after(now);
        if let Some(c) = self.completions.peek_cycle() {
            next = next.min(c);
        }
        if let Some(&(ready, _)) = self.encrypting.front() {
            next = next.min(ready);
        }
        if self.has_work() {
            next = next.min(now.plus(1));
        }
        next.max(now.plus(1))
    }
}

/// The DRAM timing model of one memory controller (all channels of one [`DramConfig`]).
///
/// Protocol, per DRAM cycle `now` (strictly increasing; idle cycles may be skipped up to
/// [`DramController::next_event_cycle`]):
///
/// 1. `tick(now, &mut completions)`: advance the model through cycle `now`;
/// 2. `try_submit(now, request)` for each request offered during `now` (each is accepted at
///    `now + 1`, or refused with [`QueueFull`] and must be offered again later).
///
/// ```
/// use mem_ctrl::dram::{DramConfig, DramController, DramRequest, Encryption};
/// use sim_core::{Cycle, DramAddr, MemOp, RequestId};
///
/// let config = DramConfig::preset("ddr4-2400").unwrap();
/// let mut mc = DramController::new(&config, Encryption::Off);
/// let mut done = Vec::new();
/// mc.tick(Cycle::new(0), &mut done);
/// let req = DramRequest { id: RequestId(1), op: MemOp::Read, addr: DramAddr::new(0x40), crypto: true };
/// mc.try_submit(Cycle::new(0), req).unwrap();
/// // Skip idle cycles: tick only when something can happen.
/// while done.is_empty() {
///     let next = mc.next_event_cycle();
///     mc.tick(next, &mut done);
/// }
/// // Accepted at 1, ACT at 2, READ at 2 + tRCD, data at READ + CL + tBurst.
/// assert_eq!(done[0].accepted, Cycle::new(1));
/// assert_eq!(done[0].data_cycle, Cycle::new(2 + 17 + 17 + 4));
/// assert_eq!(done[0].done.since(done[0].accepted), 39); // the closed-bank latency
/// ```
pub struct DramController {
    config: DramConfig,
    encryption: Encryption,
    channels: Vec<Channel>,
    now: Option<Cycle>,
}

impl fmt::Debug for DramController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DramController")
            .field("config", &self.config.name())
            .field("encryption", &self.encryption)
            .field("now", &self.now)
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}

impl DramController {
    /// A controller in its reset state (all banks closed, queues empty, cycle 0 next).
    pub fn new(config: &DramConfig, encryption: Encryption) -> DramController {
        let channels = (0..config.params().geometry.channels)
            .map(|i| Channel::new(i, config, encryption))
            .collect();
        DramController {
            config: config.clone(),
            encryption,
            channels,
            now: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DramConfig {
        &self.config
    }

    /// Whether the encryption stage's timing applies.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// The last cycle ticked, `None` before the first tick.
    pub fn now(&self) -> Option<Cycle> {
        self.now
    }

    /// Offers `request` during cycle `now`, which must be the cycle last ticked. On success the
    /// request is accepted at `now + 1`; when its queue is full nothing changes and the caller
    /// must offer it again on a later cycle.
    ///
    /// # Panics
    ///
    /// If `now` is not the last ticked cycle or the address lies beyond the DRAM (both are bugs
    /// in the caller).
    pub fn try_submit(&mut self, now: Cycle, request: DramRequest) -> Result<(), QueueFull> {
        assert_eq!(
            self.now,
            Some(now),
            "try_submit at cycle {now}: call tick({now}) first (last tick: {:?})",
            self.now
        );
        let line = request.addr.line_base();
        let loc = self
            .config
            .mapping()
            .decode(line)
            .unwrap_or_else(|e| panic!("try_submit({:?}): {e}", request.id));
        let txn = Txn {
            id: request.id,
            op: request.op,
            line,
            loc,
            accepted: now.plus(1),
            crypto: request.crypto,
            queue: 0,
        };
        self.channels[loc.channel as usize].try_submit(now, txn)
    }

    /// Advances the model through cycle `now` and appends the completions delivered in it.
    ///
    /// # Panics
    ///
    /// If `now` is not later than the last ticked cycle.
    pub fn tick(&mut self, now: Cycle, completions: &mut Vec<DramCompletion>) {
        self.step(now, completions, None);
    }

    /// [`DramController::tick`], also appending every command issued in cycle `now` (at most
    /// one per channel).
    pub fn tick_with_commands(
        &mut self,
        now: Cycle,
        completions: &mut Vec<DramCompletion>,
        commands: &mut Vec<IssuedCommand>,
    ) {
        self.step(now, completions, Some(commands));
    }

    fn step(
        &mut self,
        now: Cycle,
        completions: &mut Vec<DramCompletion>,
        mut commands: Option<&mut Vec<IssuedCommand>>,
    ) {
        if let Some(last) = self.now {
            assert!(
                now > last,
                "tick({now}) after tick({last}): time must advance"
            );
            let next = self.next_event_cycle();
            assert!(
                now <= next,
                "tick({now}) skips the event due at cycle {next} (last tick {last})"
            );
        }
        self.now = Some(now);
        for ch in &mut self.channels {
            ch.tick(now, completions, commands.as_deref_mut());
        }
    }

    /// The first cycle after the last tick at which ticking can change anything (a command may
    /// issue, a transaction may move, a completion is due, a refresh becomes due, a write leaves
    /// the encrypt stage). Cycles before it may be skipped. Before the first tick: cycle 0.
    pub fn next_event_cycle(&self) -> Cycle {
        match self.now {
            None => Cycle::ZERO,
            Some(now) => self
                .channels
                .iter()
                .map(|c| c.next_event_cycle(now))
                .min()
                .unwrap_or(Cycle::NEVER),
        }
    }

    /// Requests accepted and not yet delivered.
    pub fn outstanding(&self) -> usize {
        self.channels.iter().map(|c| c.outstanding).sum()
    }

    /// True when the next tick could do work (a command or transaction is waiting, a refresh is
    /// due). With outstanding requests but no work, the controller is waiting for a completion,
    /// for the encrypt stage, or for enough writes to start draining.
    pub fn has_work(&self) -> bool {
        self.channels.iter().any(Channel::has_work)
    }

    /// True when something will happen without another request: a tick has work
    /// ([`DramController::has_work`]: a command or transaction waits, a drain is due or may
    /// start, idle write drain is counting down), a completion is on its way, or a write is in
    /// the encrypt stage. False when the controller is empty, or holds only writes below its
    /// drain rule with idle write drain off: those wait for more writes (or
    /// [`DramController::set_flush_writes`]) and, meanwhile, only refreshes happen.
    pub fn in_progress(&self) -> bool {
        self.channels
            .iter()
            .any(|c| c.has_work() || !c.completions.is_empty() || !c.encrypting.is_empty())
    }

    /// How many requests have left a read queue, a write buffer or an encrypt stage so far (a
    /// count that only grows). A request refused with [`QueueFull`] can be accepted only once it
    /// has grown: until then offering it again is refused again.
    pub fn departures(&self) -> u64 {
        self.channels.iter().map(|c| c.departures).sum()
    }

    /// The last cycle the controller made progress on requests: a request accepted, a command
    /// other than REF issued, or a completion delivered. (Refreshes go on while requests are
    /// stuck, so they do not count.)
    pub fn last_activity(&self) -> Cycle {
        self.channels
            .iter()
            .map(|c| c.last_activity)
            .max()
            .unwrap_or(Cycle::ZERO)
    }

    /// With `on`, the drain rule's threshold drops to its least: writes drain, however few, when
    /// the command queues are empty ([`WriteDrain::CommandQueuesEmpty`]) or when the read queue
    /// is ([`WriteDrain::ReadQueueEmpty`]). Drivers set it once their input is exhausted so
    /// buffered writes reach DRAM (DRAMsim3 leaves writes below its rule in the buffer
    /// indefinitely).
    pub fn set_flush_writes(&mut self, on: bool) {
        for ch in &mut self.channels {
            if ch.flush_writes != on {
                ch.flush_writes = on;
                // The drain threshold changed: the next tick may start draining.
                ch.wake = Cycle::ZERO;
                ch.next_event = Cycle::ZERO;
                ch.step5_settled = false;
            }
        }
    }

    /// With `on`, every tick runs DRAMsim3's full search (every command queue, every entry)
    /// and [`DramController::next_event_cycle`] is the next cycle whenever any work is queued;
    /// with `off` (the default) ticks visit only the queues that hold entries, skip the queues
    /// whose entries cannot be ready yet, return at once when nothing can happen, and
    /// `next_event_cycle` is the first cycle at which something can. Results are identical
    /// either way, cycle by cycle; the exhaustive mode is the reference the tests (and debug
    /// builds, on every tick) check the shortcuts against. It may be switched at any time.
    pub fn set_exhaustive(&mut self, on: bool) {
        for ch in &mut self.channels {
            ch.exhaustive = on;
            // The exhaustive mode does not maintain `wake`: recompute it at the next tick.
            ch.wake = Cycle::ZERO;
            ch.next_event = Cycle::ZERO;
            ch.step5_settled = false;
        }
    }

    /// Statistics of channel `channel`.
    pub fn channel_stats(&self, channel: usize) -> &DramStats {
        &self.channels[channel].stats
    }

    /// Statistics summed over all channels.
    pub fn stats(&self) -> DramStats {
        if let [only] = self.channels.as_slice() {
            return only.stats.clone();
        }
        let mut total = DramStats::default();
        for ch in &self.channels {
            total.absorb(&ch.stats);
        }
        total
    }

    /// Writes the summed statistics into `report` under `prefix`.
    pub fn report_stats(&self, prefix: &str, report: &mut StatsReport) {
        self.stats().report(prefix, report);
    }

    /// What the AES stage's decrypt and encrypt pipelines did, summed over channels; `None`
    /// when the stage's timing is off ([`Encryption::Off`]).
    pub fn engine_stats(&self) -> Option<(EngineStats, EngineStats)> {
        let mut out: Option<(EngineStats, EngineStats)> = None;
        for stage in self.channels.iter().filter_map(|c| c.crypto.as_ref()) {
            let (d, e) = out.get_or_insert_with(Default::default);
            d.absorb(&stage.decrypt.stats());
            e.absorb(&stage.encrypt.stats());
        }
        out
    }
}
