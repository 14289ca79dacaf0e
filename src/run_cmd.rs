//! `mktme-sim run` and `mktme-sim check`: scenario files in, verdicts and a JSON report out.
//!
//! Every file is read and validated before anything runs ([`scenarios::batch`]), with the
//! `--set PATH=VALUE` overrides applied; each invalid file is reported at once with
//! `file:line:column: message`. `check` then exits 2; `run` runs every valid file and exits 2
//! at the end, so one bad file in a folder does not hide the others' results. Scenarios run in
//! parallel (`--jobs`), each on its own single-threaded model, and their summaries and reports
//! are put back in the order the files were given: the output does not depend on the thread
//! count.

use crate::stdout::{self, Stdout};
use anyhow::{Context, Result};
use scenarios::batch;
use scenarios::report::Report;
use scenarios::runner::{self, Detail, RunOptions};
use scenarios::validate::{Override, ScenarioError};
use sim_core::text;
use std::path::PathBuf;
use std::process::ExitCode;

/// `mktme-sim run`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 when every expectation held, 1 when one failed or a run \
    stopped (cycles_max, deadlock), 2 for bad input or usage (invalid files are reported and \
    skipped, the valid ones still run).\n\
    --set PATH=VALUE sets a field of every scenario as if its file said so: PATH names it \
    with dots (seed, machine.caches.l1d.size, kernel.keyids, run.cycles_max, cores.0.ring0), \
    VALUE is RON text (a bare word such as 64k or server is taken as a string).\n\
    The scenario format is described in docs/scenario-format.md, the report in \
    docs/report-format.md."
)]
pub struct RunArgs {
    /// Scenario files (`.ron`), or folders: every `.ron` file below them, in name order.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Use this seed instead of each scenario's own.
    #[arg(long)]
    seed: Option<u64>,
    /// Set a field of every scenario, as if its file said so (repeatable): PATH with dots,
    /// VALUE as RON (`--set machine.caches.l1d.size=64k --set kernel.keyids=3`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Write the JSON report here (atomically: complete or not at all).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Scenarios run at once (0: one per available core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    jobs: usize,
    /// Put key bytes (the platform key and every programmed key) in the report.
    #[arg(long)]
    reveal_keys: bool,
    /// Print only the verdict line of each scenario.
    #[arg(long, short, conflicts_with = "verbose")]
    quiet: bool,
    /// Print everything: every violation with its chain, every recorded value of every load.
    #[arg(long, short)]
    verbose: bool,
    /// Record the values of every load, not only the labelled ones (bounded: the first 16
    /// values and the last of at most 10,000 loads).
    #[arg(long)]
    all_loads: bool,
}

/// `mktme-sim check`.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 when every file is a valid scenario, 2 otherwise.")]
pub struct CheckArgs {
    /// Scenario files (`.ron`), or folders: every `.ron` file below them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Set a field of every scenario before checking it (repeatable), as `run --set` does.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

/// The `--set` arguments, read; the first bad one ends the command with exit 2.
fn overrides(args: &[String]) -> Result<Vec<Override>, ExitCode> {
    args.iter()
        .map(|a| {
            Override::parse(a).map_err(|e| {
                stdout::error(&e);
                ExitCode::from(2)
            })
        })
        .collect()
}

fn report_errors(errors: &[ScenarioError]) -> ExitCode {
    for e in errors {
        stdout::error(e);
    }
    ExitCode::from(2)
}

/// `mktme-sim check`.
pub fn check(args: CheckArgs, out: &mut Stdout) -> Result<ExitCode> {
    let overrides = match overrides(&args.set) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let files = batch::scenario_files(&args.paths)?;
    let (scenarios, errors): (Vec<_>, Vec<_>) = batch::load_each(&files, &overrides)
        .into_iter()
        .partition(Result::is_ok);
    let loaded = if errors.is_empty() {
        Ok(scenarios.into_iter().flatten().collect::<Vec<_>>())
    } else {
        Err(errors
            .into_iter()
            .filter_map(Result::err)
            .collect::<Vec<_>>())
    };
    match loaded {
        Ok(scenarios) => {
            for s in &scenarios {
                writeln!(
                    out,
                    "ok {} ({}): {} core program(s), {} op(s), {} expectation(s)",
                    text::printable(&s.file),
                    text::printable(&s.name),
                    s.programs.len(),
                    s.ops.len(),
                    s.expectations.len()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report_errors(&errors)),
    }
}

/// `mktme-sim run`.
pub fn run(args: RunArgs, out: &mut Stdout) -> Result<ExitCode> {
    let overrides = match overrides(&args.set) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let files = batch::scenario_files(&args.paths)?;
    // Every invalid file is reported now; the valid ones run all the same.
    let mut scenarios = Vec::new();
    let mut invalid = Vec::new();
    for loaded in batch::load_each(&files, &overrides) {
        match loaded {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                stdout::error(&e);
                invalid.push(e.to_string());
            }
        }
    }
    if scenarios.is_empty() {
        return Ok(ExitCode::from(2));
    }
    if let Some(seed) = args.seed {
        for s in &mut scenarios {
            s.seed = seed;
        }
    }
    let options = RunOptions {
        reveal_keys: args.reveal_keys,
        all_loads: args.all_loads,
        ..RunOptions::default()
    };
    let detail = if args.verbose {
        Detail::Verbose
    } else {
        Detail::Normal
    };
    let runs = batch::run_all(&scenarios, &options, args.jobs)
        .context("cannot start the worker threads")?;
    let mut reports = Vec::with_capacity(runs.len());
    for run in runs {
        match run {
            Ok(report) => reports.push(report),
            Err(e) => {
                stdout::error(&e);
                return Ok(ExitCode::from(2));
            }
        }
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    let any_invalid = !invalid.is_empty();
    let invalid_count = invalid.len();
    let report = Report::new(reports).with_invalid(invalid);
    // The report first: a failing standard output must not cost the user the report.
    let report_failed = match &args.report {
        None => false,
        Some(path) => match report.write_atomic(path) {
            Ok(()) => false,
            Err(e) => {
                stdout::error(format_args!(
                    "{}: cannot write the report: {e}",
                    path.display()
                ));
                true
            }
        },
    };
    let reports = &report.scenarios;
    for report in reports {
        if args.quiet {
            writeln!(
                out,
                "{} {} ({})",
                if report.passed { "PASSED" } else { "FAILED" },
                text::printable(&report.scenario),
                text::printable(&report.file)
            )?;
        } else {
            out.write_str(&text::printable(&runner::summary(report, detail)))?;
        }
    }
    if reports.len() > 1 || any_invalid {
        write!(
            out,
            "{} scenario(s): {} passed, {failed} failed",
            reports.len(),
            reports.len() - failed
        )?;
        if any_invalid {
            write!(out, "; {invalid_count} invalid file(s) not run")?;
        }
        writeln!(out)?;
    }
    Ok(if any_invalid || report_failed {
        ExitCode::from(2)
    } else if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
