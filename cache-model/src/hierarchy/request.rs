//! What a core asks of the hierarchy, and what it gets back.

use crate::events::{FlushKind, Level};
use sim_core::{CoreId, Cycle, LineBytes, PhysAddr};

/// What a core request does.
///
/// Lengths are bytes, 1 to 64, and `addr + len` must stay within `addr`'s 64-byte line: the
/// core splits accesses that cross a line before submitting them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CoreOp {
    /// A committed load of `len` bytes. Its response carries the whole line as read.
    Load {
        /// Bytes loaded.
        len: u8,
    },
    /// A store of `len` bytes: `data[..len]` is written at `addr`. The rest of `data` is
    /// ignored. The bytes are applied when the store completes.
    Store {
        /// Bytes stored.
        len: u8,
        /// The bytes, packed at the start.
        data: LineBytes,
    },
    /// A load on a mispredicted path: it fills the line clean (E or S) like any load, but its
    /// value is discarded by the core, so it emits no `Load` event (it never commits). The
    /// response still carries the line, for cores that model transient use of the value.
    SpeculativeLoad {
        /// Bytes loaded.
        len: u8,
    },
    /// A software prefetch (PREFETCHT0): brings the line into the L1D clean, returns no data.
    Prefetch,
    /// CLFLUSH of `addr`'s line (that KeyID's alias only).
    Clflush,
    /// CLFLUSHOPT of `addr`'s line (that KeyID's alias only). The same as CLFLUSH here: the
    /// weaker ordering is the core's business.
    Clflushopt,
    /// CLWB of `addr`'s line (that KeyID's alias only).
    Clwb,
    /// WBINVD: every line of the socket. `addr` is ignored.
    Wbinvd,
}

impl CoreOp {
    /// The cache-control instruction, for the flush operations.
    pub const fn flush_kind(&self) -> Option<FlushKind> {
        match self {
            CoreOp::Clflush => Some(FlushKind::Clflush),
            CoreOp::Clflushopt => Some(FlushKind::Clflushopt),
            CoreOp::Clwb => Some(FlushKind::Clwb),
            CoreOp::Wbinvd => Some(FlushKind::Wbinvd),
            CoreOp::Load { .. }
            | CoreOp::Store { .. }
            | CoreOp::SpeculativeLoad { .. }
            | CoreOp::Prefetch => None,
        }
    }

    /// Bytes accessed, for loads and stores (`None` for the others).
    pub const fn access_len(&self) -> Option<u8> {
        match self {
            CoreOp::Load { len } | CoreOp::Store { len, .. } | CoreOp::SpeculativeLoad { len } => {
                Some(*len)
            }
            CoreOp::Prefetch
            | CoreOp::Clflush
            | CoreOp::Clflushopt
            | CoreOp::Clwb
            | CoreOp::Wbinvd => None,
        }
    }
}

/// A request completed ahead of its cycle ([`Hierarchy::complete_at_once`](crate::hierarchy::Hierarchy::complete_at_once)):
/// which one, and the cycle it completes, when its caller counts it done. Its effects (a
/// store's bytes, the line's state, the statistics) are in the hierarchy already.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Completion {
    /// The request's `id`.
    pub id: u64,
    /// The cycle it completes.
    pub done: Cycle,
}

/// A request from a core.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CoreRequest {
    /// The core's own tag, echoed in the response.
    pub id: u64,
    /// The requesting core.
    pub core: CoreId,
    /// Physical address, KeyID bits included.
    pub addr: PhysAddr,
    /// What to do.
    pub op: CoreOp,
}

impl CoreRequest {
    /// A load of `len` bytes at `addr`.
    pub fn load(id: u64, core: CoreId, addr: PhysAddr, len: u8) -> CoreRequest {
        CoreRequest {
            id,
            core,
            addr,
            op: CoreOp::Load { len },
        }
    }

    /// A store of `bytes` at `addr` (at most 64 bytes, within one line).
    ///
    /// # Panics
    /// When `bytes` is empty or longer than a line.
    pub fn store(id: u64, core: CoreId, addr: PhysAddr, bytes: &[u8]) -> CoreRequest {
        assert!(
            !bytes.is_empty() && bytes.len() <= sim_core::LINE_BYTES,
            "a store is 1 to 64 bytes, not {}",
            bytes.len()
        );
        let mut data = [0; sim_core::LINE_BYTES];
        data[..bytes.len()].copy_from_slice(bytes);
        CoreRequest {
            id,
            core,
            addr,
            op: CoreOp::Store {
                len: bytes.len() as u8,
                data,
            },
        }
    }

    /// Another operation on `addr`'s line.
    pub fn new(id: u64, core: CoreId, addr: PhysAddr, op: CoreOp) -> CoreRequest {
        CoreRequest { id, core, addr, op }
    }
}

/// The hierarchy's answer to a [`CoreRequest`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CoreResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's core.
    pub core: CoreId,
    /// The cycle the request completed: a load's value is available, a store applied, a flush
    /// done.
    pub done: Cycle,
    /// The whole line, for loads and speculative loads (the loaded bytes are
    /// `data[offset..offset + len]`, `offset` being the address's line offset).
    pub data: Option<LineBytes>,
    /// The level that supplied the line to a load, store or prefetch (`None`: memory, or a
    /// flush).
    pub from: Option<Level>,
}
