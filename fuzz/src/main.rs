//! `mktme-fuzz`: a deterministic fuzzing driver for the scenario loader and the scenario
//! runner (issue 15), runnable on stable Rust.
//!
//! It takes the repository's scenario files as seeds, mutates them ([`mutate`]), and checks
//! that whatever the input, the loader and the runner neither panic, nor run past a
//! wall-clock limit, nor need more memory than a budget: loader inputs in this process
//! ([`loader`]), run inputs each in a child process with a small `run.cycles_max` ([`runs`]).
//! The memory bound is a counting allocator ([`alloc`]); under `ulimit -v` an allocation the
//! system refuses is caught the same way. Every finding is saved under `--out` with how to
//! make it again; the exit status is 0 without findings, 1 with, 2 for bad usage.
//! docs/testing.md ("Fuzzing") gives the commands and the figures of the recorded runs.

mod alloc;
mod loader;
mod mutate;
mod panics;
mod runs;
mod shape;
mod tally;

use clap::{Parser, Subcommand};
use mutate::{Corpus, Input, Kind, Seed};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};
use tally::{Finding, Tally};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(
    name = "mktme-fuzz",
    about = "Fuzz the scenario loader and runner: panics, hangs and a memory bound",
    after_help = "Exit status: 0 when nothing was found, 1 when something was (saved under \
    --out), 2 for bad usage. An allocation past the budget in the loader phase ends the \
    process (SIGABRT) after saying which input; remake it with --save loader:I."
)]
struct Cli {
    #[command(subcommand)]
    child: Option<ChildCommand>,
    /// The seed: the same seed gives the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loader inputs to try.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    loader_inputs: u64,
    /// Scenarios to run (mutants the validator refuses do not count; at most 20 tries each).
    #[arg(long, default_value_t = 100, value_name = "N")]
    run_inputs: u64,
    /// The index of the first input of each phase (a deep run in pieces).
    #[arg(long, default_value_t = 0, value_name = "I")]
    start: u64,
    /// Wall-clock limit per input, seconds: an input still running then is a hang. Generous:
    /// the largest legal file takes seconds to read, more on a busy machine at `nice`.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    time_limit: f64,
    /// `run.cycles_max` of every run input.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    cycles_max: u64,
    /// Memory budget, MiB: the bytes in use the process (each run's child) may reach.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    mem_budget: usize,
    /// Where findings are saved.
    #[arg(long, default_value = "target/fuzz", value_name = "DIR")]
    out: PathBuf,
    /// Go on after a finding (a hang in the loader phase still ends the run).
    #[arg(long)]
    keep_going: bool,
    /// Seed files or folders (default: the scenario library, tests/scenarios and the
    /// whole-machine regressions).
    #[arg(long = "seeds", value_name = "PATH")]
    seeds: Vec<PathBuf>,
    /// Only write input I of a phase (`loader:I` or `run:I`) to --out, and say where.
    #[arg(long, value_name = "PHASE:I")]
    save: Option<String>,
}

#[derive(Subcommand)]
enum ChildCommand {
    /// (internal) Validate and run the input on standard input; one line out.
    #[command(hide = true)]
    RunOne {
        #[arg(long)]
        index: u64,
        #[arg(long)]
        file: String,
        #[arg(long = "set")]
        sets: Vec<String>,
        #[arg(long)]
        cycles_max: u64,
        #[arg(long)]
        budget_bytes: usize,
    },
}

/// The default seeds, from the workspace this crate sits in.
fn default_seeds() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "scenarios/library",
        "tests/scenarios",
        "tests/whole_machine/regressions",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect()
}

fn read_seeds(paths: &[PathBuf]) -> Result<Vec<Seed>, String> {
    let files = scenarios::batch::scenario_files(paths).map_err(|e| e.to_string())?;
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Seed {
                name: path.display().to_string(),
                bytes,
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    panics::install();
    if let Some(ChildCommand::RunOne {
        index,
        file,
        sets,
        cycles_max,
        budget_bytes,
    }) = cli.child
    {
        alloc::set_budget(budget_bytes);
        return runs::child(index, &file, &sets, cycles_max);
    }
    match fuzz(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mktme-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn fuzz(cli: &Cli) -> Result<ExitCode, String> {
    let seeds = if cli.seeds.is_empty() {
        default_seeds()
    } else {
        cli.seeds.clone()
    };
    let corpus = Corpus::new(read_seeds(&seeds)?);
    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    if let Some(save) = &cli.save {
        let (kind, index) = parse_save(save)?;
        let input = corpus.input(kind, cli.seed, index);
        let path = cli
            .out
            .join(format!("{}-s{}-i{index}.ron", phase_name(kind), cli.seed));
        std::fs::write(&path, &input.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{} ({})", path.display(), input.recipe);
        return Ok(ExitCode::SUCCESS);
    }
    let budget = cli.mem_budget << 20;
    let limit = Duration::from_secs_f64(cli.time_limit);
    println!(
        "mktme-fuzz: seed {}, {} seed files, inputs {}.. (loader {}, runs {}), time limit {:?}, \
         run.cycles_max {}, memory budget {} MiB",
        cli.seed,
        corpus.seeds().len(),
        cli.start,
        cli.loader_inputs,
        cli.run_inputs,
        limit,
        cli.cycles_max,
        cli.mem_budget
    );
    let mut findings = 0;

    // The loader, in this process.
    alloc::set_budget(budget);
    let in_use_before = alloc::in_use();
    let started = Instant::now();
    let loader = loader::Loader::start().map_err(|e| format!("cannot start a thread: {e}"))?;
    let mut tally = Tally::new("loader");
    for index in cli.start..cli.start + cli.loader_inputs {
        alloc::making(index);
        let input = corpus.input(Kind::Loader, cli.seed, index);
        let outcome = match loader.try_one(index, &input.file, &input.bytes, &input.sets, limit) {
            Ok(outcome) => outcome,
            Err(lost) => {
                let finding = match lost {
                    RecvTimeoutError::Timeout => Finding::Hang,
                    RecvTimeoutError::Disconnected => {
                        Finding::Crash("the loader's thread ended".to_owned())
                    }
                };
                save(cli, Kind::Loader, index, &input, &finding)?;
                tally.print(started.elapsed());
                println!("{finding}: loader input {index} (time limit {limit:?}); ending");
                return Ok(ExitCode::from(1));
            }
        };
        let finding = tally.loader(index, input.bytes.len(), &outcome, budget);
        if let Some(finding) = finding {
            findings += 1;
            save(cli, Kind::Loader, index, &input, &finding)?;
            if !cli.keep_going {
                break;
            }
        }
    }
    tally.print(started.elapsed());
    println!(
        "  bytes in use: {in_use_before} before the loader phase, {} after",
        alloc::in_use()
    );
    if findings > 0 && !cli.keep_going {
        return Ok(ExitCode::from(1));
    }

    // The runner, a child process per input.
    alloc::set_budget(usize::MAX);
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let stderr = cli.out.join("child-stderr.txt");
    let child = runs::Child {
        exe: &exe,
        cycles_max: cli.cycles_max,
        budget,
        limit,
        stderr: &stderr,
    };
    let mut tally = Tally::new("runs");
    let tries_max = cli.run_inputs.saturating_mul(20);
    let mut index = cli.start;
    while tally.ran() < cli.run_inputs && index < cli.start + tries_max {
        let input = corpus.input(Kind::Run, cli.seed, index);
        let outcome = child
            .try_one(index, &input.file, &input.bytes, &input.sets)
            .map_err(|e| format!("cannot run a child: {e}"))?;
        if let Some(finding) = tally.run(index, input.bytes.len(), &outcome, budget) {
            findings += 1;
            save(cli, Kind::Run, index, &input, &finding)?;
            if !cli.keep_going {
                break;
            }
        }
        index += 1;
    }
    tally.print(started.elapsed());
    if findings > 0 {
        println!("{findings} finding(s), saved under {}", cli.out.display());
        return Ok(ExitCode::from(1));
    }
    println!("no findings");
    Ok(ExitCode::SUCCESS)
}

fn phase_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Loader => "loader",
        Kind::Run => "run",
    }
}

fn parse_save(text: &str) -> Result<(Kind, u64), String> {
    let bad = || format!("--save {text}: expected loader:I or run:I");
    let (phase, index) = text.split_once(':').ok_or_else(bad)?;
    let kind = match phase {
        "loader" => Kind::Loader,
        "run" => Kind::Run,
        _ => return Err(bad()),
    };
    Ok((kind, index.parse().map_err(|_| bad())?))
}

/// Saves a finding's input and a note saying what happened and how to see it again.
fn save(cli: &Cli, kind: Kind, index: u64, input: &Input, finding: &Finding) -> Result<(), String> {
    let stem = format!(
        "{}-{}-s{}-i{index}",
        finding.name(),
        phase_name(kind),
        cli.seed
    );
    let ron = cli.out.join(format!("{stem}.ron"));
    let note = cli.out.join(format!("{stem}.txt"));
    let sets: String = input.sets.iter().map(|s| format!(" --set '{s}'")).collect();
    let replay = match kind {
        Kind::Loader => format!("mktme-sim check{sets} {}", ron.display()),
        Kind::Run => format!(
            "mktme-sim run{sets} --set run.cycles_max={} {}",
            cli.cycles_max,
            ron.display()
        ),
    };
    let text = format!(
        "{finding}\ninput: {} {index} of seed {} ({})\nmade from: {}\nreplay: {replay}\n",
        phase_name(kind),
        cli.seed,
        input.bytes.len(),
        input.recipe
    );
    std::fs::write(&ron, &input.bytes).map_err(|e| format!("{}: {e}", ron.display()))?;
    std::fs::write(&note, &text).map_err(|e| format!("{}: {e}", note.display()))?;
    println!("FINDING: {}", text.replace('\n', "\n  "));
    Ok(())
}
