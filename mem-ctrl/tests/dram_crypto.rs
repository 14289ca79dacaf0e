//! Timing of the encryption stage: decrypt after each read burst, encrypt before each write
//! enters the write buffer. ddr4-2400 assumes 4 ns = 5 cycles each way, one line per cycle.

#[path = "dram_common.rs"]
mod common;

use common::*;
use mem_ctrl::dram::{
    CommandKind, CompletionSource, DramLocation, DramParams, Encryption, Throughput, WriteDrain,
};
use sim_core::Cycle;

fn run_on(p: DramParams, reqs: &[Req]) -> Run {
    run(&config(p), Encryption::On, reqs)
}

#[test]
fn the_default_stage_is_four_nanoseconds_each_way() {
    let p = ddr4().crypto;
    assert_eq!((p.decrypt_latency_cycles, p.encrypt_latency_cycles), (5, 5));
    assert_eq!(
        p.throughput,
        Throughput {
            lines: 1,
            per_cycles: 1
        }
    );
}

#[test]
fn reads_pay_the_decrypt_latency_after_their_burst() {
    let reqs = [
        read(0, loc(0, 0, 0, 1, 0)),
        read(200, loc(0, 0, 0, 1, 1)),
        read(400, loc(0, 0, 0, 2, 0)),
    ];
    let off = run_params(ddr4(), &reqs);
    let on = run_on(ddr4(), &reqs);
    // Unloaded closed bank, row hit, row conflict: 39 / 22 / 56 plus 5.
    assert_eq!(
        [off.latency(0), off.latency(1), off.latency(2)],
        [39, 22, 56]
    );
    assert_eq!([on.latency(0), on.latency(1), on.latency(2)], [44, 27, 61]);
    // The DRAM side is unchanged: same commands at the same cycles, same bursts.
    assert_eq!(off.rec.commands, on.rec.commands);
    for id in 0..3 {
        assert_eq!(off.completion(id).data_cycle, on.completion(id).data_cycle);
        assert_eq!(on.completion(id).done, on.completion(id).data_cycle.plus(5));
    }
}

#[test]
fn writes_enter_the_write_buffer_after_the_encrypt_latency() {
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    let reqs = [write(0, loc(0, 0, 0, 1, 0))];
    let off = run_params(p.clone(), &reqs);
    let on = run_on(p, &reqs);
    assert_eq!(off.cycles_of(CommandKind::Activate), [2]);
    // Accepted at 1, encrypted by 6, queued at 6: ACT at 7, WRITE at 7 + tRCD.
    assert_eq!(on.cycles_of(CommandKind::Activate), [7]);
    assert_eq!(on.cycles_of(CommandKind::Write), [24]);
    assert_eq!(on.completion(0).data_cycle, Cycle::new(24 + 12 + 4));
}

#[test]
fn decrypt_throughput_queues_lines() {
    // One line per 10 cycles: bursts ending 4 cycles apart leave the stage 10 cycles apart.
    let mut p = ddr4();
    p.crypto.throughput = Throughput {
        lines: 1,
        per_cycles: 10,
    };
    let r = run_on(
        p.clone(),
        &[read(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 1, 0, 1, 0))],
    );
    let (a, b) = (r.completion(0), r.completion(1));
    assert_eq!(
        (a.data_cycle, b.data_cycle),
        (Cycle::new(40), Cycle::new(44))
    );
    assert_eq!((a.done, b.done), (Cycle::new(45), Cycle::new(55)));
    // Two lanes take both at once.
    p.crypto.throughput = Throughput {
        lines: 2,
        per_cycles: 10,
    };
    let r = run_on(
        p,
        &[read(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 1, 0, 1, 0))],
    );
    assert_eq!(
        (r.completion(0).done, r.completion(1).done),
        (Cycle::new(45), Cycle::new(49))
    );
}

#[test]
fn forwarded_reads_also_pass_the_decrypt_stage() {
    // The write buffer holds ciphertext (encryption happens before it), so a forwarded read is
    // decrypted too.
    let r = run_on(
        ddr4(),
        &[write(0, loc(0, 0, 0, 1, 0)), read(1, loc(0, 0, 0, 1, 0))],
    );
    let c = r.completion(1);
    assert_eq!(c.source, CompletionSource::ForwardedFromWrite);
    assert_eq!(r.latency(1), 1 + 5);
}

/// Drives a controller directly, offering each request at its cycle (retrying while its queue is
/// full), and returns the completions by request id.
fn run_direct(
    p: DramParams,
    reqs: &[(u64, sim_core::MemOp, DramLocation, bool)],
) -> Vec<mem_ctrl::dram::DramCompletion> {
    drive(p, reqs).0
}

/// [`run_direct`], also handing back the controller (for its counts).
fn drive(
    p: DramParams,
    reqs: &[(u64, sim_core::MemOp, DramLocation, bool)],
) -> (
    Vec<mem_ctrl::dram::DramCompletion>,
    mem_ctrl::dram::DramController,
) {
    use mem_ctrl::dram::{DramController, DramRequest};
    use sim_core::RequestId;
    let cfg = config(p);
    let mut mc = DramController::new(&cfg, Encryption::On);
    let mut out = Vec::new();
    let mut next = 0;
    let mut now = Cycle::ZERO;
    while out.len() < reqs.len() {
        mc.tick(now, &mut out);
        while next < reqs.len() && reqs[next].0 <= now.get() {
            let (_, op, at, crypto) = reqs[next];
            let req = DramRequest {
                id: RequestId(next as u64),
                op,
                addr: cfg.mapping().encode(at),
                crypto,
            };
            if mc.try_submit(now, req).is_err() {
                break;
            }
            next += 1;
        }
        now = now.plus(1);
        assert!(now.get() < 100_000, "run did not finish");
    }
    out.sort_by_key(|c| c.id);
    (out, mc)
}

#[test]
fn the_engine_counts_lines_waits_and_busy_lanes() {
    // One lane taking a line every 8 cycles: four reads to four banks return close together
    // and queue for the decrypt engine; the plaintext read skips it.
    use sim_core::MemOp::{Read, Write};
    let mut p = ddr4();
    p.crypto.throughput = Throughput {
        lines: 1,
        per_cycles: 8,
    };
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    let reqs: Vec<_> = (0..4)
        .map(|b| (0, Read, loc(0, 0, b, 1, 0), true))
        .chain([
            (0, Read, loc(0, 1, 0, 1, 0), false),
            (300, Write, loc(0, 1, 1, 1, 0), true),
        ])
        .collect();
    let (_, mc) = drive(p, &reqs);
    let (decrypt, encrypt) = mc.engine_stats().expect("encryption is on");
    assert_eq!(
        (decrypt.lines, decrypt.lanes, decrypt.busy_lane_cycles),
        (4, 1, 32)
    );
    assert!(decrypt.wait_cycles > 0 && decrypt.wait_max_cycles <= decrypt.wait_cycles);
    assert_eq!(
        (encrypt.lines, encrypt.wait_cycles, encrypt.busy_lane_cycles),
        (1, 0, 8)
    );
}

#[test]
fn plaintext_lines_skip_the_aes_stage() {
    // Bypass, NO_ENCRYPT and the exclusion range cross the bus as plaintext: no decrypt
    // latency on their reads (mktme-facts.md 1.4: bypass avoids the encryption latency).
    use sim_core::MemOp::Read;
    let c = run_direct(
        ddr4(),
        &[
            (0, Read, loc(0, 0, 0, 1, 0), true),
            (200, Read, loc(0, 0, 0, 1, 1), false),
        ],
    );
    assert_eq!(c[0].done, c[0].data_cycle.plus(5));
    assert_eq!(c[1].done, c[1].data_cycle);
    assert_eq!(
        c[1].done.since(c[1].accepted),
        22,
        "an unloaded row hit, no AES"
    );
}

#[test]
fn a_plaintext_write_does_not_overtake_an_encrypting_one() {
    // Two writes to the same line, the first encrypted (5 cycles in the stage), the second
    // plaintext: the second must still reach DRAM after the first, or the line would end up
    // with the older data.
    use sim_core::MemOp::Write;
    let mut p = ddr4();
    p.controller.write_drain = WriteDrain::ReadQueueEmpty { at_least: 1 };
    let at = loc(0, 0, 0, 1, 0);
    let c = run_direct(p, &[(0, Write, at, true), (0, Write, at, false)]);
    match c[1].source {
        CompletionSource::MergedInto { into } => assert_eq!(into, c[0].id),
        CompletionSource::Bus { .. } => assert!(c[1].data_cycle > c[0].data_cycle),
        CompletionSource::ForwardedFromWrite => panic!("a write is never forwarded"),
    }
    assert!(c[1].data_cycle >= c[0].accepted.plus(5));
}
