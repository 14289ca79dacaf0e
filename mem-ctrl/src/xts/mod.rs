//! The AES-XTS engine: one line (64 bytes) is one XTS data unit, tweaked by its DRAM address.
//!
//! Convention (design brief, normative): key1 (data key) = KEY_FIELD_1, key2 (tweak key) =
//! KEY_FIELD_2, 16 bytes each for AES-XTS-128 and 32 for AES-XTS-256. The tweak input is the
//! line's DRAM address (KeyID bits cleared, low 6 bits zero) as a 16-byte little-endian integer;
//! block j of the line (j = 0..3) uses `E_key2(tweak) * alpha^j` in GF(2^128) (IEEE 1619). This
//! equals OpenSSL's EVP aes-128-xts with key = key1||key2 and iv = LE16(address). The KeyID is
//! not part of the tweak.
//!
//! An [`XtsCipher`] holds the expanded keys of one KeyID and is built once when the KeyID is
//! programmed, never per access.

mod portable;

use sim_core::{DramAddr, LineBytes};

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

/// The expanded keys of one KeyID, ready to encrypt and decrypt lines.
pub struct XtsCipher {
    algorithm: XtsAlgorithm,
    portable: portable::PortableXts,
}

impl std::fmt::Debug for XtsCipher {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XtsCipher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl XtsCipher {
    /// Expands a data key and a tweak key.
    pub fn new(
        algorithm: XtsAlgorithm,
        data_key: &[u8],
        tweak_key: &[u8],
    ) -> Result<XtsCipher, KeyLengthError> {
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
        Ok(XtsCipher {
            algorithm,
            portable: portable::PortableXts::new(algorithm, data_key, tweak_key),
        })
    }

    /// The algorithm the keys were expanded for.
    pub fn algorithm(&self) -> XtsAlgorithm {
        self.algorithm
    }

    /// Encrypts one line in place. `addr` is the line's DRAM address (line-aligned).
    pub fn encrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        debug_assert!(
            addr.is_line_aligned(),
            "XTS tweak {addr} is not line-aligned"
        );
        self.portable.encrypt_line(addr, line);
    }

    /// Decrypts one line in place. `addr` is the line's DRAM address (line-aligned).
    pub fn decrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        debug_assert!(
            addr.is_line_aligned(),
            "XTS tweak {addr} is not line-aligned"
        );
        self.portable.decrypt_line(addr, line);
    }

    /// Encrypts many lines, each with its own DRAM address (`addrs[i]` tweaks `lines[i]`).
    ///
    /// # Panics
    /// When the two slices differ in length (a caller bug).
    pub fn encrypt_lines(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        assert_eq!(addrs.len(), lines.len(), "one address per line");
        for (addr, line) in addrs.iter().zip(lines.iter_mut()) {
            self.encrypt_line(*addr, line);
        }
    }

    /// Decrypts many lines, each with its own DRAM address.
    ///
    /// # Panics
    /// When the two slices differ in length (a caller bug).
    pub fn decrypt_lines(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        assert_eq!(addrs.len(), lines.len(), "one address per line");
        for (addr, line) in addrs.iter().zip(lines.iter_mut()) {
            self.decrypt_line(*addr, line);
        }
    }

    /// Encrypts contiguous lines starting at `first` (for example a 4 KiB page: 64 lines, each
    /// its own data unit tweaked by its own address).
    pub fn encrypt_run(&self, first: DramAddr, lines: &mut [LineBytes]) {
        for (i, line) in lines.iter_mut().enumerate() {
            self.encrypt_line(first.nth_line(i as u64), line);
        }
    }

    /// Decrypts contiguous lines starting at `first`.
    pub fn decrypt_run(&self, first: DramAddr, lines: &mut [LineBytes]) {
        for (i, line) in lines.iter_mut().enumerate() {
            self.decrypt_line(first.nth_line(i as u64), line);
        }
    }
}
