//! AES-NI backend (128-bit registers), plus what every x86-64 backend shares: the AES key
//! schedule, one-block AES, the GF(2^128) doubling of a tweak in a register, and unaligned
//! 16-byte loads and stores.
//!
//! A line is four registers. The batched path interleaves two lines (eight independent AES
//! states) and encrypts each pair's tweaks two pairs ahead, interleaved with the data rounds,
//! as the VAES-512 backend does. It uses SSE encodings only (no AVX), so that it also runs on
//! AES-NI machines without AVX (Westmere, Silvermont/Goldmont Atoms); with 16 registers some
//! tweaks are kept on the stack.
//!
//! Every `#[target_feature]` function here is safe to call only on a CPU with AES-NI; the only
//! way to reach them is through an [`AesNiXts`] (or a VAES key set), which is constructed only
//! after [`detected`] returned true. The `sse2` helpers are part of every x86-64 CPU.

use super::{BLOCK_BYTES, XtsAlgorithm, XtsImpl};
use core::arch::x86_64::*;
use sim_core::{DramAddr, LINE_BYTES, LineBytes};

/// True when the CPU has AES-NI (SSE2 is part of x86-64).
pub(super) fn detected() -> bool {
    std::arch::is_x86_feature_detected!("aes")
}

/// Round keys: `enc` for the cipher (FIPS-197 key expansion), `dec` for the Equivalent
/// Inverse Cipher (`aesdec`). Only the first `rounds + 1` entries are used.
#[derive(Clone, Copy)]
pub(super) struct RoundKeys {
    pub(super) enc: [__m128i; 15],
    pub(super) dec: [__m128i; 15],
}

/// An XMM register from 16 bytes, without a pointer.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn xmm_from_bytes(b: &[u8; 16]) -> __m128i {
    let lo = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
    _mm_set_epi64x(hi as i64, lo as i64)
}

/// An XMM register holding a 128-bit little-endian integer (an XTS tweak).
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn xmm_from_u128(x: u128) -> __m128i {
    _mm_set_epi64x((x >> 64) as u64 as i64, x as u64 as i64)
}

/// Loads one 16-byte block.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load_block(b: &[u8; BLOCK_BYTES]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Stores one 16-byte block.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn store_block(b: &mut [u8; BLOCK_BYTES], x: __m128i) {
    // SAFETY: `b` is 16 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), x) }
}

/// One step of the key schedule: the previous round key with its words chained (w ^= w << 32,
/// three times) and XORed with the word `assist` broadcast from `aeskeygenassist`.
#[inline]
#[target_feature(enable = "aes")]
fn schedule_step(prev: __m128i, assist: __m128i) -> __m128i {
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, assist)
}

/// AES-128: round key i + 1 from round key i with round constant `RCON`.
#[inline]
#[target_feature(enable = "aes")]
fn step128<const RCON: i32>(k: __m128i) -> __m128i {
    schedule_step(
        k,
        _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<RCON>(k)),
    )
}

/// AES-256: the even round key 2i from keys 2i-2 and 2i-1 (RotWord, SubWord, `RCON`).
#[inline]
#[target_feature(enable = "aes")]
fn step256_even<const RCON: i32>(k_2: __m128i, k_1: __m128i) -> __m128i {
    schedule_step(
        k_2,
        _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<RCON>(k_1)),
    )
}

/// AES-256: the odd round key 2i+1 from keys 2i-1 and 2i (SubWord only).
#[inline]
#[target_feature(enable = "aes")]
fn step256_odd(k_2: __m128i, k_1: __m128i) -> __m128i {
    schedule_step(
        k_2,
        _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0x00>(k_1)),
    )
}

/// Expands a 16- or 32-byte AES key (FIPS-197 section 5.2) and derives the decryption keys.
///
/// # Panics
/// When `key` is neither 16 nor 32 bytes (the caller checked the length).
#[target_feature(enable = "aes")]
pub(super) fn expand_key(key: &[u8]) -> RoundKeys {
    let zero = _mm_setzero_si128();
    let mut enc = [zero; 15];
    let rounds = match key.len() {
        16 => {
            let k0 = xmm_from_bytes(key.try_into().expect("16 bytes"));
            enc[0] = k0;
            enc[1] = step128::<0x01>(enc[0]);
            enc[2] = step128::<0x02>(enc[1]);
            enc[3] = step128::<0x04>(enc[2]);
            enc[4] = step128::<0x08>(enc[3]);
            enc[5] = step128::<0x10>(enc[4]);
            enc[6] = step128::<0x20>(enc[5]);
            enc[7] = step128::<0x40>(enc[6]);
            enc[8] = step128::<0x80>(enc[7]);
            enc[9] = step128::<0x1b>(enc[8]);
            enc[10] = step128::<0x36>(enc[9]);
            10
        }
        32 => {
            enc[0] = xmm_from_bytes(key[..16].try_into().expect("16 bytes"));
            enc[1] = xmm_from_bytes(key[16..].try_into().expect("16 bytes"));
            enc[2] = step256_even::<0x01>(enc[0], enc[1]);
            enc[3] = step256_odd(enc[1], enc[2]);
            enc[4] = step256_even::<0x02>(enc[2], enc[3]);
            enc[5] = step256_odd(enc[3], enc[4]);
            enc[6] = step256_even::<0x04>(enc[4], enc[5]);
            enc[7] = step256_odd(enc[5], enc[6]);
            enc[8] = step256_even::<0x08>(enc[6], enc[7]);
            enc[9] = step256_odd(enc[7], enc[8]);
            enc[10] = step256_even::<0x10>(enc[8], enc[9]);
            enc[11] = step256_odd(enc[9], enc[10]);
            enc[12] = step256_even::<0x20>(enc[10], enc[11]);
            enc[13] = step256_odd(enc[11], enc[12]);
            enc[14] = step256_even::<0x40>(enc[12], enc[13]);
            14
        }
        n => panic!("an AES key is 16 or 32 bytes, got {n}"),
    };
    let mut dec = [zero; 15];
    dec[0] = enc[rounds];
    for i in 1..rounds {
        dec[i] = _mm_aesimc_si128(enc[rounds - i]);
    }
    dec[rounds] = enc[0];
    RoundKeys { enc, dec }
}

/// Encrypts one block with `NR` rounds.
#[inline]
#[target_feature(enable = "aes")]
pub(super) fn encrypt_block<const NR: usize>(rk: &[__m128i; 15], block: __m128i) -> __m128i {
    let mut x = _mm_xor_si128(block, rk[0]);
    for k in &rk[1..NR] {
        x = _mm_aesenc_si128(x, *k);
    }
    _mm_aesenclast_si128(x, rk[NR])
}

/// One round of encryption (`DEC = false`) or decryption (`DEC = true`).
#[inline]
#[target_feature(enable = "aes")]
pub(super) fn round<const DEC: bool>(x: __m128i, k: __m128i) -> __m128i {
    if DEC {
        _mm_aesdec_si128(x, k)
    } else {
        _mm_aesenc_si128(x, k)
    }
}

/// The last round of encryption or decryption.
#[inline]
#[target_feature(enable = "aes")]
pub(super) fn last_round<const DEC: bool>(x: __m128i, k: __m128i) -> __m128i {
    if DEC {
        _mm_aesdeclast_si128(x, k)
    } else {
        _mm_aesenclast_si128(x, k)
    }
}

/// Multiplies a tweak by alpha in GF(2^128): each 64-bit half doubles, the top bit of the low
/// half carries into the high half, and the top bit of the high half folds back as 0x87.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn mul_alpha(t: __m128i) -> __m128i {
    let signs = _mm_srai_epi32::<31>(t);
    // dword 0 <- sign of dword 3 (the top bit), dword 2 <- sign of dword 1 (the low half's top).
    let carries = _mm_and_si128(
        _mm_shuffle_epi32::<0x13>(signs),
        _mm_set_epi32(0, 1, 0, 0x87),
    );
    _mm_xor_si128(_mm_add_epi64(t, t), carries)
}

/// The AES-NI backend's expanded keys.
#[derive(Clone)]
pub(super) struct AesNiXts {
    algorithm: XtsAlgorithm,
    data: RoundKeys,
    tweak: [__m128i; 15],
}

impl AesNiXts {
    /// Expands both keys, or `None` when the CPU lacks AES-NI. Lengths were checked by the
    /// caller.
    pub(super) fn new(algorithm: XtsAlgorithm, data_key: &[u8], tweak_key: &[u8]) -> Option<Self> {
        if !detected() {
            return None;
        }
        // SAFETY: AES-NI was detected just above.
        let (data, tweak) = unsafe { (expand_key(data_key), expand_key(tweak_key).enc) };
        Some(AesNiXts {
            algorithm,
            data,
            tweak,
        })
    }

    fn data_keys<const DEC: bool>(&self) -> &[__m128i; 15] {
        if DEC { &self.data.dec } else { &self.data.enc }
    }
}

/// The four tweaks of a line from its encrypted tweak.
#[inline]
#[target_feature(enable = "sse2")]
fn line_tweaks(t: __m128i) -> [__m128i; 4] {
    let t1 = mul_alpha(t);
    let t2 = mul_alpha(t1);
    [t, t1, t2, mul_alpha(t2)]
}

/// Encrypts or decrypts the lines of `$chunk` (`&mut [LineBytes; $l]`), block j of line i
/// tweaked by `$tw[i] * alpha^j` (`$tw[i]` already encrypted), while running the tweak
/// encryption of the whitened blocks `$next`; evaluates to those, encrypted.
///
/// A macro, not a function, so that it is always inlined into the loop that uses it (see the
/// VAES-512 backend; `#[inline(always)]` is not allowed on `#[target_feature]` functions).
macro_rules! crypt_group {
    ($nr:ident, $dec:ident, $l:expr, $keys:expr, $chunk:expr, $tw:expr, $next:expr) => {{
        let keys: &AesNiXts = $keys;
        let chunk: &mut [LineBytes; $l] = $chunk;
        let tw: [__m128i; $l] = $tw;
        let mut next = $next;
        let rk = keys.data_keys::<$dec>();
        let t: [[__m128i; 4]; $l] = tw.map(|t| line_tweaks(t));
        let mut x: [[__m128i; 4]; $l] = core::array::from_fn(|i| {
            let (blocks, _) = chunk[i].as_chunks::<BLOCK_BYTES>();
            core::array::from_fn(|j| {
                _mm_xor_si128(_mm_xor_si128(load_block(&blocks[j]), t[i][j]), rk[0])
            })
        });
        for r in 1..$nr {
            for xi in x.iter_mut() {
                for xij in xi.iter_mut() {
                    *xij = round::<$dec>(*xij, rk[r]);
                }
            }
            for n in next.iter_mut() {
                *n = _mm_aesenc_si128(*n, keys.tweak[r]);
            }
        }
        for i in 0..$l {
            let (blocks, _) = chunk[i].as_chunks_mut::<BLOCK_BYTES>();
            for j in 0..4 {
                let y = last_round::<$dec>(x[i][j], rk[$nr]);
                store_block(&mut blocks[j], _mm_xor_si128(y, t[i][j]));
            }
        }
        next.map(|n| _mm_aesenclast_si128(n, keys.tweak[$nr]))
    }};
}

/// Lines per group of the batched path: eight AES states in flight (one and three lines
/// measured slower on Zen 4).
const GROUP: usize = 2;

/// A whitened tweak input (the first AddRoundKey of the tweak encryption done).
#[inline]
#[target_feature(enable = "sse2")]
fn whitened(keys: &AesNiXts, addr: u64) -> __m128i {
    _mm_xor_si128(_mm_set_epi64x(0, addr as i64), keys.tweak[0])
}

/// Finishes the tweak encryption of whitened inputs (rounds 1..=NR).
#[inline]
#[target_feature(enable = "aes")]
fn encrypt_whitened<const NR: usize, const N: usize>(
    keys: &AesNiXts,
    mut v: [__m128i; N],
) -> [__m128i; N] {
    for k in &keys.tweak[1..NR] {
        for x in v.iter_mut() {
            *x = _mm_aesenc_si128(*x, *k);
        }
    }
    v.map(|x| _mm_aesenclast_si128(x, keys.tweak[NR]))
}

/// `lines[i]` with tweak `addr(i)`: groups of two lines with the tweaks encrypted two groups
/// ahead (as in the VAES-512 backend), then the last line, if any, on its own.
#[target_feature(enable = "aes")]
fn lines_kernel<const NR: usize, const DEC: bool>(
    keys: &AesNiXts,
    lines: &mut [LineBytes],
    addr: impl Fn(usize) -> u64,
) {
    let (groups, tail) = lines.as_chunks_mut::<GROUP>();
    let n = groups.len();
    let inputs = |g: usize| -> [__m128i; GROUP] {
        core::array::from_fn(|i| whitened(keys, addr(g * GROUP + i)))
    };
    if n > 0 {
        let second = if n > 1 {
            inputs(1)
        } else {
            [keys.tweak[0]; GROUP]
        };
        let mut tw = encrypt_whitened::<NR, GROUP>(keys, inputs(0));
        let mut tw_next = encrypt_whitened::<NR, GROUP>(keys, second);
        for (g, chunk) in groups.iter_mut().enumerate() {
            if g + 2 < n {
                let later = crypt_group!(NR, DEC, GROUP, keys, chunk, tw, inputs(g + 2));
                (tw, tw_next) = (tw_next, later);
            } else {
                let [] = crypt_group!(NR, DEC, GROUP, keys, chunk, tw, []);
                tw = tw_next;
            }
        }
    }
    for (i, line) in tail.iter_mut().enumerate() {
        line_kernel::<NR, DEC>(keys, addr(n * GROUP + i), line);
    }
}

/// One line: tweak encryption, then four interleaved blocks.
#[target_feature(enable = "aes")]
fn line_kernel<const NR: usize, const DEC: bool>(keys: &AesNiXts, addr: u64, line: &mut LineBytes) {
    let tw = encrypt_block::<NR>(&keys.tweak, _mm_set_epi64x(0, addr as i64));
    let chunk = core::array::from_mut(line);
    let [] = crypt_group!(NR, DEC, 1, keys, chunk, [tw], []);
}

/// A general data unit of whole blocks, four blocks per step.
#[target_feature(enable = "aes")]
fn unit_kernel<const NR: usize, const DEC: bool>(keys: &AesNiXts, tweak: u128, data: &mut [u8]) {
    let rk = keys.data_keys::<DEC>();
    let mut t = encrypt_block::<NR>(&keys.tweak, xmm_from_u128(tweak));
    let (blocks, _) = data.as_chunks_mut::<BLOCK_BYTES>();
    let (quads, rest) = blocks.as_chunks_mut::<4>();
    for quad in quads {
        let ts = line_tweaks(t);
        let mut x = [_mm_setzero_si128(); 4];
        for j in 0..4 {
            x[j] = _mm_xor_si128(_mm_xor_si128(load_block(&quad[j]), ts[j]), rk[0]);
        }
        for k in &rk[1..NR] {
            for xj in x.iter_mut() {
                *xj = round::<DEC>(*xj, *k);
            }
        }
        for j in 0..4 {
            store_block(
                &mut quad[j],
                _mm_xor_si128(last_round::<DEC>(x[j], rk[NR]), ts[j]),
            );
        }
        t = mul_alpha(ts[3]);
    }
    for b in rest {
        let mut x = _mm_xor_si128(_mm_xor_si128(load_block(b), t), rk[0]);
        for k in &rk[1..NR] {
            x = round::<DEC>(x, *k);
        }
        store_block(b, _mm_xor_si128(last_round::<DEC>(x, rk[NR]), t));
        t = mul_alpha(t);
    }
}

/// Calls `$kernel::<10 or 14, DEC>` for the key length.
macro_rules! by_rounds {
    ($self:ident, $kernel:ident, $dec:ident, $($arg:expr),*) => {
        // SAFETY: an `AesNiXts` is only constructed after `detected()` confirmed AES-NI, the
        // kernel's only target feature.
        unsafe {
            match $self.algorithm {
                XtsAlgorithm::Aes128 => $kernel::<10, $dec>($self, $($arg),*),
                XtsAlgorithm::Aes256 => $kernel::<14, $dec>($self, $($arg),*),
            }
        }
    };
}

impl XtsImpl for AesNiXts {
    fn crypt_line<const DEC: bool>(&self, addr: u64, line: &mut LineBytes) {
        by_rounds!(self, line_kernel, DEC, addr, line)
    }

    fn crypt_lines<const DEC: bool>(&self, addrs: &[DramAddr], lines: &mut [LineBytes]) {
        if lines.len() < GROUP {
            // Fewer lines than a group: the one-line kernel, without the batch set-up.
            for (a, l) in addrs.iter().zip(lines) {
                self.crypt_line::<DEC>(a.raw(), l);
            }
        } else {
            by_rounds!(self, lines_kernel, DEC, lines, |i| addrs[i].raw())
        }
    }

    fn crypt_run<const DEC: bool>(&self, first: u64, lines: &mut [LineBytes]) {
        let addr = |i: usize| first + (i * LINE_BYTES) as u64;
        if lines.len() < GROUP {
            for (i, l) in lines.iter_mut().enumerate() {
                self.crypt_line::<DEC>(addr(i), l);
            }
        } else {
            by_rounds!(self, lines_kernel, DEC, lines, addr)
        }
    }

    fn crypt_unit<const DEC: bool>(&self, tweak: u128, data: &mut [u8]) {
        by_rounds!(self, unit_kernel, DEC, tweak, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(x: __m128i) -> [u8; 16] {
        let mut b = [0u8; 16];
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe { store_block(&mut b, x) };
        b
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn key_schedule_and_block_cipher_match_fips_197() {
        if !detected() {
            eprintln!("skipped: no AES-NI on this CPU");
            return;
        }
        // FIPS-197 appendix A.1 / A.3: the last round key; appendix C.1 / C.3: one block.
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                10,
                "d014f9a8c9ee2589e13f0cc8b6630ca6",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                14,
                "fe4890d1e6188d0b046df344706c631e",
            ),
        ];
        for (key, nr, last) in cases {
            // SAFETY: AES-NI was detected above.
            let rk = unsafe { expand_key(&unhex(key)) };
            assert_eq!(hex(&bytes_of(rk.enc[nr])), last);
        }
        let pt: [u8; 16] = unhex("00112233445566778899aabbccddeeff")
            .try_into()
            .unwrap();
        let k128: Vec<u8> = (0..16).collect();
        let k256: Vec<u8> = (0..32).collect();
        // SAFETY: AES-NI (which implies SSE2) was detected above.
        unsafe {
            let pt = xmm_from_bytes(&pt);
            let rk = expand_key(&k128);
            let ct = encrypt_block::<10>(&rk.enc, pt);
            assert_eq!(hex(&bytes_of(ct)), "69c4e0d86a7b0430d8cdb78070b4c55a");
            let mut x = _mm_xor_si128(ct, rk.dec[0]);
            for k in &rk.dec[1..10] {
                x = _mm_aesdec_si128(x, *k);
            }
            assert_eq!(bytes_of(_mm_aesdeclast_si128(x, rk.dec[10])), bytes_of(pt));
            let rk = expand_key(&k256);
            let ct = encrypt_block::<14>(&rk.enc, pt);
            assert_eq!(hex(&bytes_of(ct)), "8ea2b7ca516745bfeafc49904b496089");
        }
    }

    #[test]
    fn register_doubling_matches_u128_doubling() {
        let samples = [
            0u128,
            1,
            1 << 63,
            1 << 64,
            1 << 127,
            u128::MAX,
            0x8000_0000_0000_0000_8000_0000_0000_0001,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ];
        for s in samples {
            // SAFETY: SSE2 is part of every x86-64 CPU.
            let doubled = unsafe { mul_alpha(xmm_from_u128(s)) };
            let got = u128::from_le_bytes(bytes_of(doubled));
            assert_eq!(got, super::super::mul_alpha(s), "{s:#x}");
        }
    }
}
