//! Shared helpers of the DRAM tests (included with `#[path]` by each `dram_*.rs` test; as its
//! own test target it contains no tests).
#![allow(dead_code)]

use mem_ctrl::dram::{
    CommandKind, DramCompletion, DramConfig, DramLocation, DramParams, DriverLimits, Encryption,
    IssuedCommand, Recorder, TraceRecord, TraceReport, run_trace_observed,
};
use sim_core::{Cycle, DramAddr, MemOp};
use std::convert::Infallible;

/// The ddr4-2400 reference parameters (validation-data.md section 2).
pub fn ddr4() -> DramParams {
    DramParams::preset("ddr4-2400").expect("preset")
}

/// Validates `p`, failing the test with the error otherwise.
pub fn config(p: DramParams) -> DramConfig {
    DramConfig::new(p).unwrap_or_else(|e| panic!("test configuration rejected: {e}"))
}

/// A location in rank `rank`, bank group `bg`, bank `bank`, row `row`, line `col` of the row.
pub fn loc(rank: u32, bg: u32, bank: u32, row: u32, col: u32) -> DramLocation {
    DramLocation {
        channel: 0,
        rank,
        bankgroup: bg,
        bank,
        row,
        column: col,
    }
}

/// One request of a scripted run.
#[derive(Copy, Clone, Debug)]
pub struct Req {
    pub cycle: u64,
    pub op: MemOp,
    pub loc: DramLocation,
}

pub fn read(cycle: u64, loc: DramLocation) -> Req {
    Req {
        cycle,
        op: MemOp::Read,
        loc,
    }
}

pub fn write(cycle: u64, loc: DramLocation) -> Req {
    Req {
        cycle,
        op: MemOp::Write,
        loc,
    }
}

/// What a scripted run produced. Request ids are the positions in the script.
pub struct Run {
    pub report: TraceReport,
    pub rec: Recorder,
}

/// Runs `reqs` (in order, each offered no earlier than its cycle) through the trace driver.
pub fn run(cfg: &DramConfig, encryption: Encryption, reqs: &[Req]) -> Run {
    let records: Vec<Result<TraceRecord, Infallible>> = reqs
        .iter()
        .map(|r| {
            Ok(TraceRecord {
                addr: cfg.mapping().encode(r.loc),
                op: r.op,
                cycle: Cycle::new(r.cycle),
            })
        })
        .collect();
    let mut rec = Recorder::default();
    let report = run_trace_observed(
        cfg,
        encryption,
        records,
        DriverLimits::for_config(cfg),
        &mut rec,
    )
    .unwrap_or_else(|e| panic!("run failed: {e}"));
    Run { report, rec }
}

/// Runs `reqs` on `p` with encryption off.
pub fn run_params(p: DramParams, reqs: &[Req]) -> Run {
    run(&config(p), Encryption::Off, reqs)
}

impl Run {
    /// Issue cycles of every command of `kind`, in order.
    pub fn cycles_of(&self, kind: CommandKind) -> Vec<u64> {
        self.rec
            .commands
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.cycle.get())
            .collect()
    }

    /// The issue cycle of the column command serving request `id`.
    pub fn column_cycle(&self, id: u64) -> u64 {
        self.rec
            .commands
            .iter()
            .find(|c| c.request.map(|r| r.0) == Some(id))
            .unwrap_or_else(|| panic!("no column command for request {id}\n{}", self.log()))
            .cycle
            .get()
    }

    /// The completion of request `id`.
    pub fn completion(&self, id: u64) -> &DramCompletion {
        self.rec
            .completions
            .iter()
            .find(|c| c.id.0 == id)
            .unwrap_or_else(|| panic!("request {id} did not complete\n{}", self.log()))
    }

    /// `done - accepted` of request `id`.
    pub fn latency(&self, id: u64) -> u64 {
        let c = self.completion(id);
        c.done.since(c.accepted)
    }

    /// Commands of `kind` issued to (rank, bg, bank).
    pub fn cycles_at(&self, kind: CommandKind, rank: u32, bg: u32, bank: u32) -> Vec<u64> {
        self.rec
            .commands
            .iter()
            .filter(|c| c.kind == kind && c.rank == rank && c.bankgroup == bg && c.bank == bank)
            .map(|c| c.cycle.get())
            .collect()
    }

    /// The command log, one command per line, for failure messages.
    pub fn log(&self) -> String {
        self.rec
            .commands
            .iter()
            .map(IssuedCommand::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The line address of `loc` under `cfg`.
pub fn addr(cfg: &DramConfig, loc: DramLocation) -> DramAddr {
    cfg.mapping().encode(loc)
}
