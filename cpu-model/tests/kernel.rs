//! The kernel layer (issue 5): the key service's payload rules, the KeyID pool, encrypt_mprotect,
//! reference counts, the direct map, frame reuse and shootdowns, with exact values; and one run
//! of the kernel's steps on a real machine showing that its key programming reaches the memory
//! controller (DRAM holds the AES-XTS encryption under the user's key).

use cache_model::{CoreOp, CoreRequest, CoreResponse};
use cpu_model::kernel::{
    CALL_NAMES, FIRST_SERIAL, Kernel, KernelConfig, KernelConfigError, KernelStep, KeyInfo, Pte,
    SyscallEnd, USER_SPACE_END,
};
use cpu_model::program::{
    Backing, Credentials, DIRECT_MAP_BASE, Errno, Fault, FaultKind, KernelCall, ProcessId, Prot,
};
use cpu_model::{Machine, MachineConfig};
use mem_ctrl::pconfig::{
    FaultReason, KeyCommand, KeyProgramStruct, PconfigCall, PconfigFault, PconfigOutcome,
    PconfigStatus,
};
use mem_ctrl::xts::{XtsAlgorithm, XtsCipher};
use proptest::prelude::*;
use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId, PhysAddr, StatsReport, VirtAddr};

const GIB: u64 = 1 << 30;
/// Where the direct map starts, as a number to compute test addresses from.
const DIRECT: u64 = DIRECT_MAP_BASE.raw();
/// The end of the user address space, as a number.
const USER_END: u64 = USER_SPACE_END.raw();
const PAGE: u64 = 4096;
/// The last page of the 64-bit address space.
const TOP_PAGE: u64 = !0xfff;
/// The first frame the default configuration hands out.
const F0: u64 = 0x4000_0000;
const KEY: &str = "000102030405060708090a0b0c0d0e0f";
const TWEAK: &str = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
const KEY_BYTES: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const TWEAK_BYTES: [u8; 16] = [
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
];
const SUCCESS: PconfigOutcome = PconfigOutcome::Status(PconfigStatus::Success);
const ROOT: Credentials = Credentials {
    ring0: true,
    cap_sys_resource: true,
    ..Credentials::ROOT
};

fn kernel_with(configure: impl FnOnce(&mut KernelConfig)) -> Kernel {
    let mut config = KernelConfig::default();
    configure(&mut config);
    Kernel::new(&config, AddressLayout::default(), 16 * GIB, 63).unwrap()
}

fn kernel() -> Kernel {
    kernel_with(|_| {})
}

fn va(raw: u64) -> VirtAddr {
    VirtAddr::new(raw)
}

/// Pages to shoot down, by address.
fn pages(raws: &[u64]) -> Vec<VirtAddr> {
    raws.iter().copied().map(VirtAddr::new).collect()
}

fn pa(keyid: u16, dram: u64) -> PhysAddr {
    AddressLayout::default()
        .compose(KeyId::new(keyid), DramAddr::new(dram))
        .unwrap()
}

/// A call's steps and its end.
struct Ran {
    steps: Vec<KernelStep>,
    end: SyscallEnd,
}

/// Runs a call as root; every PCONFIG step succeeds.
fn run(k: &mut Kernel, call: KernelCall) -> Ran {
    run_as(k, ROOT, call, |_| SUCCESS)
}

/// Runs a call; the i-th PCONFIG step ends with `outcome(i)`.
fn run_as(
    k: &mut Kernel,
    credentials: Credentials,
    call: KernelCall,
    outcome: impl Fn(usize) -> PconfigOutcome,
) -> Ran {
    let syscall = k.begin(Cycle::new(100), CoreId::new(0), credentials, &call);
    let steps = syscall.steps.clone();
    let n = steps
        .iter()
        .filter(|s| matches!(s, KernelStep::Pconfig { .. }))
        .count();
    let outcomes: Vec<PconfigOutcome> = (0..n).map(outcome).collect();
    let end = k.finish(syscall, &outcomes);
    Ran { steps, end }
}

/// Runs a call that must succeed with `value` and returns its steps.
fn ok(k: &mut Kernel, call: KernelCall, value: u64) -> Vec<KernelStep> {
    let ran = run(k, call.clone());
    assert_eq!(ran.end.result, Ok(value), "{call:?}");
    ran.steps
}

/// Runs a call that must fail with `errno`, with no steps and no shootdown.
fn fails(k: &mut Kernel, call: KernelCall, errno: Errno) {
    let ran = run(k, call.clone());
    assert_eq!(ran.end.result, Err(errno), "{call:?}");
    assert_eq!(ran.steps, [], "{call:?}");
    assert_eq!(ran.end.shootdown, [], "{call:?}");
}

fn add_key(name: &str, payload: &str) -> KernelCall {
    KernelCall::AddKey {
        name: name.to_owned(),
        payload: payload.to_owned(),
    }
}

fn user_payload() -> String {
    format!("type=user algorithm=aes-xts-128 key={KEY} tweak={TWEAK}")
}

fn user_key(name: &str) -> KernelCall {
    add_key(name, &user_payload())
}

fn invalidate(name: &str) -> KernelCall {
    KernelCall::InvalidateKey {
        name: name.to_owned(),
    }
}

fn mmap(addr: u64, pages: u64) -> KernelCall {
    KernelCall::Mmap {
        addr: va(addr),
        len: pages * PAGE,
        prot: Prot::READ_WRITE,
        backing: Backing::Anonymous,
    }
}

fn mmap_file(addr: u64, pages: u64, name: &str, offset: u64) -> KernelCall {
    KernelCall::Mmap {
        addr: va(addr),
        len: pages * PAGE,
        prot: Prot::READ,
        backing: Backing::File {
            name: name.to_owned(),
            offset,
        },
    }
}

fn munmap(addr: u64, pages: u64) -> KernelCall {
    KernelCall::Munmap {
        addr: va(addr),
        len: pages * PAGE,
    }
}

fn encrypt(addr: u64, pages: u64, key: &str) -> KernelCall {
    encrypt_len(addr, pages * PAGE, key)
}

fn encrypt_len(addr: u64, len: u64, key: &str) -> KernelCall {
    KernelCall::EncryptMprotect {
        addr: va(addr),
        len,
        prot: Prot::READ_WRITE,
        key: key.to_owned(),
    }
}

fn flushes(keyid: u16, frame: u64) -> Vec<KernelStep> {
    (0..64)
        .map(|i| KernelStep::Flush(pa(keyid, frame + 64 * i)))
        .collect()
}

fn zeros(keyid: u16, frame: u64) -> Vec<KernelStep> {
    (0..64)
        .map(|i| KernelStep::ZeroLine(pa(keyid, frame + 64 * i)))
        .collect()
}

fn pconfig(keyid: u16, command: KeyCommand, key: &[u8], tweak: &[u8]) -> KernelStep {
    KernelStep::Pconfig {
        call: Box::new(PconfigCall::key_program(
            KeyProgramStruct::new(keyid, command, XtsAlgorithm::Aes128).with_keys(key, tweak),
        )),
        retries: 3,
    }
}

fn clear(keyid: u16) -> KernelStep {
    pconfig(keyid, KeyCommand::ClearKey, &[], &[])
}

fn user_pte(keyid: u16, frame: u64, prot: Prot) -> Pte {
    Pte {
        frame: pa(keyid, frame),
        prot,
        kernel_only: false,
    }
}

fn direct_pte(frame: u64) -> Pte {
    Pte {
        frame: pa(0, frame),
        prot: Prot::READ_WRITE,
        kernel_only: true,
    }
}

fn key_info(
    name: &str,
    serial: u64,
    keyid: Option<u16>,
    key_type: &'static str,
    state: &'static str,
    pages: u64,
) -> KeyInfo {
    KeyInfo {
        name: name.to_owned(),
        serial,
        keyid: keyid.map(KeyId::new),
        key_type,
        state,
        pages,
        owner: ProcessId(0),
        viewers: Vec::new(),
    }
}

fn stats(k: &Kernel) -> StatsReport {
    let mut report = StatsReport::new();
    k.report_stats(&mut report);
    report
}

fn stat(k: &Kernel, name: &str) -> u64 {
    stats(k)
        .get_count(name)
        .unwrap_or_else(|| panic!("no statistic {name}"))
}

// ---------------------------------------------------------------------------------------------
// The key service

#[test]
fn valid_payloads_program_the_right_command_and_keys() {
    let key = KEY_BYTES;
    let tweak = TWEAK_BYTES;
    let zero = [0u8; 16];
    let cases: Vec<(String, KernelStep, &str)> = vec![
        (
            user_payload(),
            pconfig(1, KeyCommand::SetKeyDirect, &key, &tweak),
            "user",
        ),
        (
            // Any order, any whitespace, either case of hex digits.
            format!(
                "\ttweak={}\n key={KEY}   algorithm=aes-xts-128 type=user ",
                TWEAK.to_lowercase()
            ),
            pconfig(1, KeyCommand::SetKeyDirect, &key, &tweak),
            "user",
        ),
        (
            "type=cpu algorithm=aes-xts-128".to_owned(),
            pconfig(1, KeyCommand::SetKeyRandom, &zero, &zero),
            "cpu",
        ),
        (
            format!("type=cpu algorithm=aes-xts-128 key={KEY}"),
            pconfig(1, KeyCommand::SetKeyRandom, &key, &zero),
            "cpu",
        ),
        (
            format!("type=cpu algorithm=aes-xts-128 tweak={TWEAK}"),
            pconfig(1, KeyCommand::SetKeyRandom, &zero, &tweak),
            "cpu",
        ),
        (
            format!("type=cpu algorithm=aes-xts-128 key={KEY} tweak={TWEAK}"),
            pconfig(1, KeyCommand::SetKeyRandom, &key, &tweak),
            "cpu",
        ),
        (
            "type=no-encrypt".to_owned(),
            pconfig(1, KeyCommand::NoEncrypt, &[], &[]),
            "no-encrypt",
        ),
        ("type=clear".to_owned(), clear(1), "clear"),
    ];
    for (payload, step, key_type) in cases {
        let mut k = kernel();
        let steps = ok(&mut k, add_key("k", &payload), FIRST_SERIAL);
        assert_eq!(steps, [step], "{payload}");
        assert_eq!(
            k.keys(),
            [key_info(
                "k",
                FIRST_SERIAL,
                Some(1),
                key_type,
                "assigned",
                0
            )],
            "{payload}"
        );
    }
}

#[test]
fn malformed_payloads_are_einval() {
    let bad_hex = [
        &KEY[..31],
        &format!("{KEY}0"),
        &format!("0x{}", &KEY[..30]),
        &format!("{}g", &KEY[..31]),
        &format!("{} ", &KEY[..31]),
        "",
    ]
    .map(|s| s.to_owned());
    let mut cases: Vec<String> = vec![
        // Empty.
        "".into(),
        " \t\n".into(),
        // type= missing, unknown or empty.
        "algorithm=aes-xts-128".into(),
        format!("algorithm=aes-xts-128 key={KEY} tweak={TWEAK}"),
        "type=tpm algorithm=aes-xts-128".into(),
        "type=CPU algorithm=aes-xts-128".into(),
        "type= algorithm=aes-xts-128".into(),
        "type=cpu, algorithm=aes-xts-128".into(),
        // algorithm= missing for user and cpu, not aes-xts-128, or present for the others.
        "type=cpu".into(),
        format!("type=user key={KEY} tweak={TWEAK}"),
        "type=cpu algorithm=aes-xts-256".into(),
        "type=cpu algorithm=AES-XTS-128".into(),
        "type=cpu algorithm=".into(),
        "type=no-encrypt algorithm=aes-xts-128".into(),
        "type=clear algorithm=aes-xts-128".into(),
        // user without key= or tweak=.
        format!("type=user algorithm=aes-xts-128 key={KEY}"),
        format!("type=user algorithm=aes-xts-128 tweak={TWEAK}"),
        "type=user algorithm=aes-xts-128".into(),
        // key=/tweak= on no-encrypt and clear.
        format!("type=no-encrypt key={KEY}"),
        format!("type=no-encrypt tweak={TWEAK}"),
        format!("type=clear key={KEY}"),
        format!("type=clear tweak={TWEAK}"),
        // Unknown options, duplicates, tokens that are not option=value.
        format!("type=cpu algorithm=aes-xts-128 entropy={KEY}"),
        "type=cpu algorithm=aes-xts-128 userkey=00".into(),
        "type=cpu type=cpu algorithm=aes-xts-128".into(),
        "type=cpu algorithm=aes-xts-128 algorithm=aes-xts-128".into(),
        format!("type=cpu algorithm=aes-xts-128 key={KEY} key={KEY}"),
        "type=cpu algorithm=aes-xts-128 junk".into(),
        "type=cpu algorithm=aes-xts-128 =x".into(),
        "type:cpu algorithm=aes-xts-128".into(),
    ];
    for hex in &bad_hex {
        cases.push(format!(
            "type=user algorithm=aes-xts-128 key={hex} tweak={TWEAK}"
        ));
        cases.push(format!(
            "type=user algorithm=aes-xts-128 key={KEY} tweak={hex}"
        ));
        cases.push(format!("type=cpu algorithm=aes-xts-128 key={hex}"));
        cases.push(format!("type=cpu algorithm=aes-xts-128 tweak={hex}"));
    }
    let mut k = kernel();
    for payload in &cases {
        fails(&mut k, add_key("k", payload), Errno::Einval);
    }
    assert_eq!(k.keys(), []);
    assert_eq!(stat(&k, "kernel.errors.EINVAL"), cases.len() as u64);
    assert_eq!(stat(&k, "kernel.keyids_in_use"), 0);
    // The pool was never touched: the first good key gets KeyID 1 and the first serial.
    let steps = ok(&mut k, user_key("k"), FIRST_SERIAL);
    assert_eq!(
        steps,
        [pconfig(
            1,
            KeyCommand::SetKeyDirect,
            &KEY_BYTES,
            &TWEAK_BYTES
        )]
    );
}

#[test]
fn adding_a_key_needs_cap_sys_resource_and_a_free_name() {
    let mut k = kernel();
    let user = Credentials {
        ring0: false,
        cap_sys_resource: false,
        ..Credentials::ROOT
    };
    let ran = run_as(&mut k, user, user_key("k"), |_| SUCCESS);
    assert_eq!((ran.end.result, ran.steps), (Err(Errno::Eacces), vec![]));
    // The capability is checked before the payload.
    let ran = run_as(&mut k, user, add_key("k", "junk"), |_| SUCCESS);
    assert_eq!(ran.end.result, Err(Errno::Eacces));
    // Ring 0 is not the capability.
    let ring0 = Credentials {
        ring0: true,
        cap_sys_resource: false,
        ..Credentials::ROOT
    };
    assert_eq!(
        run_as(&mut k, ring0, user_key("k"), |_| SUCCESS).end.result,
        Err(Errno::Eacces)
    );
    // The capability without ring 0 is enough.
    let cap = Credentials {
        ring0: false,
        cap_sys_resource: true,
        ..Credentials::ROOT
    };
    assert_eq!(
        run_as(&mut k, cap, user_key("k"), |_| SUCCESS).end.result,
        Ok(FIRST_SERIAL)
    );
    // An empty name, or the name of a live key: EINVAL.
    fails(&mut k, user_key(""), Errno::Einval);
    fails(
        &mut k,
        add_key("k", "type=cpu algorithm=aes-xts-128"),
        Errno::Einval,
    );
    // Once invalidated (and released), the name may be used again.
    assert_eq!(ok(&mut k, invalidate("k"), 0), [clear(1)]);
    assert_eq!(
        ok(&mut k, add_key("k", "type=no-encrypt"), FIRST_SERIAL + 1),
        [pconfig(1, KeyCommand::NoEncrypt, &[], &[])]
    );
    assert_eq!(
        k.keys(),
        [
            key_info("k", FIRST_SERIAL, None, "user", "released", 0),
            key_info("k", FIRST_SERIAL + 1, Some(1), "no-encrypt", "assigned", 0),
        ]
    );
    assert_eq!(stat(&k, "kernel.errors.EACCES"), 3);
    assert_eq!(stat(&k, "kernel.errors.EINVAL"), 2);
    assert_eq!(stat(&k, "kernel.syscalls.add_key"), 7);
}

#[test]
fn the_pool_runs_out_and_an_invalidated_keyid_is_reused() {
    let mut k = kernel_with(|c| c.keyids = Some(3));
    assert_eq!(k.keyid_pool(), 3);
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let steps = ok(&mut k, user_key(name), FIRST_SERIAL + i as u64);
        assert_eq!(
            steps,
            [pconfig(
                i as u16 + 1,
                KeyCommand::SetKeyDirect,
                &KEY_BYTES,
                &TWEAK_BYTES
            )]
        );
    }
    // The fourth: no KeyID, no PCONFIG.
    fails(
        &mut k,
        add_key("d", "type=cpu algorithm=aes-xts-128"),
        Errno::Enokey,
    );
    assert_eq!(stat(&k, "kernel.keyids_in_use"), 3);
    // Invalidating an unreferenced key clears its KeyID at once.
    assert_eq!(ok(&mut k, invalidate("b"), 0), [clear(2)]);
    fails(&mut k, invalidate("b"), Errno::Enokey);
    fails(&mut k, invalidate("nobody"), Errno::Enokey);
    assert_eq!(stat(&k, "kernel.keyids_in_use"), 2);
    // The next key gets the freed KeyID (the first available), and the next serial.
    assert_eq!(
        ok(
            &mut k,
            add_key("d", "type=cpu algorithm=aes-xts-128"),
            FIRST_SERIAL + 3
        ),
        [pconfig(2, KeyCommand::SetKeyRandom, &[0; 16], &[0; 16])]
    );
    assert_eq!(
        k.keys(),
        [
            key_info("a", FIRST_SERIAL, Some(1), "user", "assigned", 0),
            key_info("b", FIRST_SERIAL + 1, None, "user", "released", 0),
            key_info("c", FIRST_SERIAL + 2, Some(3), "user", "assigned", 0),
            key_info("d", FIRST_SERIAL + 3, Some(2), "cpu", "assigned", 0),
        ]
    );
    fails(&mut k, add_key("e", "type=clear"), Errno::Enokey);
    assert_eq!(stat(&k, "kernel.errors.ENOKEY"), 4);
    assert_eq!(stat(&k, "kernel.pconfig_steps"), 5);
}

#[test]
fn a_failed_programming_is_enokey_and_frees_the_keyid() {
    let mut k = kernel_with(|c| c.keyids = Some(1));
    let busy = PconfigOutcome::Status(PconfigStatus::DeviceBusy);
    let entropy = PconfigOutcome::Status(PconfigStatus::EntropyError);
    let fault = PconfigOutcome::Fault(PconfigFault {
        reason: FaultReason::MktmeNotActivated,
    });
    for outcome in [busy, entropy, fault] {
        let ran = run_as(&mut k, ROOT, user_key("k"), |_| outcome.clone());
        assert_eq!(ran.end.result, Err(Errno::Enokey));
        assert_eq!(ran.steps.len(), 1);
        assert_eq!(k.keys(), []);
        assert_eq!(stat(&k, "kernel.keyids_in_use"), 0);
    }
    // No outcome at all counts as a failure.
    let syscall = k.begin(Cycle::ZERO, CoreId::new(1), ROOT, &user_key("k"));
    assert_eq!(k.in_flight(), 1);
    assert_eq!(k.finish(syscall, &[]).result, Err(Errno::Enokey));
    assert_eq!(k.in_flight(), 0);
    assert_eq!(stat(&k, "kernel.program_failures"), 4);
    // The KeyID is free and no serial was used.
    assert_eq!(
        ok(&mut k, user_key("k"), FIRST_SERIAL),
        [pconfig(
            1,
            KeyCommand::SetKeyDirect,
            &KEY_BYTES,
            &TWEAK_BYTES
        )]
    );
}

#[test]
fn a_failed_clear_key_still_releases_the_keyid() {
    let mut k = kernel_with(|c| c.keyids = Some(1));
    ok(&mut k, user_key("k"), FIRST_SERIAL);
    let busy = PconfigOutcome::Status(PconfigStatus::DeviceBusy);
    let ran = run_as(&mut k, ROOT, invalidate("k"), |_| busy.clone());
    assert_eq!((ran.end.result, ran.steps), (Ok(0), vec![clear(1)]));
    assert_eq!(stat(&k, "kernel.clear_key_failures"), 1);
    assert_eq!(k.keys()[0].state, "released");
    ok(&mut k, user_key("k2"), FIRST_SERIAL + 1);
    assert_eq!(k.keys()[1].keyid, Some(KeyId::new(1)));
}

// ---------------------------------------------------------------------------------------------
// encrypt_mprotect

/// A kernel with user key "k" (KeyID 1), two anonymous pages at 0x10000 (frames F0, F0 + 4K),
/// a file page at 0x20000 (frame F0 + 8K) and an anonymous page at 0x21000 (F0 + 12K).
fn populated(configure: impl FnOnce(&mut KernelConfig)) -> Kernel {
    let mut k = kernel_with(configure);
    ok(&mut k, user_key("k"), FIRST_SERIAL);
    ok(&mut k, mmap(0x10000, 2), 0x10000);
    ok(&mut k, mmap_file(0x20000, 1, "lib.so", 0), 0x20000);
    ok(&mut k, mmap(0x21000, 1), 0x21000);
    k
}

#[test]
fn encrypt_mprotect_rejects_bad_ranges_file_pages_and_unknown_keys() {
    let mut k = populated(|_| {});
    ok(
        &mut k,
        add_key("gone", "type=cpu algorithm=aes-xts-128"),
        FIRST_SERIAL + 1,
    );
    ok(&mut k, invalidate("gone"), 0);
    let walks = |k: &Kernel| -> Vec<Result<Pte, FaultKind>> {
        (0x10000..0x23000)
            .step_by(PAGE as usize)
            .map(|a| k.walk(va(a)))
            .collect()
    };
    let before = walks(&k);
    let einval = [
        encrypt_len(0x10800, PAGE, "k"),             // misaligned addr
        encrypt_len(0x10000, 0x800, "k"),            // misaligned len
        encrypt_len(0x10000, PAGE + 1, "k"),         // misaligned len
        encrypt_len(0x10000, 0, "k"),                // empty
        encrypt_len(TOP_PAGE, 2 * PAGE, "k"),        // overflow
        encrypt_len(USER_END - PAGE, 2 * PAGE, "k"), // into kernel space
        encrypt_len(DIRECT, PAGE, "k"),              // a kernel address
        encrypt(0x20000, 1, "k"),                    // a file page
        encrypt(0x20000, 2, "k"),                    // a file page, then an anonymous one
        encrypt(0x20000, 2, "nobody"),               // checked before the key
    ];
    for call in einval {
        fails(&mut k, call, Errno::Einval);
    }
    fails(&mut k, encrypt(0x10000, 3, "k"), Errno::Enomem); // 0x12000 is not mapped
    fails(&mut k, encrypt(0x0f000, 2, "k"), Errno::Enomem);
    fails(&mut k, encrypt(0x30000, 1, "k"), Errno::Enomem);
    fails(&mut k, encrypt(0x30000, 1, "nobody"), Errno::Enomem); // range before key
    fails(&mut k, encrypt(0x10000, 2, "nobody"), Errno::Enokey);
    fails(&mut k, encrypt(0x10000, 2, "gone"), Errno::Enokey);
    // Nothing changed.
    assert_eq!(walks(&k), before);
    assert_eq!(
        before[..4],
        [
            Ok(user_pte(0, F0, Prot::READ_WRITE)),
            Ok(user_pte(0, F0 + PAGE, Prot::READ_WRITE)),
            Err(FaultKind::NotMapped),
            Err(FaultKind::NotMapped),
        ]
    );
    assert_eq!(before[16], Ok(user_pte(0, F0 + 2 * PAGE, Prot::READ)));
    assert_eq!(before[17], Ok(user_pte(0, F0 + 3 * PAGE, Prot::READ_WRITE)));
    assert_eq!(k.keys()[0].pages, 0);
    assert_eq!(stat(&k, "kernel.errors.EINVAL"), 10);
    assert_eq!(stat(&k, "kernel.errors.ENOMEM"), 4);
    assert_eq!(stat(&k, "kernel.errors.ENOKEY"), 2);
}

#[test]
fn encrypt_mprotect_flushes_the_old_alias_and_zeroes_the_new_one() {
    let mut k = populated(|_| {});
    let call = encrypt(0x10000, 2, "k");
    let syscall = k.begin(Cycle::new(5), CoreId::new(1), ROOT, &call);
    let mut expected = flushes(0, F0);
    expected.extend(zeros(1, F0));
    expected.extend(flushes(0, F0 + PAGE));
    expected.extend(zeros(1, F0 + PAGE));
    assert_eq!(syscall.steps, expected);
    // Nothing is visible until finish: the steps run first.
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(0, F0, Prot::READ_WRITE)));
    assert!(
        k.dump()
            .contains("#5 encrypt_mprotect by core 1 since cycle 5")
    );
    let end = k.finish(syscall, &[]);
    assert_eq!(
        end,
        SyscallEnd {
            result: Ok(0),
            shootdown: pages(&[0x10000, 0x11000])
        }
    );
    // The KeyID is in the frame's physical address.
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(1, F0, Prot::READ_WRITE)));
    assert_eq!(
        k.walk(va(0x11fff)),
        Ok(user_pte(1, F0 + PAGE, Prot::READ_WRITE))
    );
    assert_eq!(
        k.walk(va(0x10000)).unwrap().frame.raw(),
        (1u64 << 46) | 0x4000_0000
    );
    assert_eq!(k.keys()[0].pages, 2);
    assert_eq!(stat(&k, "kernel.flush_lines"), 128);
    // 4 pages zeroed at mmap, 2 at encrypt_mprotect.
    assert_eq!(stat(&k, "kernel.zeroed_lines"), 6 * 64);

    // Again with the same key and protection: nothing to do.
    let ran = run(&mut k, encrypt(0x10000, 2, "k"));
    assert_eq!(
        (ran.end.result, ran.steps, ran.end.shootdown),
        (Ok(0), vec![], vec![])
    );
    // The same key, another protection: no flushes, both pages shot down.
    let ran = run(
        &mut k,
        KernelCall::EncryptMprotect {
            addr: va(0x10000),
            len: 2 * PAGE,
            prot: Prot::READ,
            key: "k".into(),
        },
    );
    assert_eq!(ran.steps, []);
    assert_eq!(ran.end.shootdown, pages(&[0x10000, 0x11000]));
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(1, F0, Prot::READ)));
    assert_eq!(k.keys()[0].pages, 2);

    // To another key: the KeyID-1 alias is flushed (free_encrypted_page's flush), the KeyID-2
    // alias zeroed; the references move.
    ok(
        &mut k,
        add_key("k2", "type=cpu algorithm=aes-xts-128"),
        FIRST_SERIAL + 1,
    );
    let steps = ok(&mut k, encrypt(0x11000, 1, "k2"), 0);
    let mut expected = flushes(1, F0 + PAGE);
    expected.extend(zeros(2, F0 + PAGE));
    assert_eq!(steps, expected);
    assert_eq!(
        k.walk(va(0x11000)),
        Ok(user_pte(2, F0 + PAGE, Prot::READ_WRITE))
    );
    assert_eq!((k.keys()[0].pages, k.keys()[1].pages), (1, 1));
}

#[test]
fn without_flush_on_keyid_change_only_the_new_alias_is_zeroed() {
    let mut k = populated(|c| c.flush_on_keyid_change = false);
    let steps = ok(&mut k, encrypt(0x10000, 2, "k"), 0);
    let mut expected = zeros(1, F0);
    expected.extend(zeros(1, F0 + PAGE));
    assert_eq!(steps, expected);
    // And munmap frees the encrypted frames without flushing.
    assert_eq!(ok(&mut k, munmap(0x10000, 2), 0), []);
    assert_eq!(stat(&k, "kernel.flush_lines"), 0);
}

#[test]
fn a_no_encrypt_key_holds_a_keyid_too() {
    let mut k = populated(|_| {});
    ok(
        &mut k,
        add_key("plain", "type=no-encrypt"),
        FIRST_SERIAL + 1,
    );
    ok(&mut k, encrypt(0x21000, 1, "plain"), 0);
    assert_eq!(
        k.walk(va(0x21000)),
        Ok(user_pte(2, F0 + 3 * PAGE, Prot::READ_WRITE))
    );
    assert_eq!(k.keys()[1].pages, 1);
}

// ---------------------------------------------------------------------------------------------
// References and release

#[test]
fn an_invalidated_key_is_released_by_the_last_munmap_after_its_flushes() {
    let mut k = populated(|c| c.keyids = Some(3));
    ok(&mut k, encrypt(0x10000, 2, "k"), 0);
    // Invalidated while referenced: no PCONFIG yet, the KeyID stays taken.
    assert_eq!(ok(&mut k, invalidate("k"), 0), []);
    assert_eq!(
        k.keys(),
        [key_info(
            "k",
            FIRST_SERIAL,
            Some(1),
            "user",
            "invalidated",
            2
        )]
    );
    fails(&mut k, encrypt(0x21000, 1, "k"), Errno::Enokey);
    // The pages still work.
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(1, F0, Prot::READ_WRITE)));
    ok(&mut k, user_key("x"), FIRST_SERIAL + 1);
    assert_eq!(k.keys()[1].keyid, Some(KeyId::new(2)));
    // The first munmap drops one reference.
    let ran = run(&mut k, munmap(0x10000, 1));
    assert_eq!(ran.steps, flushes(1, F0));
    assert_eq!(ran.end.shootdown, pages(&[0x10000]));
    assert_eq!(k.keys()[0].pages, 1);
    assert_eq!(k.keys()[0].state, "invalidated");
    // munmap of a range with holes: unmapped pages are ignored; the last reference goes, and
    // CLEAR_KEY follows the flushes.
    let ran = run(&mut k, munmap(0x0f000, 4));
    let mut expected = flushes(1, F0 + PAGE);
    expected.push(clear(1));
    assert_eq!(ran.steps, expected);
    assert_eq!(
        ran.end,
        SyscallEnd {
            result: Ok(0),
            shootdown: pages(&[0x11000])
        }
    );
    assert_eq!(
        k.keys()[0],
        key_info("k", FIRST_SERIAL, None, "user", "released", 0)
    );
    assert_eq!(k.walk(va(0x11000)), Err(FaultKind::NotMapped));
    // KeyID 1 is the first available again.
    ok(&mut k, user_key("y"), FIRST_SERIAL + 2);
    assert_eq!(k.keys()[2].keyid, Some(KeyId::new(1)));
}

#[test]
fn moving_the_last_page_off_an_invalidated_key_releases_it() {
    let mut k = populated(|_| {});
    ok(&mut k, encrypt(0x10000, 1, "k"), 0);
    ok(&mut k, invalidate("k"), 0);
    ok(
        &mut k,
        add_key("k2", "type=cpu algorithm=aes-xts-128"),
        FIRST_SERIAL + 1,
    );
    let steps = ok(&mut k, encrypt(0x10000, 1, "k2"), 0);
    let mut expected = flushes(1, F0);
    expected.extend(zeros(2, F0));
    expected.push(clear(1));
    assert_eq!(steps, expected);
    assert_eq!(k.keys()[0].state, "released");
    assert_eq!(k.keys()[1].pages, 1);
}

#[test]
fn munmap_releases_every_key_whose_last_page_goes_in_that_order() {
    let mut k = populated(|_| {});
    ok(&mut k, add_key("k2", "type=clear"), FIRST_SERIAL + 1);
    ok(&mut k, encrypt(0x10000, 1, "k2"), 0);
    ok(&mut k, encrypt(0x11000, 1, "k"), 0);
    ok(&mut k, invalidate("k"), 0);
    ok(&mut k, invalidate("k2"), 0);
    let steps = ok(&mut k, munmap(0x10000, 2), 0);
    let mut expected = flushes(2, F0);
    expected.extend(flushes(1, F0 + PAGE));
    expected.extend([clear(2), clear(1)]);
    assert_eq!(steps, expected);
    assert_eq!(stat(&k, "kernel.keyids_in_use"), 0);
}

// ---------------------------------------------------------------------------------------------
// The direct map

#[test]
fn the_direct_map_covers_dram_through_keyid_0() {
    let mut k = populated(|_| {});
    assert_eq!(k.walk(va(DIRECT)), Ok(direct_pte(0)));
    assert_eq!(k.walk(va(DIRECT + F0 + 0x123)), Ok(direct_pte(F0)));
    assert_eq!(
        k.walk(va(DIRECT + 16 * GIB - 1)),
        Ok(direct_pte(16 * GIB - PAGE))
    );
    for a in [DIRECT + 16 * GIB, DIRECT - 1, USER_END, u64::MAX, 0x12000] {
        assert_eq!(k.walk(va(a)), Err(FaultKind::NotMapped), "{a:#x}");
    }
    assert_eq!(k.direct_map_of(va(0x10010)), Ok(va(DIRECT + F0 + 0x10)));
    assert_eq!(
        k.direct_map_of(va(0x20fff)),
        Ok(va(DIRECT + F0 + 3 * PAGE - 1))
    );
    for a in [0x12000, USER_END, DIRECT + F0] {
        assert_eq!(
            k.direct_map_of(va(a)),
            Err(Fault {
                addr: va(a),
                kind: FaultKind::NotMapped
            })
        );
    }
    // Without unmap_encrypted_from_direct_map, an encrypted frame stays in the direct map
    // (through KeyID 0: the kernel reads ciphertext).
    ok(&mut k, encrypt(0x10000, 1, "k"), 0);
    assert_eq!(k.walk(va(DIRECT + F0)), Ok(direct_pte(F0)));
}

#[test]
fn encrypted_frames_leave_the_direct_map_and_come_back_when_freed() {
    let mut k = populated(|c| c.unmap_encrypted_from_direct_map = true);
    let ran = run(&mut k, encrypt(0x10000, 2, "k"));
    assert_eq!(
        ran.end.shootdown,
        pages(&[0x10000, 0x11000, DIRECT + F0, DIRECT + F0 + PAGE])
    );
    assert_eq!(
        k.walk(va(DIRECT + F0 + 8)),
        Err(FaultKind::DirectMapUnmapped)
    );
    assert_eq!(
        k.walk(va(DIRECT + F0 + PAGE)),
        Err(FaultKind::DirectMapUnmapped)
    );
    assert_eq!(
        k.walk(va(DIRECT + F0 + 2 * PAGE)),
        Ok(direct_pte(F0 + 2 * PAGE))
    );
    // The user mapping works; its direct-map address is known, and faults when used.
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(1, F0, Prot::READ_WRITE)));
    assert_eq!(k.direct_map_of(va(0x10008)), Ok(va(DIRECT + F0 + 8)));
    assert_eq!(stat(&k, "kernel.direct_map_unmapped"), 2);
    assert!(
        k.dump()
            .contains("direct map: 2 frames unmapped: 0x40000000, 0x40001000")
    );
    // Moving to another key keeps the frame out of the direct map (no direct-map change).
    ok(
        &mut k,
        add_key("k2", "type=cpu algorithm=aes-xts-128"),
        FIRST_SERIAL + 1,
    );
    let ran = run(&mut k, encrypt(0x11000, 1, "k2"));
    assert_eq!(ran.end.shootdown, pages(&[0x11000]));
    // munmap restores the frames.
    let ran = run(&mut k, munmap(0x10000, 2));
    assert_eq!(
        ran.end.shootdown,
        pages(&[0x10000, 0x11000, DIRECT + F0, DIRECT + F0 + PAGE])
    );
    assert_eq!(k.walk(va(DIRECT + F0 + 8)), Ok(direct_pte(F0)));
    assert_eq!(k.walk(va(DIRECT + F0 + PAGE)), Ok(direct_pte(F0 + PAGE)));
    assert_eq!(stat(&k, "kernel.direct_map_unmapped"), 0);
}

// ---------------------------------------------------------------------------------------------
// Frames, mmap, munmap, mprotect

#[test]
fn mmap_zeroes_new_frames_through_keyid_0_and_frees_are_reused_first() {
    let mut k = kernel();
    let steps = ok(&mut k, mmap(0x10000, 2), 0x10000);
    let mut expected = zeros(0, F0);
    expected.extend(zeros(0, F0 + PAGE));
    assert_eq!(steps, expected);
    let ran = run(&mut k, mmap(0x20000, 1));
    assert_eq!(
        ran.end,
        SyscallEnd {
            result: Ok(0x20000),
            shootdown: vec![]
        }
    );
    assert_eq!(
        k.walk(va(0x20000)),
        Ok(user_pte(0, F0 + 2 * PAGE, Prot::READ_WRITE))
    );
    // A freed frame is the next one reused.
    ok(&mut k, munmap(0x11000, 1), 0);
    assert_eq!(ok(&mut k, mmap(0x30000, 1), 0x30000), zeros(0, F0 + PAGE));
    assert_eq!(
        k.walk(va(0x30000)),
        Ok(user_pte(0, F0 + PAGE, Prot::READ_WRITE))
    );
    // A range comes back in the same order.
    ok(&mut k, munmap(0x10000, 1), 0);
    ok(&mut k, munmap(0x30000, 1), 0);
    ok(&mut k, munmap(0x20000, 1), 0);
    ok(&mut k, mmap(0x50000, 4), 0x50000);
    let frames: Vec<u64> = (0..4)
        .map(|i| {
            let pte = k.walk(va(0x50000 + i * PAGE)).unwrap();
            AddressLayout::default().dram_addr(pte.frame).raw()
        })
        .collect();
    assert_eq!(frames, [F0 + 2 * PAGE, F0 + PAGE, F0, F0 + 3 * PAGE]);
    assert_eq!(stat(&k, "kernel.frames_in_use"), 4);
    assert_eq!(stat(&k, "kernel.frames_free"), GIB / PAGE - 4);
}

#[test]
fn munmap_then_mmap_of_the_same_range_gets_the_same_frames() {
    let mut k = kernel();
    ok(&mut k, mmap(0x10000, 3), 0x10000);
    let before: Vec<_> = (0..3).map(|i| k.walk(va(0x10000 + i * PAGE))).collect();
    ok(&mut k, munmap(0x10000, 3), 0);
    ok(&mut k, mmap(0x10000, 3), 0x10000);
    let after: Vec<_> = (0..3).map(|i| k.walk(va(0x10000 + i * PAGE))).collect();
    assert_eq!(before, after);
}

#[test]
fn running_out_of_frames_is_enomem_and_changes_nothing() {
    let mut k = kernel_with(|c| c.frames_bytes = 4 * PAGE);
    fails(&mut k, mmap(0x10000, 5), Errno::Enomem);
    // A length as large as the user address space fails at once.
    fails(
        &mut k,
        KernelCall::Mmap {
            addr: va(0),
            len: USER_END,
            prot: Prot::NONE,
            backing: Backing::Anonymous,
        },
        Errno::Enomem,
    );
    assert_eq!(stat(&k, "kernel.frames_free"), 4);
    ok(&mut k, mmap(0x10000, 3), 0x10000);
    fails(&mut k, mmap(0x20000, 2), Errno::Enomem);
    fails(&mut k, mmap_file(0x20000, 2, "f", 0), Errno::Enomem);
    ok(&mut k, mmap_file(0x20000, 1, "f", 0), 0x20000);
    fails(&mut k, mmap(0x30000, 1), Errno::Enomem);
    // File pages already cached need no frame.
    ok(&mut k, mmap_file(0x40000, 1, "f", 0), 0x40000);
    assert_eq!(stat(&k, "kernel.frames_in_use"), 4);
    assert_eq!(stat(&k, "kernel.frames_free"), 0);
}

#[test]
fn file_pages_come_from_a_shared_page_cache() {
    let mut k = kernel();
    let steps = ok(&mut k, mmap_file(0x10000, 2, "data", 0), 0x10000);
    let mut expected = zeros(0, F0);
    expected.extend(zeros(0, F0 + PAGE));
    assert_eq!(steps, expected);
    // Offset 4K: the first page is shared, the second is new.
    let steps = ok(&mut k, mmap_file(0x20000, 2, "data", PAGE), 0x20000);
    assert_eq!(steps, zeros(0, F0 + 2 * PAGE));
    assert_eq!(k.walk(va(0x20000)), Ok(user_pte(0, F0 + PAGE, Prot::READ)));
    assert_eq!(k.walk(va(0x11000)), k.walk(va(0x20000)));
    // Another file has its own pages.
    assert_eq!(
        ok(&mut k, mmap_file(0x30000, 1, "other", 0), 0x30000),
        zeros(0, F0 + 3 * PAGE)
    );
    // munmap keeps the page cache: no steps, no frame freed, the same frame when mapped again.
    assert_eq!(ok(&mut k, munmap(0x10000, 2), 0), []);
    assert_eq!(stat(&k, "kernel.frames_in_use"), 4);
    assert_eq!(ok(&mut k, mmap_file(0x50000, 1, "data", 0), 0x50000), []);
    assert_eq!(k.walk(va(0x50000)), Ok(user_pte(0, F0, Prot::READ)));
    assert_eq!(stat(&k, "kernel.page_cache_pages"), 4);
    fails(&mut k, mmap_file(0x60000, 1, "data", 0x800), Errno::Einval);
    fails(
        &mut k,
        mmap_file(0x60000, 1, "data", TOP_PAGE),
        Errno::Einval,
    );
    assert!(
        k.dump()
            .contains("0x50000-0x51000 r file \"data\" offset 0x0 keyid 0")
    );
}

#[test]
fn mmap_and_munmap_argument_errors() {
    let mut k = kernel();
    ok(&mut k, mmap(0x10000, 2), 0x10000);
    for call in [
        mmap(0x11000, 1), // overlaps
        mmap(0x0f000, 2), // overlaps
        mmap(0x10800, 1), // misaligned
        KernelCall::Mmap {
            addr: va(0x20000),
            len: 100,
            prot: Prot::READ,
            backing: Backing::Anonymous,
        },
        mmap(0x20000, 0),         // empty
        mmap(USER_END, 1),        // kernel space
        mmap(USER_END - PAGE, 2), // crosses into kernel space
        mmap(TOP_PAGE, 2),        // overflows
        munmap(0x10800, 1),
        munmap(0x10000, 0),
        KernelCall::Munmap {
            addr: va(0x10000),
            len: 10,
        },
        munmap(TOP_PAGE, 2),
        KernelCall::Mprotect {
            addr: va(0x10001),
            len: PAGE,
            prot: Prot::READ,
        },
        KernelCall::Mprotect {
            addr: va(0x10000),
            len: 1,
            prot: Prot::READ,
        },
    ] {
        fails(&mut k, call, Errno::Einval);
    }
    // Unmapping nothing is fine.
    let ran = run(&mut k, munmap(0x40000, 16));
    assert_eq!(
        (ran.end.result, ran.steps, ran.end.shootdown),
        (Ok(0), vec![], vec![])
    );
    assert_eq!(stat(&k, "kernel.pages_mapped"), 2);
}

#[test]
fn mprotect_changes_protection_and_shoots_down_what_changed() {
    let mut k = kernel();
    ok(&mut k, mmap(0x10000, 3), 0x10000);
    let mprotect = |addr, pages, prot| KernelCall::Mprotect {
        addr: va(addr),
        len: pages * PAGE,
        prot,
    };
    let ran = run(&mut k, mprotect(0x11000, 1, Prot::READ));
    assert_eq!(
        ran.end,
        SyscallEnd {
            result: Ok(0),
            shootdown: pages(&[0x11000])
        }
    );
    assert_eq!(ran.steps, []);
    assert_eq!(k.walk(va(0x11000)), Ok(user_pte(0, F0 + PAGE, Prot::READ)));
    // Only the pages whose protection changes are shot down.
    let ran = run(&mut k, mprotect(0x10000, 3, Prot::READ));
    assert_eq!(ran.end.shootdown, pages(&[0x10000, 0x12000]));
    let ran = run(&mut k, mprotect(0x10000, 3, Prot::NONE));
    assert_eq!(ran.end.shootdown, pages(&[0x10000, 0x11000, 0x12000]));
    assert_eq!(
        k.walk(va(0x12000)),
        Ok(user_pte(0, F0 + 2 * PAGE, Prot::NONE))
    );
    // A hole is ENOMEM, and nothing changes.
    fails(
        &mut k,
        mprotect(0x10000, 4, Prot::READ_WRITE),
        Errno::Enomem,
    );
    fails(
        &mut k,
        mprotect(0x20000, 1, Prot::READ_WRITE),
        Errno::Enomem,
    );
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(0, F0, Prot::NONE)));
    // len 0 does nothing.
    let ran = run(&mut k, mprotect(0x90000, 0, Prot::READ));
    assert_eq!((ran.end.result, ran.end.shootdown), (Ok(0), vec![]));
}

// ---------------------------------------------------------------------------------------------
// Begin order, configuration, reports

#[test]
fn calls_are_linearized_in_begin_order_and_visible_at_finish() {
    let mut k = kernel();
    let first = k.begin(Cycle::ZERO, CoreId::new(0), ROOT, &mmap(0x10000, 1));
    // Not visible yet, but the range is taken and the frame reserved.
    assert_eq!(k.walk(va(0x10000)), Err(FaultKind::NotMapped));
    assert_eq!(
        k.direct_map_of(va(0x10000)).unwrap_err().kind,
        FaultKind::NotMapped
    );
    fails(&mut k, mmap(0x10000, 1), Errno::Einval);
    let second = k.begin(Cycle::ZERO, CoreId::new(1), ROOT, &mmap(0x20000, 1));
    assert_eq!(second.steps, zeros(0, F0 + PAGE));
    assert_eq!(k.in_flight(), 2);
    assert_eq!(k.finish(second, &[]).result, Ok(0x20000));
    assert_eq!(k.finish(first, &[]).result, Ok(0x10000));
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(0, F0, Prot::READ_WRITE)));

    // A KeyID being released is not available until the releasing call finishes.
    ok(&mut k, user_key("k"), FIRST_SERIAL);
    ok(&mut k, encrypt(0x10000, 1, "k"), 0);
    ok(&mut k, invalidate("k"), 0);
    let unmap = k.begin(Cycle::ZERO, CoreId::new(0), ROOT, &munmap(0x10000, 1));
    assert_eq!(unmap.steps.last(), Some(&clear(1)));
    let add = run(&mut k, add_key("k2", "type=no-encrypt"));
    assert_eq!(add.steps, [pconfig(2, KeyCommand::NoEncrypt, &[], &[])]);
    // The frame is not reused before the munmap's flushes are done.
    let other = run(&mut k, mmap(0x30000, 1));
    assert_eq!(other.steps, zeros(0, F0 + 2 * PAGE));
    assert_eq!(k.walk(va(0x10000)), Ok(user_pte(1, F0, Prot::READ_WRITE)));
    k.finish(unmap, &[SUCCESS]);
    assert_eq!(k.walk(va(0x10000)), Err(FaultKind::NotMapped));
    assert_eq!(ok(&mut k, mmap(0x40000, 1), 0x40000), zeros(0, F0));
    assert_eq!(k.keys()[0].state, "released");
}

#[test]
fn later_calls_win_when_finishes_come_out_of_order() {
    let mut k = kernel();
    ok(&mut k, mmap(0x10000, 1), 0x10000);
    let protect = |prot| KernelCall::Mprotect {
        addr: va(0x10000),
        len: PAGE,
        prot,
    };
    let a = k.begin(Cycle::ZERO, CoreId::new(0), ROOT, &protect(Prot::READ));
    let b = k.begin(Cycle::ZERO, CoreId::new(1), ROOT, &munmap(0x10000, 1));
    k.finish(b, &[]);
    assert_eq!(k.walk(va(0x10000)), Err(FaultKind::NotMapped));
    k.finish(a, &[]);
    assert_eq!(k.walk(va(0x10000)), Err(FaultKind::NotMapped));
    assert_eq!(stat(&k, "kernel.pages_mapped"), 0);
    assert_eq!(ok(&mut k, mmap(0x10000, 1), 0x10000), zeros(0, F0));
}

#[test]
fn impossible_configurations_name_the_field() {
    let new = |configure: fn(&mut KernelConfig), dram: u64, max_keys: u16| {
        let mut config = KernelConfig::default();
        configure(&mut config);
        Kernel::new(&config, AddressLayout::default(), dram, max_keys).map(|_| ())
    };
    let field = |r: Result<(), KernelConfigError>| r.unwrap_err().field;
    assert_eq!(new(|_| {}, 16 * GIB, 63), Ok(()));
    assert_eq!(
        field(new(|c| c.frames_base = 0x4000_0800, 16 * GIB, 63)),
        "frames_base"
    );
    assert_eq!(
        field(new(|c| c.frames_bytes = 0, 16 * GIB, 63)),
        "frames_bytes"
    );
    assert_eq!(
        field(new(|c| c.frames_bytes = 0x1234, 16 * GIB, 63)),
        "frames_bytes"
    );
    assert_eq!(field(new(|_| {}, GIB, 63)), "frames_base");
    assert_eq!(field(new(|_| {}, GIB + PAGE, 63)), "frames_bytes");
    assert_eq!(
        field(new(|c| c.frames_base = TOP_PAGE, 16 * GIB, 63)),
        "frames_base"
    );
    assert_eq!(field(new(|c| c.keyids = Some(0), 16 * GIB, 63)), "keyids");
    assert_eq!(field(new(|c| c.keyids = Some(64), 16 * GIB, 63)), "keyids");
    assert_eq!(field(new(|c| c.keyids = Some(8), 16 * GIB, 7)), "keyids");
    assert_eq!(field(new(|_| {}, 16 * GIB, 64)), "keyids");
    assert_eq!(new(|c| c.keyids = Some(63), 16 * GIB, 63), Ok(()));
    let e = new(|c| c.frames_bytes = 0, 16 * GIB, 63).unwrap_err();
    assert_eq!(
        e.to_string(),
        "kernel.frames_bytes: 0x0 is not a non-zero multiple of 4096"
    );
    // frames up to the end of DRAM are fine; a TME-only machine has no KeyIDs to hand out.
    assert_eq!(new(|_| {}, 2 * GIB, 0), Ok(()));
    let mut k = Kernel::new(
        &KernelConfig::default(),
        AddressLayout::default(),
        2 * GIB,
        0,
    )
    .unwrap();
    fails(&mut k, user_key("k"), Errno::Enokey);
}

#[test]
fn statistics_and_dump() {
    let mut k = populated(|c| c.keyids = Some(4));
    ok(&mut k, encrypt(0x10000, 2, "k"), 0);
    fails(&mut k, encrypt(0x20000, 1, "k"), Errno::Einval);
    ok(&mut k, munmap(0x11000, 1), 0);
    let report = stats(&k);
    let got: Vec<(String, u64)> = report
        .iter()
        .filter_map(|(name, _)| Some((name.to_owned(), report.get_count(name)?)))
        .collect();
    let expected: Vec<(&str, u64)> = vec![
        ("kernel.clear_key_failures", 0),
        ("kernel.direct_map_unmapped", 0),
        ("kernel.errors.EACCES", 0),
        ("kernel.errors.EINVAL", 1),
        ("kernel.errors.ENOKEY", 0),
        ("kernel.errors.ENOMEM", 0),
        ("kernel.flush_lines", 3 * 64),
        ("kernel.frames_free", GIB / PAGE - 3),
        ("kernel.frames_in_use", 3),
        ("kernel.keyids_in_use", 1),
        ("kernel.keyids_total", 4),
        ("kernel.keys_added", 1),
        ("kernel.page_cache_pages", 1),
        ("kernel.pages_mapped", 3),
        ("kernel.pconfig_steps", 1),
        ("kernel.program_failures", 0),
        ("kernel.shootdown_pages", 3),
        ("kernel.syscalls.add_key", 1),
        ("kernel.syscalls.encrypt_mprotect", 2),
        ("kernel.syscalls.invalidate_key", 0),
        ("kernel.syscalls.mmap", 3),
        ("kernel.syscalls.mprotect", 0),
        ("kernel.syscalls.munmap", 1),
        ("kernel.syscalls.share_key", 0),
        ("kernel.zeroed_lines", 6 * 64),
    ];
    let expected: Vec<(String, u64)> = expected
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(CALL_NAMES.len(), 7);
    let dump = k.dump();
    let expected_dump = "\
frames: 3 in use, 262141 free (of 0x40000000+0x40000000); 3 user pages mapped; 1 page-cache pages
mappings:
  0x10000-0x11000 rw anonymous keyid 1 (1 pages, first frame 0x40000000)
  0x20000-0x21000 r file \"lib.so\" offset 0x0 keyid 0 (1 pages, first frame 0x40002000)
  0x21000-0x22000 rw anonymous keyid 0 (1 pages, first frame 0x40003000)
keys:
  \"k\" serial 0x10000000 type=user keyid 1 assigned (1 pages)
keyids: 1 of 4 in use: 1 assigned \"k\"
direct map: 0 frames unmapped
calls in flight: 0
";
    assert_eq!(dump, expected_dump);
}

// ---------------------------------------------------------------------------------------------
// Robustness: any sequence of calls keeps the books straight and never panics.

#[derive(Clone, Debug)]
enum Op {
    Add(u8, u8),
    Invalidate(u8),
    Mmap(u64, u64, bool),
    Munmap(u64, u64),
    Mprotect(u64, u64),
    Encrypt(u64, u64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u8..4).prop_map(|(n, p)| Op::Add(n, p)),
        (0u8..3).prop_map(Op::Invalidate),
        (0u64..12, 0u64..4, any::<bool>()).prop_map(|(a, n, f)| Op::Mmap(a, n, f)),
        (0u64..12, 0u64..5).prop_map(|(a, n)| Op::Munmap(a, n)),
        (0u64..12, 0u64..3).prop_map(|(a, n)| Op::Mprotect(a, n)),
        (0u64..12, 0u64..3, 0u8..3).prop_map(|(a, n, key)| Op::Encrypt(a, n, key)),
    ]
}

fn to_call(op: &Op) -> KernelCall {
    let name = |n: u8| ["a", "b", "c"][usize::from(n)].to_owned();
    let base = 0x10000;
    match op {
        Op::Add(n, p) => {
            let payloads = [
                user_payload(),
                "type=cpu algorithm=aes-xts-128".into(),
                "type=no-encrypt".into(),
                "type=bad".into(),
            ];
            add_key(&name(*n), &payloads[usize::from(*p)])
        }
        Op::Invalidate(n) => invalidate(&name(*n)),
        Op::Mmap(a, n, false) => mmap(base + a * PAGE, *n),
        Op::Mmap(a, n, true) => mmap_file(base + a * PAGE, *n, "f", a * PAGE),
        Op::Munmap(a, n) => munmap(base + a * PAGE, *n),
        Op::Mprotect(a, n) => KernelCall::Mprotect {
            addr: va(base + a * PAGE),
            len: n * PAGE,
            prot: Prot::READ,
        },
        Op::Encrypt(a, n, key) => encrypt(base + a * PAGE, *n, &name(*key)),
    }
}

proptest! {
    #[test]
    fn the_books_balance(
        ops in prop::collection::vec((op(), any::<bool>()), 1..60),
        flush in any::<bool>(),
        unmap_direct in any::<bool>(),
    ) {
        let mut k = kernel_with(|c| {
            c.keyids = Some(2);
            c.frames_bytes = 10 * PAGE;
            c.flush_on_keyid_change = flush;
            c.unmap_encrypted_from_direct_map = unmap_direct;
        });
        for (op, pconfig_ok) in &ops {
            let outcome = if *pconfig_ok { SUCCESS } else { PconfigOutcome::Status(PconfigStatus::DeviceBusy) };
            run_as(&mut k, ROOT, to_call(op), |_| outcome.clone());
            prop_assert_eq!(stat(&k, "kernel.frames_in_use") + stat(&k, "kernel.frames_free"), 10);
            // Every KeyID's references are the pages mapped with it; encrypted frames (and
            // only they) are out of the direct map when asked.
            let mut per_keyid = [0u64; 3];
            let mut encrypted = 0;
            for a in (0x10000..0x10000 + 16 * PAGE).step_by(PAGE as usize) {
                if let Ok(pte) = k.walk(va(a)) {
                    let layout = AddressLayout::default();
                    let keyid = layout.keyid(pte.frame).get();
                    per_keyid[usize::from(keyid)] += 1;
                    let direct = k.walk(va(DIRECT + layout.dram_addr(pte.frame).raw()));
                    if keyid != 0 && unmap_direct {
                        encrypted += 1;
                        prop_assert_eq!(direct, Err(FaultKind::DirectMapUnmapped));
                    } else {
                        prop_assert!(direct.is_ok());
                    }
                }
            }
            prop_assert_eq!(stat(&k, "kernel.direct_map_unmapped"), encrypted);
            let mut in_use = 0;
            for key in k.keys() {
                match key.keyid {
                    Some(id) => {
                        in_use += 1;
                        prop_assert_eq!(key.pages, per_keyid[id.index()]);
                        prop_assert!(key.state == "assigned" || key.pages > 0);
                    }
                    None => prop_assert_eq!(key.state, "released"),
                }
            }
            prop_assert_eq!(stat(&k, "kernel.keyids_in_use"), in_use);
        }
        prop_assert_eq!(k.in_flight(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's steps on a real machine

/// A machine driven one request at a time.
struct Hw {
    machine: Machine,
    now: Cycle,
    next_id: u64,
}

impl Hw {
    fn exec(&mut self, addr: PhysAddr, op: CoreOp) -> CoreResponse {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = CoreRequest::new(id, CoreId::new(0), addr, op);
        let mut out = Vec::new();
        loop {
            match self.machine.submit(self.now, request) {
                Ok(()) => break,
                Err(back) => request = back,
            }
            self.machine.step(self.now, &mut out);
            self.now = self.machine.next_event_cycle().max(self.now.plus(1));
        }
        loop {
            self.machine.step(self.now, &mut out);
            if let Some(r) = out.iter().find(|r| r.id == id) {
                return r.clone();
            }
            let next = self.machine.next_event_cycle();
            assert_ne!(next, Cycle::NEVER, "request {id} never completed");
            self.now = next.max(self.now.plus(1));
        }
    }

    /// Does a call's steps as a core would; returns the PCONFIG outcomes.
    fn run_steps(&mut self, steps: &[KernelStep]) -> Vec<PconfigOutcome> {
        let mut outcomes = Vec::new();
        for step in steps {
            match step {
                KernelStep::Flush(pa) => {
                    self.exec(*pa, CoreOp::Clflush);
                }
                KernelStep::ZeroLine(pa) => {
                    self.exec(
                        *pa,
                        CoreOp::Store {
                            len: 64,
                            data: [0; 64],
                        },
                    );
                }
                KernelStep::Pconfig { call, retries } => {
                    let mut attempts = 0;
                    let outcome = loop {
                        let r = self.machine.memory_mut().pconfig(self.now, call);
                        self.now = r.done;
                        self.machine.memory_mut().settle(self.now);
                        let retry = matches!(
                            r.outcome,
                            PconfigOutcome::Status(
                                PconfigStatus::DeviceBusy | PconfigStatus::EntropyError
                            )
                        );
                        if !retry || attempts == *retries {
                            break r.outcome;
                        }
                        attempts += 1;
                    };
                    outcomes.push(outcome);
                }
            }
        }
        outcomes
    }

    fn syscall(&mut self, k: &mut Kernel, call: KernelCall) -> SyscallEnd {
        let syscall = k.begin(self.now, CoreId::new(0), ROOT, &call);
        let outcomes = self.run_steps(&syscall.steps);
        k.finish(syscall, &outcomes)
    }

    /// What the DIMMs hold at `dram`, once the controllers' write buffers have drained.
    fn dram(&mut self, dram: DramAddr) -> [u8; 64] {
        self.machine.memory_mut().set_flush_writes(true);
        let mut out = Vec::new();
        while self.machine.has_work() {
            self.machine.step(self.now, &mut out);
            if self.machine.has_work() {
                self.now = self.machine.next_event_cycle().max(self.now.plus(1));
            }
        }
        self.machine.memory_mut().set_flush_writes(false);
        let memory = self.machine.memory();
        memory.controllers()[memory.controller_of(dram)]
            .store()
            .read(dram)
    }
}

#[test]
fn the_kernels_key_programming_reaches_the_memory_controller() {
    let mut config = MachineConfig::preset("default").unwrap();
    config.caches.prefetch.next_line = false;
    config.caches.prefetch.stride = false;
    let machine = Machine::new(&config, 7).unwrap();
    let layout = machine.memory().layout();
    let mut k = Kernel::new(
        &KernelConfig::default(),
        layout,
        machine.memory().dram_bytes(),
        config.memory.tme.max_keys,
    )
    .unwrap();
    let mut hw = Hw {
        machine,
        now: Cycle::ZERO,
        next_id: 0,
    };

    assert_eq!(hw.syscall(&mut k, user_key("k")).result, Ok(FIRST_SERIAL));
    assert_eq!(hw.syscall(&mut k, mmap(0x10000, 1)).result, Ok(0x10000));
    assert_eq!(hw.syscall(&mut k, encrypt(0x10000, 1, "k")).result, Ok(0));
    let pte = k.walk(va(0x10000)).unwrap();
    assert_eq!(pte, user_pte(1, F0, Prot::READ_WRITE));

    // A store through the new alias, then CLFLUSH: DRAM holds AES-XTS(key, tweak) of it.
    let plaintext: [u8; 64] = std::array::from_fn(|i| 0xa0 ^ i as u8);
    let line0 = pte.frame;
    hw.exec(
        line0,
        CoreOp::Store {
            len: 64,
            data: plaintext,
        },
    );
    hw.exec(line0, CoreOp::Clflush);
    // Line 1 was zeroed through the new alias by encrypt_mprotect; flush it too.
    let line1 = line0.checked_add(64).unwrap();
    hw.exec(line1, CoreOp::Clflush);

    let cipher = XtsCipher::new(XtsAlgorithm::Aes128, &KEY_BYTES, &TWEAK_BYTES).unwrap();
    let dram0 = layout.dram_addr(line0);
    let dram1 = layout.dram_addr(line1);
    let mut expected0 = plaintext;
    cipher.encrypt_line(dram0, &mut expected0);
    let mut expected1 = [0u8; 64];
    cipher.encrypt_line(dram1, &mut expected1);
    assert_eq!(hw.dram(dram0), expected0);
    assert_eq!(hw.dram(dram1), expected1);
    assert_ne!(expected0, plaintext);

    // Reading it back through the user mapping gives the plaintext; through the direct map
    // (KeyID 0) it does not.
    let back = hw.exec(line0, CoreOp::Load { len: 64 }).data.unwrap();
    assert_eq!(back, plaintext);
    let direct = k.walk(k.direct_map_of(va(0x10000)).unwrap()).unwrap();
    assert_eq!(direct, direct_pte(F0));
    let garbage = hw
        .exec(direct.frame, CoreOp::Load { len: 64 })
        .data
        .unwrap();
    assert_ne!(garbage, plaintext);

    // munmap flushes the encrypted alias; invalidating then clears KeyID 1 in hardware.
    assert_eq!(hw.syscall(&mut k, munmap(0x10000, 1)).result, Ok(0));
    assert_eq!(hw.syscall(&mut k, invalidate("k")).result, Ok(0));
    assert_eq!(hw.machine.memory().key_mode(KeyId::new(1)).name(), "tme");
    assert_eq!(k.keys()[0].state, "released");
}

/// An `mmap` of n pages returns 64 n steps: each must stay small.
#[test]
fn kernel_steps_stay_small() {
    assert!(std::mem::size_of::<KernelStep>() <= 16);
}
