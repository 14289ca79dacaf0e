//! The AES-XTS engine against known answers and against two independent implementations.
//!
//! Every check runs on every backend this CPU has ([`Backend::available`]). On a CI runner
//! that must cover the fast backends, set `MKTME_XTS_REQUIRE_BACKENDS=aes-ni,vaes-512` (any
//! list of backend names) and the run fails when one of them is missing instead of silently
//! testing fewer.
//!
//! - IEEE 1619-2007 vectors 1-9 (XTS-AES-128, 32- and 512-byte units) and vector 10
//!   (XTS-AES-256) through `encrypt_unit`/`decrypt_unit` (data in `tests/data/`).
//! - The 64-byte line example of validation-data.md section 3, and AES-XTS-256 line examples
//!   computed with OpenSSL, through `encrypt_line`.
//! - Property tests: round trips; equality with the portable backend and with the `xts-mode`
//!   crate for lines, batches of awkward sizes, runs and units; tweak uniqueness; error
//!   propagation of a flipped ciphertext bit.

use aes::cipher::KeyInit;
use aes::{Aes128, Aes256};
use mem_ctrl::xts::{Backend, KeyLengthError, XtsAlgorithm, XtsCipher, XtsSetupError};
use proptest::prelude::*;
use sim_core::{DramAddr, LineBytes};
use xts_mode::{Xts128, get_tweak_default};

// ---------------------------------------------------------------------------------------------
// Helpers

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn algorithm_for(key: &[u8]) -> XtsAlgorithm {
    match key.len() {
        16 => XtsAlgorithm::Aes128,
        32 => XtsAlgorithm::Aes256,
        n => panic!("no XTS algorithm has {n}-byte keys"),
    }
}

fn backends() -> Vec<Backend> {
    let b = Backend::available();
    assert_eq!(b.first(), Some(&Backend::Portable));
    b
}

fn cipher(backend: Backend, alg: XtsAlgorithm, key1: &[u8], key2: &[u8]) -> XtsCipher {
    let c = XtsCipher::with_backend(backend, alg, key1, key2)
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    assert_eq!(c.backend(), backend);
    assert_eq!(c.algorithm(), alg);
    c
}

/// The `xts-mode` crate on one data unit: an implementation independent of this engine.
fn reference_unit(alg: XtsAlgorithm, key1: &[u8], key2: &[u8], tweak: u128, data: &mut [u8]) {
    let t = get_tweak_default(tweak);
    match alg {
        XtsAlgorithm::Aes128 => Xts128::new(
            Aes128::new_from_slice(key1).unwrap(),
            Aes128::new_from_slice(key2).unwrap(),
        )
        .encrypt_sector(data, t),
        XtsAlgorithm::Aes256 => Xts128::new(
            Aes256::new_from_slice(key1).unwrap(),
            Aes256::new_from_slice(key2).unwrap(),
        )
        .encrypt_sector(data, t),
    }
}

fn reference_line(
    alg: XtsAlgorithm,
    key1: &[u8],
    key2: &[u8],
    addr: u64,
    line: &LineBytes,
) -> LineBytes {
    let mut out = *line;
    reference_unit(alg, key1, key2, u128::from(addr), &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Known answers

struct Vector {
    number: u32,
    key1: Vec<u8>,
    key2: Vec<u8>,
    dusn: u128,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Parses `tests/data/ieee1619-xts-aes.txt` (`name = value` lines, one blank-separated record
/// per vector) and checks each record's internal consistency.
fn vectors() -> Vec<Vector> {
    let text = include_str!("data/ieee1619-xts-aes.txt");
    let mut out = Vec::new();
    let mut fields = sim_core::DetHashMap::default();
    let mut flush = |fields: &mut sim_core::DetHashMap<String, String>| {
        if fields.is_empty() {
            return;
        }
        let get = |k: &str| {
            fields
                .get(k)
                .unwrap_or_else(|| panic!("vector without {k}: {fields:?}"))
                .clone()
        };
        let dusn = u128::from_str_radix(get("dusn").trim_start_matches("0x"), 16).unwrap();
        let v = Vector {
            number: get("vector").parse().unwrap(),
            key1: unhex(&get("key1")),
            key2: unhex(&get("key2")),
            dusn,
            plaintext: unhex(&get("plaintext")),
            ciphertext: unhex(&get("ciphertext")),
        };
        assert_eq!(
            unhex(&get("tweak_le")),
            dusn.to_le_bytes(),
            "vector {}",
            v.number
        );
        let len: usize = get("data_unit_bytes").parse().unwrap();
        assert_eq!(v.plaintext.len(), len, "vector {}", v.number);
        assert_eq!(v.ciphertext.len(), len, "vector {}", v.number);
        out.push(v);
        fields.clear();
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            flush(&mut fields);
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        fields.insert(k.to_string(), v.to_string());
    }
    flush(&mut fields);
    out
}

#[test]
fn the_vector_file_holds_vectors_1_to_10() {
    let v = vectors();
    assert_eq!(
        v.iter().map(|v| v.number).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    // Vectors 1-3 are 32-byte units, 4-10 are 512-byte units; 1-9 are AES-128, 10 AES-256.
    for v in &v {
        assert_eq!(v.plaintext.len(), if v.number <= 3 { 32 } else { 512 });
        assert_eq!(v.key1.len(), if v.number <= 9 { 16 } else { 32 });
    }
}

#[test]
fn ieee1619_vectors_through_units_on_every_backend() {
    let vectors = vectors();
    for backend in backends() {
        for v in &vectors {
            let alg = algorithm_for(&v.key1);
            let c = cipher(backend, alg, &v.key1, &v.key2);
            let mut buf = v.plaintext.clone();
            c.encrypt_unit(v.dusn, &mut buf);
            assert_eq!(
                hex::encode(&buf),
                hex::encode(&v.ciphertext),
                "{backend}: vector {} encrypt",
                v.number
            );
            c.decrypt_unit(v.dusn, &mut buf);
            assert_eq!(buf, v.plaintext, "{backend}: vector {} decrypt", v.number);
        }
    }
}

#[test]
fn ieee1619_vectors_agree_with_xts_mode() {
    // Holds the reference implementation used by the property tests to the same vectors.
    for v in vectors() {
        let mut buf = v.plaintext.clone();
        reference_unit(algorithm_for(&v.key1), &v.key1, &v.key2, v.dusn, &mut buf);
        assert_eq!(buf, v.ciphertext, "xts-mode: vector {}", v.number);
    }
}

#[test]
fn validation_data_line_example_on_every_backend() {
    // validation-data.md section 3: key1 = 00..0f, key2 = 10..1f, DRAM address 0x12340,
    // plaintext 00..3f, AES-XTS-128.
    let key1: Vec<u8> = (0x00..0x10).collect();
    let key2: Vec<u8> = (0x10..0x20).collect();
    let plain: LineBytes = std::array::from_fn(|i| i as u8);
    let expect = "9c313977970e7cc25452922466bc8fd9b90265d9d433f407ec8d564213d07713\
                  9491bbd01a84599a6b574c7a4b9622b44959056f6efce3fc1ffe1f7d4b287aca";
    let addr = DramAddr::new(0x12340);
    for backend in backends() {
        let c = cipher(backend, XtsAlgorithm::Aes128, &key1, &key2);
        let mut line = plain;
        c.encrypt_line(addr, &mut line);
        assert_eq!(hex::encode(line), expect, "{backend}");
        // The batched and run paths give the same bytes for the same line.
        let mut batch = [plain];
        c.encrypt_lines(&[addr], &mut batch);
        assert_eq!(batch[0], line, "{backend}: encrypt_lines");
        let mut run = [plain];
        c.encrypt_run(addr, &mut run);
        assert_eq!(run[0], line, "{backend}: encrypt_run");
        let mut unit = plain;
        c.encrypt_unit(0x12340, &mut unit);
        assert_eq!(unit, line, "{backend}: encrypt_unit");
        c.decrypt_line(addr, &mut line);
        assert_eq!(line, plain, "{backend}: decrypt_line");
    }
}

#[test]
fn aes256_line_examples_on_every_backend() {
    // Computed with Python `cryptography` 48 (OpenSSL 4.0.0), AES-XTS with key = 00..3f
    // (key1 = 00..1f, key2 = 20..3f), iv = LE16(address), plaintext 00..3f.
    let key1: Vec<u8> = (0x00..0x20).collect();
    let key2: Vec<u8> = (0x20..0x40).collect();
    let plain: LineBytes = std::array::from_fn(|i| i as u8);
    let cases = [
        (
            0x12340u64,
            "9aefbc8d8b72f2f98a5c8508eef733c443c5808a51219c66503c21132c01ab73\
             bc6cd2d90785c4127ad5344a3549cac1ebbb60ec2892a55ab3b2c4d93378bda4",
        ),
        (
            0x3fff_ffff_ffc0,
            "6c3a446706f9cd28c2e0075867ae0cb469c5c0734e4345ee7dc328d679a32554\
             30e1507a7b27d50ffe0bb15c6017170129f8e1757557091476c9388c1b7edb93",
        ),
    ];
    for backend in backends() {
        let c = cipher(backend, XtsAlgorithm::Aes256, &key1, &key2);
        for (addr, expect) in cases {
            let mut line = plain;
            c.encrypt_line(DramAddr::new(addr), &mut line);
            assert_eq!(hex::encode(line), expect, "{backend} at {addr:#x}");
            c.decrypt_line(DramAddr::new(addr), &mut line);
            assert_eq!(line, plain, "{backend} at {addr:#x}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backend selection and misuse

#[test]
fn backends_the_cpu_lacks_are_refused_with_a_typed_error() {
    let available = Backend::available();
    let key = [1u8; 16];
    for backend in Backend::ALL {
        let r = XtsCipher::with_backend(backend, XtsAlgorithm::Aes128, &key, &key);
        if available.contains(&backend) {
            assert!(r.is_ok(), "{backend}");
        } else {
            match r {
                Err(XtsSetupError::BackendUnavailable { backend: b, .. }) => assert_eq!(b, backend),
                other => panic!("{backend}: expected BackendUnavailable, got {other:?}"),
            }
        }
    }
    let c = XtsCipher::new(XtsAlgorithm::Aes256, &[2u8; 32], &[3u8; 32]).unwrap();
    assert_eq!(c.backend(), Backend::detect());
}

#[test]
fn wrong_key_lengths_are_refused_on_every_backend() {
    for backend in backends() {
        let e = XtsCipher::with_backend(backend, XtsAlgorithm::Aes256, &[0u8; 32], &[0u8; 16])
            .unwrap_err();
        assert_eq!(
            e,
            XtsSetupError::KeyLength(KeyLengthError {
                which: "tweak key",
                algorithm: XtsAlgorithm::Aes256,
                got: 16,
                expected: 32
            })
        );
    }
    let e = XtsCipher::new(XtsAlgorithm::Aes128, &[0u8; 15], &[0u8; 16]).unwrap_err();
    assert_eq!(e.which, "data key");
}

#[test]
fn required_backends_are_present() {
    let Ok(list) = std::env::var("MKTME_XTS_REQUIRE_BACKENDS") else {
        return;
    };
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let b: Backend = name
            .parse()
            .unwrap_or_else(|e| panic!("MKTME_XTS_REQUIRE_BACKENDS: {e}"));
        assert!(
            b.is_available(),
            "MKTME_XTS_REQUIRE_BACKENDS lists {b}, which this CPU lacks"
        );
    }
}

#[test]
fn units_that_are_not_whole_blocks_panic_on_every_backend() {
    for backend in backends() {
        let c = cipher(backend, XtsAlgorithm::Aes128, &[1u8; 16], &[2u8; 16]);
        for len in [0usize, 1, 15, 17, 33, 63] {
            let r = std::panic::catch_unwind(|| {
                let mut data = vec![0u8; len];
                c.encrypt_unit(0, &mut data);
            });
            let msg = r.expect_err("must panic");
            let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(
                msg.contains("non-zero multiple of 16 bytes"),
                "{backend}, {len} bytes: {msg}"
            );
            let r = std::panic::catch_unwind(|| {
                let mut data = vec![0u8; len];
                c.decrypt_unit(0, &mut data);
            });
            assert!(r.is_err(), "{backend}: decrypt_unit of {len} bytes");
        }
    }
}

#[test]
#[should_panic(expected = "one address per line")]
fn mismatched_batch_lengths_panic() {
    let c = XtsCipher::new(XtsAlgorithm::Aes128, &[1u8; 16], &[2u8; 16]).unwrap();
    let mut lines = [[0u8; 64]; 2];
    c.encrypt_lines(&[DramAddr::new(0)], &mut lines);
}

#[test]
#[should_panic(expected = "passes the end of the address space")]
fn runs_past_the_end_of_the_address_space_panic() {
    let c = XtsCipher::new(XtsAlgorithm::Aes128, &[1u8; 16], &[2u8; 16]).unwrap();
    let mut lines = [[0u8; 64]; 2];
    c.encrypt_run(DramAddr::new(u64::MAX - 63), &mut lines);
}

#[test]
fn a_run_may_end_at_the_last_line_of_the_address_space() {
    let (k1, k2) = ([4u8; 16], [5u8; 16]);
    let plain: Vec<LineBytes> = (0..3u8).map(|i| [i; 64]).collect();
    let first = u64::MAX - 63 - 128;
    for backend in backends() {
        let c = cipher(backend, XtsAlgorithm::Aes128, &k1, &k2);
        let mut lines = plain.clone();
        c.encrypt_run(DramAddr::new(first), &mut lines);
        for (i, (got, p)) in lines.iter().zip(&plain).enumerate() {
            let expect = reference_line(XtsAlgorithm::Aes128, &k1, &k2, first + 64 * i as u64, p);
            assert_eq!(*got, expect, "{backend}, line {i}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn algorithm() -> impl Strategy<Value = XtsAlgorithm> {
    prop_oneof![Just(XtsAlgorithm::Aes128), Just(XtsAlgorithm::Aes256)]
}

/// An algorithm with a data key and a tweak key of its length.
fn keyed() -> impl Strategy<Value = (XtsAlgorithm, Vec<u8>, Vec<u8>)> {
    algorithm().prop_flat_map(|alg| {
        let n = alg.key_bytes();
        (
            Just(alg),
            prop::collection::vec(any::<u8>(), n),
            prop::collection::vec(any::<u8>(), n),
        )
    })
}

fn line_addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Realistic DRAM addresses (46 usable bits by default) ...
        (0u64..(1 << 46)).prop_map(|a| a & !63),
        // ... and any line-aligned 64-bit value, to exercise every tweak bit the engine sees.
        any::<u64>().prop_map(|a| a & !63),
    ]
}

fn line() -> impl Strategy<Value = LineBytes> {
    any::<[u8; 64]>()
}

/// Batch and run lengths: the awkward ones around every internal group width (1, 2, 4, 8,
/// 16) and anything up to 300.
fn batch_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        prop::sample::select(vec![
            0usize, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 129
        ]),
        0usize..300,
    ]
}

proptest! {
    // 128 cases per property in CI (each case runs every backend).
    #![proptest_config(test_support::proptest_config(128))]

    #[test]
    fn lines_round_trip((alg, k1, k2) in keyed(), addr in line_addr(), plain in line()) {
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain;
            c.encrypt_line(DramAddr::new(addr), &mut x);
            c.decrypt_line(DramAddr::new(addr), &mut x);
            prop_assert_eq!(x, plain, "{}", backend);
        }
    }

    #[test]
    fn lines_equal_portable_and_xts_mode((alg, k1, k2) in keyed(), addr in line_addr(), plain in line()) {
        let expect = reference_line(alg, &k1, &k2, addr, &plain);
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain;
            c.encrypt_line(DramAddr::new(addr), &mut x);
            prop_assert_eq!(x, expect, "{} encrypt", backend);
            c.decrypt_line(DramAddr::new(addr), &mut x);
            prop_assert_eq!(x, plain, "{} decrypt", backend);
        }
    }

    #[test]
    fn batches_equal_xts_mode(
        (alg, k1, k2) in keyed(),
        (addrs, plain) in batch_len().prop_flat_map(|n| (
            prop::collection::vec(line_addr(), n),
            prop::collection::vec(line(), n),
        )),
    ) {
        let addrs: Vec<DramAddr> = addrs.into_iter().map(DramAddr::new).collect();
        let expect: Vec<LineBytes> = addrs
            .iter()
            .zip(&plain)
            .map(|(a, p)| reference_line(alg, &k1, &k2, a.raw(), p))
            .collect();
        let mut portable = None;
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain.clone();
            c.encrypt_lines(&addrs, &mut x);
            prop_assert_eq!(&x, &expect, "{} encrypt_lines of {}", backend, addrs.len());
            if backend == Backend::Portable {
                portable = Some(x.clone());
            }
            prop_assert_eq!(Some(&x), portable.as_ref(), "{} vs portable", backend);
            c.decrypt_lines(&addrs, &mut x);
            prop_assert_eq!(&x, &plain, "{} decrypt_lines of {}", backend, addrs.len());
        }
    }

    #[test]
    fn runs_equal_xts_mode(
        (alg, k1, k2) in keyed(),
        first in line_addr(),
        plain in batch_len().prop_flat_map(|n| prop::collection::vec(line(), n)),
    ) {
        // Keep the last line inside the 64-bit address space.
        let first = first.min((u64::MAX - 63) - 64 * plain.len() as u64);
        let expect: Vec<LineBytes> = plain
            .iter()
            .enumerate()
            .map(|(i, p)| reference_line(alg, &k1, &k2, first + 64 * i as u64, p))
            .collect();
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain.clone();
            c.encrypt_run(DramAddr::new(first), &mut x);
            prop_assert_eq!(&x, &expect, "{} encrypt_run of {}", backend, plain.len());
            c.decrypt_run(DramAddr::new(first), &mut x);
            prop_assert_eq!(&x, &plain, "{} decrypt_run of {}", backend, plain.len());
        }
    }

    #[test]
    fn units_equal_xts_mode(
        (alg, k1, k2) in keyed(),
        tweak in any::<u128>(),
        plain in (1usize..=70).prop_flat_map(|blocks| prop::collection::vec(any::<u8>(), 16 * blocks)),
    ) {
        let mut expect = plain.clone();
        reference_unit(alg, &k1, &k2, tweak, &mut expect);
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain.clone();
            c.encrypt_unit(tweak, &mut x);
            prop_assert_eq!(&x, &expect, "{} encrypt_unit of {} bytes", backend, plain.len());
            c.decrypt_unit(tweak, &mut x);
            prop_assert_eq!(&x, &plain, "{} decrypt_unit of {} bytes", backend, plain.len());
        }
    }

    #[test]
    fn the_address_is_the_tweak(
        (alg, k1, k2) in keyed(),
        a in line_addr(),
        b in line_addr(),
        plain in line(),
    ) {
        prop_assume!(a != b);
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let (mut x, mut y) = (plain, plain);
            c.encrypt_line(DramAddr::new(a), &mut x);
            c.encrypt_line(DramAddr::new(b), &mut y);
            // Each 16-byte block differs (a collision has probability 2^-128 per block).
            for j in 0..4 {
                prop_assert_ne!(&x[16 * j..16 * j + 16], &y[16 * j..16 * j + 16], "{} block {}", backend, j);
            }
            // Decrypting at the wrong address does not give the plaintext back.
            c.decrypt_line(DramAddr::new(b), &mut x);
            prop_assert_ne!(x, plain, "{}", backend);
        }
    }

    #[test]
    fn a_flipped_bit_garbles_exactly_its_block(
        (alg, k1, k2) in keyed(),
        addr in line_addr(),
        plain in line(),
        bit in 0usize..512,
    ) {
        let hit = bit / 128;
        for backend in backends() {
            let c = cipher(backend, alg, &k1, &k2);
            let mut x = plain;
            c.encrypt_line(DramAddr::new(addr), &mut x);
            x[bit / 8] ^= 1 << (bit % 8);
            c.decrypt_line(DramAddr::new(addr), &mut x);
            for j in 0..4 {
                let (got, want) = (&x[16 * j..16 * j + 16], &plain[16 * j..16 * j + 16]);
                if j == hit {
                    prop_assert_ne!(got, want, "{} block {} should be garbled", backend, j);
                } else {
                    prop_assert_eq!(got, want, "{} block {} should be intact", backend, j);
                }
            }
        }
    }
}
