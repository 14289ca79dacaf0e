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
//! ## Where the code is
//!
//! This file holds the public types, [`DramController`] and the state of a channel; what a
//! channel does is in submodules, one per part of the cycle above:
//!
//! * `accept`: a request offered between ticks (the read queue, the write buffer, forwarding,
//!   coalescing, merging);
//! * `cycle`: one tick (the five steps) and what issuing a command changes;
//! * `select`: step 4's choice of a command (refresh first, then round-robin FR-FCFS), as
//!   DRAMsim3 searches and with the shortcuts;
//! * `transactions`: step 5 and the write-drain rules;
//! * `skipping`: the bounds that let a tick return at once (`wake`, `next_event`) and the debug
//!   checks that a skipped tick would have done nothing;
//! * `queue_set`: the bit set of command queues the walk visits, and what it saw;
//! * `completions`: the queue of completions on their way;
//! * `describe`: what a controller tells about itself when a run stops
//!   ([`DramController::describe_state`]) and its [`sim_core::TimedComponent`] view.

mod accept;
mod completions;
mod cycle;
mod describe;
mod queue_set;
mod select;
mod skipping;
mod transactions;

use super::bank::{BankCommand, BankState, ColumnCommand, CommandKind};
use super::config::{DramConfig, PagePolicy, QueueStructure, WriteDrain};
use super::crypto_stage::{CryptoStage, EngineStats};
use super::mapping::DramLocation;
use super::refresh::RefreshScheduler;
use super::stats::DramStats;
use super::timing::{BankId, ChannelTiming};
use completions::CompletionQueue;
use queue_set::{QueueSet, QueueWalk};
use sim_core::{Cycle, DetHashMap, DramAddr, MemOp, RequestId, StatsReport};
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
    /// Requests that have freed a slot: left the read queue or the write buffer, or merged into
    /// a queued write. A request refused for a full queue can be accepted only after this has
    /// grown ([`DramController::departures`]). A write moving from the encrypt stage into the
    /// write buffer frees none (both count against `transaction_queue_entries`), so it does not
    /// count: offering a refused write again then would be refused again.
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
    /// Per command queue: the writes in the write buffer bound for it; and the queues with at
    /// least one, so step 5 tells that every buffered write's queue is full without reading the
    /// write buffer (as through the end-of-run drain: a full buffer of writes to one bank).
    buffered_writes: Vec<u32>,
    buffered_queues: QueueSet,
    /// Per command queue: no entry of the queue can issue before this cycle. A lower bound,
    /// kept valid by resetting it to `Cycle::ZERO` ("unknown") whenever the queue's entries or
    /// the state of one of its banks change; every other command only delays entries (timing
    /// constraints only ever rise), which keeps an old bound a lower bound.
    queue_ready: Vec<Cycle>,
    /// What this tick's search saw of the bounds, for `plan`.
    walk: QueueWalk,
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
            buffered_writes: vec![0; queues],
            buffered_queues: QueueSet::new(queues),
            queue_ready: QueueSet::bounds(queues),
            walk: QueueWalk::new(queues),
            wake: Cycle::ZERO,
            next_event: Cycle::ZERO,
            step5_settled: false,
            exhaustive: false,
        }
    }

    fn bank_index(&self, b: BankId) -> usize {
        self.timing.bank_index(b)
    }

    /// The banks of `rank`, in bank-group then bank order (the order refresh looks at them).
    /// The iterator holds no borrow of the channel, so a loop over it may change the banks.
    fn rank_banks(&self, rank: u32) -> impl Iterator<Item = BankId> + use<> {
        let banks_per_group = self.banks_per_group;
        (0..self.bankgroups).flat_map(move |bankgroup| {
            (0..banks_per_group).map(move |bank| BankId {
                rank,
                bankgroup,
                bank,
            })
        })
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
            // The two queue tests first: they settle most calls without the drain rule.
            .any(|c| !c.completions.is_empty() || !c.encrypting.is_empty() || c.has_work())
    }

    /// How many requests have freed a queue slot so far (left a read queue or a write buffer,
    /// or merged into a queued write; a count that only grows). A request refused with
    /// [`QueueFull`] can be accepted only once it has grown: until then offering it again is
    /// refused again.
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
