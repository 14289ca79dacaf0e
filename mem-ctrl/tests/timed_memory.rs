//! Where the functional path meets DRAM timing (issue 3): a read returns the decrypted line at
//! the cycle the timing model says, a write is encrypted on its way into the store, and the bus
//! port sees each transaction at the cycle it crosses the bus.
//!
//! The DRAM is ddr4-2400's organisation and timing (CL 17, tRCD 17, tBurst 4, AES stage 5
//! cycles each way) with a 1 ns clock and a 1000 MHz core, so core and DRAM cycles are equal and
//! the unloaded latencies of validation-data.md (22 / 39 / 56 from acceptance) appear as is.

use mem_ctrl::dram::{DramConfig, DramParams};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use mem_ctrl::{BusRecorder, MemCtrlConfig, MemorySystem};
use sim_core::{
    Cycle, DramAddr, KeyId, LineBytes, MemOp, MemRequest, MemResponse, PhysAddr, RequestId,
    RngFactory,
};

const PLAIN: LineBytes = [0x3c; 64];

fn dram(t_ck_ps: u32) -> DramConfig {
    let mut p: DramParams = DramConfig::preset("ddr4-2400").unwrap().params().clone();
    p.timing.t_ck_ps = t_ck_ps;
    DramConfig::new(p).unwrap()
}

fn config(core_mhz: u64, controllers: u32) -> MemCtrlConfig {
    MemCtrlConfig {
        dram: dram(1000),
        core_clock_mhz: core_mhz,
        controllers,
        ..MemCtrlConfig::default()
    }
}

/// A memory system with KeyID 1 = direct keys, KeyID 2 = other direct keys, KeyID 3 =
/// NO_ENCRYPT, all programmed by cycle 10 (PCONFIG latency 1).
fn machine(core_mhz: u64, controllers: u32) -> MemorySystem {
    let mut c = config(core_mhz, controllers);
    c.pconfig_latency_cycles = 1;
    let mut mem = MemorySystem::new(&c, RngFactory::new(9)).unwrap();
    let programs = [
        KeyProgramStruct::new(1, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&[1; 16], &[2; 16]),
        KeyProgramStruct::new(2, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&[3; 16], &[4; 16]),
        KeyProgramStruct::new(3, KeyCommand::NoEncrypt, XtsAlgorithm::Aes128),
    ];
    for (i, p) in programs.into_iter().enumerate() {
        let r = mem.pconfig(Cycle::new(2 * i as u64), &PconfigCall::key_program(p));
        assert!(r.outcome.is_success());
    }
    mem.settle(Cycle::new(10));
    mem
}

/// The physical address of DRAM address `addr` through `keyid` (default layout).
fn pa(keyid: u16, addr: u64) -> PhysAddr {
    sim_core::AddressLayout::default()
        .compose(KeyId::new(keyid), DramAddr::new(addr))
        .unwrap()
}

fn read(id: u64, addr: PhysAddr, at: u64) -> MemRequest {
    MemRequest {
        id: RequestId(id),
        op: MemOp::Read,
        addr,
        data: None,
        issued: Cycle::new(at),
    }
}

fn write(id: u64, addr: PhysAddr, at: u64, data: LineBytes) -> MemRequest {
    MemRequest {
        id: RequestId(id),
        op: MemOp::Write,
        addr,
        data: Some(data),
        issued: Cycle::new(at),
    }
}

/// How a driver advances time.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Stepping {
    /// Jump to the memory system's next event (or the next request's cycle).
    SkipIdle,
    /// Tick every core cycle, so the DRAM model is ticked every DRAM cycle: the reference.
    EveryCycle,
}

/// Submits `requests` (each at its `issued` cycle, retrying while its queue is full) and runs
/// until every response is back, skipping idle cycles. Returns responses in arrival order.
fn run(mem: &mut MemorySystem, requests: Vec<MemRequest>) -> Vec<MemResponse> {
    drive(mem, requests, Stepping::SkipIdle)
}

fn drive(
    mem: &mut MemorySystem,
    requests: Vec<MemRequest>,
    stepping: Stepping,
) -> Vec<MemResponse> {
    let total = requests.len();
    let mut queue = std::collections::VecDeque::from(requests);
    let mut out = Vec::new();
    let mut now = Cycle::ZERO;
    while out.len() < total {
        mem.tick(now, &mut out);
        while let Some(r) = queue.front().filter(|r| r.issued <= now).cloned() {
            match mem.try_submit(now, r) {
                Ok(()) => {
                    queue.pop_front();
                }
                Err(_) => break,
            }
        }
        if queue.is_empty() {
            // Nothing more to offer: let parked writes drain, as a run does at its end.
            mem.set_flush_writes(true);
        }
        if out.len() == total {
            break;
        }
        now = match stepping {
            Stepping::EveryCycle => now.plus(1),
            Stepping::SkipIdle => {
                let next = mem.next_event_cycle().min(
                    queue
                        .front()
                        .map_or(Cycle::NEVER, |r| r.issued.max(now.plus(1))),
                );
                assert!(
                    next != Cycle::NEVER,
                    "deadlock at {now:?}: {} of {total} responses; {}",
                    out.len(),
                    mem.controllers()[0].dram().describe_state()
                );
                next.max(now.plus(1))
            }
        };
        assert!(now.get() < 10_000_000, "memory system did not finish");
    }
    out
}

fn response(out: &[MemResponse], id: u64) -> &MemResponse {
    out.iter().find(|r| r.id == RequestId(id)).unwrap()
}

#[test]
fn a_read_returns_the_decrypted_line_when_the_timing_model_says() {
    let mut mem = machine(1000, 1);
    let rec = mem
        .controller_mut(0)
        .bus_mut()
        .attach(Box::new(BusRecorder::with_limit(16)));
    mem.write_line_untimed(Cycle::new(20), pa(1, 0x4000), &PLAIN);
    let out = run(&mut mem, vec![read(7, pa(1, 0x4000), 100)]);
    let r = response(&out, 7);
    assert_eq!(r.data, Some(PLAIN));
    // Offered at 100, accepted 101, ACT 102, READ 119, data 119 + 17 + 4 = 140, then 5 cycles
    // of AES: 145. The burst is on the bus from READ + CL = 136.
    assert_eq!(r.done, Cycle::new(145));
    let log = mem.controllers()[0]
        .bus()
        .probe::<BusRecorder>(rec)
        .unwrap()
        .log();
    assert_eq!(log.len(), 2);
    assert_eq!((log[1].op, log[1].cycle), (MemOp::Read, Cycle::new(136)));
    assert_eq!(log[1].addr, DramAddr::new(0x4000));
}

#[test]
fn plaintext_keyids_skip_the_aes_latency() {
    let mut mem = machine(1000, 1);
    mem.write_line_untimed(Cycle::new(20), pa(3, 0x4000), &PLAIN);
    let out = run(&mut mem, vec![read(1, pa(3, 0x4000), 100)]);
    assert_eq!(response(&out, 1).data, Some(PLAIN));
    assert_eq!(response(&out, 1).done, Cycle::new(140));
}

#[test]
fn core_and_dram_clocks_may_differ() {
    // 3000 MHz core, 1 GHz DRAM: 3 core cycles per DRAM cycle. Offered at core 300 = DRAM 100,
    // the data is ready at DRAM 145 = core 435.
    let mut mem = machine(3000, 1);
    assert_eq!(mem.clock_ratio().to_fast(Cycle::new(1)), Cycle::new(3));
    mem.write_line_untimed(Cycle::new(20), pa(1, 0x4000), &PLAIN);
    let out = run(&mut mem, vec![read(1, pa(1, 0x4000), 300)]);
    assert_eq!(response(&out, 1).done, Cycle::new(435));
}

#[test]
fn a_write_is_encrypted_on_its_way_into_the_store() {
    let mut mem = machine(1000, 1);
    let rec = mem
        .controller_mut(0)
        .bus_mut()
        .attach(Box::new(BusRecorder::with_limit(16)));
    let data: LineBytes = std::array::from_fn(|i| i as u8);
    let out = run(&mut mem, vec![write(1, pa(1, 0x8000), 100, data)]);
    let done = response(&out, 1).done;
    let mut expect = data;
    mem.key(KeyId::new(1))
        .unwrap()
        .cipher()
        .encrypt_line(DramAddr::new(0x8000), &mut expect);
    assert_eq!(
        mem.controllers()[0].store().read(DramAddr::new(0x8000)),
        expect
    );
    let log = mem.controllers()[0]
        .bus()
        .probe::<BusRecorder>(rec)
        .unwrap()
        .log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].op, log[0].data), (MemOp::Write, expect));
    // The burst ends when the write completes; it started tBurst = 4 cycles before.
    assert_eq!(log[0].cycle, Cycle::new(done.get() - 4));
    // Read back through the timed path.
    let out = run(&mut mem, vec![read(2, pa(1, 0x8000), done.get() + 10)]);
    assert_eq!(response(&out, 2).data, Some(data));
}

#[test]
fn a_read_forwarded_from_the_write_queue_sees_the_newest_write() {
    let mut mem = machine(1000, 1);
    mem.write_line_untimed(Cycle::new(20), pa(1, 0x2000), &[0x11; 64]);
    // The write sits in the write buffer (no drain yet) when the reads arrive.
    let out = run(
        &mut mem,
        vec![
            write(1, pa(1, 0x2000), 100, [0x22; 64]),
            read(2, pa(1, 0x2000), 110),
            read(3, pa(2, 0x2000), 111),
        ],
    );
    assert_eq!(response(&out, 2).data, Some([0x22; 64]));
    // Through KeyID 2, the same pending ciphertext decrypts with the wrong key: garbage, and
    // exactly the garbage KeyID 2's key makes of KeyID 1's ciphertext.
    let mut ct = [0x22; 64];
    mem.key(KeyId::new(1))
        .unwrap()
        .cipher()
        .encrypt_line(DramAddr::new(0x2000), &mut ct);
    mem.key(KeyId::new(2))
        .unwrap()
        .cipher()
        .decrypt_line(DramAddr::new(0x2000), &mut ct);
    assert_eq!(response(&out, 3).data, Some(ct));
    assert_ne!(ct, [0x22; 64]);
    // Forwarded reads did not cross the bus: one untimed write, one timed write.
    assert_eq!(mem.controllers()[0].bus().transactions(), 2);
}

#[test]
fn a_forwarded_read_never_sees_a_write_that_arrived_after_it() {
    // Found by the whole-machine property tests (issue 12): a read forwarded from the write
    // queue took the newest write at its completion, one DRAM cycle after acceptance, so a
    // write accepted in between (the hierarchy's next request, in the same cycle) was read
    // before it was written. Through KeyIDs sharing a key the alias then read the other
    // KeyID's plaintext in place of its own data.
    let mut mem = machine(1000, 1);
    let out = run(
        &mut mem,
        vec![
            write(1, pa(1, 0x2000), 100, [0x22; 64]),
            read(2, pa(1, 0x2000), 110),
            write(3, pa(1, 0x2000), 110, [0x33; 64]),
            read(4, pa(1, 0x2000), 112),
        ],
    );
    assert_eq!(response(&out, 2).data, Some([0x22; 64]));
    assert_eq!(response(&out, 4).data, Some([0x33; 64]));
}

#[test]
fn merged_writes_leave_the_newest_data_in_dram() {
    let mut mem = machine(1000, 1);
    let out = run(
        &mut mem,
        vec![
            write(1, pa(1, 0x2000), 100, [0xaa; 64]),
            write(2, pa(1, 0x2000), 101, [0xbb; 64]),
            write(3, pa(1, 0x2000), 102, [0xcc; 64]),
        ],
    );
    assert_eq!(out.len(), 3);
    assert_eq!(
        mem.read_line_untimed(Cycle::new(100_000), pa(1, 0x2000)),
        [0xcc; 64]
    );
}

#[test]
fn a_write_keeps_the_key_in_force_when_it_entered_the_controller() {
    // PCONFIG changes no pipeline state (mktme-facts.md 2.6): a write accepted before KeyID 1
    // is reprogrammed was encrypted with the old key, so after the change it reads as garbage.
    let mut mem = machine(1000, 1);
    let old_key = mem.key(KeyId::new(1)).unwrap().clone();
    let p = KeyProgramStruct::new(1, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
        .with_keys(&[9; 16], &[8; 16]);
    let mut out = Vec::new();
    mem.tick(Cycle::new(100), &mut out);
    mem.try_submit(Cycle::new(100), write(1, pa(1, 0x6000), 100, PLAIN))
        .unwrap();
    let r = mem.pconfig(Cycle::new(101), &PconfigCall::key_program(p));
    assert!(r.outcome.is_success());
    let out = run(&mut mem, vec![read(2, pa(1, 0x6000), 1000)]);
    let mut expect = PLAIN;
    old_key
        .cipher()
        .encrypt_line(DramAddr::new(0x6000), &mut expect);
    mem.key(KeyId::new(1))
        .unwrap()
        .cipher()
        .decrypt_line(DramAddr::new(0x6000), &mut expect);
    assert_eq!(response(&out, 2).data, Some(expect));
    assert_ne!(expect, PLAIN);
}

#[test]
fn a_full_queue_hands_the_request_back() {
    let mut mem = machine(1000, 1);
    let mut out = Vec::new();
    mem.tick(Cycle::new(100), &mut out);
    // ddr4-2400: a 32-entry read queue. The 33rd read offered in the same cycle is refused.
    let mut refused = None;
    for i in 0..40u64 {
        if let Err(back) = mem.try_submit(Cycle::new(100), read(i, pa(1, i * 64), 100)) {
            refused = Some(back);
            break;
        }
    }
    let back = refused.expect("the read queue must fill");
    assert_eq!(back.id, RequestId(32));
    assert_eq!(mem.controllers()[0].stats().queue_full.get(), 1);
}

#[test]
fn controllers_see_local_addresses_and_the_bus_the_dram_address() {
    let mut mem = machine(1000, 2);
    assert_eq!(mem.controller_of(DramAddr::new(0x1040)), 1);
    assert_eq!(mem.local_addr(DramAddr::new(0x1040)), DramAddr::new(0x040));
    assert_eq!(mem.local_addr(DramAddr::new(0x3040)), DramAddr::new(0x1040));
    let rec = mem
        .controller_mut(1)
        .bus_mut()
        .attach(Box::new(BusRecorder::with_limit(4)));
    let out = run(&mut mem, vec![write(1, pa(1, 0x1040), 50, PLAIN)]);
    assert_eq!(out.len(), 1);
    let log = mem.controllers()[1]
        .bus()
        .probe::<BusRecorder>(rec)
        .unwrap()
        .log();
    assert_eq!(log[0].addr, DramAddr::new(0x1040));
    assert_eq!(mem.controllers()[0].bus().transactions(), 0);
    let mut report = sim_core::StatsReport::new();
    mem.report_stats(&mut report);
    assert_eq!(report.get_count("mc1.dram.writes"), Some(1));
    assert_eq!(report.get_count("mc0.dram.writes"), Some(0));
}

#[test]
fn same_requests_same_responses() {
    let requests = || {
        (0..200u64)
            .map(|i| {
                let addr = pa(1 + (i % 3) as u16, (i * 7919 % 512) * 64);
                if i % 4 == 0 {
                    write(i, addr, i * 3, [i as u8; 64])
                } else {
                    read(i, addr, i * 3)
                }
            })
            .collect::<Vec<_>>()
    };
    let mut a = machine(3000, 2);
    let ra = requests();
    let out_a = run(&mut a, ra);
    let mut b = machine(3000, 2);
    let rb = requests();
    let out_b = run(&mut b, rb);
    assert_eq!(out_a, out_b);
    assert_eq!(out_a.len(), 200);
}

proptest::proptest! {
    #![proptest_config(test_support::proptest_config(24))]

    /// Skipping idle cycles must never change what happens: a request submitted between two
    /// ticks, a refresh, a write drain or a full queue all have to be seen at the same cycle
    /// whether the caller ticks every cycle or jumps to `next_event_cycle`.
    #[test]
    fn jumping_to_the_next_event_equals_ticking_every_cycle(
        ops in proptest::collection::vec((0u64..40, 0u64..256, 0u8..4, 1u16..4), 1..120),
        core_mhz in proptest::prelude::prop_oneof![proptest::strategy::Just(1000u64), proptest::strategy::Just(3000u64), proptest::strategy::Just(2400u64)],
    ) {
        let mut at = 0;
        let requests: Vec<MemRequest> = ops
            .iter()
            .enumerate()
            .map(|(i, &(gap, line, kind, keyid))| {
                at += gap;
                // Few rows and banks: row hits, conflicts and same-line forwarding all occur.
                let addr = pa(keyid, (line % 64) * 64 + (line / 64) * (1 << 18));
                if kind == 0 {
                    write(i as u64, addr, at, [i as u8; 64])
                } else {
                    read(i as u64, addr, at)
                }
            })
            .collect();
        let mut every = machine(core_mhz, 1);
        let a = drive(&mut every, requests.clone(), Stepping::EveryCycle);
        let mut jumping = machine(core_mhz, 1);
        let b = run(&mut jumping, requests);
        proptest::prop_assert_eq!(a, b);
    }
}
