//! `mktme-sim run` and `mktme-sim check`: scenario files in, verdicts and a JSON report out.
//!
//! Every file is read and validated before anything runs ([`scenarios::batch`]), so a typo in
//! the tenth file does not cost the first nine runs; any invalid file stops the command with
//! exit 2 and `file:line:column: message` for each problem. Scenarios then run in parallel
//! (`--jobs`), each on its own single-threaded model, and their summaries and reports are put
//! back in the order the files were given: the output does not depend on the thread count.

use crate::stdout::Stdout;
use anyhow::{Context, Result};
use scenarios::batch;
use scenarios::report::Report;
use scenarios::runner::{self, Detail, RunOptions};
use scenarios::validate::ScenarioError;
use std::path::PathBuf;
use std::process::ExitCode;

/// `mktme-sim run`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 when every expectation held, 1 when one failed or a run \
    stopped (cycles_max, deadlock), 2 for bad input or usage.\n\
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
}

fn report_errors(errors: &[ScenarioError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    ExitCode::from(2)
}

/// `mktme-sim check`.
pub fn check(args: CheckArgs, out: &mut Stdout) -> Result<ExitCode> {
    let files = batch::scenario_files(&args.paths)?;
    match batch::load_all(&files) {
        Ok(scenarios) => {
            for s in &scenarios {
                writeln!(
                    out,
                    "ok {} ({}): {} core program(s), {} op(s), {} expectation(s)",
                    s.file,
                    s.name,
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
    let files = batch::scenario_files(&args.paths)?;
    let mut scenarios = match batch::load_all(&files) {
        Ok(s) => s,
        Err(errors) => return Ok(report_errors(&errors)),
    };
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
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    for report in &reports {
        if args.quiet {
            writeln!(
                out,
                "{} {} ({})",
                if report.passed { "PASSED" } else { "FAILED" },
                report.scenario,
                report.file
            )?;
        } else {
            out.write_str(&runner::summary(report, detail))?;
        }
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    if reports.len() > 1 {
        writeln!(
            out,
            "{} scenario(s): {} passed, {failed} failed",
            reports.len(),
            reports.len() - failed
        )?;
    }
    if let Some(path) = &args.report {
        Report::new(reports)
            .write_atomic(path)
            .with_context(|| format!("{}: cannot write the report", path.display()))?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
