//! VAES-256 backend for AVX2 machines with VAES but no AVX-512 (Zen 3, Alder Lake and later
//! client cores): one 64-byte line is two 256-bit registers.
//!
//! Register 0 of a line holds blocks 0 and 1 (tweaks `T`, `T * alpha`), register 1 holds
//! blocks 2 and 3 (`T * alpha^2`, `T * alpha^3`); both are made from `T` broadcast to the two
//! lanes with a per-lane shift and one carry-less multiplication (see [`mul_alpha_pow`]). The
//! batched path handles four lines per group (eight AES states), encrypts two tweaks per
//! register, and encrypts each group's tweaks two groups ahead, interleaved with the data
//! rounds, in one function (as in the VAES-512 backend). Round keys are stored pre-broadcast
//! to both lanes.
//!
//! Every `#[target_feature]` function here is safe to call only on a CPU with AES-NI, VAES,
//! VPCLMULQDQ and AVX2; the only way to reach them is through a [`Vaes256Xts`], which is
//! constructed only after [`detected`] returned true.

use super::aesni::{self, load_block, store_block, xmm_from_u128};
use super::{BLOCK_BYTES, XtsAlgorithm, XtsImpl};
use core::arch::x86_64::*;
use sim_core::{DramAddr, LINE_BYTES, LineBytes};

/// True when the CPU has AES-NI, VAES, VPCLMULQDQ and AVX2 (with OS support for the 256-bit
/// state). Every CPU with VAES so far also has VPCLMULQDQ.
pub(super) fn detected() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("avx2")
}

/// The VAES-256 backend's expanded keys, broadcast to both 128-bit lanes.
#[derive(Clone)]
pub(super) struct Vaes256Xts {
    algorithm: XtsAlgorithm,
    data_enc: [__m256i; 15],
    data_dec: [__m256i; 15],
    tweak: [__m256i; 15],
    /// The tweak key in one lane, for the one-line path.
    tweak_x: [__m128i; 15],
}

/// Broadcasts each round key to both lanes.
#[target_feature(enable = "avx2")]
fn broadcast_keys(rk: &[__m128i; 15]) -> [__m256i; 15] {
    rk.map(|k| _mm256_broadcastsi128_si256(k))
}

impl Vaes256Xts {
    /// Expands both keys, or `None` when the CPU lacks a needed feature. Lengths were checked
    /// by the caller.
    pub(super) fn new(algorithm: XtsAlgorithm, data_key: &[u8], tweak_key: &[u8]) -> Option<Self> {
        if !detected() {
            return None;
        }
        // SAFETY: AES-NI and AVX2 were detected just above.
        unsafe {
            let data = aesni::expand_key(data_key);
            let tweak = aesni::expand_key(tweak_key).enc;
            Some(Vaes256Xts {
                algorithm,
                data_enc: broadcast_keys(&data.enc),
                data_dec: broadcast_keys(&data.dec),
                tweak: broadcast_keys(&tweak),
                tweak_x: tweak,
            })
        }
    }

    fn data_keys<const DEC: bool>(&self) -> &[__m256i; 15] {
        if DEC { &self.data_dec } else { &self.data_enc }
    }
}

/// Loads 32 bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn load2(b: &[u8; 32]) -> __m256i {
    // SAFETY: `b` is 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// Stores 32 bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn store2(b: &mut [u8; 32], x: __m256i) {
    // SAFETY: `b` is 32 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), x) }
}

/// Multiplies the tweak in each 128-bit lane by alpha^k, where `k` holds the lane's k (0..=8)
/// in both 64-bit halves and `k_comp` holds 64 - k. Same algebra as the VAES-512 backend:
/// `t * x^k = (t << k) ^ v * 0x87` with `v = t >> (128 - k)`, the product by one `vpclmulqdq`.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn mul_alpha_pow(t: __m256i, k: __m256i, k_comp: __m256i) -> __m256i {
    let shifted = _mm256_sllv_epi64(t, k);
    // Per lane: [carry into the high half, v].
    let carries = _mm256_srlv_epi64(t, k_comp);
    let folded = _mm256_clmulepi64_epi128::<0x01>(carries, _mm256_set1_epi64x(0x87));
    let carry_hi = _mm256_bslli_epi128::<8>(carries);
    _mm256_xor_si256(_mm256_xor_si256(shifted, folded), carry_hi)
}

/// `[[T, T*alpha], [T*alpha^2, T*alpha^3]]` from `T` broadcast to both lanes.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn line_tweaks(t: __m256i) -> [__m256i; 2] {
    [
        mul_alpha_pow(
            t,
            _mm256_set_epi64x(1, 1, 0, 0),
            _mm256_set_epi64x(63, 63, 64, 64),
        ),
        mul_alpha_pow(
            t,
            _mm256_set_epi64x(3, 3, 2, 2),
            _mm256_set_epi64x(61, 61, 62, 62),
        ),
    ]
}

/// Both lanes times alpha^2: the tweaks of the next 32 bytes of a data unit.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn next_two(t: __m256i) -> __m256i {
    mul_alpha_pow(t, _mm256_set1_epi64x(2), _mm256_set1_epi64x(62))
}

/// Lane `n` of `v` in both lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn broadcast_lane(v: __m256i, n: usize) -> __m256i {
    if n == 0 {
        _mm256_permute2x128_si256::<0x00>(v, v)
    } else {
        _mm256_permute2x128_si256::<0x11>(v, v)
    }
}

#[inline]
#[target_feature(enable = "avx2,vaes")]
fn round<const DEC: bool>(x: __m256i, k: __m256i) -> __m256i {
    if DEC {
        _mm256_aesdec_epi128(x, k)
    } else {
        _mm256_aesenc_epi128(x, k)
    }
}

#[inline]
#[target_feature(enable = "avx2,vaes")]
fn last_round<const DEC: bool>(x: __m256i, k: __m256i) -> __m256i {
    if DEC {
        _mm256_aesdeclast_epi128(x, k)
    } else {
        _mm256_aesenclast_epi128(x, k)
    }
}

/// The tweak inputs of lines `first` and `first + 1`, one per lane, whitened with the tweak
/// key's first round key.
#[inline]
#[target_feature(enable = "avx2")]
fn whitened_inputs(keys: &Vaes256Xts, addr: &impl Fn(usize) -> u64, first: usize) -> __m256i {
    let inputs = _mm256_set_epi64x(0, addr(first + 1) as i64, 0, addr(first) as i64);
    _mm256_xor_si256(inputs, keys.tweak[0])
}

/// Finishes the tweak encryption of whitened inputs (rounds 1..=NR).
#[inline]
#[target_feature(enable = "avx2,vaes")]
fn encrypt_whitened<const NR: usize, const N: usize>(
    keys: &Vaes256Xts,
    mut v: [__m256i; N],
) -> [__m256i; N] {
    for k in &keys.tweak[1..NR] {
        for x in v.iter_mut() {
            *x = _mm256_aesenc_epi128(*x, *k);
        }
    }
    v.map(|x| _mm256_aesenclast_epi128(x, keys.tweak[NR]))
}

/// Encrypts or decrypts the lines of `$chunk` (`&mut [LineBytes; $l]`), line i tweaked by
/// lane `i % 2` of `$tw[i / 2]` (already encrypted), while running the tweak encryption of the
/// whitened registers `$next`; evaluates to those, encrypted. A macro so that it is always
/// inlined (see the VAES-512 backend).
macro_rules! crypt_group {
    ($nr:ident, $dec:ident, $l:expr, $keys:expr, $chunk:expr, $tw:expr, $next:expr) => {{
        let keys: &Vaes256Xts = $keys;
        let chunk: &mut [LineBytes; $l] = $chunk;
        let tw = $tw;
        let mut next = $next;
        let rk = keys.data_keys::<$dec>();
        let t: [[__m256i; 2]; $l] =
            core::array::from_fn(|i| line_tweaks(broadcast_lane(tw[i / 2], i % 2)));
        let mut x: [[__m256i; 2]; $l] = core::array::from_fn(|i| {
            let (halves, _) = chunk[i].as_chunks::<32>();
            core::array::from_fn(|h| {
                _mm256_xor_si256(_mm256_xor_si256(load2(&halves[h]), t[i][h]), rk[0])
            })
        });
        for r in 1..$nr {
            for xi in x.iter_mut() {
                for xih in xi.iter_mut() {
                    *xih = round::<$dec>(*xih, rk[r]);
                }
            }
            for n in next.iter_mut() {
                *n = _mm256_aesenc_epi128(*n, keys.tweak[r]);
            }
        }
        for i in 0..$l {
            let (halves, _) = chunk[i].as_chunks_mut::<32>();
            for h in 0..2 {
                let y = last_round::<$dec>(x[i][h], rk[$nr]);
                store2(&mut halves[h], _mm256_xor_si256(y, t[i][h]));
            }
        }
        next.map(|n| _mm256_aesenclast_epi128(n, keys.tweak[$nr]))
    }};
}

/// One line: the tweak encrypted in a 128-bit register, then two 256-bit AES states.
macro_rules! one_line {
    ($nr:ident, $dec:ident, $keys:expr, $addr:expr, $line:expr) => {{
        let keys: &Vaes256Xts = $keys;
        let addr: u64 = $addr;
        let tw = aesni::encrypt_block::<$nr>(&keys.tweak_x, _mm_set_epi64x(0, addr as i64));
        let chunk = core::array::from_mut($line);
        let tw = [_mm256_castsi128_si256(tw)];
        let [] = crypt_group!($nr, $dec, 1, keys, chunk, tw, []);
    }};
}

/// Lines per group of the batched path: eight AES states (AVX2 has 16 registers; two and six
/// lines measured slower on Zen 4).
const GROUP: usize = 4;
/// Tweak registers per group (two tweaks per register).
const GROUP_TWEAKS: usize = GROUP / 2;

/// `lines[i]` with tweak `addr(i)`: groups of four lines with the tweaks encrypted two groups
/// ahead, then the last zero to three lines one by one.
#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes")]
fn lines_kernel<const NR: usize, const DEC: bool>(
    keys: &Vaes256Xts,
    lines: &mut [LineBytes],
    addr: impl Fn(usize) -> u64,
) {
    let (groups, tail) = lines.as_chunks_mut::<GROUP>();
    let n = groups.len();
    let inputs = |g: usize| -> [__m256i; GROUP_TWEAKS] {
        core::array::from_fn(|j| whitened_inputs(keys, &addr, g * GROUP + 2 * j))
    };
    if n > 0 {
        let second = if n > 1 {
            inputs(1)
        } else {
            [keys.tweak[0]; GROUP_TWEAKS]
        };
        let mut tw = encrypt_whitened::<NR, GROUP_TWEAKS>(keys, inputs(0));
        let mut tw_next = encrypt_whitened::<NR, GROUP_TWEAKS>(keys, second);
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
        one_line!(NR, DEC, keys, addr(n * GROUP + i), line);
    }
}

/// One line (the per-line path of the simulator).
#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes")]
fn line_kernel<const NR: usize, const DEC: bool>(
    keys: &Vaes256Xts,
    addr: u64,
    line: &mut LineBytes,
) {
    one_line!(NR, DEC, keys, addr, line);
}

/// A general data unit: 32 bytes per step with both tweaks times alpha^2 per step; a last
/// 16-byte block goes through a 128-bit register.
#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes")]
fn unit_kernel<const NR: usize, const DEC: bool>(keys: &Vaes256Xts, tweak: u128, data: &mut [u8]) {
    let rk = keys.data_keys::<DEC>();
    let tw = aesni::encrypt_block::<NR>(&keys.tweak_x, xmm_from_u128(tweak));
    let mut t = line_tweaks(_mm256_broadcastsi128_si256(tw))[0];
    let (pairs, rest) = data.as_chunks_mut::<32>();
    for pair in pairs {
        let mut x = _mm256_xor_si256(_mm256_xor_si256(load2(pair), t), rk[0]);
        for k in &rk[1..NR] {
            x = round::<DEC>(x, *k);
        }
        store2(pair, _mm256_xor_si256(last_round::<DEC>(x, rk[NR]), t));
        t = next_two(t);
    }
    if let Ok(block) = <&mut [u8; BLOCK_BYTES]>::try_from(rest) {
        let t = _mm256_castsi256_si128(t);
        let key = |r: usize| _mm256_castsi256_si128(rk[r]);
        let mut x = _mm_xor_si128(_mm_xor_si128(load_block(block), t), key(0));
        for r in 1..NR {
            x = aesni::round::<DEC>(x, key(r));
        }
        store_block(
            block,
            _mm_xor_si128(aesni::last_round::<DEC>(x, key(NR)), t),
        );
    }
}

/// Calls `$kernel::<10 or 14, DEC>` for the key length.
macro_rules! by_rounds {
    ($self:ident, $kernel:ident, $dec:ident, $($arg:expr),*) => {
        // SAFETY: a `Vaes256Xts` is only constructed after `detected()` confirmed AES-NI, VAES,
        // VPCLMULQDQ and AVX2, the kernels' target features.
        unsafe {
            match $self.algorithm {
                XtsAlgorithm::Aes128 => $kernel::<10, $dec>($self, $($arg),*),
                XtsAlgorithm::Aes256 => $kernel::<14, $dec>($self, $($arg),*),
            }
        }
    };
}

impl XtsImpl for Vaes256Xts {
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

    fn lanes(v: __m256i) -> [u128; 2] {
        let mut b = [0u8; 32];
        // SAFETY: only called after `detected()`.
        unsafe { store2(&mut b, v) };
        std::array::from_fn(|i| u128::from_le_bytes(b[16 * i..16 * i + 16].try_into().unwrap()))
    }

    #[test]
    fn lane_doubling_matches_u128_doubling() {
        if !detected() {
            eprintln!("skipped: no VAES-256 on this CPU");
            return;
        }
        use super::super::mul_alpha;
        for s in [1u128, 1 << 63, 1 << 127, u128::MAX, 0xfedc_ba98 << 96] {
            let a1 = mul_alpha(s);
            let a2 = mul_alpha(a1);
            let a3 = mul_alpha(a2);
            // SAFETY: AVX2 and VPCLMULQDQ were detected above.
            let (t, two) = unsafe {
                let t = line_tweaks(_mm256_broadcastsi128_si256(xmm_from_u128(s)));
                (t.map(lanes), lanes(next_two(t[0])))
            };
            assert_eq!(t, [[s, a1], [a2, a3]], "{s:#x}");
            assert_eq!(two, [a2, a3], "{s:#x}");
        }
    }
}
