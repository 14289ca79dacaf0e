//! Portable backend: the `aes` crate's block cipher with the XTS tweak arithmetic done here.
//!
//! Used where no hardware AES is detected (any architecture), and as the reference the fast
//! backends are tested against. It batches: the tweaks of up to [`CHUNK_LINES`] lines go to the
//! `aes` crate in one call and their 4 x [`CHUNK_LINES`] data blocks in another, because `aes`
//! 0.9 is slow for small calls on VAES machines (`shared/reference/crates-and-xts.md`, section
//! 2). The XOR of the tweak happens in a scratch buffer on the stack.

use super::{BLOCK_BYTES, XtsAlgorithm, XtsImpl, mul_alpha};
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256, Block};
use sim_core::{DramAddr, LINE_BYTES, LineBytes};

/// Lines per call to the `aes` crate: 64 blocks, the parallel width of its VAES-512 backend.
const CHUNK_LINES: usize = 16;
/// Blocks per line.
const LINE_BLOCKS: usize = LINE_BYTES / BLOCK_BYTES;
/// Blocks per call to the `aes` crate.
const CHUNK_BLOCKS: usize = CHUNK_LINES * LINE_BLOCKS;

/// The data cipher and the tweak cipher (boxed: a few hundred bytes of round keys).
#[derive(Clone)]
enum Pair {
    Aes128(Box<(Aes128, Aes128)>),
    Aes256(Box<(Aes256, Aes256)>),
}

/// The two expanded keys of the portable backend.
#[derive(Clone)]
pub(super) struct PortableXts {
    pair: Pair,
}

fn block_of(x: u128) -> Block {
    Block::from(x.to_le_bytes())
}

fn u128_of(b: &Block) -> u128 {
    u128::from_le_bytes(b.0)
}

fn u128_of_bytes(b: &[u8; BLOCK_BYTES]) -> u128 {
    u128::from_le_bytes(*b)
}

impl PortableXts {
    /// Expands both keys. The lengths were checked by the caller.
    pub(super) fn new(algorithm: XtsAlgorithm, data_key: &[u8], tweak_key: &[u8]) -> PortableXts {
        let pair = match algorithm {
            XtsAlgorithm::Aes128 => Pair::Aes128(Box::new((
                Aes128::new_from_slice(data_key).expect("checked length"),
                Aes128::new_from_slice(tweak_key).expect("checked length"),
            ))),
            XtsAlgorithm::Aes256 => Pair::Aes256(Box::new((
                Aes256::new_from_slice(data_key).expect("checked length"),
                Aes256::new_from_slice(tweak_key).expect("checked length"),
            ))),
        };
        PortableXts { pair }
    }

    /// Encrypts tweak inputs with the tweak key, in place.
    fn encrypt_tweaks(&self, blocks: &mut [Block]) {
        match &self.pair {
            Pair::Aes128(pair) => pair.1.encrypt_blocks(blocks),
            Pair::Aes256(pair) => pair.1.encrypt_blocks(blocks),
        }
    }

    /// Encrypts or decrypts data blocks with the data key, in place.
    fn crypt_blocks<const DEC: bool>(&self, blocks: &mut [Block]) {
        match (&self.pair, DEC) {
            (Pair::Aes128(pair), false) => pair.0.encrypt_blocks(blocks),
            (Pair::Aes128(pair), true) => pair.0.decrypt_blocks(blocks),
            (Pair::Aes256(pair), false) => pair.0.encrypt_blocks(blocks),
            (Pair::Aes256(pair), true) => pair.0.decrypt_blocks(blocks),
        }
    }

    /// Lines `lines[i]` with tweak `addr(i)`, in chunks of [`CHUNK_LINES`].
    fn crypt_lines_with<const DEC: bool>(
        &self,
        lines: &mut [LineBytes],
        addr: impl Fn(usize) -> u64,
    ) {
        let mut tweaks = [Block::default(); CHUNK_LINES];
        let mut scratch = [Block::default(); CHUNK_BLOCKS];
        let mut expanded = [0u128; CHUNK_BLOCKS];
        for (c, chunk) in lines.chunks_mut(CHUNK_LINES).enumerate() {
            let n = chunk.len();
            for (i, t) in tweaks[..n].iter_mut().enumerate() {
                *t = block_of(u128::from(addr(c * CHUNK_LINES + i)));
            }
            self.encrypt_tweaks(&mut tweaks[..n]);
            for (i, line) in chunk.iter().enumerate() {
                let mut t = u128_of(&tweaks[i]);
                let (blocks, _) = line.as_chunks::<BLOCK_BYTES>();
                for (j, b) in blocks.iter().enumerate() {
                    let k = i * LINE_BLOCKS + j;
                    expanded[k] = t;
                    scratch[k] = block_of(u128_of_bytes(b) ^ t);
                    t = mul_alpha(t);
                }
            }
            self.crypt_blocks::<DEC>(&mut scratch[..n * LINE_BLOCKS]);
            for (i, line) in chunk.iter_mut().enumerate() {
                let (blocks, _) = line.as_chunks_mut::<BLOCK_BYTES>();
                for (j, b) in blocks.iter_mut().enumerate() {
                    let k = i * LINE_BLOCKS + j;
                    *b = (u128_of(&scratch[k]) ^ expanded[k]).to_le_bytes();
                }
            }
        }
    }
}

impl XtsImpl for PortableXts {
    fn crypt_line<const DEC: bool>(&self, addr: u64, line: &mut LineBytes) {
        self.crypt_lines_with::<DEC>(std::slice::from_mut(line), |_| addr);
    }

    fn crypt_lines<const DEC: bool>(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        self.crypt_lines_with::<DEC>(lines, |i| addrs[i].raw());
    }

    fn crypt_run<const DEC: bool>(&self, first: u64, lines: &mut [LineBytes]) {
        self.crypt_lines_with::<DEC>(lines, |i| first + (i * LINE_BYTES) as u64);
    }

    fn crypt_unit<const DEC: bool>(&self, tweak: u128, data: &mut [u8]) {
        let mut t = [block_of(tweak)];
        self.encrypt_tweaks(&mut t);
        let mut t = u128_of(&t[0]);
        let mut scratch = [Block::default(); CHUNK_BLOCKS];
        let mut expanded = [0u128; CHUNK_BLOCKS];
        let (blocks, rest) = data.as_chunks_mut::<BLOCK_BYTES>();
        debug_assert!(rest.is_empty());
        for chunk in blocks.chunks_mut(CHUNK_BLOCKS) {
            for (k, b) in chunk.iter().enumerate() {
                expanded[k] = t;
                scratch[k] = block_of(u128_of_bytes(b) ^ t);
                t = mul_alpha(t);
            }
            self.crypt_blocks::<DEC>(&mut scratch[..chunk.len()]);
            for (k, b) in chunk.iter_mut().enumerate() {
                *b = (u128_of(&scratch[k]) ^ expanded[k]).to_le_bytes();
            }
        }
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
        x.crypt_line::<false>(0x12340, &mut line);
        let hex: String = line.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "9c313977970e7cc25452922466bc8fd9b90265d9d433f407ec8d564213d077139491bbd01a84599a6b574c7a4b9622b44959056f6efce3fc1ffe1f7d4b287aca"
        );
        x.crypt_line::<true>(0x12340, &mut line);
        assert_eq!(line, std::array::from_fn(|i| i as u8));
    }

    #[test]
    fn chunk_boundaries_do_not_shift_tweaks() {
        // 40 lines cross two chunk boundaries; each must equal its own single-line encryption.
        let x = PortableXts::new(XtsAlgorithm::Aes256, &[7u8; 32], &[9u8; 32]);
        let mut lines: Vec<LineBytes> = (0..40)
            .map(|i| std::array::from_fn(|j| (i * 64 + j) as u8))
            .collect();
        let expect: Vec<LineBytes> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut l = *l;
                x.crypt_line::<false>(0x4000 + 64 * i as u64, &mut l);
                l
            })
            .collect();
        x.crypt_run::<false>(0x4000, &mut lines);
        assert_eq!(lines, expect);
    }
}
