//! `mktme-sim run` and `mktme-sim check`: scenario files in, verdicts and a JSON report out.
//!
//! Every file is read and validated before anything runs, so a typo in the tenth file does not
//! cost the first nine runs; any invalid file stops the command with exit 2 and
//! `file:line:column: message` for each problem. Scenarios then run in parallel (`--jobs`),
//! each on its own single-threaded model, and their summaries and reports are put back in the
//! order the files were given: the output does not depend on the thread count.

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use scenarios::report::Report;
use scenarios::runner::{self, RunOptions};
use scenarios::scenario::Scenario;
use scenarios::validate::{self, ScenarioError};
use std::path::{Path, PathBuf};
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
    #[arg(long, short)]
    quiet: bool,
}

/// `mktme-sim check`.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 when every file is a valid scenario, 2 otherwise.")]
pub struct CheckArgs {
    /// Scenario files (`.ron`), or folders: every `.ron` file below them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Every scenario file named by `paths`: files as given, folders searched recursively for
/// `.ron` files, sorted by path.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
        if meta.is_dir() {
            let before = files.len();
            collect_ron(path, &mut files)?;
            if files.len() == before {
                bail!("{}: no .ron scenario files in this folder", path.display());
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_ron(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot list", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_ron(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "ron") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads and validates every file; all the errors, or all the scenarios.
fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, Vec<ScenarioError>> {
    let (ok, errors): (Vec<_>, Vec<_>) = files
        .iter()
        .map(|f| validate::load(f))
        .partition(Result::is_ok);
    if errors.is_empty() {
        Ok(ok.into_iter().map(Result::unwrap).collect())
    } else {
        Err(errors.into_iter().map(Result::unwrap_err).collect())
    }
}

fn report_errors(errors: &[ScenarioError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    ExitCode::from(2)
}

/// `mktme-sim check`.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let files = scenario_files(&args.paths)?;
    match load_all(&files) {
        Ok(scenarios) => {
            for s in &scenarios {
                println!(
                    "ok {} ({}): {} core program(s), {} op(s), {} expectation(s)",
                    s.file,
                    s.name,
                    s.programs.len(),
                    s.ops.len(),
                    s.expectations.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => Ok(report_errors(&errors)),
    }
}

/// `mktme-sim run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let files = scenario_files(&args.paths)?;
    let mut scenarios = match load_all(&files) {
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
        ..RunOptions::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs)
        .build()
        .context("cannot start the worker threads")?;
    // `collect` keeps the input order, whatever order the runs finish in.
    let runs: Vec<_> = pool.install(|| {
        scenarios
            .par_iter()
            .map(|s| runner::run(s, &options))
            .collect()
    });
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
            println!(
                "{} {} ({})",
                if report.passed { "PASSED" } else { "FAILED" },
                report.scenario,
                report.file
            );
        } else {
            print!("{}", runner::summary(report));
        }
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    if reports.len() > 1 {
        println!(
            "{} scenario(s): {} passed, {failed} failed",
            reports.len(),
            reports.len() - failed
        );
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
