//! A generated case written as a scenario file (docs/scenario-format.md), so that
//! `mktme-sim run FILE.ron` replays it: the same machine, seed, kernel, run limits and
//! programs, op for op and tag for tag (tags are file order over every core, as the compiler
//! numbered them; barriers are named `p0`, `p1`, ... in the order they first appear, which is
//! the order validation numbers them).
//!
//! A rule-abiding case also carries what the properties demand, as expectations the runner
//! judges: every load's value, no violation, no fault, and what each line must read as at the
//! end. A failing case gets a comment with the failure at the top and, where the failure is
//! one an expectation can state, that expectation.

use crate::case::{CYCLES_MAX, Case, KERNEL_KEYIDS, LevelSpec, MachineSpec, layout};
use crate::compile::Compiled;
use cpu_model::program::{Addr, Backing, KernelCall, LineFlush, Op, OpKind, Prot};
use mem_ctrl::pconfig::{KeyCommand, enc_alg_bit};
use mem_ctrl::xts::XtsAlgorithm;
use std::fmt::Write;

/// The `machine:` section of the case (also what the tests build the machine from, through
/// `scenarios::machine_file::parse`, so that the file and the run cannot disagree).
pub fn machine_ron(m: &MachineSpec) -> String {
    let level = |l: &LevelSpec| {
        format!(
            "size: {}, ways: {}, latency: {}, mshrs: {}, replacement: {}",
            l.size(),
            l.ways,
            l.latency,
            l.mshrs,
            l.replacement
        )
    };
    let prefetch = match &m.prefetch {
        None => "(next_line: false, stride: false)".to_owned(),
        Some(p) => format!(
            "(next_line: {}, stride: {}, degree: {}, train_on: {}, fill_into: {}, stride_table: {})",
            p.next_line,
            p.stride,
            p.degree,
            if p.train_on_l1d { "l1d" } else { "l2" },
            if p.fill_into_l1d { "l1d" } else { "l2" },
            p.stride_table
        ),
    };
    format!(
        "(\n        preset: \"default\",\n        caches: (\n            cores: {},\n            \
         l1d: ({}),\n            l2: ({}),\n            llc: ({}, inclusive: {}),\n            \
         snoop_latency: {},\n            writeback_buffer: {},\n            prefetch: {},\n            \
         writeback_speculative_lines: {},\n            alias_policy: {},\n        ),\n        \
         memory: (controllers: {}, interleave: \"4k\", dram: \"{}\", pconfig_latency: {}, \
         tme: (bypass: {})),\n        core: (issue_width: {}, outstanding_loads: {}, \
         store_buffer: {}, branch_resolve_cycles: {}),\n    )",
        m.cores,
        level(&m.l1d),
        level(&m.l2),
        level(&m.llc),
        m.llc_inclusive,
        m.snoop_latency,
        m.writeback_buffer,
        prefetch,
        m.knob,
        if m.evict_other_keyids {
            "evict_other_keyids"
        } else {
            "none"
        },
        m.controllers,
        m.dram,
        m.pconfig_latency,
        m.tme_bypass,
        m.issue_width,
        m.outstanding_loads,
        m.store_buffer,
        m.branch_resolve
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn addr(at: &Addr) -> String {
    match at {
        Addr::Phys(pa) => {
            let l = layout();
            format!(
                "phys(keyid: {}, addr: {:#x})",
                l.keyid(*pa).get(),
                l.dram_addr(*pa).raw()
            )
        }
        Addr::Virt(v) => format!("virt({v:#x})"),
        Addr::DirectMapOf(v) => format!("direct_map_of({v:#x})"),
    }
}

fn op_ron(op: &Op, compiled: &Compiled, out: &mut String, indent: usize) {
    let pad = " ".repeat(indent);
    let text = match &op.kind {
        OpKind::Load { at, len } => match compiled.load_values.get(&op.tag) {
            Some(v) => format!(
                "load(at: {}, len: {len}, expect: hex(\"{}\"))",
                addr(at),
                hex(v)
            ),
            None => format!("load(at: {}, len: {len})", addr(at)),
        },
        OpKind::Store { at, bytes } => {
            format!("store(at: {}, data: hex(\"{}\"))", addr(at), hex(bytes))
        }
        OpKind::Flush { kind, at } => {
            let name = match kind {
                LineFlush::Clflush => "clflush",
                LineFlush::Clflushopt => "clflushopt",
                LineFlush::Clwb => "clwb",
            };
            format!("{name}(at: {})", addr(at))
        }
        OpKind::Wbinvd => "wbinvd".to_owned(),
        OpKind::Mfence => "mfence".to_owned(),
        OpKind::Sfence => "sfence".to_owned(),
        OpKind::Prefetch { at } => format!("prefetch(at: {})", addr(at)),
        OpKind::SpeculativeLoad { at, len } => {
            format!("speculative_load(at: {}, len: {len})", addr(at))
        }
        OpKind::Mispredict { shadow } => {
            let mut inner = String::new();
            for s in shadow {
                op_ron(s, compiled, &mut inner, indent + 4);
            }
            format!("mispredict([\n{inner}{pad}])")
        }
        OpKind::Compute { cycles } => format!("compute({cycles})"),
        OpKind::Barrier { id } => format!("barrier(\"p{id}\")"),
        OpKind::Pconfig { call } => {
            let p = &call.program;
            let command = KeyCommand::ALL
                .into_iter()
                .find(|c| c.code() == p.command_code())
                .expect("a generated command");
            let aes256 = p.enc_alg() == enc_alg_bit(XtsAlgorithm::Aes256);
            let keys = if command == KeyCommand::SetKeyDirect {
                let n = if aes256 { 32 } else { 16 };
                format!(
                    ", key: \"{}\", tweak: \"{}\"",
                    hex(&p.key_field_1[..n]),
                    hex(&p.key_field_2[..n])
                )
            } else {
                String::new()
            };
            format!(
                "pconfig(keyid: {}, command: {}, algorithm: {}{keys})",
                p.keyid,
                match command {
                    KeyCommand::SetKeyDirect => "set_key_direct",
                    KeyCommand::SetKeyRandom => "set_key_random",
                    KeyCommand::ClearKey => "clear_key",
                    KeyCommand::NoEncrypt => "no_encrypt",
                },
                if aes256 { "aes_xts_256" } else { "aes_xts_128" }
            )
        }
        OpKind::Kernel(call) => kernel_ron(call),
        other => panic!("the generator makes no {other:?}"),
    };
    let _ = writeln!(out, "{pad}{text},");
}

fn kernel_ron(call: &KernelCall) -> String {
    let prot = |p: &Prot| p.to_string();
    match call {
        KernelCall::AddKey { name, payload } => {
            format!("add_key(key: \"{name}\", payload: \"{payload}\")")
        }
        KernelCall::Mmap {
            addr,
            len,
            prot: p,
            backing: Backing::Anonymous,
        } => format!("mmap(addr: {addr:#x}, len: {len:#x}, prot: {})", prot(p)),
        KernelCall::EncryptMprotect {
            addr,
            len,
            prot: p,
            key,
        } => format!(
            "encrypt_mprotect(addr: {addr:#x}, len: {len:#x}, prot: {}, key: \"{key}\")",
            prot(p)
        ),
        KernelCall::Munmap { addr, len } => format!("munmap(addr: {addr:#x}, len: {len:#x})"),
        other => panic!("the generator makes no {other:?}"),
    }
}

/// The whole scenario file. `failure` (the property's message) goes into a comment at the
/// top; `extra_expect` are expectations (RON) the failure can be stated as.
pub fn scenario_ron(
    case: &Case,
    compiled: &Compiled,
    name: &str,
    failure: Option<&str>,
    extra_expect: &[String],
) -> String {
    let mut out = String::new();
    if let Some(failure) = failure {
        let _ = writeln!(
            out,
            "// A shrunk failing case of the whole-machine property `{name}` (tests/whole_machine)."
        );
        for line in failure.lines() {
            let _ = writeln!(out, "// {line}");
        }
        let _ = writeln!(
            out,
            "// Replay: `mktme-sim run FILE` (its expectations), and every property:\n\
             // `WHOLE_MACHINE_REPLAY=FILE cargo test --test whole_machine replay_a_scenario_file`."
        );
    }
    let _ = writeln!(out, "(");
    let _ = writeln!(out, "    name: \"{name}\",");
    let _ = writeln!(out, "    description: \"{}\",", case.shape().description());
    let _ = writeln!(out, "    seed: {},", case.seed);
    let _ = writeln!(out, "    machine: {},", machine_ron(&case.machine));
    let _ = writeln!(out, "    kernel: (keyids: {KERNEL_KEYIDS}),");
    let _ = writeln!(
        out,
        "    run: (cycles_max: {CYCLES_MAX}, drain_at_end: true),"
    );
    let _ = writeln!(out, "    cores: [");
    for program in &compiled.programs {
        let _ = writeln!(out, "        (ops: [");
        for op in &program.ops {
            op_ron(op, compiled, &mut out, 12);
        }
        let _ = writeln!(out, "        ]),");
    }
    let _ = writeln!(out, "    ],");
    let mut expect: Vec<String> = Vec::new();
    if case.mode == crate::case::Mode::RuleAbiding {
        expect.push("no_violations".to_owned());
        expect.push("no_faults".to_owned());
        for (keyid, line, bytes) in &compiled.final_lines {
            expect.push(format!(
                "plaintext(keyid: {keyid}, line: {line:#x}, data: hex(\"{}\"))",
                hex(bytes)
            ));
        }
    }
    expect.extend(extra_expect.iter().cloned());
    let _ = writeln!(out, "    expect: [");
    for e in expect {
        let _ = writeln!(out, "        {e},");
    }
    let _ = writeln!(out, "    ],");
    let _ = writeln!(out, ")");
    out
}
