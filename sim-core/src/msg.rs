//! Messages that travel between the cache hierarchy and the memory controllers, and the events
//! the memory side reports to whoever watches it.
//!
//! `cache-model` and `mem-ctrl` never depend on each other; `cpu-model` wires them together with
//! these types, which is why they live here.

use crate::addr::{KeyId, LineBytes, PhysAddr};
use crate::time::Cycle;
use std::fmt;

/// A core (logical processor) number.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CoreId(u32);

impl CoreId {
    /// Wraps a core number.
    pub const fn new(raw: u32) -> CoreId {
        CoreId(raw)
    }

    /// The core number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The core number as an index into per-core tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoreId({})", self.0)
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {}", self.0)
    }
}

/// Identifies one outstanding memory request, unique within a run.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RequestId(pub u64);

/// What a memory request does to a whole line.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum MemOp {
    /// Fetch a line (demand miss, prefetch or speculative fill).
    Read,
    /// Write a whole line back (dirty eviction, flush or write-through).
    Write,
}

/// A line-sized request from the cache hierarchy to a memory controller.
///
/// The address keeps its KeyID bits: the controller needs the KeyID to pick the key and strips
/// it before the address reaches DRAM.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MemRequest {
    /// Unique id, echoed in the response.
    pub id: RequestId,
    /// Read or write.
    pub op: MemOp,
    /// Line-aligned physical address, KeyID included.
    pub addr: PhysAddr,
    /// The plaintext to write (for [`MemOp::Write`]).
    pub data: Option<LineBytes>,
    /// When the request left the requester.
    pub issued: Cycle,
}

/// A memory controller's answer to a [`MemRequest`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MemResponse {
    /// The id of the request answered.
    pub id: RequestId,
    /// The decrypted line, for reads.
    pub data: Option<LineBytes>,
    /// When the data (or the write acknowledgement) is available to the requester.
    pub done: Cycle,
}

/// Something that happened on the memory side that an observer beside the model (the coherency
/// checker) must know, at the cycle it really happened.
///
/// Observers learn of memory-side changes only through these, never by reading the memory
/// controllers. More kinds will join (bus transactions an attacker rewrote, integrity
/// failures); every consumer matches exhaustively, so a new kind is handled everywhere.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MemEvent {
    /// The key-table entry of `keyid` changed, in every controller at once: a successful
    /// PCONFIG completed. Writes accepted from this cycle on are encrypted, and reads whose
    /// data moves from this cycle on decrypted, with the new entry.
    KeyChanged {
        /// The cycle the entry changed (PCONFIG's completion, not its start).
        cycle: Cycle,
        /// The KeyID reprogrammed.
        keyid: KeyId,
    },
}

impl MemEvent {
    /// The cycle the event happened.
    pub fn cycle(&self) -> Cycle {
        match self {
            MemEvent::KeyChanged { cycle, .. } => *cycle,
        }
    }
}
