//! Messages that travel between the cache hierarchy and the memory controllers, and the events
//! the memory side reports to whoever watches it.
//!
//! `cache-model` and `mem-ctrl` never depend on each other; `cpu-model` wires them together with
//! these types, which is why they live here.

use crate::addr::{DramAddr, KeyId, LineBytes, PhysAddr};
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
/// controllers: a key-table change, and every active attack on the DIMMs or the DIMM bus (the
/// bytes a line's cells hold changed by something other than the controller's own writes, or
/// a transfer's bytes changed on the wires). An attack is no rule violation of the program's;
/// an observer records it so that what a later load returns can be traced to it. Every
/// consumer matches exhaustively, so a new kind is handled everywhere.
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
    /// An attacker wrote the DIMM cells of `line` directly (not through the memory
    /// controller): what the line reads as from now on is not what was last written back.
    DimmWritten {
        /// The cycle the cells changed.
        cycle: Cycle,
        /// The DRAM line whose cells changed (for a faulty DIMM, the cells' own line).
        line: DramAddr,
        /// What was written.
        by: DimmWrite,
    },
    /// A probe on the DIMM bus changed the bytes of a transfer: for a write, the DIMM stores
    /// other bytes than the controller sent; for a read, the controller decrypts other bytes
    /// than the DIMM holds.
    BusRewritten {
        /// The cycle the transfer was on the bus.
        cycle: Cycle,
        /// The line transferred.
        line: DramAddr,
        /// Read or write.
        op: MemOp,
    },
    /// A faulty DIMM (a ghost address bit, BadRAM) took an access to `addr` to the cells of
    /// another line, `cells`: two DRAM addresses reach the same cells.
    DimmAlias {
        /// The cycle of the access.
        cycle: Cycle,
        /// The DRAM line addressed.
        addr: DramAddr,
        /// The line whose cells the DIMM used.
        cells: DramAddr,
        /// Read or write.
        op: MemOp,
    },
}

/// What an attacker wrote into a line's DIMM cells ([`MemEvent::DimmWritten`]).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum DimmWrite {
    /// The line's own ciphertext, recorded at an earlier cycle, written back (a replay).
    Replay {
        /// When the ciphertext was recorded.
        recorded: Cycle,
    },
    /// Another line's ciphertext copied here (a splice).
    Splice {
        /// The line it was copied from.
        from: DramAddr,
    },
    /// Bits of the stored bytes flipped.
    BitFlip {
        /// How many bits.
        bits: u32,
    },
}

impl fmt::Display for DimmWrite {
    /// `a replay of the ciphertext recorded at cycle 2000`, `a splice of the ciphertext of line
    /// 0x40000`, `1 bit flipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DimmWrite::Replay { recorded } => write!(
                f,
                "a replay of the ciphertext recorded at cycle {}",
                recorded.get()
            ),
            DimmWrite::Splice { from } => {
                write!(f, "a splice of the ciphertext of line {:#x}", from.raw())
            }
            DimmWrite::BitFlip { bits: 1 } => f.write_str("1 bit flipped"),
            DimmWrite::BitFlip { bits } => write!(f, "{bits} bits flipped"),
        }
    }
}

impl MemEvent {
    /// The cycle the event happened.
    pub fn cycle(&self) -> Cycle {
        match self {
            MemEvent::KeyChanged { cycle, .. }
            | MemEvent::DimmWritten { cycle, .. }
            | MemEvent::BusRewritten { cycle, .. }
            | MemEvent::DimmAlias { cycle, .. } => *cycle,
        }
    }
}
