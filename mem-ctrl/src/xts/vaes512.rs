//! VAES-512 backend: one 64-byte line is one 512-bit register.
//!
//! Lane j of a line's register holds block j and is tweaked by `T * alpha^j`; the four tweaks
//! are made in one register from `T` broadcast to every lane (a per-lane shift by j with the
//! carry folded back by one carry-less multiplication, see [`mul_alpha_pow`]). The round keys
//! are stored pre-broadcast to all four lanes (64-byte aligned), so no call re-broadcasts them.
//!
//! The batched path works in groups of four lines. The tweaks of a group (four tweaks, one
//! register) are encrypted two groups ahead: their rounds run interleaved with the data rounds
//! of the group two places earlier. The whole loop is one function (the group body is a macro),
//! so the out-of-order core overlaps consecutive groups. Measured on Zen 4 (AES-XTS-128, 64
//! lines per call, thread CPU time): a first version that encrypted the tweaks only one group
//! ahead and called a function per group reached 7.9 GB/s, because every group waited for its
//! tweaks and every call ended the overlap; this structure reaches 12-13 GB/s, against a
//! ceiling of about 17 GB/s for 12.5 `vaesenc` per line at one 512-bit `vaesenc` per cycle.
//!
//! Every `#[target_feature]` function here is safe to call only on a CPU with AES-NI, VAES,
//! VPCLMULQDQ and AVX-512F; the only way to reach them is through a [`Vaes512Xts`], which is
//! constructed only after [`detected`] returned true.

use super::aesni::{self, xmm_from_u128};
use super::{XtsAlgorithm, XtsImpl};
use core::arch::x86_64::*;
use sim_core::{DramAddr, LINE_BYTES, LineBytes};

/// True when the CPU has AES-NI, VAES, VPCLMULQDQ and AVX-512F (with OS support for the
/// 512-bit state). Every CPU with VAES so far also has VPCLMULQDQ.
pub(super) fn detected() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("avx512f")
}

/// The VAES-512 backend's expanded keys, broadcast to the four 128-bit lanes.
#[derive(Clone)]
pub(super) struct Vaes512Xts {
    algorithm: XtsAlgorithm,
    data_enc: [__m512i; 15],
    data_dec: [__m512i; 15],
    tweak: [__m512i; 15],
    /// The tweak key in one lane, for the one-line path.
    tweak_x: [__m128i; 15],
}

/// Broadcasts each round key to the four lanes.
#[target_feature(enable = "avx512f")]
fn broadcast_keys(rk: &[__m128i; 15]) -> [__m512i; 15] {
    rk.map(|k| _mm512_broadcast_i32x4(k))
}

impl Vaes512Xts {
    /// Expands both keys, or `None` when the CPU lacks a needed feature. Lengths were checked
    /// by the caller.
    pub(super) fn new(algorithm: XtsAlgorithm, data_key: &[u8], tweak_key: &[u8]) -> Option<Self> {
        if !detected() {
            return None;
        }
        // SAFETY: AES-NI and AVX-512F were detected just above (`detected()`).
        unsafe {
            let data = aesni::expand_key(data_key);
            let tweak = aesni::expand_key(tweak_key).enc;
            Some(Vaes512Xts {
                algorithm,
                data_enc: broadcast_keys(&data.enc),
                data_dec: broadcast_keys(&data.dec),
                tweak: broadcast_keys(&tweak),
                tweak_x: tweak,
            })
        }
    }

    fn data_keys<const DEC: bool>(&self) -> &[__m512i; 15] {
        if DEC { &self.data_dec } else { &self.data_enc }
    }
}

/// Loads a line.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_line(line: &LineBytes) -> __m512i {
    // SAFETY: `line` is 64 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(line.as_ptr().cast()) }
}

/// Stores a line.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_line(line: &mut LineBytes, x: __m512i) {
    // SAFETY: `line` is 64 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm512_storeu_si512(line.as_mut_ptr().cast(), x) }
}

/// Multiplies the tweak in each 128-bit lane by alpha^k in GF(2^128), where `k` holds the
/// lane's k (0..=8) in both of its 64-bit halves and `k_comp` holds 64 - k.
///
/// `t * x^k = (t << k) ^ v * (x^7 + x^2 + x + 1)` with `v = t >> (128 - k)`: the 128-bit shift
/// is two 64-bit shifts plus the carry from the low half into the high half, and `v * 0x87`
/// (carry-less, at most 16 bits, so no further reduction) is one `vpclmulqdq`. Shifting a
/// 64-bit half by 64 gives 0, which makes k = 0 the identity.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn mul_alpha_pow(t: __m512i, k: __m512i, k_comp: __m512i) -> __m512i {
    let shifted = _mm512_sllv_epi64(t, k);
    // Per lane: [lo >> (64 - k), hi >> (64 - k)] = [carry into the high half, v].
    let carries = _mm512_srlv_epi64(t, k_comp);
    // v (the high half of `carries`, selected by bit 0 of the immediate) times 0x87.
    let folded = _mm512_clmulepi64_epi128::<0x01>(carries, _mm512_set1_epi64(0x87));
    // [0, carry into the high half]: swap the halves and keep dwords 2 and 3 of each lane.
    let carry_hi = _mm512_maskz_shuffle_epi32::<_MM_PERM_BADC>(0xcccc, carries);
    const XOR3: i32 = 0x96;
    _mm512_ternarylogic_epi64::<XOR3>(shifted, folded, carry_hi)
}

/// `[T, T*alpha, T*alpha^2, T*alpha^3]` from `T` broadcast to the four lanes.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn line_tweaks(t: __m512i) -> __m512i {
    mul_alpha_pow(
        t,
        _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0),
        _mm512_set_epi64(61, 61, 62, 62, 63, 63, 64, 64),
    )
}

/// Every lane times alpha^4: the tweaks of the next 64 bytes of a data unit.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn next_four(t: __m512i) -> __m512i {
    mul_alpha_pow(t, _mm512_set1_epi64(4), _mm512_set1_epi64(60))
}

/// Lane `n` of `v` in all four lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn broadcast_lane(v: __m512i, n: usize) -> __m512i {
    match n {
        0 => _mm512_shuffle_i64x2::<0x00>(v, v),
        1 => _mm512_shuffle_i64x2::<0x55>(v, v),
        2 => _mm512_shuffle_i64x2::<0xaa>(v, v),
        _ => _mm512_shuffle_i64x2::<0xff>(v, v),
    }
}

#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn round<const DEC: bool>(x: __m512i, k: __m512i) -> __m512i {
    if DEC {
        _mm512_aesdec_epi128(x, k)
    } else {
        _mm512_aesenc_epi128(x, k)
    }
}

#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn last_round<const DEC: bool>(x: __m512i, k: __m512i) -> __m512i {
    if DEC {
        _mm512_aesdeclast_epi128(x, k)
    } else {
        _mm512_aesenclast_epi128(x, k)
    }
}

/// The tweak inputs of lines `first .. first + 4`, one per lane, with the tweak key's first
/// round key already XORed in.
#[inline]
#[target_feature(enable = "avx512f")]
fn whitened_inputs(keys: &Vaes512Xts, addr: &impl Fn(usize) -> u64, first: usize) -> __m512i {
    let a = |i: usize| addr(first + i) as i64;
    let inputs = _mm512_set_epi64(0, a(3), 0, a(2), 0, a(1), 0, a(0));
    _mm512_xor_si512(inputs, keys.tweak[0])
}

/// Finishes the tweak encryption of whitened inputs (rounds 1..=NR).
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn encrypt_whitened<const NR: usize, const N: usize>(
    keys: &Vaes512Xts,
    mut v: [__m512i; N],
) -> [__m512i; N] {
    for k in &keys.tweak[1..NR] {
        for x in v.iter_mut() {
            *x = _mm512_aesenc_epi128(*x, *k);
        }
    }
    v.map(|x| _mm512_aesenclast_epi128(x, keys.tweak[NR]))
}

/// Encrypts or decrypts the lines of `$chunk` (`&mut [LineBytes; $l]`), line i tweaked by
/// lane `i % 4` of `$tw[i / 4]` (already encrypted), while running the tweak encryption of the
/// whitened registers `$next`; evaluates to those, encrypted.
///
/// A macro, not a function, so that it is always inlined into the loop that uses it: group
/// boundaries must not be call boundaries (LLVM declined to inline a function this size, and
/// the calls cost 15-20% in a test on Zen 4). `#[inline(always)]` is not allowed on
/// `#[target_feature]` functions.
macro_rules! crypt_group {
    ($nr:ident, $dec:ident, $l:expr, $keys:expr, $chunk:expr, $tw:expr, $next:expr) => {{
        let keys: &Vaes512Xts = $keys;
        let chunk: &mut [LineBytes; $l] = $chunk;
        let tw = $tw;
        let mut next = $next;
        let rk = keys.data_keys::<$dec>();
        const XOR3: i32 = 0x96;
        let t: [__m512i; $l] =
            core::array::from_fn(|i| line_tweaks(broadcast_lane(tw[i / 4], i % 4)));
        let mut x: [__m512i; $l] = core::array::from_fn(|i| {
            _mm512_ternarylogic_epi64::<XOR3>(load_line(&chunk[i]), t[i], rk[0])
        });
        for r in 1..$nr {
            for xi in x.iter_mut() {
                *xi = round::<$dec>(*xi, rk[r]);
            }
            for n in next.iter_mut() {
                *n = _mm512_aesenc_epi128(*n, keys.tweak[r]);
            }
        }
        for i in 0..$l {
            let y = last_round::<$dec>(x[i], rk[$nr]);
            store_line(&mut chunk[i], _mm512_xor_si512(y, t[i]));
        }
        next.map(|n| _mm512_aesenclast_epi128(n, keys.tweak[$nr]))
    }};
}

/// One line: the tweak encrypted in a 128-bit register, then one 512-bit AES state. A macro
/// for the same reason as [`crypt_group`]: the tail of a batch stays in the batch's function.
macro_rules! one_line {
    ($nr:ident, $dec:ident, $keys:expr, $addr:expr, $line:expr) => {{
        let keys: &Vaes512Xts = $keys;
        let addr: u64 = $addr;
        let tw = aesni::encrypt_block::<$nr>(&keys.tweak_x, _mm_set_epi64x(0, addr as i64));
        let chunk = core::array::from_mut($line);
        let tw = [_mm512_castsi128_si512(tw)];
        let [] = crypt_group!($nr, $dec, 1, keys, chunk, tw, []);
    }};
}

/// Lines per group of the batched path (four measured 3-7% faster than eight on Zen 4).
const GROUP: usize = 4;
/// Tweak registers per group (four tweaks per register).
const GROUP_TWEAKS: usize = GROUP / 4;

/// `lines[i]` with tweak `addr(i)`: groups of [`GROUP`] lines with the tweaks encrypted two
/// groups ahead, then the last lines one by one.
#[target_feature(enable = "avx512f,vaes,vpclmulqdq,aes")]
fn lines_kernel<const NR: usize, const DEC: bool>(
    keys: &Vaes512Xts,
    lines: &mut [LineBytes],
    addr: impl Fn(usize) -> u64,
) {
    let (groups, tail) = lines.as_chunks_mut::<GROUP>();
    let n = groups.len();
    let inputs = |g: usize| -> [__m512i; GROUP_TWEAKS] {
        core::array::from_fn(|j| whitened_inputs(keys, &addr, g * GROUP + 4 * j))
    };
    if n > 0 {
        // The tweaks of groups 0 and 1 (group 1's are unused when there is no group 1).
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
#[target_feature(enable = "avx512f,vaes,vpclmulqdq,aes")]
fn line_kernel<const NR: usize, const DEC: bool>(
    keys: &Vaes512Xts,
    addr: u64,
    line: &mut LineBytes,
) {
    one_line!(NR, DEC, keys, addr, line);
}

/// A general data unit: 64 bytes per step with the four tweaks times alpha^4 per step; the
/// last step may be 16, 32 or 48 bytes (masked load and store).
#[target_feature(enable = "avx512f,vaes,vpclmulqdq,aes")]
fn unit_kernel<const NR: usize, const DEC: bool>(keys: &Vaes512Xts, tweak: u128, data: &mut [u8]) {
    let rk = keys.data_keys::<DEC>();
    let tw = aesni::encrypt_block::<NR>(&keys.tweak_x, xmm_from_u128(tweak));
    let mut t = line_tweaks(_mm512_broadcast_i32x4(tw));
    const XOR3: i32 = 0x96;
    let crypt = |v: __m512i, t: __m512i| {
        let mut x = _mm512_ternarylogic_epi64::<XOR3>(v, t, rk[0]);
        for k in &rk[1..NR] {
            x = round::<DEC>(x, *k);
        }
        _mm512_xor_si512(last_round::<DEC>(x, rk[NR]), t)
    };
    let (chunks, rest) = data.as_chunks_mut::<LINE_BYTES>();
    for chunk in chunks {
        store_line(chunk, crypt(load_line(chunk), t));
        t = next_four(t);
    }
    if !rest.is_empty() {
        // 2, 4 or 6 of the eight 64-bit elements.
        let mask: __mmask8 = (1u8 << (rest.len() / 8)) - 1;
        let p = rest.as_mut_ptr();
        // SAFETY: the mask selects exactly `rest.len()` bytes from the start of `rest`;
        // masked-off elements are neither read nor written and cannot fault (AVX-512 fault
        // suppression).
        unsafe {
            let v = _mm512_maskz_loadu_epi64(mask, p.cast());
            _mm512_mask_storeu_epi64(p.cast(), mask, crypt(v, t));
        }
    }
}

/// Calls `$kernel::<10 or 14, DEC>` for the key length.
macro_rules! by_rounds {
    ($self:ident, $kernel:ident, $dec:ident, $($arg:expr),*) => {
        // SAFETY: a `Vaes512Xts` is only constructed after `detected()` confirmed AES-NI, VAES,
        // VPCLMULQDQ and AVX-512F, the kernels' target features.
        unsafe {
            match $self.algorithm {
                XtsAlgorithm::Aes128 => $kernel::<10, $dec>($self, $($arg),*),
                XtsAlgorithm::Aes256 => $kernel::<14, $dec>($self, $($arg),*),
            }
        }
    };
}

impl XtsImpl for Vaes512Xts {
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

    /// The four lanes as u128 tweaks.
    fn lanes(v: __m512i) -> [u128; 4] {
        let mut b = [0u8; 64];
        // SAFETY: only called after `detected()`; `b` is 64 writable bytes.
        unsafe { store_line(&mut b, v) };
        std::array::from_fn(|i| u128::from_le_bytes(b[16 * i..16 * i + 16].try_into().unwrap()))
    }

    #[test]
    fn lane_doubling_matches_u128_doubling() {
        if !detected() {
            eprintln!("skipped: no VAES-512 on this CPU");
            return;
        }
        use super::super::mul_alpha;
        let samples = [
            1u128,
            1 << 63,
            1 << 127,
            u128::MAX,
            0xf000_0000_0000_0000_f000_0000_0000_0000,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ];
        for s in samples {
            let a1 = mul_alpha(s);
            let a2 = mul_alpha(a1);
            let a3 = mul_alpha(a2);
            let a4 = mul_alpha(a3);
            // SAFETY: AVX-512F and VPCLMULQDQ were detected above.
            let (got, four) = unsafe {
                let t = line_tweaks(_mm512_broadcast_i32x4(xmm_from_u128(s)));
                (lanes(t), lanes(next_four(t)))
            };
            assert_eq!(got, [s, a1, a2, a3], "{s:#x}");
            assert_eq!(four[0], a4, "{s:#x}");
        }
    }
}
