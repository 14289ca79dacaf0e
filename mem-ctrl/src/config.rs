//! Typed configuration of the memory system and the errors that reject impossible ones.
//!
//! Configurations arrive from RON files (parsed elsewhere: model crates have no serde) as these
//! plain structs, and [`MemCtrlConfig::validate`] rejects every impossible combination with an
//! error that names the field.

use crate::dram::DramConfig;
use crate::pconfig::{ENC_ALG_AES_XTS_128, ENC_ALG_AES_XTS_256, SpecRevision};
use crate::xts::XtsAlgorithm;
use sim_core::{AddressLayout, BitRange, DramAddr, LayoutError};

/// The algorithms TME_ACTIVATE.MK_TME_CRYPTO_ALGS activates for PCONFIG.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct AlgorithmSet {
    /// AES-XTS-128 (TME_ACTIVATE bit 48).
    pub aes_xts_128: bool,
    /// AES-XTS-256 (TME_ACTIVATE bit 50).
    pub aes_xts_256: bool,
}

impl AlgorithmSet {
    /// Both algorithms.
    pub const ALL: AlgorithmSet = AlgorithmSet {
        aes_xts_128: true,
        aes_xts_256: true,
    };

    /// The set as ENC_ALG bits.
    pub const fn enc_alg_bits(self) -> u16 {
        (if self.aes_xts_128 {
            ENC_ALG_AES_XTS_128
        } else {
            0
        }) | (if self.aes_xts_256 {
            ENC_ALG_AES_XTS_256
        } else {
            0
        })
    }

    /// True when no algorithm is activated.
    pub const fn is_empty(self) -> bool {
        !self.aes_xts_128 && !self.aes_xts_256
    }
}

/// The TME exclusion range (IA32_TME_EXCLUDE_BASE/MASK): KeyID-0 accesses inside it are not
/// encrypted. Other KeyIDs are encrypted normally inside it (mktme-facts.md 1.6).
///
/// The MSRs describe one contiguous, naturally aligned region (base/mask, like an MTRR), so the
/// range is given as a base and a power-of-two size of at least 4 KiB, with the base aligned to
/// the size.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExclusionRange {
    /// First byte.
    pub base: DramAddr,
    /// Length in bytes.
    pub size_bytes: u64,
}

impl ExclusionRange {
    /// True when `addr` falls inside the range.
    pub const fn contains(&self, addr: DramAddr) -> bool {
        addr.raw() & !(self.size_bytes - 1) == self.base.raw()
    }
}

/// TME/MKTME activation settings: what the BIOS wrote to IA32_TME_ACTIVATE and the exclusion
/// MSRs, plus the capability's MK_TME_MAX_KEYS.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TmeSettings {
    /// TME_ACTIVATE bit 1: hardware encryption enabled. Off means no encryption at all.
    pub enabled: bool,
    /// TME_ACTIVATE bits 7:4: the algorithm of the KeyID-0 platform key.
    pub policy: XtsAlgorithm,
    /// TME_ACTIVATE bit 31: KeyID 0 (and every KeyID in TME behaviour) is not encrypted.
    pub bypass: bool,
    /// MK_TME_MAX_KEYS: KeyIDs 1..=max_keys can be programmed. Not necessarily a power of two.
    pub max_keys: u16,
    /// MK_TME_CRYPTO_ALGS.
    pub algorithms: AlgorithmSet,
    /// The exclusion range, if enabled.
    pub exclusion: Option<ExclusionRange>,
}

impl Default for TmeSettings {
    /// TME on with AES-XTS-128, no bypass, 63 keys (6 KeyID bits), both algorithms.
    fn default() -> TmeSettings {
        TmeSettings {
            enabled: true,
            policy: XtsAlgorithm::Aes128,
            bypass: false,
            max_keys: 63,
            algorithms: AlgorithmSet::ALL,
            exclusion: None,
        }
    }
}

/// A probability as an exact fraction.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Fraction {
    /// Numerator.
    pub numerator: u64,
    /// Denominator (non-zero).
    pub denominator: u64,
}

impl Fraction {
    /// Zero.
    pub const ZERO: Fraction = Fraction {
        numerator: 0,
        denominator: 1,
    };
}

/// Everything needed to build the memory system of one package.
#[derive(Clone, Debug)]
pub struct MemCtrlConfig {
    /// Physical address width and KeyID bits (MK_TME_KEYID_BITS).
    pub layout: AddressLayout,
    /// TME/MKTME activation.
    pub tme: TmeSettings,
    /// Which generation of the PCONFIG spec to follow.
    pub spec_revision: SpecRevision,
    /// Cycles from PCONFIG start until the new entry is in every key table; the key-table lock
    /// is held that long, and a PCONFIG that starts meanwhile gets DEVICE_BUSY.
    pub pconfig_latency_cycles: u64,
    /// Probability that a SET_KEY_RANDOM finds the RNG out of entropy (ENTROPY_ERROR).
    pub entropy_failure_rate: Fraction,
    /// Memory controllers in the package; each has its own key table, DRAM and bus.
    pub controllers: u32,
    /// Bytes of contiguous DRAM address served by one controller before the next takes over.
    pub interleave_bytes: u64,
    /// The DRAM behind each controller: geometry, timing, queues, and the AES stage's timing.
    pub dram: DramConfig,
    /// The core clock, in MHz. Every cycle the memory system's interface takes or returns is a
    /// core cycle; the DRAM model runs in its own clock underneath.
    pub core_clock_mhz: u64,
    /// A study's counterfactual, never set by a machine file: every PCONFIG that sets a key
    /// (SET_KEY_DIRECT, SET_KEY_RANDOM) programs KEYID_NO_ENCRYPT instead, with the same
    /// checks, status, latency and random draws. With TME bypass, no line is encrypted at all: the "engine
    /// off" of `mktme-sim overhead --plaintext`.
    pub keys_as_no_encrypt: bool,
}

impl Default for MemCtrlConfig {
    fn default() -> MemCtrlConfig {
        MemCtrlConfig {
            layout: AddressLayout::default(),
            tme: TmeSettings::default(),
            spec_revision: SpecRevision::Sdm,
            pconfig_latency_cycles: 1000,
            entropy_failure_rate: Fraction::ZERO,
            controllers: 1,
            interleave_bytes: 4096,
            dram: DramConfig::machine_preset("ddr4-2400").expect("built-in preset is valid"),
            core_clock_mhz: 3200,
            keys_as_no_encrypt: false,
        }
    }
}

/// An impossible memory-system configuration. Every variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemCtrlConfigError {
    /// The address layout is impossible.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// More keys than the KeyID bits can name.
    #[error(
        "max_keys = {max_keys} is more keys than keyid_bits = {keyid_bits} can name (at most \
         {limit}: KeyID 0 is the TME key)"
    )]
    MaxKeysAboveKeyIdBits {
        /// The configured MK_TME_MAX_KEYS.
        max_keys: u16,
        /// The configured KeyID width.
        keyid_bits: u32,
        /// `2^keyid_bits - 1`.
        limit: u16,
    },
    /// KeyID bits but no keys.
    #[error("max_keys = 0 with keyid_bits = {keyid_bits}: MKTME needs at least one key")]
    NoKeys {
        /// The configured KeyID width.
        keyid_bits: u32,
    },
    /// MKTME KeyID bits without TME (TME_ACTIVATE #GP).
    #[error("keyid_bits = {keyid_bits} with tme.enabled = false: MKTME needs TME enabled")]
    KeyIdBitsWithoutTme {
        /// The configured KeyID width.
        keyid_bits: u32,
    },
    /// MK_TME_CRYPTO_ALGS activates nothing.
    #[error(
        "tme.algorithms activates no algorithm: enable at least one of aes_xts_128, aes_xts_256"
    )]
    NoAlgorithm,
    /// The exclusion range is not a naturally aligned power-of-two region of at least 4 KiB.
    #[error(
        "tme.exclusion: size_bytes = {size:#x} must be a power of two of at least 0x1000, and \
         base = {base:#x} must be a multiple of it"
    )]
    ExclusionShape {
        /// The configured base.
        base: u64,
        /// The configured size.
        size: u64,
    },
    /// The exclusion range reaches past the DRAM address space.
    #[error(
        "tme.exclusion: base = {base:#x} + size_bytes = {size:#x} is beyond the {usable_bits}-bit DRAM address space"
    )]
    ExclusionOutOfRange {
        /// The configured base.
        base: u64,
        /// The configured size.
        size: u64,
        /// The layout's usable width.
        usable_bits: u32,
    },
    /// PCONFIG must take time.
    #[error("pconfig_latency_cycles = 0: PCONFIG takes at least one cycle")]
    ZeroPconfigLatency,
    /// Not a probability.
    #[error(
        "entropy_failure_rate = {numerator}/{denominator} is not a probability (denominator > 0, numerator <= denominator)"
    )]
    BadEntropyRate {
        /// Numerator.
        numerator: u64,
        /// Denominator.
        denominator: u64,
    },
    /// Controller count not a non-zero power of two.
    #[error("controllers = {value} must be a power of two between 1 and 64")]
    ControllerCount {
        /// The configured count.
        value: u32,
    },
    /// Interleave granularity not a power of two of at least one line.
    #[error("interleave_bytes = {value} must be a power of two of at least 64")]
    InterleaveBytes {
        /// The configured granularity.
        value: u64,
    },
    /// The core clock is zero.
    #[error("core_clock_mhz = 0: the core clock needs a frequency")]
    ZeroCoreClock,
    /// The installed DRAM is larger than the DRAM address space.
    #[error(
        "dram: {controllers} controller(s) x {per_controller:#x} bytes of DRAM is more than the \
         {usable_bits}-bit DRAM address space can reach"
    )]
    DramBeyondAddressSpace {
        /// The configured count.
        controllers: u32,
        /// Capacity behind one controller.
        per_controller: u64,
        /// The layout's usable width.
        usable_bits: u32,
    },
    /// The controllers' interleave bits would reach past the DRAM address.
    #[error(
        "controllers = {controllers} at interleave_bytes = {interleave_bytes} needs address \
         bits beyond the installed DRAM or the {usable_bits}-bit DRAM address space"
    )]
    InterleaveOutOfRange {
        /// The configured count.
        controllers: u32,
        /// The configured granularity.
        interleave_bytes: u64,
        /// The layout's usable width.
        usable_bits: u32,
    },
}

impl MemCtrlConfig {
    /// Checks every field; `Ok` means [`crate::MemorySystem::new`] will accept it.
    pub fn validate(&self) -> Result<(), MemCtrlConfigError> {
        // Re-validate the layout: it may have been built field by field.
        let layout = AddressLayout::new(self.layout.phys_addr_bits(), self.layout.keyid_bits())?;
        let keyid_bits = layout.keyid_bits();
        let tme = &self.tme;
        if keyid_bits > 0 && !tme.enabled {
            return Err(MemCtrlConfigError::KeyIdBitsWithoutTme { keyid_bits });
        }
        if tme.max_keys > layout.max_keyid() {
            return Err(MemCtrlConfigError::MaxKeysAboveKeyIdBits {
                max_keys: tme.max_keys,
                keyid_bits,
                limit: layout.max_keyid(),
            });
        }
        if keyid_bits > 0 && tme.max_keys == 0 {
            return Err(MemCtrlConfigError::NoKeys { keyid_bits });
        }
        if keyid_bits > 0 && tme.algorithms.is_empty() {
            return Err(MemCtrlConfigError::NoAlgorithm);
        }
        if let Some(ex) = tme.exclusion {
            let (base, size) = (ex.base.raw(), ex.size_bytes);
            if !size.is_power_of_two() || size < 0x1000 || !base.is_multiple_of(size) {
                return Err(MemCtrlConfigError::ExclusionShape { base, size });
            }
            if base
                .checked_add(size)
                .is_none_or(|end| end > layout.dram_bytes())
            {
                return Err(MemCtrlConfigError::ExclusionOutOfRange {
                    base,
                    size,
                    usable_bits: layout.usable_bits(),
                });
            }
        }
        if self.pconfig_latency_cycles == 0 {
            return Err(MemCtrlConfigError::ZeroPconfigLatency);
        }
        let rate = self.entropy_failure_rate;
        if rate.denominator == 0 || rate.numerator > rate.denominator {
            return Err(MemCtrlConfigError::BadEntropyRate {
                numerator: rate.numerator,
                denominator: rate.denominator,
            });
        }
        if !self.controllers.is_power_of_two() || self.controllers > 64 {
            return Err(MemCtrlConfigError::ControllerCount {
                value: self.controllers,
            });
        }
        if !self.interleave_bytes.is_power_of_two() || self.interleave_bytes < 64 {
            return Err(MemCtrlConfigError::InterleaveBytes {
                value: self.interleave_bytes,
            });
        }
        if self.core_clock_mhz == 0 {
            return Err(MemCtrlConfigError::ZeroCoreClock);
        }
        let per_controller = self.dram.capacity_bytes();
        let total = u128::from(per_controller) * u128::from(self.controllers);
        if total > u128::from(layout.dram_bytes()) {
            return Err(MemCtrlConfigError::DramBeyondAddressSpace {
                controllers: self.controllers,
                per_controller,
                usable_bits: layout.usable_bits(),
            });
        }
        // The controller-select bits must sit inside the installed DRAM, so that every
        // controller serves the same share of it.
        if u128::from(self.interleave_bytes) * u128::from(self.controllers) > total
            || self.controller_field().end() > layout.usable_bits()
        {
            return Err(MemCtrlConfigError::InterleaveOutOfRange {
                controllers: self.controllers,
                interleave_bytes: self.interleave_bytes,
                usable_bits: layout.usable_bits(),
            });
        }
        Ok(())
    }

    /// Bytes of DRAM installed in the package (all controllers).
    pub fn dram_bytes(&self) -> u64 {
        self.dram.capacity_bytes() * u64::from(self.controllers)
    }

    /// The DRAM address bits that pick the controller serving a line.
    pub(crate) fn controller_field(&self) -> BitRange {
        BitRange::new(
            self.interleave_bytes.trailing_zeros(),
            self.controllers.trailing_zeros(),
        )
        .expect("interleave field fits in 64 bits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut MemCtrlConfig)) -> Result<(), MemCtrlConfigError> {
        let mut c = MemCtrlConfig::default();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(MemCtrlConfig::default().validate(), Ok(()));
        // One ddr4-2400 channel: 2 ranks x 16 banks x 65,536 rows x 8 KiB.
        assert_eq!(MemCtrlConfig::default().dram_bytes(), 16 << 30);
    }

    #[test]
    fn impossible_configurations_name_their_field() {
        let cases: Vec<(Result<(), MemCtrlConfigError>, &str)> = vec![
            (with(|c| c.tme.max_keys = 64), "max_keys = 64"),
            (with(|c| c.tme.max_keys = 0), "max_keys = 0"),
            (with(|c| c.tme.enabled = false), "tme.enabled = false"),
            (
                with(|c| {
                    c.tme.algorithms = AlgorithmSet {
                        aes_xts_128: false,
                        aes_xts_256: false,
                    }
                }),
                "tme.algorithms",
            ),
            (
                with(|c| {
                    c.tme.exclusion = Some(ExclusionRange {
                        base: DramAddr::new(0x1000),
                        size_bytes: 0x3000,
                    })
                }),
                "tme.exclusion",
            ),
            (
                with(|c| {
                    c.tme.exclusion = Some(ExclusionRange {
                        base: DramAddr::new(1 << 46),
                        size_bytes: 0x1000,
                    })
                }),
                "beyond the 46-bit",
            ),
            (
                with(|c| c.pconfig_latency_cycles = 0),
                "pconfig_latency_cycles",
            ),
            (
                with(|c| {
                    c.entropy_failure_rate = Fraction {
                        numerator: 2,
                        denominator: 1,
                    }
                }),
                "entropy_failure_rate",
            ),
            (with(|c| c.controllers = 3), "controllers = 3"),
            (with(|c| c.controllers = 0), "controllers = 0"),
            (with(|c| c.interleave_bytes = 100), "interleave_bytes = 100"),
            (
                with(|c| {
                    c.interleave_bytes = 1 << 35;
                    c.controllers = 4;
                }),
                "needs address bits beyond",
            ),
            (with(|c| c.core_clock_mhz = 0), "core_clock_mhz = 0"),
            (
                with(|c| c.layout = AddressLayout::new(40, 8).unwrap()),
                "more than the 32-bit DRAM address space",
            ),
        ];
        for (result, needle) in cases {
            let err = result.expect_err(needle);
            assert!(
                err.to_string().contains(needle),
                "{err} does not mention {needle}"
            );
        }
    }

    #[test]
    fn max_keys_need_not_be_a_power_of_two() {
        assert_eq!(with(|c| c.tme.max_keys = 40), Ok(()));
        assert_eq!(with(|c| c.tme.max_keys = 63), Ok(()));
    }

    #[test]
    fn tme_only_machine_is_valid_without_keys() {
        let r = with(|c| {
            c.layout = AddressLayout::new(46, 0).unwrap();
            c.tme.max_keys = 0;
        });
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn exclusion_contains_is_base_and_mask() {
        let ex = ExclusionRange {
            base: DramAddr::new(0x10_0000),
            size_bytes: 0x10_0000,
        };
        assert!(ex.contains(DramAddr::new(0x10_0000)));
        assert!(ex.contains(DramAddr::new(0x1f_ffc0)));
        assert!(!ex.contains(DramAddr::new(0x20_0000)));
        assert!(!ex.contains(DramAddr::new(0x0f_ffc0)));
    }
}
