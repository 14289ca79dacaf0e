//! Property tests of the coherency invariants over the whole machine (issue 12).
//!
//! Every case is a random multi-core program on a random machine drawn from the same seed
//! (swarm testing, style-by-example item 13), run on a real `cpu_model::System`: in-order
//! cores with store buffers and speculation, the MESI hierarchy with tiny caches so that
//! evictions are frequent, the memory controllers with AES-XTS and DRAM timing, and PCONFIG
//! with its latency. The properties, stated in docs/testing.md:
//!
//! - `rule_abiding_programs_run_clean`: a program that follows the aliasing rules gets every
//!   load's value from the reference model, no report, and DRAM ends as the reference says;
//! - `every_divergence_is_reported_and_every_report_is_real`: for any program, every
//!   divergence from the reference is reported no later than the cycle it becomes visible,
//!   every report names a real hazard, and the model never contradicts itself;
//! - both, at every cycle: MESI's single writer or many readers, inclusion, hits + misses =
//!   accesses; prefetched and speculative lines never dirty without the counterfactual knob;
//!   DRAM never holds the plaintext of a line written through an encrypting KeyID, and equal
//!   plaintext at two lines or under two keys is different ciphertext; keys change exactly at
//!   the completion of a successful PCONFIG;
//! - `the_same_seed_gives_the_same_report`: the case, written as a scenario file and run twice
//!   by the scenario runner, gives byte-identical reports, and the same results and reports as
//!   the direct run observed cycle by cycle.
//!
//! A failing case is shrunk by proptest and written as a scenario file; the failure names the
//! file (replay it with `mktme-sim run FILE`) and the seed. The number of cases is
//! `PROPTEST_CASES`, [`CI_CASES`] by default. `WHOLE_MACHINE_STATS=1` prints a line per case
//! (how it ended, events, results, reports, ops).

mod case;
mod checks;
mod compile;
mod demonstrations;
mod reference;
mod replay;
mod run;
mod scenario_writer;

use case::{Case, Mode};
use checker::CheckerConfig;
use compile::Compiled;
use proptest::prelude::*;
use std::path::PathBuf;

/// Cases per property when `PROPTEST_CASES` is not set (the CI's budget).
const CI_CASES: u32 = 128;

/// Where failing cases are written: `target/tmp/whole_machine/`.
fn failure_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("whole_machine")
}

/// Writes the failing `case` as a scenario file and returns the failure's message, with the
/// file's path and the seed.
fn report_failure(
    property: &str,
    case: &Case,
    compiled: &Compiled,
    failure: checks::Failure,
) -> String {
    let text = scenario_writer::scenario_ron(
        case,
        compiled,
        property,
        Some(&failure.message),
        &failure.expect,
    );
    let dir = failure_dir();
    let path = dir.join(format!("{property}.ron"));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text));
    let file = match written {
        Ok(()) => format!("replay: mktme-sim run {}", path.display()),
        Err(e) => format!("(could not write {}: {e})", path.display()),
    };
    format!(
        "{}\n  {file}\n  seed {} ({} case, {} cores)",
        failure.message,
        case.seed,
        case.mode.name(),
        case.machine.cores
    )
}

/// Runs `case` cycle by cycle and checks every property.
fn property(name: &str, case: &Case) -> Result<(), TestCaseError> {
    let compiled = case.compile();
    let shape = case.shape();
    let config = run::system_config(&case.machine, CheckerConfig::default());
    let result = run::run(&shape, &config, &compiled.programs, case.seed, true)
        .map_err(checks::Failure::from)
        .and_then(|outcome| {
            if std::env::var_os("WHOLE_MACHINE_STATS").is_some() {
                eprintln!(
                    "{name}: {:?}, {} events, {} results, {} violations, {} ops",
                    outcome.end,
                    outcome.events.len(),
                    outcome.results.len(),
                    outcome.violations.len(),
                    compiled.programs.iter().map(|p| p.ops.len()).sum::<usize>()
                );
            }
            checks::check(&shape, &compiled, &outcome)
        });
    result
        .map(drop)
        .map_err(|f| TestCaseError::fail(report_failure(name, case, &compiled, f)))
}

/// `Err(message)` unless `holds`.
fn ensure(holds: bool, message: impl FnOnce() -> String) -> Result<(), checks::Failure> {
    if holds {
        Ok(())
    } else {
        Err(checks::Failure::from(message()))
    }
}

/// The case as a scenario file: parsed back it is the same scenario, the runner twice gives
/// the same JSON report, and its results and reports are the direct run's (stepped cycle by
/// cycle: observing changes nothing).
fn same_report(case: &Case, compiled: &Compiled) -> Result<(), checks::Failure> {
    let text = scenario_writer::scenario_ron(case, compiled, "same_seed", None, &[]);
    let scenario = scenarios::validate::parse(&text, "same_seed.ron")
        .map_err(|e| format!("the written scenario does not parse: {e}"))?;
    let config = run::system_config(&case.machine, CheckerConfig::default());
    ensure(
        scenario.programs == compiled.programs
            && scenario.seed == case.seed
            && format!("{:?}", scenario.system) == format!("{config:?}"),
        || "the written scenario parses to other programs, seed or system".to_owned(),
    )?;
    let options = scenarios::runner::RunOptions::default();
    let report = |s: &scenarios::scenario::Scenario| {
        scenarios::runner::run(s, &options).map(|r| {
            let summary = (r.passed, r.violations.len());
            (scenarios::report::Report::new(vec![r]).to_json(), summary)
        })
    };
    let (first, (passed, violations)) = report(&scenario).map_err(|e| e.to_string())?;
    let (second, _) = report(&scenario).map_err(|e| e.to_string())?;
    ensure(first == second, || {
        "two runs of one scenario gave different reports".to_owned()
    })?;

    let shape = case.shape();
    let direct = run::run(&shape, &config, &compiled.programs, case.seed, true)?;
    let mut sys =
        cpu_model::System::new(&scenario.system, scenario.programs.clone(), scenario.seed)
            .map_err(|e| e.to_string())?;
    sys.run();
    ensure(sys.results() == &direct.results[..], || {
        "a plain run and a run stepped cycle by cycle gave different results".to_owned()
    })?;
    ensure(
        sys.checker().violations() == &direct.violations[..]
            && violations == direct.violations.len(),
        || "a plain run and a run stepped cycle by cycle gave different reports".to_owned(),
    )?;
    if case.mode == Mode::RuleAbiding && checks::check(&shape, compiled, &direct).is_ok() {
        ensure(passed, || {
            format!("the runner fails a case every property accepts:\n{first}")
        })?;
    }
    Ok(())
}

/// `PROPTEST_CASES` cases ([`CI_CASES`] by default); seeds of failures are kept beside this
/// file (`main.proptest-regressions`), the shrunk cases themselves as scenario files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..test_support::proptest_config(CI_CASES)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rule_abiding_programs_run_clean(case in case::case(Mode::RuleAbiding)) {
        property("rule_abiding_programs_run_clean", &case)?;
    }

    #[test]
    fn every_divergence_is_reported_and_every_report_is_real(case in case::case(Mode::Arbitrary)) {
        property("every_divergence_is_reported_and_every_report_is_real", &case)?;
    }

    #[test]
    fn the_same_seed_gives_the_same_report(
        case in prop_oneof![case::case(Mode::RuleAbiding), case::case(Mode::Arbitrary)]
    ) {
        let compiled = case.compile();
        same_report(&case, &compiled).map_err(|f| {
            TestCaseError::fail(report_failure("the_same_seed_gives_the_same_report", &case, &compiled, f))
        })?;
    }
}

/// Runs a scenario file written from a case as the properties run cases, and checks every
/// property on it. With `WHOLE_MACHINE_EVENTS` set, prints what the checker was fed, the
/// results and the reports.
fn replay(path: &std::path::Path) -> Result<(), String> {
    let scenario = scenarios::validate::load(path).map_err(|e| e.to_string())?;
    let shape = case::Shape::from_scenario(&scenario)?;
    let compiled = Compiled::from_scenario(&scenario);
    let outcome = run::run_scenario(&scenario, &shape)?;
    if std::env::var_os("WHOLE_MACHINE_EVENTS").is_some() {
        for e in &outcome.events {
            eprintln!("{e:?}");
        }
        for r in &outcome.results {
            eprintln!("{r:?}");
        }
        for v in &outcome.violations {
            eprintln!("{v}");
        }
    }
    checks::check(&shape, &compiled, &outcome)
        .map(drop)
        .map_err(|f| f.message)
}

/// Replays the scenario file a failing property wrote: `WHOLE_MACHINE_REPLAY=FILE`. Without
/// the variable, it does nothing.
#[test]
fn replay_a_scenario_file() {
    if let Some(path) = std::env::var_os("WHOLE_MACHINE_REPLAY") {
        replay(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every case the properties once failed on, kept as a scenario file in
/// `tests/whole_machine/regressions/`, holds every property now.
#[test]
fn regression_scenarios_hold_every_property() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/whole_machine/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the regressions folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        replay(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// The generators reach what the properties are about: over a fixed set of generated cases,
/// every kind of report is owed (and paid) and every kind of divergence happens. Guards
/// against a change to the generators (or the model) that would leave the properties
/// checking easy runs only.
#[test]
fn generated_cases_reach_every_divergence_and_report() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut owed: std::collections::BTreeMap<String, usize> = Default::default();
    let mut knob_runs = 0;
    for _ in 0..200 {
        let case = case::case(Mode::Arbitrary)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        knob_runs += usize::from(case.machine.knob);
        let compiled = case.compile();
        let config = run::system_config(&case.machine, CheckerConfig::default());
        let outcome = run::run(&case.shape(), &config, &compiled.programs, case.seed, false)
            .unwrap_or_else(|e| panic!("{e}"));
        let coverage = checks::check(&case.shape(), &compiled, &outcome)
            .unwrap_or_else(|f| panic!("{}", f.message));
        for (class, n) in coverage.owed {
            *owed.entry(class).or_default() += n;
        }
    }
    eprintln!("owed over 200 arbitrary cases ({knob_runs} with the knob): {owed:?}");
    for class in [
        "D1",
        "D2",
        "D3",
        "D5",
        "dual_dirty",
        "data_loss",
        "stale_read",
        "reprogram_while_cached",
        "phantom_dirty",
    ] {
        assert!(
            owed.get(class).copied().unwrap_or(0) > 0,
            "no case owed {class}: {owed:?}"
        );
    }
}

/// The rule-abiding generator reaches what its property is about: loads and final lines
/// checked against the program-order reference, key changes, evictions, prefetches.
#[test]
fn rule_abiding_cases_reach_the_hard_paths() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut checked: std::collections::BTreeMap<&str, usize> = Default::default();
    let counters = [
        "l1d.writebacks_evicted",
        "llc.writebacks_evicted",
        "l1d.back_invalidations",
        "l1d.coherence_invalidations",
        "l2.prefetches_issued",
        "hierarchy.wbinvd",
        "hierarchy.clflushopt",
        "hierarchy.clwb",
        "llc.mshr_merges",
        "hierarchy.alias_evictions",
    ];
    let mut totals = [0u64; 10];
    for _ in 0..150 {
        let case = case::case(Mode::RuleAbiding)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let compiled = case.compile();
        let config = run::system_config(&case.machine, CheckerConfig::default());
        let outcome = run::run(&case.shape(), &config, &compiled.programs, case.seed, false)
            .unwrap_or_else(|e| panic!("{e}"));
        let coverage = checks::check(&case.shape(), &compiled, &outcome)
            .unwrap_or_else(|f| panic!("{}", f.message));
        for (what, n) in coverage.checked {
            *checked.entry(what).or_default() += n;
        }
        for (total, name) in totals.iter_mut().zip(counters) {
            *total += outcome.stats.get_count(name).unwrap_or(0);
        }
    }
    eprintln!("checked over 150 rule-abiding cases: {checked:?}");
    eprintln!("{:?}", counters.iter().zip(totals).collect::<Vec<_>>());
    for what in [
        "rule-abiding loads",
        "rule-abiding system calls",
        "rule-abiding final lines",
        "key changes",
        "encrypted write-backs",
        "equal plaintext at two lines",
    ] {
        assert!(
            checked.get(what).copied().unwrap_or(0) > 0,
            "nothing of {what}: {checked:?}"
        );
    }
    for (total, name) in totals.iter().zip(counters) {
        assert!(*total > 0, "no case reached {name}");
    }
}
