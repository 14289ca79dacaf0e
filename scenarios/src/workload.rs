//! A workload to run many times under changed machines: a validated scenario, or a memory
//! trace on a whole machine. The encryption-overhead report and sweeps run their points
//! through here, so a scenario and a trace are measured alike ([`crate::measure`]).

use crate::formats::trace::{self, TraceFormat};
use crate::measure::{MeasureOptions, Measured, TrafficWatch};
use crate::report::ScenarioReport;
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;
use crate::trace_report::{self, FullSystemOptions, FullSystemReport};
use cpu_model::trace_run::TraceRunError;
use cpu_model::{Machine, MachineConfig};
use sim_core::KeyId;
use std::path::{Path, PathBuf};

/// A workload.
#[derive(Clone, Debug)]
pub enum Workload {
    /// A scenario (its machine, programs, seed and attacker).
    Scenario(Box<Scenario>),
    /// A memory trace on a whole machine.
    Trace(Box<TraceWorkload>),
}

/// A memory trace on a whole machine, as `mktme-sim trace` runs it.
#[derive(Clone, Debug)]
pub struct TraceWorkload {
    /// The trace file.
    pub path: PathBuf,
    /// Its format (`None`: guessed from the name, then the contents).
    pub format: Option<TraceFormat>,
    /// The machine.
    pub config: MachineConfig,
    /// How the trace runs (the machine's name, seed, limit, KeyID, ...).
    pub options: FullSystemOptions,
}

/// A workload that cannot run: an impossible machine, an unreadable trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorkloadError(pub String);

/// What one run gave.
pub struct Outcome {
    /// What it measured.
    pub measured: Measured,
    /// A scenario's report.
    pub scenario: Option<ScenarioReport>,
    /// A trace's report.
    pub trace: Option<FullSystemReport>,
}

/// A machine named as `mktme-sim trace --machine` takes it: a RON machine file when `spec`
/// ends in `.ron` or names an existing file, else a preset.
pub fn machine_from_spec(spec: &str) -> Result<MachineConfig, WorkloadError> {
    let path = Path::new(spec);
    if spec.ends_with(".ron") || path.is_file() {
        crate::machine_file::load(path).map_err(|e| WorkloadError(e.to_string()))
    } else {
        MachineConfig::preset(spec).map_err(|e| WorkloadError(format!("--machine: {e}")))
    }
}

/// How a trace workload runs, as `mktme-sim trace`'s options say it.
#[derive(Clone, Debug)]
pub struct TraceSettings {
    /// The machine: a preset or a RON machine file.
    pub machine: String,
    /// The trace's format (`None`: guessed).
    pub format: Option<TraceFormat>,
    /// The seed.
    pub seed: u64,
    /// Accesses to run (`None`: all).
    pub limit: Option<u64>,
    /// The KeyID of every access.
    pub keyid: u16,
    /// Line pieces in flight.
    pub outstanding: usize,
    /// Trace addresses are DRAM addresses.
    pub physical: bool,
    /// Stop past this core cycle (`None`: the trace runner's default cap).
    pub cycles_max: Option<u64>,
}

impl Default for TraceSettings {
    fn default() -> TraceSettings {
        TraceSettings {
            machine: "default".to_owned(),
            format: None,
            seed: 0,
            limit: None,
            keyid: 0,
            outstanding: 8,
            physical: false,
            cycles_max: None,
        }
    }
}

impl Workload {
    /// A scenario file (`.ron`, read with `overrides`) or else a trace run as `trace` says.
    pub fn open(
        path: &Path,
        overrides: &[crate::validate::Override],
        trace: &TraceSettings,
    ) -> Result<Workload, WorkloadError> {
        if path.extension().is_some_and(|e| e == "ron") {
            let scenario = crate::validate::load_with(path, overrides)
                .map_err(|e| WorkloadError(e.to_string()))?;
            return Ok(Workload::Scenario(Box::new(scenario)));
        }
        if !overrides.is_empty() {
            return Err(WorkloadError(format!(
                "{}: --set sets fields of scenario files; a trace's machine is set with \
                 --machine (a preset or a machine file)",
                path.display()
            )));
        }
        if trace.outstanding == 0 {
            return Err(WorkloadError(
                "--outstanding 0: the trace core needs at least one access in flight".to_owned(),
            ));
        }
        Ok(Workload::Trace(Box::new(TraceWorkload {
            path: path.to_owned(),
            format: trace.format,
            config: machine_from_spec(&trace.machine)?,
            options: FullSystemOptions {
                machine: trace.machine.clone(),
                seed: trace.seed,
                limit: trace.limit,
                keyid: trace.keyid,
                outstanding: trace.outstanding,
                physical: trace.physical,
                cycles_max: trace.cycles_max,
                shortcuts: true,
            },
        })))
    }

    /// The machine it runs on.
    pub fn machine(&self) -> &MachineConfig {
        match self {
            Workload::Scenario(s) => &s.system.machine,
            Workload::Trace(t) => &t.config,
        }
    }

    /// The machine it runs on, to change.
    pub fn machine_mut(&mut self) -> &mut MachineConfig {
        match self {
            Workload::Scenario(s) => &mut s.system.machine,
            Workload::Trace(t) => &mut t.config,
        }
    }

    /// The name reports give it: the scenario's file or the trace's path.
    pub fn name(&self) -> String {
        match self {
            Workload::Scenario(s) => s.file.clone(),
            Workload::Trace(t) => t.path.display().to_string(),
        }
    }

    /// Runs it once and measures it.
    pub fn run(&self, measure: MeasureOptions) -> Result<Outcome, WorkloadError> {
        match self {
            Workload::Scenario(s) => {
                let (report, measured) =
                    runner::run_measured(s, &RunOptions::default(), Some(measure))
                        .map_err(|e| WorkloadError(e.to_string()))?;
                Ok(Outcome {
                    measured: measured.expect("measured on request"),
                    scenario: Some(report),
                    trace: None,
                })
            }
            Workload::Trace(t) => t.run(),
        }
    }
}

impl TraceWorkload {
    fn run(&self) -> Result<Outcome, WorkloadError> {
        let error = |e: String| WorkloadError(format!("{}: {e}", self.path.display()));
        self.config
            .memory
            .layout
            .check_keyid(KeyId::new(self.options.keyid))
            .map_err(|e| error(format!("keyid: {e}")))?;
        let mut machine =
            Machine::new(&self.config, self.options.seed).map_err(|e| error(e.to_string()))?;
        let watch = TrafficWatch::new(self.config.memory.layout);
        machine.caches_mut().attach_observer(watch.clone());
        let reader = trace::open(&self.path, self.format).map_err(|e| error(e.to_string()))?;
        let name = self.path.display().to_string();
        let report =
            trace_report::run_full_system(&name, &mut machine, &self.config, reader, &self.options)
                .map_err(|e| match e {
                    TraceRunError::Trace(e) => WorkloadError(e.to_string()),
                    e => error(e.to_string()),
                })?;
        Ok(Outcome {
            measured: Measured::of_machine(
                &machine,
                &self.config,
                report.end_cycle(),
                watch.traffic(),
            ),
            scenario: None,
            trace: Some(report),
        })
    }
}
