//! Each property can fail (issue 12, "Done when"): the rule-abiding property on a machine with
//! the counterfactual knob, the checker property with a violation kind silenced, and the
//! PCONFIG-window case when the checker is told of key changes at PCONFIG's start instead of
//! its completion.

use crate::case::{self, Case, LevelSpec, MachineSpec, Mode, Step};
use crate::checks;
use crate::run;
use checker::{CheckerConfig, CoherencyChecker, ViolationKind};
use cpu_model::SystemEvent;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use sim_core::{Cycle, MemEvent};

/// Cases tried before a demonstration gives up.
const TRIES: usize = 400;

/// The first of `TRIES` deterministic cases of `mode` (changed by `adjust`) on which `check`
/// fails, with the failure.
fn first_failure(
    mode: Mode,
    adjust: impl Fn(&mut Case),
    check: impl Fn(&Case) -> Result<(), checks::Failure>,
) -> Option<(Case, checks::Failure)> {
    let mut runner = TestRunner::deterministic();
    let strategy = case::case(mode);
    for _ in 0..TRIES {
        let mut case = strategy.new_tree(&mut runner).unwrap().current();
        adjust(&mut case);
        if let Err(f) = check(&case) {
            return Some((case, f));
        }
    }
    None
}

/// Runs `case` with `checker` and checks every property.
fn check_with(case: &Case, checker: CheckerConfig) -> Result<(), checks::Failure> {
    let compiled = case.compile();
    let config = run::system_config(&case.machine, checker);
    let outcome = run::run(&case.shape(), &config, &compiled.programs, case.seed, false)?;
    checks::check(&case.shape(), &compiled, &outcome).map(drop)
}

#[test]
fn the_rule_abiding_property_fails_on_a_machine_with_the_counterfactual_knob() {
    let (case, failure) = first_failure(
        Mode::RuleAbiding,
        |c| c.machine.knob = true,
        |c| check_with(c, CheckerConfig::default()),
    )
    .expect("a rule-abiding case that fails with the knob");
    assert!(
        failure
            .message
            .contains("a rule-abiding program was reported"),
        "{}",
        failure.message
    );
    // The same case on the real machine holds every property.
    let mut real = case.clone();
    real.machine.knob = false;
    check_with(&real, CheckerConfig::default()).unwrap_or_else(|f| panic!("{}", f.message));
}

#[test]
fn the_checker_property_fails_when_a_violation_kind_is_silenced() {
    for kind in ViolationKind::ALL {
        let silenced = CheckerConfig {
            ignore: [kind].into_iter().collect(),
            ..CheckerConfig::default()
        };
        let (case, failure) = first_failure(Mode::Arbitrary, |_| {}, |c| check_with(c, silenced))
            .unwrap_or_else(|| panic!("no arbitrary case fails with {kind} silenced"));
        assert!(
            failure.message.starts_with("not reported") && failure.message.contains(kind.name()),
            "{kind}: {}",
            failure.message
        );
        // With every kind reported, the same case holds.
        check_with(&case, CheckerConfig::default()).unwrap_or_else(|f| panic!("{}", f.message));
    }
}

/// A machine whose caches keep a few lines (so a stored line stays cached across PCONFIG),
/// with the default preset's 1000-cycle PCONFIG latency.
fn roomy_machine() -> MachineSpec {
    let level = |sets, ways, latency| LevelSpec {
        sets,
        ways,
        latency,
        mshrs: 4,
        replacement: "lru",
    };
    MachineSpec {
        cores: 2,
        l1d: level(2, 2, 4),
        l2: level(4, 2, 14),
        llc: level(4, 4, 40),
        llc_inclusive: true,
        snoop_latency: 20,
        writeback_buffer: 4,
        prefetch: None,
        knob: false,
        evict_other_keyids: false,
        pconfig_latency: 1000,
        controllers: 1,
        dram: "ddr4-2400",
        tme_bypass: false,
        issue_width: 2,
        outstanding_loads: 4,
        store_buffer: 8,
        branch_resolve: 20,
    }
}

/// Core 0 reprograms KeyID 2; meanwhile core 1 stores a whole line through KeyID 2 (filling it
/// under the old key) and keeps it; after the key change it loads the line back, and the
/// cache hands it the plaintext from before the change.
fn pconfig_window_case() -> Case {
    let mut steps = vec![
        Step::Pconfig {
            core: 0,
            alias: 1,
            command: 0,
            key: 0,
            aes256: false,
        },
        Step::Compute {
            core: 1,
            cycles: 100,
        },
        Step::Store {
            core: 1,
            line: 0,
            alias: 1,
            offset: 0,
            len: 64,
            pattern: 2,
        },
    ];
    // Well past the key change.
    for _ in 0..4 {
        steps.push(Step::Compute {
            core: 1,
            cycles: 399,
        });
    }
    steps.push(Step::Load {
        core: 1,
        line: 0,
        alias: 1,
        offset: 0,
        len: 64,
    });
    Case {
        mode: Mode::Arbitrary,
        seed: 12,
        machine: roomy_machine(),
        lines: 2,
        keyids: 2,
        steps,
    }
}

/// The stream the checker was fed, with every key change moved to its PCONFIG's start
/// (`latency` cycles before its completion), as the checker's old test rig told it; of one
/// cycle, the memory side's events first, as the System feeds them.
fn dated_at_pconfig_start(events: &[SystemEvent], latency: u64) -> Vec<SystemEvent> {
    let mut moved: Vec<SystemEvent> = events
        .iter()
        .map(|e| match e {
            SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                SystemEvent::Memory(MemEvent::KeyChanged {
                    cycle: Cycle::new(cycle.get() - latency),
                    keyid: *keyid,
                })
            }
            other => other.clone(),
        })
        .collect();
    moved.sort_by_key(|e| (e.cycle(), matches!(e, SystemEvent::Cache(_))));
    moved
}

#[test]
fn the_pconfig_window_case_fails_when_key_changes_are_dated_at_pconfig_start() {
    let case = pconfig_window_case();
    let compiled = case.compile();
    let shape = case.shape();
    let config = run::system_config(&case.machine, CheckerConfig::default());
    let outcome = run::run(&shape, &config, &compiled.programs, case.seed, true)
        .unwrap_or_else(|e| panic!("{e}"));
    // Told at the right cycle (the completion), the checker reports the line filled during
    // the window, and every property holds.
    let coverage =
        checks::check(&shape, &compiled, &outcome).unwrap_or_else(|f| panic!("{}", f.message));
    assert_eq!(coverage.owed.get("D5"), Some(&1), "{coverage:?}");
    assert_eq!(
        outcome
            .violations
            .iter()
            .map(|v| v.kind)
            .collect::<Vec<_>>(),
        [ViolationKind::ReprogramWhileCached]
    );

    // Told at PCONFIG's start, it misses the line: its key changes with the line cached, and
    // the load's plaintext from before the key change, go unreported.
    let mut early = CoherencyChecker::new(case::layout(), CheckerConfig::default());
    for e in dated_at_pconfig_start(&outcome.events, case.machine.pconfig_latency) {
        e.feed(&mut early);
    }
    assert!(early.violations().is_empty(), "{:?}", early.violations());
    let failure = checks::check_reports(&shape, &compiled, &outcome, early.violations())
        .expect_err("the property fails");
    let changed = outcome
        .events
        .iter()
        .find_map(|e| match e {
            SystemEvent::Memory(MemEvent::KeyChanged { cycle, .. }) => Some(cycle.get()),
            SystemEvent::Memory(
                MemEvent::DimmWritten { .. }
                | MemEvent::BusRewritten { .. }
                | MemEvent::DimmAlias { .. },
            )
            | SystemEvent::Cache(_) => None,
        })
        .expect("a key change");
    assert!(
        failure.message.starts_with("not reported")
            && failure.message.contains(&format!(
                "reprogram_while_cached on line 0x100000 at cycle {changed}"
            ))
            && failure.message.contains("before a key change (D5)"),
        "{}",
        failure.message
    );
}
