//! Portable backend: the `aes` crate's block cipher with the XTS tweak arithmetic done here.
//! Used where no hardware AES is detected, and as a cross-check of the fast backends.

use super::XtsAlgorithm;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use sim_core::{DramAddr, LineBytes};

enum Pair {
    Aes128 { data: Aes128, tweak: Aes128 },
    Aes256 { data: Aes256, tweak: Aes256 },
}

pub(super) struct PortableXts {
    pair: Pair,
}

/// Multiplies a tweak by alpha in GF(2^128) (IEEE 1619, little-endian bit order).
#[inline]
pub(crate) fn mul_alpha(t: u128) -> u128 {
    (t << 1) ^ (((t as i128) >> 127) as u128 & 0x87)
}

impl PortableXts {
    pub(super) fn new(algorithm: XtsAlgorithm, data_key: &[u8], tweak_key: &[u8]) -> PortableXts {
        // Lengths were checked by XtsCipher::new.
        let pair = match algorithm {
            XtsAlgorithm::Aes128 => Pair::Aes128 {
                data: Aes128::new_from_slice(data_key).expect("checked length"),
                tweak: Aes128::new_from_slice(tweak_key).expect("checked length"),
            },
            XtsAlgorithm::Aes256 => Pair::Aes256 {
                data: Aes256::new_from_slice(data_key).expect("checked length"),
                tweak: Aes256::new_from_slice(tweak_key).expect("checked length"),
            },
        };
        PortableXts { pair }
    }

    fn encrypted_tweak(&self, addr: DramAddr) -> u128 {
        let mut block = Array::from(u128::from(addr.raw()).to_le_bytes());
        match &self.pair {
            Pair::Aes128 { tweak, .. } => tweak.encrypt_block(&mut block),
            Pair::Aes256 { tweak, .. } => tweak.encrypt_block(&mut block),
        }
        u128::from_le_bytes(block.into())
    }

    fn crypt(&self, addr: DramAddr, line: &mut LineBytes, encrypt: bool) {
        let mut t = self.encrypted_tweak(addr);
        for chunk in line.chunks_exact_mut(16) {
            let x = u128::from_le_bytes(chunk.try_into().expect("16-byte chunk")) ^ t;
            let mut block = Array::from(x.to_le_bytes());
            match (&self.pair, encrypt) {
                (Pair::Aes128 { data, .. }, true) => data.encrypt_block(&mut block),
                (Pair::Aes128 { data, .. }, false) => data.decrypt_block(&mut block),
                (Pair::Aes256 { data, .. }, true) => data.encrypt_block(&mut block),
                (Pair::Aes256 { data, .. }, false) => data.decrypt_block(&mut block),
            }
            let y = u128::from_le_bytes(block.into()) ^ t;
            chunk.copy_from_slice(&y.to_le_bytes());
            t = mul_alpha(t);
        }
    }

    pub(super) fn encrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        self.crypt(addr, line, true);
    }

    pub(super) fn decrypt_line(&self, addr: DramAddr, line: &mut LineBytes) {
        self.crypt(addr, line, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_data_line_example() {
        // validation-data.md section 3.
        let key1: Vec<u8> = (0x00..0x10).collect();
        let key2: Vec<u8> = (0x10..0x20).collect();
        let x = PortableXts::new(XtsAlgorithm::Aes128, &key1, &key2);
        let mut line: LineBytes = std::array::from_fn(|i| i as u8);
        x.encrypt_line(DramAddr::new(0x12340), &mut line);
        let hex: String = line.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "9c313977970e7cc25452922466bc8fd9b90265d9d433f407ec8d564213d077139491bbd01a84599a6b574c7a4b9622b44959056f6efce3fc1ffe1f7d4b287aca"
        );
        x.decrypt_line(DramAddr::new(0x12340), &mut line);
        assert_eq!(line, std::array::from_fn(|i| i as u8));
    }
}
