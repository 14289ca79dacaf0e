//! The AES-XTS engine: one line (64 bytes) is one XTS data unit, tweaked by its DRAM address.
//!
//! # Convention
//!
//! Design brief, normative: key1 (data key) = KEY_FIELD_1, key2 (tweak key) = KEY_FIELD_2, 16
//! bytes each for AES-XTS-128 and 32 for AES-XTS-256. The tweak input is the line's DRAM address
//! (KeyID bits cleared, low 6 bits zero) as a 16-byte little-endian integer; block j of the line
//! (j = 0..3) uses `E_key2(tweak) * alpha^j` in GF(2^128) (IEEE 1619). This equals OpenSSL's EVP
//! aes-128-xts with key = key1||key2 and iv = LE16(address). The KeyID is not part of the tweak.
//! A 4 KiB page is *not* one 4096-byte data unit: it is 64 data units, one per line, each tweaked
//! by its own address ([`XtsCipher::encrypt_run`]).
//!
//! An [`XtsCipher`] holds the expanded keys of one KeyID and is built once when the KeyID is
//! programmed, never per access. [`XtsCipher::encrypt_unit`] exposes general IEEE 1619 data
//! units (any non-zero multiple of 16 bytes) so that the standard's test vectors run through
//! the same engine.
//!
//! # Backends
//!
//! | [`Backend`] | needs (detected at run time) | one line is |
//! |---|---|---|
//! | [`Backend::Portable`] | nothing (the `aes` crate) | four `aes` crate blocks |
//! | [`Backend::AesNi`] | AES-NI | four 128-bit registers |
//! | [`Backend::Vaes256`] | AES-NI, VAES, VPCLMULQDQ, AVX2 | two 256-bit registers |
//! | [`Backend::Vaes512`] | AES-NI, VAES, VPCLMULQDQ, AVX-512F | one 512-bit register |
//!
//! The build stays portable: no `-C target-cpu`, no `RUSTFLAGS`. The x86-64 backends are
//! `#[target_feature]` functions chosen at run time ([`Backend::detect`]), and every backend
//! computes the same bytes (the tests hold each one to the IEEE 1619 vectors, to the portable
//! backend and to the `xts-mode` crate).
//!
//! # Why hand-written intrinsics
//!
//! The `aes` crate is a block cipher; XTS around it needs the tweak XORed in before and after
//! the AES rounds. Its public API cannot fuse that XOR into the registers between load and
//! rounds, so a crate-based XTS makes two extra passes over memory. Worse, since 0.9.3 `aes`
//! sends every call on an AVX-512 machine through its VAES-512 backend, which re-broadcasts the
//! round keys on every call and only runs in parallel for 64 blocks or more. The project's
//! measured reference note on crates and XTS (`crates-and-xts.md`, sections 2, 4 and 5; a
//! Sapphire Rapids-class VAES machine, OpenSSL 3.0.19 at 6.57 GB/s for 4 KiB) found: one 64-byte
//! line (4 blocks) per call at 1.38 GB/s with `aes` 0.9.4 against 8.27 GB/s with 0.9.2;
//! `xts-mode` at 0.29 GB/s per line; and the best batched use of the crate's API at 0.64x of
//! OpenSSL for 4 KiB pages and 0.70x for lines.
//!
//! The backends here keep the round keys expanded (and pre-broadcast for VAES) in the cipher,
//! load each line once, XOR the tweak in registers, encrypt the tweaks of four lines in one
//! 512-bit register, and interleave independent lines to hide the latency of the AES rounds.
//! `docs/benchmarks.md` has the measured result (about 1.3-1.5x OpenSSL 3.0 on Zen 4).

mod portable;

#[cfg(target_arch = "x86_64")]
mod aesni;
#[cfg(target_arch = "x86_64")]
mod vaes256;
#[cfg(target_arch = "x86_64")]
mod vaes512;

use sim_core::{DramAddr, LINE_BYTES, LineBytes};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// Bytes in one AES block, the granule of an XTS data unit.
pub const BLOCK_BYTES: usize = 16;

/// The two AES-XTS algorithms of plain TME-MK (no integrity).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum XtsAlgorithm {
    /// AES-XTS with two 128-bit keys (KEYID_CTRL ENC_ALG bit 0, 0x100).
    Aes128,
    /// AES-XTS with two 256-bit keys (KEYID_CTRL ENC_ALG bit 2, 0x400).
    Aes256,
}

impl XtsAlgorithm {
    /// Bytes in each of the two keys.
    pub const fn key_bytes(self) -> usize {
        match self {
            XtsAlgorithm::Aes128 => 16,
            XtsAlgorithm::Aes256 => 32,
        }
    }
}

/// A key of the wrong length for its algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} is {got} bytes; {algorithm:?} needs {expected}")]
pub struct KeyLengthError {
    /// `"data key"` or `"tweak key"`.
    pub which: &'static str,
    /// The algorithm asked for.
    pub algorithm: XtsAlgorithm,
    /// Bytes given.
    pub got: usize,
    /// Bytes needed.
    pub expected: usize,
}

/// Why [`XtsCipher::with_backend`] refused to build a cipher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XtsSetupError {
    /// The CPU (or this build's target architecture) lacks what the backend needs.
    #[error(
        "the {backend} AES-XTS backend needs {needs}, which this CPU does not have \
         (available: {available})"
    )]
    BackendUnavailable {
        /// The backend asked for.
        backend: Backend,
        /// What it needs, in words.
        needs: &'static str,
        /// The backends this machine does have, comma-separated.
        available: String,
    },
    /// A key of the wrong length.
    #[error(transparent)]
    KeyLength(#[from] KeyLengthError),
}

/// An implementation of the engine. All of them compute the same bytes; they differ in speed
/// and in what the CPU must have.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Backend {
    /// The `aes` crate's block cipher with the XTS tweak arithmetic done in Rust. Runs
    /// everywhere; the reference the fast backends are tested against.
    Portable,
    /// AES-NI on 128-bit registers: a line is four registers; two lines are interleaved.
    AesNi,
    /// VAES on 256-bit registers (AVX2 machines such as Zen 3 or Alder Lake): a line is two
    /// registers; four lines are interleaved.
    Vaes256,
    /// VAES on 512-bit registers (AVX-512 machines such as Ice Lake server, Sapphire Rapids or
    /// Zen 4): a line is one register, and the tweaks of four lines are encrypted in one
    /// register.
    Vaes512,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 4] = [
        Backend::Portable,
        Backend::AesNi,
        Backend::Vaes256,
        Backend::Vaes512,
    ];

    /// The fastest backend this CPU supports, detected once per process.
    pub fn detect() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            Backend::ALL
                .into_iter()
                .rev()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Portable)
        })
    }

    /// Every backend this CPU supports, slowest first. Always starts with
    /// [`Backend::Portable`].
    pub fn available() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_available())
            .collect()
    }

    /// True when this CPU (and this build's target architecture) can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi => aesni::detected(),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes256 => vaes256::detected(),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes512 => vaes512::detected(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::AesNi | Backend::Vaes256 | Backend::Vaes512 => false,
        }
    }

    /// The short name used on the command line and in reports: `portable`, `aes-ni`,
    /// `vaes-256` or `vaes-512`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::AesNi => "aes-ni",
            Backend::Vaes256 => "vaes-256",
            Backend::Vaes512 => "vaes-512",
        }
    }

    /// What the backend needs from the CPU, in words.
    pub const fn requirements(self) -> &'static str {
        match self {
            Backend::Portable => "nothing",
            Backend::AesNi => "x86-64 with AES-NI",
            Backend::Vaes256 => "x86-64 with AES-NI, VAES, VPCLMULQDQ and AVX2",
            Backend::Vaes512 => "x86-64 with AES-NI, VAES, VPCLMULQDQ and AVX-512F",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown AES-XTS backend {0:?}; expected one of portable, aes-ni, vaes-256, vaes-512")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    /// Parses a [`Backend::name`], case-insensitively, with or without the dash
    /// (`aesni`, `vaes512` are accepted too).
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        let key: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "portable" => Ok(Backend::Portable),
            "aesni" => Ok(Backend::AesNi),
            "vaes256" => Ok(Backend::Vaes256),
            "vaes512" => Ok(Backend::Vaes512),
            _ => Err(UnknownBackend(s.to_string())),
        }
    }
}

/// What every backend implements. `DEC` selects decryption; the tweak is always encrypted.
trait XtsImpl {
    /// One line, tweak = `addr`.
    fn crypt_line<const DEC: bool>(&self, addr: u64, line: &mut LineBytes);
    /// `lines[i]` with tweak `addrs[i]`; the slices have equal lengths.
    fn crypt_lines<const DEC: bool>(&self, addrs: &[DramAddr], lines: &mut [LineBytes]);
    /// `lines[i]` with tweak `first + 64 i` (no overflow: checked by the caller).
    fn crypt_run<const DEC: bool>(&self, first: u64, lines: &mut [LineBytes]);
    /// One data unit; `data.len()` is a non-zero multiple of 16 (checked by the caller).
    fn crypt_unit<const DEC: bool>(&self, tweak: u128, data: &mut [u8]);
}

#[derive(Clone)]
enum Engine {
    Portable(portable::PortableXts),
    #[cfg(target_arch = "x86_64")]
    AesNi(Box<aesni::AesNiXts>),
    #[cfg(target_arch = "x86_64")]
    Vaes256(Box<vaes256::Vaes256Xts>),
    #[cfg(target_arch = "x86_64")]
    Vaes512(Box<vaes512::Vaes512Xts>),
}

/// Calls the same [`XtsImpl`] method on whichever backend the engine holds.
macro_rules! dispatch {
    ($engine:expr, $x:ident => $call:expr) => {
        match $engine {
            Engine::Portable($x) => $call,
            #[cfg(target_arch = "x86_64")]
            Engine::AesNi($x) => $call,
            #[cfg(target_arch = "x86_64")]
            Engine::Vaes256($x) => $call,
            #[cfg(target_arch = "x86_64")]
            Engine::Vaes512($x) => $call,
        }
    };
}

/// The expanded keys of one KeyID, ready to encrypt and decrypt lines.
///
/// Build it once per key (when the KeyID is programmed): key expansion happens here, never per
/// call. The cipher is `Send + Sync`; share it across threads by reference.
#[derive(Clone)]
pub struct XtsCipher {
    algorithm: XtsAlgorithm,
    backend: Backend,
    engine: Engine,
}

impl fmt::Debug for XtsCipher {
    // Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XtsCipher")
            .field("algorithm", &self.algorithm)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn check_key_lengths(
    algorithm: XtsAlgorithm,
    data_key: &[u8],
    tweak_key: &[u8],
) -> Result<(), KeyLengthError> {
    let expected = algorithm.key_bytes();
    for (which, key) in [("data key", data_key), ("tweak key", tweak_key)] {
        if key.len() != expected {
            return Err(KeyLengthError {
                which,
                algorithm,
                got: key.len(),
                expected,
            });
        }
    }
    Ok(())
}

impl XtsCipher {
    /// Expands a data key and a tweak key for the fastest backend of this CPU
    /// ([`Backend::detect`]).
    pub fn new(
        algorithm: XtsAlgorithm,
        data_key: &[u8],
        tweak_key: &[u8],
    ) -> Result<XtsCipher, KeyLengthError> {
        match XtsCipher::with_backend(Backend::detect(), algorithm, data_key, tweak_key) {
            Ok(cipher) => Ok(cipher),
            Err(XtsSetupError::KeyLength(e)) => Err(e),
            Err(e @ XtsSetupError::BackendUnavailable { .. }) => {
                unreachable!("the detected backend is available: {e}")
            }
        }
    }

    /// Expands a data key and a tweak key for a chosen backend. Refuses a backend this CPU
    /// cannot run (no panic, no illegal instruction).
    pub fn with_backend(
        backend: Backend,
        algorithm: XtsAlgorithm,
        data_key: &[u8],
        tweak_key: &[u8],
    ) -> Result<XtsCipher, XtsSetupError> {
        check_key_lengths(algorithm, data_key, tweak_key)?;
        let unavailable = || XtsSetupError::BackendUnavailable {
            backend,
            needs: backend.requirements(),
            available: Backend::available()
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let engine = match backend {
            Backend::Portable => {
                Engine::Portable(portable::PortableXts::new(algorithm, data_key, tweak_key))
            }
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi => Engine::AesNi(Box::new(
                aesni::AesNiXts::new(algorithm, data_key, tweak_key).ok_or_else(unavailable)?,
            )),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes256 => Engine::Vaes256(Box::new(
                vaes256::Vaes256Xts::new(algorithm, data_key, tweak_key).ok_or_else(unavailable)?,
            )),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes512 => Engine::Vaes512(Box::new(
                vaes512::Vaes512Xts::new(algorithm, data_key, tweak_key).ok_or_else(unavailable)?,
            )),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::AesNi | Backend::Vaes256 | Backend::Vaes512 => return Err(unavailable()),
        };
        Ok(XtsCipher {
            algorithm,
            backend,
            engine,
        })
    }

    /// The algorithm the keys were expanded for.
    pub fn algorithm(&self) -> XtsAlgorithm {
        self.algorithm
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Encrypts one line in place. `addr` is the line's DRAM address (line-aligned).
    pub fn encrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        debug_assert!(
            addr.is_line_aligned(),
            "XTS tweak {addr} is not line-aligned"
        );
        dispatch!(&self.engine, x => x.crypt_line::<false>(addr.raw(), line));
    }

    /// Decrypts one line in place. `addr` is the line's DRAM address (line-aligned).
    pub fn decrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        debug_assert!(
            addr.is_line_aligned(),
            "XTS tweak {addr} is not line-aligned"
        );
        dispatch!(&self.engine, x => x.crypt_line::<true>(addr.raw(), line));
    }

    /// Encrypts many lines, each with its own DRAM address (`addrs[i]` tweaks `lines[i]`).
    /// The fast path for scattered lines: the tweaks of several lines are encrypted together
    /// and independent lines are interleaved.
    ///
    /// # Panics
    /// When the two slices differ in length (a caller bug).
    pub fn encrypt_lines(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        assert_eq!(addrs.len(), lines.len(), "one address per line");
        debug_assert!(addrs.iter().all(|a| a.is_line_aligned()));
        dispatch!(&self.engine, x => x.crypt_lines::<false>(addrs, lines));
    }

    /// Decrypts many lines, each with its own DRAM address.
    ///
    /// # Panics
    /// When the two slices differ in length (a caller bug).
    pub fn decrypt_lines(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        assert_eq!(addrs.len(), lines.len(), "one address per line");
        debug_assert!(addrs.iter().all(|a| a.is_line_aligned()));
        dispatch!(&self.engine, x => x.crypt_lines::<true>(addrs, lines));
    }

    /// Encrypts contiguous lines starting at `first` (for example a 4 KiB page: 64 lines, each
    /// its own data unit tweaked by its own address `first + 64 i`).
    ///
    /// # Panics
    /// When the run would pass the end of the 64-bit address space (a caller bug).
    pub fn encrypt_run(&self, first: DramAddr, lines: &mut [LineBytes]) {
        check_run(first, lines.len());
        dispatch!(&self.engine, x => x.crypt_run::<false>(first.raw(), lines));
    }

    /// Decrypts contiguous lines starting at `first`.
    ///
    /// # Panics
    /// When the run would pass the end of the 64-bit address space (a caller bug).
    pub fn decrypt_run(&self, first: DramAddr, lines: &mut [LineBytes]) {
        check_run(first, lines.len());
        dispatch!(&self.engine, x => x.crypt_run::<true>(first.raw(), lines));
    }

    /// Encrypts one general IEEE 1619 data unit in place: block j of `data` uses
    /// `E_key2(tweak) * alpha^j`, with `tweak` as a 16-byte little-endian integer (the data
    /// unit sequence number of the standard). A line is the special case of a 64-byte unit
    /// whose tweak is its DRAM address.
    ///
    /// IEEE 1619 limits a data unit to 2^20 blocks; this function does not enforce the limit.
    ///
    /// # Panics
    /// When `data` is empty or its length is not a multiple of 16 bytes (ciphertext stealing
    /// is not implemented: MKTME never needs it).
    pub fn encrypt_unit(&self, tweak: u128, data: &mut [u8]) {
        check_unit(data);
        dispatch!(&self.engine, x => x.crypt_unit::<false>(tweak, data));
    }

    /// Decrypts one general IEEE 1619 data unit in place (see [`XtsCipher::encrypt_unit`]).
    ///
    /// # Panics
    /// When `data` is empty or its length is not a multiple of 16 bytes.
    pub fn decrypt_unit(&self, tweak: u128, data: &mut [u8]) {
        check_unit(data);
        dispatch!(&self.engine, x => x.crypt_unit::<true>(tweak, data));
    }
}

fn check_run(first: DramAddr, lines: usize) {
    debug_assert!(
        first.is_line_aligned(),
        "XTS tweak {first} is not line-aligned"
    );
    // The last line's address must exist: first + 64 (lines - 1) without overflow.
    let fits = lines == 0
        || (lines as u64 - 1)
            .checked_mul(LINE_BYTES as u64)
            .and_then(|bytes| first.raw().checked_add(bytes))
            .is_some();
    assert!(
        fits,
        "a run of {lines} lines from {first} passes the end of the address space"
    );
}

fn check_unit(data: &[u8]) {
    assert!(
        !data.is_empty() && data.len().is_multiple_of(BLOCK_BYTES),
        "an XTS data unit must be a non-zero multiple of {BLOCK_BYTES} bytes, got {} bytes \
         (ciphertext stealing is not supported)",
        data.len()
    );
}

/// Multiplies a tweak by alpha in GF(2^128) (IEEE 1619, little-endian bit order): a shift left
/// by one with the polynomial x^128 + x^7 + x^2 + x + 1 folded back into the low byte.
#[inline]
pub(crate) const fn mul_alpha(t: u128) -> u128 {
    (t << 1) ^ (((t as i128) >> 127) as u128 & 0x87)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_alpha_matches_the_definition() {
        assert_eq!(mul_alpha(1), 2);
        assert_eq!(mul_alpha(1 << 127), 0x87);
        assert_eq!(mul_alpha((1 << 127) | 1), 0x85);
    }

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>(), Ok(b));
            assert_eq!(b.to_string(), b.name());
        }
        assert_eq!("AESNI".parse::<Backend>(), Ok(Backend::AesNi));
        assert_eq!("vaes512".parse::<Backend>(), Ok(Backend::Vaes512));
        assert!("avx".parse::<Backend>().is_err());
    }

    #[test]
    fn detection_is_consistent() {
        let available = Backend::available();
        assert_eq!(available.first(), Some(&Backend::Portable));
        assert_eq!(available.last(), Some(&Backend::detect()));
        #[cfg(target_arch = "x86_64")]
        {
            let aes = std::arch::is_x86_feature_detected!("aes");
            let vaes = std::arch::is_x86_feature_detected!("vaes")
                && std::arch::is_x86_feature_detected!("vpclmulqdq");
            assert_eq!(Backend::AesNi.is_available(), aes);
            assert_eq!(
                Backend::Vaes256.is_available(),
                aes && vaes && std::arch::is_x86_feature_detected!("avx2")
            );
            assert_eq!(
                Backend::Vaes512.is_available(),
                aes && vaes && std::arch::is_x86_feature_detected!("avx512f")
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(available, vec![Backend::Portable]);
    }

    #[test]
    fn debug_never_shows_keys() {
        let key1 = [0xa5u8; 16];
        let key2 = [0x5au8; 16];
        for b in Backend::available() {
            let c = XtsCipher::with_backend(b, XtsAlgorithm::Aes128, &key1, &key2).unwrap();
            let s = format!("{c:?}");
            assert!(
                !s.contains("a5") && !s.contains("165") && !s.contains("5a"),
                "{s}"
            );
            assert!(s.contains(b.name()) || s.contains(&format!("{b:?}")), "{s}");
        }
    }
}
