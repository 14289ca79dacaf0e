//! PCONFIG (MKTME_KEY_PROGRAM), table-driven: every command x algorithm x KeyID class x spec
//! revision, then DEVICE_BUSY, ENTROPY_ERROR, reserved bits and the #UD/#GP preconditions.
//! Each case checks the outcome software sees AND what happened to the key table, by writing a
//! line through the KeyID and looking at the bytes the DIMM received.
//!
//! Machine: 6 KeyID bits (KeyIDs up to 63) but MK_TME_MAX_KEYS = 40, so "above max keys" (50)
//! and "above 2^bits - 1" (64) are different classes.

use mem_ctrl::pconfig::{
    EncAlgProblem, FaultReason, KeyCommand, KeyIdProblem, KeyProgramStruct, PconfigCall,
    PconfigFault, PconfigOutcome, PconfigStatus, SpecRevision,
};
use mem_ctrl::xts::{XtsAlgorithm, XtsCipher};
use mem_ctrl::{AlgorithmSet, KeyMode, KeyOrigin, MemCtrlConfig, MemorySystem};
use sim_core::{AddressLayout, Cycle, DramAddr, KeyId, LineBytes, RngFactory};

const MAX_KEYS: u16 = 40;
const LATENCY: u64 = 100;
const LINE: DramAddr = DramAddr::new(0x8_0000);
const PLAINTEXT: LineBytes = [0x5a; 64];

fn config(rev: SpecRevision) -> MemCtrlConfig {
    let mut c = MemCtrlConfig {
        layout: AddressLayout::new(46, 6).unwrap(),
        spec_revision: rev,
        pconfig_latency_cycles: LATENCY,
        ..MemCtrlConfig::default()
    };
    c.tme.max_keys = MAX_KEYS;
    c
}

fn system(rev: SpecRevision) -> MemorySystem {
    MemorySystem::new(&config(rev), RngFactory::new(2026)).unwrap()
}

/// What the DIMM holds after writing PLAINTEXT through `keyid` at `now`.
fn dimm_bytes(mem: &mut MemorySystem, now: Cycle, keyid: u16) -> LineBytes {
    let pa = mem.layout().compose(KeyId::new(keyid), LINE).unwrap();
    mem.write_line_untimed(now, pa, &PLAINTEXT);
    let mc = mem.controller_of(LINE);
    mem.controllers()[mc].store().read(LINE)
}

fn encrypt(cipher: &XtsCipher) -> LineBytes {
    let mut line = PLAINTEXT;
    cipher.encrypt_line(LINE, &mut line);
    line
}

fn key1(alg: XtsAlgorithm) -> Vec<u8> {
    (0..alg.key_bytes() as u8)
        .map(|i| i.wrapping_mul(7) ^ 0x31)
        .collect()
}

fn key2(alg: XtsAlgorithm) -> Vec<u8> {
    (0..alg.key_bytes() as u8)
        .map(|i| i.wrapping_mul(13) ^ 0xc4)
        .collect()
}

fn gp(reason: FaultReason) -> PconfigOutcome {
    PconfigOutcome::Fault(PconfigFault { reason })
}

fn status(s: PconfigStatus) -> PconfigOutcome {
    PconfigOutcome::Status(s)
}

/// The KeyID classes of the table.
#[derive(Copy, Clone, Debug)]
enum KeyIdClass {
    Zero,
    Valid,
    AboveKeyIdBits,
    AboveMaxKeys,
}

impl KeyIdClass {
    const ALL: [KeyIdClass; 4] = [
        KeyIdClass::Zero,
        KeyIdClass::Valid,
        KeyIdClass::AboveKeyIdBits,
        KeyIdClass::AboveMaxKeys,
    ];
    fn keyid(self) -> u16 {
        match self {
            KeyIdClass::Zero => 0,
            KeyIdClass::Valid => 7,
            KeyIdClass::AboveKeyIdBits => 64,
            KeyIdClass::AboveMaxKeys => 50,
        }
    }
    fn problem(self) -> Option<KeyIdProblem> {
        match self {
            KeyIdClass::Zero => Some(KeyIdProblem::Zero),
            KeyIdClass::Valid => None,
            KeyIdClass::AboveKeyIdBits => Some(KeyIdProblem::AboveKeyIdBits { keyid_bits: 6 }),
            KeyIdClass::AboveMaxKeys => Some(KeyIdProblem::AboveMaxKeys { max_keys: MAX_KEYS }),
        }
    }
}

/// ENC_ALG values of the table: the two activated algorithms and three kinds of bad value.
const ENC_ALGS: [(u16, Option<XtsAlgorithm>, Option<EncAlgProblem>); 5] = [
    (0x0001, Some(XtsAlgorithm::Aes128), None),
    (0x0004, Some(XtsAlgorithm::Aes256), None),
    (0x0002, None, Some(EncAlgProblem::NotActivated)), // AES-XTS-128 with integrity
    (0x0000, None, Some(EncAlgProblem::NotOneHot)),
    (0x0005, None, Some(EncAlgProblem::NotOneHot)),
];

/// COMMAND values of the table: the four commands and two bad ones.
const COMMANDS: [u8; 6] = [0, 1, 2, 3, 4, 0xff];

/// The spec's precedence (mktme-facts.md 2.5): command, then KeyID, then algorithm; #GP(0)
/// under the current SDM, RAX 1/3/4 under the ISE.
fn expected_outcome(
    rev: SpecRevision,
    command: u8,
    class: KeyIdClass,
    enc_alg: u16,
    alg_problem: Option<EncAlgProblem>,
) -> PconfigOutcome {
    let keyid = class.keyid();
    let first_problem: Option<(PconfigStatus, FaultReason)> = if command > 3 {
        Some((
            PconfigStatus::InvalidProgCmd,
            FaultReason::InvalidCommand { command },
        ))
    } else if let Some(problem) = class.problem() {
        Some((
            PconfigStatus::InvalidKeyId,
            FaultReason::InvalidKeyId { keyid, problem },
        ))
    } else {
        alg_problem.map(|problem| {
            (
                PconfigStatus::InvalidEncAlg,
                FaultReason::InvalidEncAlg { enc_alg, problem },
            )
        })
    };
    match (first_problem, rev) {
        (None, _) => status(PconfigStatus::Success),
        (Some((_, reason)), SpecRevision::Sdm) => gp(reason),
        (Some((s, _)), SpecRevision::Ise) => status(s),
    }
}

#[test]
fn every_command_algorithm_keyid_class_and_revision() {
    let mut cases = 0;
    for rev in [SpecRevision::Sdm, SpecRevision::Ise] {
        for command in COMMANDS {
            for (enc_alg, algorithm, alg_problem) in ENC_ALGS {
                for class in KeyIdClass::ALL {
                    cases += 1;
                    let mut mem = system(rev);
                    let keyid = class.keyid();
                    // Key fields: the algorithm's key width, or 16 bytes when there is none (so
                    // that the ISE's upper-byte check never fires in this table).
                    let width_alg = algorithm.unwrap_or(XtsAlgorithm::Aes128);
                    let program = KeyProgramStruct::from_fields(keyid, command, enc_alg, 0)
                        .with_keys(&key1(width_alg), &key2(width_alg));
                    let result = mem.pconfig(Cycle::new(10), &PconfigCall::key_program(program));
                    let want = expected_outcome(rev, command, class, enc_alg, alg_problem);
                    let ctx = format!(
                        "{rev:?} command {command} enc_alg {enc_alg:#x} keyid {keyid} ({class:?})"
                    );
                    assert_eq!(result.outcome, want, "{ctx}");

                    let platform = mem.tme().platform_key().unwrap().clone();
                    if !result.outcome.is_success() {
                        // Nothing changed: one cycle, and the valid KeyID still in TME behaviour.
                        assert_eq!(result.done, Cycle::new(11), "{ctx}");
                        assert!(matches!(mem.key_mode(KeyId::new(7)), KeyMode::Tme), "{ctx}");
                        assert_eq!(
                            dimm_bytes(&mut mem, Cycle::new(500), 7),
                            encrypt(platform.cipher()),
                            "{ctx}"
                        );
                        continue;
                    }
                    assert_eq!(result.done, Cycle::new(10 + LATENCY), "{ctx}");
                    let algorithm = algorithm.unwrap();
                    let bytes = dimm_bytes(&mut mem, result.done, keyid);
                    match KeyCommand::from_code(command).unwrap() {
                        KeyCommand::SetKeyDirect => {
                            let key = mem.key(KeyId::new(keyid)).unwrap();
                            assert_eq!(key.origin(), KeyOrigin::Direct, "{ctx}");
                            assert_eq!(key.algorithm(), algorithm, "{ctx}");
                            assert_eq!(key.data_key(), key1(algorithm), "{ctx}");
                            assert_eq!(key.tweak_key(), key2(algorithm), "{ctx}");
                            let expect =
                                XtsCipher::new(algorithm, &key1(algorithm), &key2(algorithm))
                                    .unwrap();
                            assert_eq!(bytes, encrypt(&expect), "{ctx}");
                        }
                        KeyCommand::SetKeyRandom => {
                            let key = mem.key(KeyId::new(keyid)).unwrap();
                            assert_eq!(key.origin(), KeyOrigin::Random, "{ctx}");
                            assert_eq!(key.algorithm(), algorithm, "{ctx}");
                            assert_eq!(key.data_key().len(), algorithm.key_bytes(), "{ctx}");
                            assert_ne!(key.data_key(), key1(algorithm), "{ctx}");
                            assert_eq!(bytes, encrypt(key.cipher()), "{ctx}");
                            assert_ne!(bytes, encrypt(platform.cipher()), "{ctx}");
                        }
                        KeyCommand::ClearKey => {
                            assert!(
                                matches!(mem.key_mode(KeyId::new(keyid)), KeyMode::Tme),
                                "{ctx}"
                            );
                            assert_eq!(bytes, encrypt(platform.cipher()), "{ctx}");
                        }
                        KeyCommand::NoEncrypt => {
                            assert!(
                                matches!(mem.key_mode(KeyId::new(keyid)), KeyMode::NoEncrypt),
                                "{ctx}"
                            );
                            assert_eq!(bytes, PLAINTEXT, "{ctx}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 6 * 5 * 4);
}

/// Hand-written rows, independent of `expected_outcome`, for the cases most worth pinning.
#[test]
fn literal_rows() {
    use PconfigStatus::*;
    let rows: Vec<(SpecRevision, u16, u8, u16, PconfigOutcome)> = vec![
        (SpecRevision::Sdm, 1, 0, 0x1, status(Success)),
        (SpecRevision::Ise, 1, 0, 0x1, status(Success)),
        (SpecRevision::Sdm, 40, 3, 0x4, status(Success)), // max_keys itself is valid
        (SpecRevision::Ise, 5, 4, 0x1, status(InvalidProgCmd)),
        (SpecRevision::Ise, 0, 0, 0x1, status(InvalidKeyId)),
        (SpecRevision::Ise, 41, 0, 0x1, status(InvalidKeyId)),
        (SpecRevision::Ise, 5, 2, 0x0, status(InvalidEncAlg)), // CLEAR_KEY needs an algorithm too
        (SpecRevision::Ise, 0, 9, 0x0, status(InvalidProgCmd)), // command is checked first
        (SpecRevision::Ise, 99, 1, 0x3, status(InvalidKeyId)), // then the KeyID
        (
            SpecRevision::Sdm,
            5,
            4,
            0x1,
            gp(FaultReason::InvalidCommand { command: 4 }),
        ),
        (
            SpecRevision::Sdm,
            0,
            0,
            0x1,
            gp(FaultReason::InvalidKeyId {
                keyid: 0,
                problem: KeyIdProblem::Zero,
            }),
        ),
        (
            SpecRevision::Sdm,
            41,
            1,
            0x1,
            gp(FaultReason::InvalidKeyId {
                keyid: 41,
                problem: KeyIdProblem::AboveMaxKeys { max_keys: 40 },
            }),
        ),
        (
            SpecRevision::Sdm,
            5,
            3,
            0x8,
            gp(FaultReason::InvalidEncAlg {
                enc_alg: 0x8,
                problem: EncAlgProblem::NotActivated,
            }),
        ),
    ];
    for (rev, keyid, command, enc_alg, want) in rows {
        let mut mem = system(rev);
        let program =
            KeyProgramStruct::from_fields(keyid, command, enc_alg, 0).with_keys(&[1; 16], &[2; 16]);
        let got = mem
            .pconfig(Cycle::ZERO, &PconfigCall::key_program(program))
            .outcome;
        assert_eq!(
            got, want,
            "{rev:?} keyid {keyid} command {command} enc_alg {enc_alg:#x}"
        );
    }
}

#[test]
fn algorithm_not_activated_is_rejected() {
    let mut c = config(SpecRevision::Sdm);
    c.tme.algorithms = AlgorithmSet {
        aes_xts_128: true,
        aes_xts_256: false,
    };
    let mut mem = MemorySystem::new(&c, RngFactory::new(1)).unwrap();
    let program = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes256)
        .with_keys(&[1; 32], &[2; 32]);
    let got = mem
        .pconfig(Cycle::ZERO, &PconfigCall::key_program(program))
        .outcome;
    assert_eq!(
        got,
        gp(FaultReason::InvalidEncAlg {
            enc_alg: 0x4,
            problem: EncAlgProblem::NotActivated
        })
    );
}

#[test]
fn device_busy_while_another_programming_holds_the_lock() {
    for rev in [SpecRevision::Sdm, SpecRevision::Ise] {
        let mut mem = system(rev);
        let first = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&[0x11; 16], &[0x22; 16]);
        let second = KeyProgramStruct::new(4, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128);
        let r1 = mem.pconfig(Cycle::new(1000), &PconfigCall::key_program(first));
        assert!(r1.outcome.is_success());
        assert_eq!(r1.done, Cycle::new(1000 + LATENCY));
        // Every start inside [1000, 1100) overlaps the first programming.
        for start in [1000, 1001, 1050, 1099] {
            let r2 = mem.pconfig(Cycle::new(start), &PconfigCall::key_program(second.clone()));
            assert_eq!(
                r2.outcome,
                status(PconfigStatus::DeviceBusy),
                "{rev:?} start {start}"
            );
            assert_eq!(r2.done, Cycle::new(start + 1));
        }
        // The busy attempts changed nothing, and the first lands whole at its completion.
        assert!(matches!(mem.key_mode(KeyId::new(4)), KeyMode::Tme));
        let retry = mem.pconfig(Cycle::new(1100), &PconfigCall::key_program(second));
        assert!(
            retry.outcome.is_success(),
            "{rev:?}: lock is free at completion"
        );
        assert!(matches!(mem.key_mode(KeyId::new(3)), KeyMode::Keyed(_)));
        mem.settle(retry.done);
        assert!(matches!(mem.key_mode(KeyId::new(4)), KeyMode::NoEncrypt));
        assert_eq!(mem.pconfig_unit().stats().device_busy.get(), 4);
    }
}

#[test]
fn the_entry_changes_at_completion_not_before() {
    let mut mem = system(SpecRevision::Sdm);
    let platform = mem.tme().platform_key().unwrap().clone();
    let program = KeyProgramStruct::new(9, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128);
    let r = mem.pconfig(Cycle::new(50), &PconfigCall::key_program(program));
    assert_eq!(
        dimm_bytes(&mut mem, Cycle::new(50 + LATENCY - 1), 9),
        encrypt(platform.cipher())
    );
    assert_eq!(dimm_bytes(&mut mem, r.done, 9), PLAINTEXT);
}

#[test]
fn keys_as_no_encrypt_installs_no_encrypt_with_the_same_outcomes() {
    // The overhead study's counterfactual: the same statuses and timing as a real machine
    // (an entropy failure included), but a key that was set leaves its KeyID in plaintext.
    let mut c = config(SpecRevision::Sdm);
    c.keys_as_no_encrypt = true;
    let mut mem = MemorySystem::new(&c, RngFactory::new(2026)).unwrap();
    let direct = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
        .with_keys(&[0x11; 16], &[0x22; 16]);
    let r = mem.pconfig(Cycle::new(10), &PconfigCall::key_program(direct));
    assert!(r.outcome.is_success());
    assert_eq!(r.done, Cycle::new(10 + LATENCY));
    mem.settle(r.done);
    assert!(matches!(mem.key_mode(KeyId::new(3)), KeyMode::NoEncrypt));
    assert_eq!(dimm_bytes(&mut mem, r.done, 3), PLAINTEXT);
    mem.pconfig_unit().inject_entropy_failures(1);
    let random = KeyProgramStruct::new(6, KeyCommand::SetKeyRandom, XtsAlgorithm::Aes128);
    let e = mem.pconfig(r.done, &PconfigCall::key_program(random.clone()));
    assert_eq!(e.outcome, status(PconfigStatus::EntropyError));
    let ok = mem.pconfig(e.done, &PconfigCall::key_program(random));
    assert!(ok.outcome.is_success());
    mem.settle(ok.done);
    assert!(matches!(mem.key_mode(KeyId::new(6)), KeyMode::NoEncrypt));
    assert_eq!(dimm_bytes(&mut mem, ok.done, 6), PLAINTEXT);
    // KeyID 0 keeps the platform key: the knob changes only what PCONFIG installs.
    let platform = mem.tme().platform_key().unwrap().clone();
    assert_eq!(dimm_bytes(&mut mem, ok.done, 0), encrypt(platform.cipher()));
}

#[test]
fn entropy_error_changes_nothing_and_releases_the_lock() {
    for rev in [SpecRevision::Sdm, SpecRevision::Ise] {
        let mut mem = system(rev);
        mem.pconfig_unit().inject_entropy_failures(1);
        let random = KeyProgramStruct::new(6, KeyCommand::SetKeyRandom, XtsAlgorithm::Aes128);
        let r = mem.pconfig(Cycle::new(5), &PconfigCall::key_program(random.clone()));
        assert_eq!(r.outcome, status(PconfigStatus::EntropyError), "{rev:?}");
        assert_eq!(r.done, Cycle::new(6));
        assert!(matches!(mem.key_mode(KeyId::new(6)), KeyMode::Tme));
        // The lock was released: an immediate retry is not DEVICE_BUSY, and succeeds.
        let retry = mem.pconfig(Cycle::new(6), &PconfigCall::key_program(random));
        assert!(retry.outcome.is_success(), "{rev:?}");
        // Only RANDOM consumes entropy: DIRECT is never refused for it.
        mem.pconfig_unit().inject_entropy_failures(1);
        let direct = KeyProgramStruct::new(8, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&[3; 16], &[4; 16]);
        let r = mem.pconfig(retry.done, &PconfigCall::key_program(direct));
        assert!(r.outcome.is_success(), "{rev:?}");
    }
}

#[test]
fn entropy_failure_rate_from_configuration() {
    let mut c = config(SpecRevision::Sdm);
    c.entropy_failure_rate = mem_ctrl::Fraction {
        numerator: 1,
        denominator: 1,
    };
    let mut mem = MemorySystem::new(&c, RngFactory::new(3)).unwrap();
    let random = KeyProgramStruct::new(6, KeyCommand::SetKeyRandom, XtsAlgorithm::Aes256);
    for t in 0..5 {
        let r = mem.pconfig(Cycle::new(t), &PconfigCall::key_program(random.clone()));
        assert_eq!(r.outcome, status(PconfigStatus::EntropyError));
    }
    // Half the time: over many tries, some of each (seeded, so this is exact and repeatable).
    c.entropy_failure_rate = mem_ctrl::Fraction {
        numerator: 1,
        denominator: 2,
    };
    let mut mem = MemorySystem::new(&c, RngFactory::new(3)).unwrap();
    let (mut ok, mut failed) = (0, 0);
    let mut now = Cycle::ZERO;
    for _ in 0..200 {
        let r = mem.pconfig(now, &PconfigCall::key_program(random.clone()));
        match r.outcome {
            PconfigOutcome::Status(PconfigStatus::Success) => ok += 1,
            PconfigOutcome::Status(PconfigStatus::EntropyError) => failed += 1,
            other => panic!("unexpected {other:?}"),
        }
        now = r.done;
    }
    assert!(ok > 60 && failed > 60, "ok {ok} failed {failed}");
}

#[test]
fn random_key_is_rng_output_xor_key_fields() {
    let entropy1: Vec<u8> = (0..32).map(|i| i * 3 + 1).collect();
    let entropy2: Vec<u8> = (0..32).map(|i| 0xf0 ^ i).collect();
    for alg in [XtsAlgorithm::Aes128, XtsAlgorithm::Aes256] {
        let n = alg.key_bytes();
        let key_with = |e1: &[u8], e2: &[u8]| {
            let mut mem = system(SpecRevision::Sdm);
            let p = KeyProgramStruct::new(2, KeyCommand::SetKeyRandom, alg).with_keys(e1, e2);
            let r = mem.pconfig(Cycle::ZERO, &PconfigCall::key_program(p));
            assert!(r.outcome.is_success());
            mem.settle(r.done);
            let key = mem.key(KeyId::new(2)).unwrap();
            (key.data_key().to_vec(), key.tweak_key().to_vec())
        };
        let (d0, t0) = key_with(&[], &[]);
        let (d1, t1) = key_with(&entropy1[..n], &entropy2[..n]);
        let xor = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| x ^ y).collect::<Vec<u8>>();
        assert_eq!(xor(&d0, &d1), entropy1[..n]);
        assert_eq!(xor(&t0, &t1), entropy2[..n]);
        assert_ne!(d0, t0, "data and tweak keys are drawn separately");
    }
}

#[test]
fn reserved_bits_and_bytes() {
    // KEYID_CTRL[31:24]: #GP(0) in both revisions.
    for rev in [SpecRevision::Sdm, SpecRevision::Ise] {
        let mut mem = system(rev);
        let p = KeyProgramStruct::from_fields(3, 0, 0x1, 0x80).with_keys(&[1; 16], &[2; 16]);
        let got = mem
            .pconfig(Cycle::ZERO, &PconfigCall::key_program(p))
            .outcome;
        assert_eq!(
            got,
            gp(FaultReason::ReservedCtrlBits { value: 0x80 }),
            "{rev:?}"
        );
    }
    // Reserved bytes 6-63: #GP(0) under the ISE, ignored by the current SDM.
    let mut p = KeyProgramStruct::new(3, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128);
    p.reserved[17 - 6] = 0x42;
    let got = system(SpecRevision::Ise).pconfig(Cycle::ZERO, &PconfigCall::key_program(p.clone()));
    assert_eq!(
        got.outcome,
        gp(FaultReason::ReservedByte {
            offset: 17,
            value: 0x42
        })
    );
    let got = system(SpecRevision::Sdm).pconfig(Cycle::ZERO, &PconfigCall::key_program(p));
    assert!(got.outcome.is_success());
    // Key bytes above the key width: #GP(0) under the ISE, ignored by the current SDM.
    use mem_ctrl::pconfig::KeyField;
    let cases = [
        (XtsAlgorithm::Aes128, 16usize, KeyField::KeyField1),
        (XtsAlgorithm::Aes256, 32, KeyField::KeyField2),
    ];
    for (alg, offset, field) in cases {
        let mut p = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, alg)
            .with_keys(&key1(alg), &key2(alg));
        match field {
            KeyField::KeyField1 => p.key_field_1[offset] = 0x99,
            KeyField::KeyField2 => p.key_field_2[offset] = 0x99,
        }
        let got =
            system(SpecRevision::Ise).pconfig(Cycle::ZERO, &PconfigCall::key_program(p.clone()));
        assert_eq!(
            got.outcome,
            gp(FaultReason::UpperKeyByte {
                field,
                offset,
                value: 0x99
            })
        );
        let mut mem = system(SpecRevision::Sdm);
        let got = mem.pconfig(Cycle::ZERO, &PconfigCall::key_program(p));
        assert!(got.outcome.is_success());
        mem.settle(got.done);
        // The ignored byte is not part of the key.
        assert_eq!(mem.key(KeyId::new(3)).unwrap().data_key(), key1(alg));
    }
    // Key bytes within the 256-bit width are key, not reserved, for AES-XTS-256.
    let p = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes256)
        .with_keys(&[0xee; 32], &[0xdd; 32]);
    let got = system(SpecRevision::Ise).pconfig(Cycle::ZERO, &PconfigCall::key_program(p));
    assert!(got.outcome.is_success());
}

#[test]
fn preconditions_ud_and_gp() {
    for rev in [SpecRevision::Sdm, SpecRevision::Ise] {
        let program = KeyProgramStruct::new(3, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128);
        let base = PconfigCall::key_program(program);
        let cases = [
            (
                PconfigCall {
                    privileged: false,
                    ..base.clone()
                },
                FaultReason::NotPrivileged,
            ),
            (
                PconfigCall {
                    leaf: 1,
                    ..base.clone()
                },
                FaultReason::UnsupportedLeaf { leaf: 1 },
            ),
            (
                PconfigCall {
                    struct_addr: 0x1080,
                    ..base.clone()
                },
                FaultReason::MisalignedStruct { addr: 0x1080 },
            ),
        ];
        for (call, reason) in cases {
            let got = system(rev).pconfig(Cycle::ZERO, &call).outcome;
            assert_eq!(got, gp(reason.clone()), "{rev:?}");
            let PconfigOutcome::Fault(f) = got else {
                unreachable!()
            };
            let expect_vector = if reason == FaultReason::NotPrivileged {
                "#UD"
            } else {
                "#GP(0)"
            };
            assert!(f.to_string().starts_with(expect_vector), "{f}");
        }
        // No KeyID bits: MKTME is not active, PCONFIG #GPs.
        let mut c = config(rev);
        c.layout = AddressLayout::new(46, 0).unwrap();
        c.tme.max_keys = 0;
        let mut mem = MemorySystem::new(&c, RngFactory::new(1)).unwrap();
        assert_eq!(
            mem.pconfig(Cycle::ZERO, &base).outcome,
            gp(FaultReason::MktmeNotActivated)
        );
    }
}

#[test]
fn raw_struct_bytes_round_trip_through_pconfig() {
    let program = KeyProgramStruct::new(12, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
        .with_keys(&[0xab; 16], &[0xcd; 16]);
    let parsed = KeyProgramStruct::from_bytes(&program.to_bytes()).unwrap();
    let mut mem = system(SpecRevision::Sdm);
    let r = mem.pconfig(Cycle::ZERO, &PconfigCall::key_program(parsed));
    assert!(r.outcome.is_success());
    // Not yet: the entry changes at completion.
    assert!(mem.key(KeyId::new(12)).is_none());
    mem.settle(r.done);
    assert_eq!(mem.key(KeyId::new(12)).unwrap().data_key(), [0xab; 16]);
}

#[test]
fn fault_messages_name_the_field() {
    let msgs = [
        (
            FaultReason::InvalidCommand { command: 9 },
            "KEYID_CTRL.COMMAND = 9",
        ),
        (
            FaultReason::InvalidKeyId {
                keyid: 50,
                problem: KeyIdProblem::AboveMaxKeys { max_keys: 40 },
            },
            "KEYID = 50 is above MK_TME_MAX_KEYS = 40",
        ),
        (
            FaultReason::InvalidEncAlg {
                enc_alg: 5,
                problem: EncAlgProblem::NotOneHot,
            },
            "KEYID_CTRL.ENC_ALG = 0x0005",
        ),
        (
            FaultReason::ReservedByte {
                offset: 9,
                value: 1,
            },
            "offset 9",
        ),
        (FaultReason::MisalignedStruct { addr: 0x10 }, "RBX = 0x10"),
    ];
    for (reason, needle) in msgs {
        let text = PconfigFault { reason }.to_string();
        assert!(text.contains(needle), "{text} lacks {needle}");
    }
}
