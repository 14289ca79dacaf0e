//! The memory access the models take: a read or a write of some bytes at an address.
//!
//! This is all of a memory trace that the model sees. Trace files (mtrace, valgrind Lackey,
//! ChampSim) are read outside the model crates, by `scenarios::formats::trace`, into these
//! accesses; [`crate::single_level`] and the full-system trace core consume them.

/// Whether an access reads or writes.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum AccessKind {
    /// A load.
    Read,
    /// A store.
    Write,
}

impl AccessKind {
    /// `Write` when `is_write`, else `Read`.
    pub const fn from_is_write(is_write: bool) -> AccessKind {
        if is_write {
            AccessKind::Write
        } else {
            AccessKind::Read
        }
    }

    /// True for a write.
    pub const fn is_write(self) -> bool {
        matches!(self, AccessKind::Write)
    }
}

/// One memory access of a trace: `size` bytes from `addr`.
///
/// The trace readers guarantee `size >= 1` and that `addr + size - 1` does not overflow; code
/// building accesses by hand should keep to that too ([`Access::last_byte`] saturates).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Access {
    /// Read or write.
    pub kind: AccessKind,
    /// First byte accessed (a physical address, KeyID bits included, for the simulator).
    pub addr: u64,
    /// Bytes accessed.
    pub size: u32,
}

impl Access {
    /// A read of `size` bytes at `addr`.
    pub const fn read(addr: u64, size: u32) -> Access {
        Access {
            kind: AccessKind::Read,
            addr,
            size,
        }
    }

    /// A write of `size` bytes at `addr`.
    pub const fn write(addr: u64, size: u32) -> Access {
        Access {
            kind: AccessKind::Write,
            addr,
            size,
        }
    }

    /// The last byte accessed (`addr` itself for a zero-size access; saturates at the top of
    /// the address space).
    pub const fn last_byte(self) -> u64 {
        self.addr
            .saturating_add((self.size as u64).saturating_sub(1))
    }
}
