//! Addresses, KeyIDs, and the one place where addresses are sliced.
//!
//! Four address spaces meet in an MKTME machine, and each has its own type so that mixing them
//! up is a compile error rather than a silent bug:
//!
//! - [`VirtAddr`]: a virtual (linear) address, as a program names memory. The TLB and the
//!   kernel's page tables translate it, one 4 KiB page at a time, to a physical address; it
//!   carries no KeyID (the page-table entry picks it).
//! - [`PhysAddr`]: the platform physical address as cores, TLBs and caches see it. Its top
//!   `keyid_bits` bits carry the KeyID (mktme-facts.md 1.7).
//! - [`DramAddr`]: the same address with the KeyID bits cleared. This is what reaches the memory
//!   controller's DRAM side, the DIMM bus, and the AES-XTS tweak.
//! - [`LineAddr`]: a physical cache-line number, KeyID included. Caches tag lines with it, so the
//!   same DRAM line under two KeyIDs is two unrelated cache lines.
//!
//! ```text
//!   bit  phys_addr_bits-1         usable_bits   usable_bits-1                 6 5      0
//!       +------------------------+------------+-------------------------------+--------+
//!       |        KeyID           |            |      DRAM line address         | offset |
//!       +------------------------+------------+-------------------------------+--------+
//! ```
//!
//! [`AddressLayout`] owns the widths and is the only code that shifts or masks across the KeyID
//! boundary. Other fixed-position fields (cache set index, DRAM row/bank/column) are sliced with
//! [`BitRange`], and a virtual address's page and offsets with [`VirtAddr`]'s methods, so every
//! bit-twiddle of an address in the workspace goes through this module.

use std::fmt;

/// Bytes in a cache line, the unit of coherence, of DRAM transfer and of XTS encryption.
pub const LINE_BYTES: usize = 64;
/// log2 of [`LINE_BYTES`].
pub const LINE_SHIFT: u32 = 6;
/// Bytes in a 4 KiB page.
pub const PAGE_BYTES: usize = 4096;
/// log2 of [`PAGE_BYTES`].
pub const PAGE_SHIFT: u32 = 12;
/// Lines in a 4 KiB page.
pub const LINES_PER_PAGE: usize = PAGE_BYTES / LINE_BYTES;

/// The contents of one cache line.
pub type LineBytes = [u8; LINE_BYTES];

/// A KeyID: the index of a key-table entry. KeyID 0 is the platform TME key.
///
/// A `KeyId` on its own is only a number; whether it is valid on a machine depends on the
/// [`AddressLayout`] (how many KeyID bits) and on the key table (how many keys).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct KeyId(u16);

impl KeyId {
    /// KeyID 0, which always uses the platform TME key (or TME bypass).
    pub const TME: KeyId = KeyId(0);

    /// Wraps a raw KeyID number.
    pub const fn new(raw: u16) -> KeyId {
        KeyId(raw)
    }

    /// The raw KeyID number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The raw KeyID as an index into per-KeyID tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// True for KeyID 0.
    pub const fn is_tme(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! hex_addr_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw address. No range check: use [`AddressLayout`] to validate input.
            pub const fn new(raw: u64) -> $name {
                $name(raw)
            }

            /// The raw address.
            pub const fn raw(self) -> u64 {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

hex_addr_type! {
    /// A platform physical address, KeyID bits included (what a PTE, a TLB or a cache holds).
    PhysAddr
}

hex_addr_type! {
    /// A DRAM address: a physical address with the KeyID bits cleared. This is what crosses the
    /// DIMM bus and what tweaks AES-XTS.
    DramAddr
}

hex_addr_type! {
    /// A physical cache-line number (physical address >> 6), KeyID bits included.
    LineAddr
}

hex_addr_type! {
    /// A virtual (linear) address: what a program's loads, stores and system calls name, before
    /// translation. No arithmetic operators: offsets go through the named methods, and the page
    /// number and offsets are sliced here only.
    VirtAddr
}

impl VirtAddr {
    /// The first byte of the 4 KiB page holding this address (the page's name in page tables
    /// and TLBs).
    #[inline]
    pub const fn page_base(self) -> VirtAddr {
        VirtAddr(self.0 & !(PAGE_BYTES as u64 - 1))
    }

    /// Byte offset within the 4 KiB page.
    #[inline]
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_BYTES as u64 - 1)
    }

    /// True when the address is the first byte of a 4 KiB page.
    pub const fn is_page_aligned(self) -> bool {
        self.page_offset() == 0
    }

    /// Byte offset within the cache line.
    #[inline]
    pub const fn line_offset(self) -> usize {
        (self.0 & (LINE_BYTES as u64 - 1)) as usize
    }

    /// The address `bytes` further on, or `None` past the top of the address space.
    pub const fn checked_add(self, bytes: u64) -> Option<VirtAddr> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(VirtAddr(v)),
            None => None,
        }
    }

    /// The address `bytes` further on, wrapping at the top of the address space (as the
    /// processor's linear address arithmetic does).
    #[inline]
    pub const fn wrapping_add(self, bytes: u64) -> VirtAddr {
        VirtAddr(self.0.wrapping_add(bytes))
    }

    /// The start of the `n`-th page after this one (this address must be page-aligned, and the
    /// result must not pass the top of the address space).
    pub const fn nth_page(self, n: u64) -> VirtAddr {
        VirtAddr(self.0 + (n << PAGE_SHIFT))
    }

    /// Bytes from `base` up to this address, or `None` when this address is below `base`.
    pub const fn checked_offset_from(self, base: VirtAddr) -> Option<u64> {
        self.0.checked_sub(base.0)
    }
}

impl PhysAddr {
    /// The cache line this byte belongs to.
    pub const fn line(self) -> LineAddr {
        LineAddr(self.0 >> LINE_SHIFT)
    }

    /// Byte offset within the cache line.
    pub const fn line_offset(self) -> usize {
        (self.0 & (LINE_BYTES as u64 - 1)) as usize
    }

    /// The address `bytes` further on, or `None` on overflow. The caller re-validates the result
    /// against the layout when it may cross into the KeyID bits.
    pub const fn checked_add(self, bytes: u64) -> Option<PhysAddr> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(PhysAddr(v)),
            None => None,
        }
    }
}

impl DramAddr {
    /// The first byte of the line holding this address.
    pub const fn line_base(self) -> DramAddr {
        DramAddr(self.0 & !(LINE_BYTES as u64 - 1))
    }

    /// Byte offset within the cache line.
    pub const fn line_offset(self) -> usize {
        (self.0 & (LINE_BYTES as u64 - 1)) as usize
    }

    /// True when the address is the first byte of a line.
    pub const fn is_line_aligned(self) -> bool {
        self.line_offset() == 0
    }

    /// The DRAM line number (address >> 6).
    pub const fn line_index(self) -> u64 {
        self.0 >> LINE_SHIFT
    }

    /// The first byte of DRAM line number `index`.
    pub const fn from_line_index(index: u64) -> DramAddr {
        DramAddr(index << LINE_SHIFT)
    }

    /// The first byte of the 4 KiB page holding this address.
    pub const fn page_base(self) -> DramAddr {
        DramAddr(self.0 & !(PAGE_BYTES as u64 - 1))
    }

    /// True when the address is the first byte of a 4 KiB page.
    pub const fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_BYTES as u64 - 1) == 0
    }

    /// The address `bytes` further on, or `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<DramAddr> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(DramAddr(v)),
            None => None,
        }
    }

    /// The start of the `n`-th line after this one (this address must be line-aligned).
    pub const fn nth_line(self, n: u64) -> DramAddr {
        DramAddr(self.0 + (n << LINE_SHIFT))
    }
}

impl LineAddr {
    /// The physical address of the first byte of the line.
    pub const fn base(self) -> PhysAddr {
        PhysAddr(self.0 << LINE_SHIFT)
    }
}

/// A contiguous field of bits in an address: `width` bits starting at bit `low`.
///
/// Used for every fixed-position slice of an address that is not the KeyID: cache set index,
/// DRAM channel/rank/bank/row/column. A zero-width range extracts 0 and inserts nothing.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct BitRange {
    low: u32,
    width: u32,
    /// The field's bits, right-aligned (kept: extracting is on every cache lookup).
    value_mask: u64,
}

impl BitRange {
    /// `width` bits starting at bit `low`. Returns `None` when the field would not fit in 64 bits.
    pub const fn new(low: u32, width: u32) -> Option<BitRange> {
        if low > 64 || width > 64 || low + width > 64 {
            None
        } else {
            // Shifting by 64 - width: 0 bits for a 64-bit field, all of them for an empty one.
            let value_mask = match u64::MAX.checked_shr(64 - width) {
                Some(mask) => mask,
                None => 0,
            };
            Some(BitRange {
                low,
                width,
                value_mask,
            })
        }
    }

    /// [`BitRange::new`] for a field known to fit (a layout's, which validation checked).
    const fn within_64(low: u32, width: u32) -> BitRange {
        match BitRange::new(low, width) {
            Some(range) => range,
            None => panic!("an address layout's field fits in 64 bits"),
        }
    }

    /// Lowest bit of the field.
    pub const fn low(self) -> u32 {
        self.low
    }

    /// Number of bits in the field.
    pub const fn width(self) -> u32 {
        self.width
    }

    /// One past the highest bit of the field.
    pub const fn end(self) -> u32 {
        self.low + self.width
    }

    /// Number of distinct values the field can hold (2^width).
    pub const fn count(self) -> u64 {
        if self.width == 64 {
            u64::MAX
        } else {
            1u64 << self.width
        }
    }

    /// The field's bits in place.
    pub const fn mask(self) -> u64 {
        // An empty field's mask is 0, so a shift of 64 (wrapping to 0) is harmless.
        self.value_mask.wrapping_shl(self.low)
    }

    /// Reads the field out of `word`.
    #[inline]
    pub const fn extract(self, word: u64) -> u64 {
        word.wrapping_shr(self.low) & self.value_mask
    }

    /// Writes `value` (truncated to the field's width) into the field of `word`.
    #[inline]
    pub const fn insert(self, word: u64, value: u64) -> u64 {
        (word & !self.mask()) | (value & self.value_mask).wrapping_shl(self.low)
    }

    /// True when the two fields share a bit.
    pub const fn overlaps(self, other: BitRange) -> bool {
        self.width != 0 && other.width != 0 && self.low < other.end() && other.low < self.end()
    }

    /// `word` with the field cut out and the bits above it shifted down to close the gap (for
    /// example a controller-local address from a global one, when the field selects the
    /// controller). Inverse of [`BitRange::expand`].
    pub const fn squeeze(self, word: u64) -> u64 {
        if self.width == 0 {
            return word;
        }
        let below = word & ((1u64 << self.low) - 1);
        let above = if self.end() >= 64 {
            0
        } else {
            word >> self.end()
        };
        below | (above << self.low)
    }

    /// Re-opens the gap [`BitRange::squeeze`] closed and puts `value` in the field.
    pub const fn expand(self, squeezed: u64, value: u64) -> u64 {
        if self.width == 0 {
            return squeezed;
        }
        let below = squeezed & ((1u64 << self.low) - 1);
        let above = squeezed >> self.low;
        let above = if self.end() >= 64 {
            0
        } else {
            above << self.end()
        };
        self.insert(below | above, value)
    }
}

/// An impossible address layout or an address that does not fit it. Every variant names the
/// configuration field or the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `phys_addr_bits` outside what x86 MAXPHYADDR allows (and what the model supports).
    #[error("phys_addr_bits = {value} is out of range: it must be between {min} and {max}")]
    PhysAddrBitsOutOfRange {
        /// The configured value.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value (x86 MAXPHYADDR is at most 52).
        max: u32,
    },
    /// `keyid_bits` wider than the 4-bit MK_TME_KEYID_BITS field can express.
    #[error(
        "keyid_bits = {value} is out of range: MK_TME_KEYID_BITS is a 4-bit field, so at most {max}"
    )]
    KeyIdBitsOutOfRange {
        /// The configured value.
        value: u32,
        /// Largest accepted value (15).
        max: u32,
    },
    /// The KeyID bits leave too few address bits for DRAM.
    #[error(
        "keyid_bits = {keyid_bits} leaves {usable} usable address bits out of phys_addr_bits = \
         {phys_addr_bits}; at least {min} are needed"
    )]
    TooFewUsableBits {
        /// The configured physical address width.
        phys_addr_bits: u32,
        /// The configured KeyID width.
        keyid_bits: u32,
        /// What remains for DRAM addresses.
        usable: u32,
        /// Smallest accepted usable width.
        min: u32,
    },
    /// A KeyID that the layout's KeyID bits cannot name.
    #[error("KeyID {keyid} does not fit in {keyid_bits} KeyID bits (the largest is {max})")]
    KeyIdOutOfRange {
        /// The KeyID asked for.
        keyid: u32,
        /// The layout's KeyID width.
        keyid_bits: u32,
        /// The largest KeyID the layout can name.
        max: u32,
    },
    /// A DRAM address at or above 2^usable_bits.
    #[error("DRAM address {addr:#x} does not fit in {usable_bits} usable address bits")]
    DramAddrOutOfRange {
        /// The address.
        addr: u64,
        /// The layout's usable width.
        usable_bits: u32,
    },
    /// A physical address at or above 2^phys_addr_bits.
    #[error("physical address {addr:#x} does not fit in phys_addr_bits = {phys_addr_bits}")]
    PhysAddrOutOfRange {
        /// The address.
        addr: u64,
        /// The layout's physical width.
        phys_addr_bits: u32,
    },
}

/// Where the KeyID sits in a physical address, and the only code that puts it there or takes
/// it out.
///
/// Following mktme-facts.md 1.7 and Linux's `__mktme_keyid_shift`: the KeyID occupies the top
/// `keyid_bits` of a `phys_addr_bits`-wide address, so `keyid_shift = phys_addr_bits -
/// keyid_bits` and the usable (DRAM) address width is that same number.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct AddressLayout {
    phys_addr_bits: u32,
    keyid_bits: u32,
}

impl Default for AddressLayout {
    /// 52 physical address bits, 6 KeyID bits: the first-generation MKTME layout (63 keys).
    fn default() -> AddressLayout {
        AddressLayout {
            phys_addr_bits: Self::DEFAULT_PHYS_ADDR_BITS,
            keyid_bits: Self::DEFAULT_KEYID_BITS,
        }
    }
}

impl AddressLayout {
    /// Default physical address width.
    pub const DEFAULT_PHYS_ADDR_BITS: u32 = 52;
    /// Default KeyID width.
    pub const DEFAULT_KEYID_BITS: u32 = 6;
    /// Smallest accepted `phys_addr_bits` (small machines for tests; real parts start at 36).
    pub const PHYS_ADDR_BITS_MIN: u32 = 32;
    /// Largest accepted `phys_addr_bits` (x86 MAXPHYADDR).
    pub const PHYS_ADDR_BITS_MAX: u32 = 52;
    /// Largest accepted `keyid_bits` (MK_TME_MAX_KEYID_BITS is 4 bits wide).
    pub const KEYID_BITS_MAX: u32 = 15;
    /// Smallest usable DRAM address width: 1 MiB of DRAM.
    pub const USABLE_BITS_MIN: u32 = 20;

    /// Validates a layout.
    pub fn new(phys_addr_bits: u32, keyid_bits: u32) -> Result<AddressLayout, LayoutError> {
        if !(Self::PHYS_ADDR_BITS_MIN..=Self::PHYS_ADDR_BITS_MAX).contains(&phys_addr_bits) {
            return Err(LayoutError::PhysAddrBitsOutOfRange {
                value: phys_addr_bits,
                min: Self::PHYS_ADDR_BITS_MIN,
                max: Self::PHYS_ADDR_BITS_MAX,
            });
        }
        if keyid_bits > Self::KEYID_BITS_MAX {
            return Err(LayoutError::KeyIdBitsOutOfRange {
                value: keyid_bits,
                max: Self::KEYID_BITS_MAX,
            });
        }
        let usable = phys_addr_bits - keyid_bits;
        if usable < Self::USABLE_BITS_MIN {
            return Err(LayoutError::TooFewUsableBits {
                phys_addr_bits,
                keyid_bits,
                usable,
                min: Self::USABLE_BITS_MIN,
            });
        }
        Ok(AddressLayout {
            phys_addr_bits,
            keyid_bits,
        })
    }

    /// Width of a physical address (CPUID MAX_PA_WIDTH; unchanged by MKTME activation).
    pub const fn phys_addr_bits(self) -> u32 {
        self.phys_addr_bits
    }

    /// Number of KeyID bits (MK_TME_KEYID_BITS).
    pub const fn keyid_bits(self) -> u32 {
        self.keyid_bits
    }

    /// Width of a DRAM address: `phys_addr_bits - keyid_bits` (what Linux shows as the reduced
    /// `x86_phys_bits`).
    pub const fn usable_bits(self) -> u32 {
        self.phys_addr_bits - self.keyid_bits
    }

    /// The field of a physical address that carries the KeyID.
    pub const fn keyid_field(self) -> BitRange {
        BitRange::within_64(self.usable_bits(), self.keyid_bits)
    }

    /// The field of a physical address that carries the DRAM address.
    pub const fn dram_field(self) -> BitRange {
        BitRange::within_64(0, self.usable_bits())
    }

    /// The largest KeyID the KeyID bits can name (`2^keyid_bits - 1`, 0 without KeyID bits).
    pub const fn max_keyid(self) -> u16 {
        ((1u32 << self.keyid_bits) - 1) as u16
    }

    /// Bytes of DRAM the usable address bits can reach.
    pub const fn dram_bytes(self) -> u64 {
        1u64 << self.usable_bits()
    }

    /// The KeyID carried by a physical address.
    pub const fn keyid(self, pa: PhysAddr) -> KeyId {
        KeyId(self.keyid_field().extract(pa.0) as u16)
    }

    /// The DRAM address of a physical address: the KeyID bits cleared.
    pub const fn dram_addr(self, pa: PhysAddr) -> DramAddr {
        DramAddr(self.dram_field().extract(pa.0))
    }

    /// The KeyID of a cache line.
    pub const fn line_keyid(self, line: LineAddr) -> KeyId {
        self.keyid(line.base())
    }

    /// The DRAM address of the first byte of a cache line.
    pub const fn line_dram_addr(self, line: LineAddr) -> DramAddr {
        self.dram_addr(line.base())
    }

    /// Checks that a KeyID fits the KeyID bits.
    pub const fn check_keyid(self, keyid: KeyId) -> Result<KeyId, LayoutError> {
        if keyid.0 > self.max_keyid() {
            Err(LayoutError::KeyIdOutOfRange {
                keyid: keyid.0 as u32,
                keyid_bits: self.keyid_bits,
                max: self.max_keyid() as u32,
            })
        } else {
            Ok(keyid)
        }
    }

    /// Checks that a DRAM address fits the usable bits.
    pub const fn check_dram_addr(self, addr: DramAddr) -> Result<DramAddr, LayoutError> {
        if addr.0 >= self.dram_bytes() {
            Err(LayoutError::DramAddrOutOfRange {
                addr: addr.0,
                usable_bits: self.usable_bits(),
            })
        } else {
            Ok(addr)
        }
    }

    /// Checks that a raw physical address fits `phys_addr_bits`.
    pub const fn check_phys_addr(self, raw: u64) -> Result<PhysAddr, LayoutError> {
        if self.phys_addr_bits < 64 && raw >> self.phys_addr_bits != 0 {
            Err(LayoutError::PhysAddrOutOfRange {
                addr: raw,
                phys_addr_bits: self.phys_addr_bits,
            })
        } else {
            Ok(PhysAddr(raw))
        }
    }

    /// The physical address that reaches `dram` through `keyid`.
    pub const fn compose(self, keyid: KeyId, dram: DramAddr) -> Result<PhysAddr, LayoutError> {
        if let Err(e) = self.check_keyid(keyid) {
            return Err(e);
        }
        if let Err(e) = self.check_dram_addr(dram) {
            return Err(e);
        }
        Ok(PhysAddr(self.keyid_field().insert(dram.0, keyid.0 as u64)))
    }

    /// The alias of `pa` under another KeyID: the same DRAM location, a different physical
    /// address.
    pub const fn with_keyid(self, pa: PhysAddr, keyid: KeyId) -> Result<PhysAddr, LayoutError> {
        self.compose(keyid, self.dram_addr(pa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_layout_matches_linux_example() {
        // mktme-facts.md 1.7: 52-bit PA with 6 KeyID bits makes bits 51:46 unusable.
        let l = AddressLayout::default();
        assert_eq!(l.usable_bits(), 46);
        assert_eq!(l.keyid_field().mask(), 0x000f_c000_0000_0000);
        assert_eq!(l.max_keyid(), 63);
        assert_eq!(AddressLayout::new(52, 6).unwrap(), l);
    }

    #[test]
    fn impossible_layouts_name_the_field() {
        let e = AddressLayout::new(52, 16).unwrap_err();
        assert!(matches!(
            e,
            LayoutError::KeyIdBitsOutOfRange { value: 16, max: 15 }
        ));
        assert!(e.to_string().contains("keyid_bits = 16"));
        let e = AddressLayout::new(60, 6).unwrap_err();
        assert!(e.to_string().contains("phys_addr_bits = 60"));
        let e = AddressLayout::new(31, 0).unwrap_err();
        assert!(matches!(
            e,
            LayoutError::PhysAddrBitsOutOfRange { value: 31, .. }
        ));
        let e = AddressLayout::new(32, 15).unwrap_err();
        assert!(matches!(
            e,
            LayoutError::TooFewUsableBits { usable: 17, .. }
        ));
        assert!(e.to_string().contains("keyid_bits = 15"));
    }

    #[test]
    fn zero_keyid_bits_is_tme_only() {
        let l = AddressLayout::new(46, 0).unwrap();
        assert_eq!(l.max_keyid(), 0);
        assert_eq!(l.keyid(PhysAddr::new(0x3fff_ffff_ffff)), KeyId::TME);
        assert!(l.compose(KeyId::new(1), DramAddr::new(0)).is_err());
    }

    #[test]
    fn compose_rejects_out_of_range_parts() {
        let l = AddressLayout::new(40, 4).unwrap();
        assert_eq!(
            l.compose(KeyId::new(16), DramAddr::new(0)).unwrap_err(),
            LayoutError::KeyIdOutOfRange {
                keyid: 16,
                keyid_bits: 4,
                max: 15
            }
        );
        assert!(l.compose(KeyId::new(15), DramAddr::new(1 << 36)).is_err());
        assert!(
            l.compose(KeyId::new(15), DramAddr::new((1 << 36) - 1))
                .is_ok()
        );
        assert!(l.check_phys_addr(1 << 40).is_err());
        assert!(l.check_phys_addr((1 << 40) - 1).is_ok());
    }

    #[test]
    fn virtual_addresses_slice_into_pages() {
        let va = VirtAddr::new(0x7000_1234);
        assert_eq!(va.page_base(), VirtAddr::new(0x7000_1000));
        assert_eq!(va.page_offset(), 0x234);
        assert_eq!(va.line_offset(), 0x34);
        assert!(!va.is_page_aligned() && va.page_base().is_page_aligned());
        assert_eq!(va.page_base().nth_page(2), VirtAddr::new(0x7000_3000));
        assert_eq!(va.checked_add(0xc), Some(VirtAddr::new(0x7000_1240)));
        assert_eq!(VirtAddr::new(u64::MAX).checked_add(1), None);
        assert_eq!(VirtAddr::new(u64::MAX).wrapping_add(2), VirtAddr::new(1));
        assert_eq!(
            va.checked_offset_from(VirtAddr::new(0x7000_0000)),
            Some(0x1234)
        );
        assert_eq!(VirtAddr::new(0x10).checked_offset_from(va), None);
        assert_eq!(
            format!("{va} {va:?} {va:#x}"),
            "0x70001234 VirtAddr(0x70001234) 0x70001234"
        );
    }

    #[test]
    fn bit_range_edges() {
        let r = BitRange::new(6, 7).unwrap();
        assert_eq!(r.extract(0x1fc0), 0x7f);
        assert_eq!(r.insert(0, 0xff), 0x1fc0);
        assert_eq!(BitRange::new(0, 0).unwrap().extract(u64::MAX), 0);
        assert_eq!(BitRange::new(0, 64).unwrap().extract(u64::MAX), u64::MAX);
        assert!(BitRange::new(60, 5).is_none());
        assert!(r.overlaps(BitRange::new(12, 2).unwrap()));
        assert!(!r.overlaps(BitRange::new(13, 2).unwrap()));
    }

    #[test]
    fn squeeze_and_expand() {
        // Bits [13:12] select one of 4 controllers at 4 KiB interleave.
        let f = BitRange::new(12, 2).unwrap();
        assert_eq!(f.squeeze(0x7_3abc), 0x1_cabc);
        assert_eq!(f.expand(0x1_cabc, 3), 0x7_3abc);
        assert_eq!(BitRange::new(5, 0).unwrap().squeeze(0xff), 0xff);
    }

    proptest! {
        #[test]
        fn compose_then_slice_round_trips(phys in 32u32..=52, kbits in 0u32..=12, k in any::<u16>(), a in any::<u64>()) {
            let layout = AddressLayout::new(phys, kbits).unwrap();
            let keyid = KeyId::new(k & layout.max_keyid());
            let dram = DramAddr::new(a & (layout.dram_bytes() - 1));
            let pa = layout.compose(keyid, dram).unwrap();
            prop_assert_eq!(layout.keyid(pa), keyid);
            prop_assert_eq!(layout.dram_addr(pa), dram);
            prop_assert!(layout.check_phys_addr(pa.raw()).is_ok());
            // The line of a physical address keeps its KeyID.
            prop_assert_eq!(layout.line_keyid(pa.line()), keyid);
            prop_assert_eq!(layout.line_dram_addr(pa.line()), dram.line_base());
        }

        #[test]
        fn squeeze_expand_round_trip(low in 0u32..40, width in 0u32..8, word in 0u64..(1 << 48)) {
            let f = BitRange::new(low, width).unwrap();
            prop_assert_eq!(f.expand(f.squeeze(word), f.extract(word)), word);
        }

        #[test]
        fn aliases_share_dram_but_not_lines(k1 in 0u16..64, k2 in 0u16..64, a in 0u64..(1 << 46)) {
            let layout = AddressLayout::default();
            let p1 = layout.compose(KeyId::new(k1), DramAddr::new(a)).unwrap();
            let p2 = layout.with_keyid(p1, KeyId::new(k2)).unwrap();
            prop_assert_eq!(layout.dram_addr(p1), layout.dram_addr(p2));
            prop_assert_eq!(p1.line() == p2.line(), k1 == k2);
        }
    }
}
