//! DRAM address mapping: the one place where a DRAM address is cut into channel, rank, bank
//! group, bank, row and column, always through [`BitRange`].
//!
//! ```text
//!   ddr4-2400 (DRAMsim3 "rochrababgco" for 2 ranks, 64-byte lines):
//!   bit  33            18  17   16 15  14 13  12      6  5      0
//!       +----------------+----+------+------+----------+--------+
//!       |      row       |rank| bank |  bg  | column/8 | offset |
//!       +----------------+----+------+------+----------+--------+
//! ```

use sim_core::{BitRange, DramAddr};
use std::fmt;

/// Where each DRAM coordinate sits in a DRAM byte address.
///
/// Each field is a [`BitRange`] of the DRAM address (KeyID already stripped). Bits
/// `[5:0]` are the byte within the 64-byte line and belong to no field. The column field counts
/// lines within a row (DRAMsim3's "column / burst length"), so its width is
/// `log2(columns / burst_length)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MappingParams {
    /// Width of the DRAM address of one channel set: every bit in `[6, addr_bits)` must belong
    /// to exactly one field.
    pub addr_bits: u32,
    /// Channel field (width 0 with one channel).
    pub channel: BitRange,
    /// Rank field.
    pub rank: BitRange,
    /// Bank-group field.
    pub bankgroup: BitRange,
    /// Bank-within-group field.
    pub bank: BitRange,
    /// Row field.
    pub row: BitRange,
    /// Line-within-row field.
    pub column: BitRange,
}

impl MappingParams {
    /// The six fields with their configuration names, in a fixed order (used by validation and
    /// error messages).
    pub fn fields(&self) -> [(&'static str, BitRange); 6] {
        [
            ("mapping.channel", self.channel),
            ("mapping.rank", self.rank),
            ("mapping.bankgroup", self.bankgroup),
            ("mapping.bank", self.bank),
            ("mapping.row", self.row),
            ("mapping.column", self.column),
        ]
    }
}

/// The DRAM coordinates of one cache line.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct DramLocation {
    /// Channel.
    pub channel: u32,
    /// Rank within the channel.
    pub rank: u32,
    /// Bank group within the rank.
    pub bankgroup: u32,
    /// Bank within the bank group.
    pub bank: u32,
    /// Row within the bank.
    pub row: u32,
    /// Line within the row (the JEDEC column divided by the burst length).
    pub column: u32,
}

impl fmt::Display for DramLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ch{} rank{} bg{} bank{} row{} col{}",
            self.channel, self.rank, self.bankgroup, self.bank, self.row, self.column
        )
    }
}

/// A DRAM address beyond the configured DRAM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DRAM address {addr:#x} is beyond the DRAM's {addr_bits} address bits")]
pub struct DramAddrOutOfRange {
    /// The address.
    pub addr: u64,
    /// The configured DRAM address width.
    pub addr_bits: u32,
}

/// A validated address mapping (built by [`super::DramConfig::new`]).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct AddressMapping {
    addr_bits: u32,
    channel: BitRange,
    rank: BitRange,
    bankgroup: BitRange,
    bank: BitRange,
    row: BitRange,
    column: BitRange,
    /// The six fields (channel, rank, bank group, bank, row, column) as `(shift, mask in
    /// place)`, derived from them once: [`AddressMapping::decode`] runs per request.
    extract: [(u32, u64); 6],
}

impl AddressMapping {
    pub(crate) fn from_params(p: &MappingParams) -> AddressMapping {
        // A zero-width field extracts 0 (its mask is empty; its shift, at most 64, is dropped).
        let extract = [p.channel, p.rank, p.bankgroup, p.bank, p.row, p.column]
            .map(|r| (if r.width() == 0 { 0 } else { r.low() }, r.mask()));
        AddressMapping {
            extract,
            addr_bits: p.addr_bits,
            channel: p.channel,
            rank: p.rank,
            bankgroup: p.bankgroup,
            bank: p.bank,
            row: p.row,
            column: p.column,
        }
    }

    /// Width of the DRAM address.
    pub const fn addr_bits(&self) -> u32 {
        self.addr_bits
    }

    /// Checks that `addr` lies inside the DRAM.
    pub fn check(&self, addr: DramAddr) -> Result<DramAddr, DramAddrOutOfRange> {
        if self.addr_bits < 64 && addr.raw() >> self.addr_bits != 0 {
            Err(DramAddrOutOfRange {
                addr: addr.raw(),
                addr_bits: self.addr_bits,
            })
        } else {
            Ok(addr)
        }
    }

    /// The coordinates of the line holding `addr`. The byte-within-line bits are ignored; an
    /// address beyond the DRAM is an error.
    pub fn decode(&self, addr: DramAddr) -> Result<DramLocation, DramAddrOutOfRange> {
        let raw = self.check(addr)?.raw();
        // Field widths are at most 16 bits for real geometries, and validation ties each width
        // to a u32 count, so the narrowing below cannot lose bits.
        let [channel, rank, bankgroup, bank, row, column] = self
            .extract
            .map(|(shift, mask)| ((raw & mask) >> shift) as u32);
        debug_assert_eq!(row, self.row.extract(raw) as u32);
        Ok(DramLocation {
            channel,
            rank,
            bankgroup,
            bank,
            row,
            column,
        })
    }

    /// The line address of a location (the inverse of [`AddressMapping::decode`]); coordinates
    /// wider than their field are truncated.
    pub fn encode(&self, loc: DramLocation) -> DramAddr {
        let mut raw = 0u64;
        raw = self.channel.insert(raw, u64::from(loc.channel));
        raw = self.rank.insert(raw, u64::from(loc.rank));
        raw = self.bankgroup.insert(raw, u64::from(loc.bankgroup));
        raw = self.bank.insert(raw, u64::from(loc.bank));
        raw = self.row.insert(raw, u64::from(loc.row));
        raw = self.column.insert(raw, u64::from(loc.column));
        DramAddr::new(raw)
    }
}
