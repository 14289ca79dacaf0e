//! The coherent cache hierarchy: private L1D and L2 per core, a shared LLC with a directory,
//! MESI, MSHRs, a write-back buffer, cache-control instructions, prefetchers, and the events
//! the coherency checker watches.
//!
//! ```text
//!   core 0                core 1                       CoreRequest / CoreResponse
//!   +------+ MSHRs        +------+ MSHRs
//!   | L1D  |              | L1D  |                     one MESI state per core and line
//!   +------+ (inclusive)  +------+                     (L1D and L2 copies share it)
//!   |  L2  | MSHRs        |  L2  | MSHRs
//!   +------+              +------+
//!       \                    /
//!   +--------------------------------+  directory (exact: which cores hold each line)
//!   | LLC (inclusive or not)  MSHRs  |  alias index (evict_other_keyids only)
//!   +--------------------------------+
//!        | reads (MSHRs)   | write-backs (write-back buffer)
//!        v                 v
//!   outbox: MemRequest, FIFO  --pop_mem_request-->  memory controllers
//!                             <--mem_response-----  (MemResponse)
//! ```
//!
//! Every cache tags its lines with the whole physical address, KeyID bits included: one DRAM
//! line under two KeyIDs is two unrelated lines, and nothing here keeps them coherent
//! (mktme-facts.md 4.1), unless [`AliasPolicy::EvictOtherKeyIds`] asks for the eviction flows
//! some processors have. Caches hold plaintext; the memory controllers encrypt.
//!
//! # How time works
//!
//! Every cycle is a core cycle. A request's latency is decided when it is submitted, from where
//! its line is at that cycle; what the request does (fills, evictions, snoops, its load value
//! or its store) happens atomically at the cycle it completes, in the order requests complete.
//! That cycle is the linearisation point: a load returns the bytes of the latest store to
//! complete before it. With `l1`, `l2`, `llc` the levels' hit latencies:
//!
//! | where the line is when the request is submitted | completes at |
//! | --- | --- |
//! | L1D, with the permission needed (a store needs E or M) | `now + l1` |
//! | L2, with the permission needed | `now + l1 + l2` |
//! | on chip (LLC, or another core's caches) | `now + l1 + l2 + llc` (`+ snoop` when another core must be snooped) |
//! | off chip | the read leaves at `now + l1 + l2 + llc`; done when memory answers |
//! | already outstanding (MSHR) | with that fill |
//!
//! See `docs/cache-hierarchy.md` for every rule, the flushes, the prefetchers, the write-back
//! buffer and what happens when two requests race.
//!
//! ```
//! use cache_model::hierarchy::{CoreRequest, Hierarchy, HierarchyConfig, PrefetchConfig};
//! use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId, MemResponse, RngFactory};
//!
//! let config = HierarchyConfig { prefetch: PrefetchConfig::OFF, ..HierarchyConfig::default() };
//! let layout = AddressLayout::default();
//! let mut h = Hierarchy::new(&config, layout, RngFactory::new(1)).unwrap();
//! let pa = layout.compose(KeyId::new(1), DramAddr::new(0x1000)).unwrap();
//!
//! // A store misses everywhere: the read for ownership leaves at 4 + 14 + 40 = 58.
//! h.submit(Cycle::new(0), CoreRequest::store(7, CoreId::new(0), pa, &[0xab])).unwrap();
//! assert_eq!(h.pop_mem_request(Cycle::new(57)), None);
//! let read = h.pop_mem_request(Cycle::new(58)).unwrap();
//! // Memory answers 100 cycles later (zeros: untouched DRAM); the store completes then.
//! h.mem_response(Cycle::new(158), MemResponse { id: read.id, data: Some([0; 64]), done: Cycle::new(158) });
//! let mut done = Vec::new();
//! h.tick(Cycle::new(158), &mut done);
//! assert_eq!((done[0].id, done[0].done), (7, Cycle::new(158)));
//! // A load of the line by the same core now hits its L1D: 4 cycles.
//! h.submit(Cycle::new(160), CoreRequest::load(8, CoreId::new(0), pa, 1)).unwrap();
//! h.tick(Cycle::new(164), &mut done);
//! assert_eq!(done[1].data.unwrap()[0], 0xab);
//! ```

mod config;
mod describe;
mod engine;
mod index;
mod mesi;
mod mshr;
mod observers;
mod prefetch;
mod request;
mod stats;

pub use config::{
    AliasPolicy, CORES_MAX, HIERARCHY_LINE_BYTES, HierarchyConfig, HierarchyConfigError,
    HierarchyParams, LevelConfig, MSHR_ENTRIES_MAX, PREFETCH_DEGREE_MAX, PrefetchConfig,
    PrefetchLevel, STRIDE_TABLE_ENTRIES_MAX, WRITEBACK_BUFFER_ENTRIES_MAX,
};
pub use mesi::{MesiActions, MesiEvent, MesiState, MesiTransition, transition};
pub use observers::ObserverId;
pub use request::{Completion, CoreOp, CoreRequest, CoreResponse};

use crate::cache::Cache;
use crate::events::{CacheId, CacheObserver, Level, StoreStamp};
use engine::{Ev, FlushOp, Hit, Step, Walk};
use index::{AliasIndex, Directory};
use mshr::{L1Entry, L2Entry, LlcEntry, Table};
use observers::Observers;
use prefetch::Prefetcher;
use sim_core::{
    AddressLayout, CoreId, Cycle, EventQueue, LineAddr, LineBytes, MemOp, MemRequest, MemResponse,
    RngFactory, StatsReport,
};
use stats::Stats;
use std::collections::VecDeque;

/// A copy's plaintext and the committed store it carries (which store, not what bytes: two
/// stores of equal bytes carry different stamps). They always move together.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct LineData {
    bytes: LineBytes,
    stamp: StoreStamp,
}

impl LineData {
    /// Data just read from memory: no store has touched it.
    fn from_memory(bytes: LineBytes) -> LineData {
        LineData {
            bytes,
            stamp: StoreStamp::MEMORY,
        }
    }
}

/// A line in a private cache: the core's MESI state, the data (plaintext), and where its
/// dirtiness came from.
#[derive(Clone, Debug)]
struct PrivateLine {
    state: MesiState,
    data: LineData,
    /// A committed store contributed to this copy's dirty data (false for copies the
    /// counterfactual knob marked dirty and no store touched since).
    stored: bool,
    /// Brought in by a hardware prefetch and not used by a demand request yet.
    prefetched: bool,
}

impl Default for PrivateLine {
    fn default() -> PrivateLine {
        PrivateLine {
            state: MesiState::Invalid,
            data: LineData::from_memory([0; sim_core::LINE_BYTES]),
            stored: false,
            prefetched: false,
        }
    }
}

/// A line in the LLC: the data and where its dirtiness came from. Which cores hold it is in
/// the directory.
#[derive(Clone, Debug)]
struct LlcLine {
    data: LineData,
    stored: bool,
}

impl Default for LlcLine {
    fn default() -> LlcLine {
        LlcLine {
            data: LineData::from_memory([0; sim_core::LINE_BYTES]),
            stored: false,
        }
    }
}

/// What a cache holds for a line, as [`Hierarchy::line`] shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LineView {
    /// The owning core's MESI state (`None` in the LLC, whose lines have no MESI state of
    /// their own: the directory says which cores hold them).
    pub state: Option<MesiState>,
    /// The copy's data is newer than the next level out's (it is written outward when it
    /// leaves).
    pub dirty: bool,
    /// The plaintext.
    pub data: LineBytes,
    /// The newest committed store the copy carries.
    pub stamp: StoreStamp,
}

/// The coherent cache hierarchy of one socket. See the [module documentation](self).
pub struct Hierarchy {
    params: HierarchyParams,
    layout: AddressLayout,
    cores: usize,
    lat_l1: u64,
    lat_l2: u64,
    lat_llc: u64,
    lat_snoop: u64,
    inclusive: bool,
    knob: bool,
    alias_policy: AliasPolicy,
    /// Where the prefetchers train, when any is on.
    pf_train: Option<PrefetchLevel>,
    pf_fill: PrefetchLevel,

    l1: Vec<Cache<PrivateLine>>,
    l2: Vec<Cache<PrivateLine>>,
    llc: Cache<LlcLine>,
    dir: Directory,
    aliases: AliasIndex,

    l1_mshr: Vec<Table<L1Entry>>,
    l2_mshr: Vec<Table<L2Entry>>,
    llc_mshr: Table<LlcEntry>,
    /// CLFLUSH/CLFLUSHOPT/CLWB/WBINVD in flight per core; they hold L1D MSHR entries.
    flushes_in_flight: Vec<usize>,
    flush_ops: Vec<Option<FlushOp>>,
    walks: Vec<Option<Walk>>,

    /// L1D hits, in completion order (= submission order: every hit takes `lat_l1`).
    hits: VecDeque<Hit>,
    /// The bytes of the store hits in `hits`, in the same order.
    hit_data: VecDeque<LineBytes>,
    queue: EventQueue<Ev>,
    /// Steps waiting for room in the write-back buffer, in order.
    blocked: VecDeque<Step>,
    resume_at: Option<Cycle>,
    /// Replayed requests waiting for an MSHR, in order.
    stalled: VecDeque<mshr::Access>,
    stalled_per_core: Vec<usize>,
    /// An MSHR entry (or a flush slot) was freed since stalled requests were last retried.
    mshr_freed: bool,
    /// `drain` was called; the walk starts once nothing is in flight.
    drain_pending: bool,

    /// Requests for memory, oldest first. Reads are bounded by the LLC MSHRs, writes by the
    /// write-back buffer (`outbox_writes` of `wb_capacity`).
    outbox: VecDeque<MemRequest>,
    outbox_writes: usize,
    wb_capacity: usize,
    next_mem_id: u64,
    /// The stamp of the last committed store (see [`StoreStamp`]).
    last_stamp: StoreStamp,
    next_seq: u64,

    /// Responses completed but not yet handed out by `tick`.
    ready: Vec<CoreResponse>,
    prefetchers: Vec<Prefetcher>,
    pf_buf: Vec<LineAddr>,
    observers: Observers,
    stats: Stats,
    /// The last cycle processed; every call's `now` must be at least this.
    clock: Cycle,
}

impl std::fmt::Debug for Hierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hierarchy")
            .field("cores", &self.cores)
            .field("clock", &self.clock)
            .field(
                "l1d_lines",
                &self.l1.iter().map(Cache::len).collect::<Vec<_>>(),
            )
            .field(
                "l2_lines",
                &self.l2.iter().map(Cache::len).collect::<Vec<_>>(),
            )
            .field("llc_lines", &self.llc.len())
            .field("directory_lines", &self.dir.len())
            .field("pending_events", &self.queue.len())
            .field("l1d_hits_in_flight", &self.hits.len())
            .field("blocked_steps", &self.blocked.len())
            .field("stalled_requests", &self.stalled.len())
            .field("outbox", &self.outbox.len())
            .field("observers", &self.observers)
            .finish()
    }
}

impl Hierarchy {
    /// Validates `config` and builds an empty hierarchy. Each cache draws its replacement
    /// randomness from its own stream (`cache.core<N>.l1d`, `cache.core<N>.l2`, `cache.llc`).
    pub fn new(
        config: &HierarchyConfig,
        layout: AddressLayout,
        rng: RngFactory,
    ) -> Result<Hierarchy, HierarchyConfigError> {
        let params = config.validate()?;
        let cores = config.cores as usize;
        let l1 = (0..cores)
            .map(|c| {
                Cache::new(
                    params.cache(Level::L1d).clone(),
                    rng.fork(&format!("cache.core{c}.l1d")),
                )
            })
            .collect();
        let l2 = (0..cores)
            .map(|c| {
                Cache::new(
                    params.cache(Level::L2).clone(),
                    rng.fork(&format!("cache.core{c}.l2")),
                )
            })
            .collect();
        let llc = Cache::new(params.cache(Level::Llc).clone(), rng.fork("cache.llc"));
        let lat = |level| params.cache(level).hit_latency_cycles();
        Ok(Hierarchy {
            layout,
            cores,
            lat_l1: lat(Level::L1d),
            lat_l2: lat(Level::L2),
            lat_llc: lat(Level::Llc),
            lat_snoop: config.snoop_latency_cycles,
            inclusive: config.llc_inclusive,
            knob: config.writeback_speculative_lines,
            alias_policy: config.alias_policy,
            pf_train: config
                .prefetch
                .enabled()
                .then_some(config.prefetch.train_on),
            pf_fill: config.prefetch.fill_into,
            l1,
            l2,
            llc,
            dir: Directory::default(),
            aliases: AliasIndex::default(),
            l1_mshr: (0..cores)
                .map(|_| Table::new(config.l1d.mshr_entries as usize))
                .collect(),
            l2_mshr: (0..cores)
                .map(|_| Table::new(config.l2.mshr_entries as usize))
                .collect(),
            llc_mshr: Table::new(config.llc.mshr_entries as usize),
            flushes_in_flight: vec![0; cores],
            flush_ops: Vec::new(),
            walks: Vec::new(),
            hits: VecDeque::with_capacity(64),
            hit_data: VecDeque::with_capacity(64),
            queue: EventQueue::new(),
            blocked: VecDeque::new(),
            resume_at: None,
            stalled: VecDeque::new(),
            stalled_per_core: vec![0; cores],
            mshr_freed: false,
            drain_pending: false,
            outbox: VecDeque::new(),
            outbox_writes: 0,
            wb_capacity: config.writeback_buffer_entries as usize,
            next_mem_id: 0,
            last_stamp: StoreStamp::MEMORY,
            next_seq: 0,
            ready: Vec::new(),
            prefetchers: (0..cores)
                .map(|_| Prefetcher::new(&config.prefetch))
                .collect(),
            pf_buf: Vec::new(),
            observers: Observers::default(),
            stats: Stats::new(cores),
            clock: Cycle::ZERO,
            params,
        })
    }

    /// The validated configuration.
    pub fn params(&self) -> &HierarchyParams {
        &self.params
    }

    /// The address layout (where the KeyID sits).
    pub fn layout(&self) -> AddressLayout {
        self.layout
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Offers a request at cycle `now`.
    ///
    /// Refused, and given back unchanged, when an MSHR it needs is busy (the L1D's, the L2's
    /// or the LLC's), or while a replayed request of the same core waits for one: the core
    /// retries later (back-pressure). Flush instructions take an L1D MSHR entry until they
    /// complete.
    ///
    /// # Panics
    /// When the request crosses its line, its length is 0 or above 64, its core does not
    /// exist, its address does not fit the layout, or `now` is earlier than a cycle already
    /// passed to the hierarchy (caller bugs).
    pub fn submit(&mut self, now: Cycle, request: CoreRequest) -> Result<(), CoreRequest> {
        self.advance(now);
        self.check_request(&request);
        self.submit_now(now, request)
    }

    /// Completes `request` at once when it is a load or store that hits in its core's L1D
    /// while nothing else can happen before it completes, together with every L1D hit in
    /// flight before it, and returns true: their completions are appended to `completed`,
    /// oldest first, each to be counted done at its own `done` cycle (after `now`), and
    /// [`Hierarchy::tick`] never hands them out. Otherwise changes nothing and returns false:
    /// the caller submits the request ([`Hierarchy::submit`]).
    ///
    /// The results are the ones [`Hierarchy::submit`] and stepping would give. The hits
    /// complete at once only when no event is scheduled before the request's `done` (events at
    /// `done` run after the hits of that cycle anyway), nothing waits for the write-back
    /// buffer, for an MSHR or for memory, no observer is attached (it would see the events out
    /// of cycle order), no prefetcher trains on L1D hits (a hit would schedule prefetches),
    /// and `quiet_until`, the first cycle at which anything from outside can reach the
    /// hierarchy (memory's next response), is after `done`. Requests submitted later cannot
    /// come between: the fastest of them, an L2 hit, completes after `done`, and none plans
    /// differently for a hit having completed (an E line turned M is exclusive either way).
    ///
    /// A completion carries no data: a caller that needs a load's value submits it instead.
    /// The request is borrowed, so the common case (a hit) moves no request around.
    pub fn complete_at_once(
        &mut self,
        now: Cycle,
        request: &CoreRequest,
        quiet_until: Cycle,
        completed: &mut impl Extend<Completion>,
    ) -> bool {
        self.advance(now);
        self.check_request(request);
        let quiet = self.blocked.is_empty()
            && self.stalled.is_empty()
            && self.outbox.is_empty()
            && !self.drain_pending
            && !self.observers.any()
            && self.pf_train != Some(PrefetchLevel::L1d);
        quiet && self.hit_at_once(now, request, quiet_until, completed)
    }

    /// Advances the hierarchy through cycle `now` and appends the responses of the requests
    /// completed by then, in completion order.
    pub fn tick(&mut self, now: Cycle, responses: &mut Vec<CoreResponse>) {
        self.advance(now);
        responses.append(&mut self.ready);
    }

    /// The oldest request for memory, if one has left the hierarchy by `now`. Reads and
    /// writes leave in the order the hierarchy made them, so memory sees a write-back before
    /// any later read of the same line. Handing a write out frees its write-back buffer entry
    /// (usable by a waiting step from the next cycle).
    pub fn pop_mem_request(&mut self, now: Cycle) -> Option<MemRequest> {
        self.advance(now);
        let request = self.outbox.pop_front()?;
        if request.op == MemOp::Write {
            self.outbox_writes -= 1;
            if !self.blocked.is_empty() {
                let at = now.plus(1);
                if self.resume_at != Some(at) {
                    self.resume_at = Some(at);
                    self.push_event(at, Ev::Resume);
                }
            }
        }
        Some(request)
    }

    /// Puts back a request that the memory controller refused (its queue was full): it goes
    /// back to the front, and a write takes its write-back buffer entry again. Call it right
    /// after the [`Hierarchy::pop_mem_request`] that returned it.
    pub fn return_mem_request(&mut self, request: MemRequest) {
        if request.op == MemOp::Write {
            self.outbox_writes += 1;
        }
        self.outbox.push_front(request);
    }

    /// Memory's answer to a request. A read's data fills the line at `response.done` (or `now`,
    /// if later), and the requests waiting for it complete then; a write's acknowledgement is
    /// only counted (the write-back left the hierarchy when it was handed out).
    ///
    /// # Panics
    /// When a response with data answers no outstanding read (a caller or model bug).
    pub fn mem_response(&mut self, now: Cycle, response: MemResponse) {
        self.advance(now);
        self.accept_mem_response(now, response);
        self.advance(now);
    }

    /// The next cycle at which [`Hierarchy::tick`] has something to do: a request completes,
    /// a read leaves, a waiting step resumes; [`Cycle::NEVER`] when nothing is scheduled.
    /// Requests already in the outbox are not counted: offer them to memory whenever it can
    /// take them.
    pub fn next_event_cycle(&self) -> Cycle {
        if !self.ready.is_empty() {
            return self.clock;
        }
        let hit = self.hits.front().map_or(Cycle::NEVER, Hit::done);
        let event = self.queue.peek_cycle().unwrap_or(Cycle::NEVER);
        hit.min(event)
    }

    /// True while anything is in flight: a request, a read waiting for memory, a request for
    /// memory not handed out, a flush, a drain, or a response not collected.
    pub fn has_work(&self) -> bool {
        !self.hits.is_empty()
            || !self.queue.is_empty()
            || !self.blocked.is_empty()
            || !self.stalled.is_empty()
            || !self.outbox.is_empty()
            || !self.ready.is_empty()
            || self.llc_mshr.used() > 0
            || self.walks.iter().any(Option::is_some)
            || self.drain_pending
    }

    /// End of the run: writes back every dirty line (cause
    /// [`WritebackCause::Drain`](crate::WritebackCause::Drain)), keeping clean copies cached.
    ///
    /// The drain starts once nothing is in flight (the cores' last requests and the hardware
    /// prefetches they triggered have completed), then walks the LLC and each core's L2, set by
    /// set; it finishes when every write-back has entered the write-back buffer.
    /// [`Hierarchy::has_work`] stays true until then and until memory has taken them. Call it
    /// when the cores will submit nothing more.
    pub fn drain(&mut self, now: Cycle) {
        self.advance(now);
        self.drain_pending = true;
        self.try_start_drain(now);
    }

    /// Attaches an observer; it sees every later event. Its concrete type stays reachable
    /// through [`Hierarchy::observer`].
    pub fn attach_observer<O: CacheObserver + Send + 'static>(
        &mut self,
        observer: O,
    ) -> ObserverId {
        self.observers.attach(observer)
    }

    /// Attaches a boxed observer. It can be detached, but not reached as its concrete type.
    pub fn attach_boxed_observer(&mut self, observer: Box<dyn CacheObserver + Send>) -> ObserverId {
        self.observers.attach_boxed(observer)
    }

    /// The observer `id`, if it is attached and is an `O`.
    pub fn observer<O: CacheObserver + 'static>(&self, id: ObserverId) -> Option<&O> {
        self.observers.get(id)
    }

    /// The observer `id`, mutably, if it is attached and is an `O`.
    pub fn observer_mut<O: CacheObserver + 'static>(&mut self, id: ObserverId) -> Option<&mut O> {
        self.observers.get_mut(id)
    }

    /// Detaches the observer `id` and gives it back.
    pub fn detach_observer(&mut self, id: ObserverId) -> Option<Box<dyn CacheObserver + Send>> {
        self.observers.detach(id)
    }

    /// Writes the statistics into `report`: `l1d.*`, `l2.*`, `llc.*` summed over cores,
    /// `core<N>.{l1d,l2,llc}.*` per core, and `hierarchy.*` (memory traffic, replays, alias
    /// evictions, flush instructions). The counters are documented in
    /// `docs/cache-hierarchy.md`.
    pub fn report_stats(&self, report: &mut StatsReport) {
        self.stats.report(report);
    }

    fn cache_of(&self, cache: CacheId) -> Result<&Cache<PrivateLine>, &Cache<LlcLine>> {
        match (cache.level, cache.core) {
            (Level::Llc, _) => Err(&self.llc),
            (Level::L1d, Some(c)) => Ok(&self.l1[c.index()]),
            (Level::L2, Some(c)) => Ok(&self.l2[c.index()]),
            (level, None) => panic!("{level:?} is private: name its core"),
        }
    }

    /// What `cache` holds for `line`, without touching anything (a probe for tests and
    /// checkers).
    pub fn line(&self, cache: CacheId, line: LineAddr) -> Option<LineView> {
        match self.cache_of(cache) {
            Ok(c) => c.probe(line.base()).map(|s| {
                let l = c.line(s);
                LineView {
                    state: Some(l.payload.state),
                    dirty: l.dirty,
                    data: l.payload.data.bytes,
                    stamp: l.payload.data.stamp,
                }
            }),
            Err(c) => c.probe(line.base()).map(|s| {
                let l = c.line(s);
                LineView {
                    state: None,
                    dirty: l.dirty,
                    data: l.payload.data.bytes,
                    stamp: l.payload.data.stamp,
                }
            }),
        }
    }

    /// Every line `cache` holds, in set then way order.
    pub fn lines(&self, cache: CacheId) -> Vec<LineAddr> {
        match self.cache_of(cache) {
            Ok(c) => c.lines().map(|l| l.addr.line()).collect(),
            Err(c) => c.lines().map(|l| l.addr.line()).collect(),
        }
    }

    /// The cores whose private caches hold `line`, as the directory says.
    pub fn sharers(&self, line: LineAddr) -> Vec<CoreId> {
        index::cores_in(self.dir.sharers(line))
            .map(|c| CoreId::new(c as u32))
            .collect()
    }

    /// Write-backs in the write-back buffer (made, not yet handed to memory).
    pub fn writeback_buffer_len(&self) -> usize {
        self.outbox_writes
    }

    /// MSHR entries in use at `cache` (at the L1D, flush instructions in flight included).
    pub fn mshrs_in_use(&self, cache: CacheId) -> usize {
        match (cache.level, cache.core) {
            (Level::Llc, _) => self.llc_mshr.used(),
            (Level::L1d, Some(c)) => self.l1_occupied(c.index()),
            (Level::L2, Some(c)) => self.l2_mshr[c.index()].used(),
            (level, None) => panic!("{level:?} is private: name its core"),
        }
    }

    /// Checks the model's own invariants and describes the first one broken: inclusion
    /// (L1D in L2, and L2 in an inclusive LLC), an exact directory, one owner per line, equal
    /// L1D/L2 states, every valid copy holding the line's current data, M lines dirty
    /// somewhere, and at most one KeyID per DRAM line on chip under `evict_other_keyids`.
    /// Slow (it walks every cache): for tests and debugging.
    pub fn verify_invariants(&self) -> Result<(), String> {
        self.check_invariants()
    }
}
