//! Refresh: rank-level, staggered over ranks every tREFI / ranks cycles, preempting only the
//! rank being refreshed (DRAMsim3 `RANK_LEVEL_STAGGERED`, "ASAP" `FinishRefresh`).

#[path = "dram_common.rs"]
mod common;

use common::*;
use mem_ctrl::dram::{CommandKind, DramController, Encryption};
use sim_core::Cycle;

const ACT: CommandKind = CommandKind::Activate;
const PRE: CommandKind = CommandKind::Precharge;
const REF: CommandKind = CommandKind::Refresh;

#[test]
fn a_due_refresh_closes_the_open_row_and_holds_only_its_rank() {
    let r = run_params(
        ddr4(),
        &[
            // Opens rank 0, bank group 0, bank 0 well before the refresh at 4680.
            read(4000, loc(0, 0, 0, 1, 0)),
            // During rank 0's refresh: rank 1 proceeds, rank 0 waits tRFC after REF.
            read(4690, loc(1, 0, 0, 1, 0)),
            read(4691, loc(0, 1, 0, 1, 0)),
        ],
    );
    assert_eq!(r.cycles_at(PRE, 0, 0, 0), [4680]);
    // REF as soon as the precharged bank allows: PRE + tRP.
    assert_eq!(r.cycles_of(REF), [4697]);
    assert_eq!(r.cycles_at(ACT, 1, 0, 0), [4692]);
    assert_eq!(r.cycles_at(ACT, 0, 1, 0), [4697 + 420]);
    assert_eq!(r.latency(2), 4697 + 420 + 17 + 17 + 4 - 4692);
}

// A run ends when its last request completes, so each scenario below ends with a request to the
// other rank that keeps it going past the refresh under test.

#[test]
fn the_precharge_for_refresh_respects_t_ras() {
    let r = run_params(
        ddr4(),
        &[
            read(4660, loc(0, 0, 0, 1, 0)),
            read(4800, loc(1, 0, 0, 1, 0)),
        ],
    );
    assert_eq!(r.cycles_at(ACT, 0, 0, 0), [4662]);
    // Due at 4680, but PRE must wait for ACT + tRAS = 4701; REF follows tRP later.
    assert_eq!(r.cycles_of(PRE), [4701]);
    assert_eq!(r.cycles_of(REF), [4718]);
}

#[test]
fn every_open_bank_of_the_rank_is_precharged_in_bank_order() {
    let r = run_params(
        ddr4(),
        &[
            read(4000, loc(0, 1, 0, 1, 0)),
            read(4001, loc(0, 0, 0, 1, 0)),
            read(4800, loc(1, 0, 0, 1, 0)),
        ],
    );
    let pres: Vec<(u64, u32)> = r
        .rec
        .commands
        .iter()
        .filter(|c| c.kind == PRE)
        .map(|c| (c.cycle.get(), c.bankgroup))
        .collect();
    // One PRE per cycle, bank group 0 first, then REF tRP after the last PRE.
    assert_eq!(pres, [(4680, 0), (4681, 1)]);
    assert_eq!(r.cycles_of(REF), [4698]);
}

#[test]
fn an_idle_rank_refreshes_without_precharging() {
    let r = run_params(
        ddr4(),
        &[
            read(9000, loc(0, 0, 0, 1, 0)),
            read(9400, loc(1, 0, 0, 1, 0)),
        ],
    );
    // Rank 0 at 4680 (idle), rank 1 at 9360 (idle): no PRE needed for either.
    assert_eq!(r.cycles_of(REF), [4680, 9360]);
    assert!(r.cycles_of(PRE).is_empty(), "{}", r.log());
}

#[test]
fn refresh_count_over_a_long_idle_run() {
    let cfg = config(ddr4());
    let mut mc = DramController::new(&cfg, Encryption::Off);
    let mut done = Vec::new();
    let mut now = Cycle::ZERO;
    while now.get() <= 100_000 {
        mc.tick(now, &mut done);
        now = mc.next_event_cycle();
    }
    // One REF every 4680 cycles, alternating ranks: floor(100000 / 4680) = 21.
    assert_eq!(mc.stats().refs.get(), 21);
}

#[test]
fn the_stall_watchdog_reports_the_controller_state() {
    // A request waiting out tRFC is healthy, but with a watchdog shorter than tRFC the driver
    // must stop and describe the controller instead of waiting.
    let cfg = config(ddr4());
    let records = [Ok::<_, std::convert::Infallible>(
        mem_ctrl::dram::TraceRecord {
            addr: addr(&cfg, loc(0, 0, 0, 1, 0)),
            op: sim_core::MemOp::Read,
            cycle: Cycle::new(4680),
        },
    )];
    let limits = mem_ctrl::dram::DriverLimits {
        cycles_max: None,
        stall_cycles_max: 100,
    };
    let e = mem_ctrl::dram::run_trace(&cfg, Encryption::Off, records, limits).unwrap_err();
    let text = e.to_string();
    match e {
        mem_ctrl::dram::DriverError::Deadlock {
            cycle,
            last_activity,
            ..
        } => {
            // REF at 4680, and the request offered then, were the last things that happened;
            // the watchdog fires on the first cycle more than 100 cycles later.
            assert_eq!(last_activity, Cycle::new(4680));
            assert_eq!(cycle, Cycle::new(4781));
        }
        other => panic!("expected a deadlock report, got {other}"),
    }
    assert!(text.contains("command queue"), "{text}");
    assert!(text.contains("earliest ACT/PRE/READ/WRITE 5100/"), "{text}");
}
