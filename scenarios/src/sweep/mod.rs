//! `mktme-sim sweep`: one workload (a scenario, or a trace on a machine) run at many points
//! of a parameter space, with a row of metrics per point (`docs/sweeps.md`).
//!
//! A sweep file (RON) names the base and either axes, whose cartesian product are the points
//! (the last axis varying fastest), or a list of points. A point sets fields by the same
//! paths as `mktme-sim run --set` (`machine.caches.l1d.size`, `kernel.keyids`, `seed`); for a
//! trace, `machine.*` paths set the machine's fields, `seed` the seed and `trace.limit`,
//! `trace.keyid`, `trace.outstanding`, `trace.physical`, `trace.cycles_max` the trace's options.
//!
//! Points are independent runs, each deterministic: they run in parallel (`jobs`) and their
//! rows are put back in point order, so the results do not depend on the thread count.
//! `--shard I/N` runs the points whose index is `I-1` modulo `N` (round robin, so shards cost
//! alike when an axis makes runs longer); [`Table::merge`] puts shards back together.

mod table;

pub use table::{Manifest, Row, Table, TableError, cell_text, text_hash};

use crate::measure::MeasureOptions;
use crate::trace_report::FullSystemOptions;
use crate::validate::{self, Override, apply_to_text, may_be_text};
use crate::workload::{Outcome, TraceSettings, TraceWorkload, Workload};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A sweep file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    trace: Option<TraceBase>,
    #[serde(default)]
    axes: Vec<AxisFile>,
    #[serde(default)]
    points: Vec<BTreeMap<String, ron::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceBase {
    file: String,
    #[serde(default = "default_machine")]
    machine: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    keyid: u16,
    #[serde(default = "default_outstanding")]
    outstanding: usize,
    #[serde(default)]
    physical: bool,
    #[serde(default)]
    cycles_max: Option<u64>,
}

fn default_machine() -> String {
    "default".to_owned()
}

fn default_outstanding() -> usize {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AxisFile {
    path: String,
    values: Vec<ron::Value>,
}

/// A sweep file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SweepError(pub String);

/// What a base is.
#[derive(Clone, Debug)]
enum Base {
    /// A scenario file.
    Scenario(PathBuf),
    /// A trace: its settings, and the machine file's text and folder (or a preset's).
    Trace {
        path: PathBuf,
        settings: TraceSettings,
        machine_text: String,
        machine_file: String,
        machine_dir: PathBuf,
    },
}

/// One value a point gives a path: the `--set` text and the value as the results show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// The path.
    pub path: String,
    /// `--set`'s VALUE text.
    pub text: String,
    /// The value in the results.
    pub shown: Value,
}

/// A validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Its name.
    pub name: String,
    /// What it studies.
    pub description: String,
    base: Base,
    /// The axis columns, in order.
    pub axes: Vec<String>,
    /// Every point's settings, in point order.
    pub points: Vec<Vec<Setting>>,
    file_hash: String,
}

/// `--shard I/N`: the points whose index is `I-1` modulo `N`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Reads `I/N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text}: expected I/N with 1 <= I <= N, such as 2/8");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether point `i` is this shard's.
    pub fn has(self, i: usize) -> bool {
        i % self.count as usize == (self.index - 1) as usize
    }
}

/// The `--set` text and shown value of a sweep file's value.
fn setting(path: &str, v: &ron::Value) -> Result<Setting, SweepError> {
    let (text, shown) = match v {
        ron::Value::String(s) => (s.clone(), Value::String(s.clone())),
        ron::Value::Bool(b) => (b.to_string(), Value::Bool(*b)),
        ron::Value::Number(_) => {
            let text = ron::to_string(v).map_err(|e| SweepError(e.to_string()))?;
            let shown = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text.clone()));
            (text, shown)
        }
        other => {
            let text = ron::to_string(other).map_err(|e| SweepError(e.to_string()))?;
            (text.clone(), Value::String(text))
        }
    };
    Override::parse(&format!("{path}={text}")).map_err(|e| SweepError(format!("{path}: {e}")))?;
    Ok(Setting {
        path: path.to_owned(),
        text,
        shown,
    })
}

impl Sweep {
    /// Reads and validates a sweep file: the base exists, every point's settings are
    /// accepted (each point's workload is built, so a bad value is reported before anything
    /// runs).
    pub fn load(path: &Path) -> Result<Sweep, SweepError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SweepError(format!("{file}: cannot read: {e}")))?;
        let sweep = Sweep::parse(&text, &file, path.parent().unwrap_or(Path::new("")))?;
        for (i, _) in sweep.points.iter().enumerate() {
            sweep.workload(i)?;
        }
        Ok(sweep)
    }

    /// Reads a sweep file's text; relative paths are taken from `dir`.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<Sweep, SweepError> {
        let f: SweepFile = crate::machine_file::ron_options()
            .from_str(text)
            .map_err(|e| SweepError(format!("{file}:{}: {}", e.span.start, e.code)))?;
        let err = |m: String| SweepError(format!("{file}: {m}"));
        let base = match (&f.scenario, &f.trace) {
            (Some(s), None) => Base::Scenario(dir.join(s)),
            (None, Some(t)) => {
                let format = match t.format.as_deref() {
                    None => None,
                    Some("mtrace") => Some(crate::formats::trace::TraceFormat::Mtrace),
                    Some("lackey") => Some(crate::formats::trace::TraceFormat::Lackey),
                    Some("champsim") => Some(crate::formats::trace::TraceFormat::Champsim),
                    Some(x) => {
                        return Err(err(format!(
                            "trace.format `{x}`: expected mtrace, lackey or champsim"
                        )));
                    }
                };
                let machine_path = dir.join(&t.machine);
                let (machine_text, machine_file, machine_dir) =
                    if t.machine.ends_with(".ron") || machine_path.is_file() {
                        let text = std::fs::read_to_string(&machine_path).map_err(|e| {
                            err(format!("{}: cannot read: {e}", machine_path.display()))
                        })?;
                        let dir = machine_path.parent().unwrap_or(Path::new("")).to_owned();
                        (text, machine_path.display().to_string(), dir)
                    } else {
                        (
                            format!("(preset: {:?})", t.machine),
                            format!("machine preset {}", t.machine),
                            dir.to_owned(),
                        )
                    };
                Base::Trace {
                    path: dir.join(&t.file),
                    settings: TraceSettings {
                        machine: t.machine.clone(),
                        format,
                        seed: t.seed,
                        limit: t.limit,
                        keyid: t.keyid,
                        outstanding: t.outstanding,
                        physical: t.physical,
                        cycles_max: t.cycles_max,
                    },
                    machine_text,
                    machine_file,
                    machine_dir,
                }
            }
            _ => {
                return Err(err(
                    "name exactly one base: `scenario: \"FILE.ron\"` or `trace: (file: ...)`"
                        .to_owned(),
                ));
            }
        };
        let (axes, points) = match (f.axes.is_empty(), f.points.is_empty()) {
            (false, true) => {
                let mut points: Vec<Vec<Setting>> = vec![Vec::new()];
                for a in &f.axes {
                    if a.values.is_empty() {
                        return Err(err(format!("axis {}: no values", a.path)));
                    }
                    let values = a
                        .values
                        .iter()
                        .map(|v| setting(&a.path, v))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| err(e.0))?;
                    points = points
                        .into_iter()
                        .flat_map(|p| {
                            values.iter().map(move |v| {
                                let mut p = p.clone();
                                p.push(v.clone());
                                p
                            })
                        })
                        .collect();
                }
                (
                    f.axes.iter().map(|a| a.path.clone()).collect::<Vec<_>>(),
                    points,
                )
            }
            (true, false) => {
                let mut axes: Vec<String> = Vec::new();
                let mut points = Vec::new();
                for p in &f.points {
                    let mut settings = Vec::new();
                    for (path, v) in p {
                        if !axes.contains(path) {
                            axes.push(path.clone());
                        }
                        settings.push(setting(path, v).map_err(|e| err(e.0))?);
                    }
                    points.push(settings);
                }
                (axes, points)
            }
            _ => {
                return Err(err(
                    "give either `axes: [(path: ..., values: [...]), ...]` or `points: [{...}, \
                     ...]`, not both and not neither"
                        .to_owned(),
                ));
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for a in &axes {
            if !seen.insert(a) {
                return Err(err(format!("axis {a} is given twice")));
            }
            if METRICS.contains(&a.as_str()) || a == "point" {
                return Err(err(format!("axis {a} has a metric's name")));
            }
        }
        Ok(Sweep {
            name: f.name,
            description: f.description,
            base,
            axes,
            points,
            file_hash: text_hash(text),
        })
    }

    /// The workload of point `i`.
    pub fn workload(&self, i: usize) -> Result<Workload, SweepError> {
        let settings = &self.points[i];
        let at = |m: String| SweepError(format!("{} point {i}: {m}", self.name));
        let overrides: Vec<Override> = settings
            .iter()
            .map(|s| Override {
                path: s.path.clone(),
                value: s.text.clone(),
            })
            .collect();
        match &self.base {
            Base::Scenario(path) => validate::load_with(path, &overrides)
                .map(|s| Workload::Scenario(Box::new(s)))
                .map_err(|e| at(e.to_string())),
            Base::Trace {
                path,
                settings: base,
                machine_text,
                machine_file,
                machine_dir,
            } => {
                let mut t = base.clone();
                let mut machine = Vec::new();
                for (s, o) in settings.iter().zip(&overrides) {
                    let number = || {
                        s.text.parse::<u64>().map_err(|_| {
                            at(format!("{}: `{}` is not a whole number", s.path, s.text))
                        })
                    };
                    match s.path.as_str() {
                        "seed" => t.seed = number()?,
                        "trace.limit" => t.limit = Some(number()?),
                        "trace.keyid" => {
                            t.keyid = u16::try_from(number()?)
                                .map_err(|_| at(format!("trace.keyid {} is too large", s.text)))?;
                        }
                        "trace.outstanding" => t.outstanding = number()? as usize,
                        "trace.physical" => t.physical = s.text == "true",
                        "trace.cycles_max" => t.cycles_max = Some(number()?),
                        p => match p.strip_prefix("machine.") {
                            Some(rest) => machine.push(Override {
                                path: rest.to_owned(),
                                value: o.value.clone(),
                            }),
                            None => {
                                return Err(at(format!(
                                    "{p}: a trace sweep sets machine.*, seed, trace.limit, \
                                     trace.keyid, trace.outstanding, trace.physical or trace.cycles_max"
                                )));
                            }
                        },
                    }
                }
                let config = if machine.is_empty() {
                    crate::machine_file::parse_in(machine_text, machine_file, machine_dir)
                        .map_err(|e| at(e.to_string()))?
                } else {
                    machine_with(machine_text, machine_file, machine_dir, &machine).map_err(at)?
                };
                Ok(Workload::Trace(Box::new(TraceWorkload {
                    path: path.clone(),
                    format: t.format,
                    config,
                    options: FullSystemOptions {
                        machine: t.machine.clone(),
                        seed: t.seed,
                        limit: t.limit,
                        keyid: t.keyid,
                        outstanding: t.outstanding,
                        physical: t.physical,
                        cycles_max: t.cycles_max,
                        shortcuts: true,
                    },
                })))
            }
        }
    }

    /// The metric columns of this sweep's base.
    pub fn metrics(&self) -> Vec<String> {
        let skip = usize::from(matches!(self.base, Base::Trace { .. })) * 2;
        METRICS[skip..].iter().map(|m| (*m).to_owned()).collect()
    }

    /// Runs the shard's points, `jobs` at a time (0: one per core), calling `progress(done,
    /// total)` as each finishes; the shard's table.
    pub fn run(
        &self,
        shard: Shard,
        jobs: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Table, SweepError> {
        let mine: Vec<usize> = (0..self.points.len()).filter(|&i| shard.has(i)).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .map_err(|e| SweepError(format!("cannot start the worker threads: {e}")))?;
        let done = AtomicUsize::new(0);
        let total = mine.len();
        progress(0, total);
        let rows: Vec<Result<Row, SweepError>> = pool.install(|| {
            mine.par_iter()
                .map(|&i| {
                    let outcome = self
                        .workload(i)?
                        .run(MeasureOptions::default())
                        .map_err(|e| SweepError(format!("{} point {i}: {e}", self.name)))?;
                    let row = self.row(i, &outcome);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    Ok(row)
                })
                .collect()
        });
        let rows = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Table {
            manifest: Manifest {
                format: "mktme-sim-sweep".to_owned(),
                version: 1,
                sweep: self.name.clone(),
                file_hash: self.file_hash.clone(),
                points: self.points.len() as u64,
                axes: self.axes.clone(),
                metrics: self.metrics(),
                shard: (shard != Shard::ALL).then(|| format!("{}/{}", shard.index, shard.count)),
            },
            axes: self.axes.clone(),
            metrics: self.metrics(),
            rows,
        })
    }

    /// Point `i`'s row.
    fn row(&self, i: usize, outcome: &Outcome) -> Row {
        let mut values = Map::new();
        for s in &self.points[i] {
            values.insert(s.path.clone(), s.shown.clone());
        }
        for (name, v) in metrics(outcome) {
            if self.metrics().iter().any(|m| m == name) {
                values.insert(name.to_owned(), v);
            }
        }
        Row {
            point: i as u64,
            values,
        }
    }
}

/// A machine file's text with `overrides` applied (paths without `machine.`); a bare word
/// that does not read as a value is tried as text, as `--set` does.
fn machine_with(
    text: &str,
    file: &str,
    dir: &Path,
    overrides: &[Override],
) -> Result<cpu_model::MachineConfig, String> {
    let mut quoted: Vec<bool> = overrides.iter().map(Override::needs_quotes).collect();
    let mut first_error = None;
    loop {
        let edited = apply_to_text(text, file, overrides, &quoted).map_err(|e| e.to_string())?;
        match crate::machine_file::parse_in(&edited, file, dir) {
            Ok(c) => return Ok(c),
            Err(e) => {
                let e = e.to_string();
                let retry: Vec<bool> = overrides.iter().map(may_be_text).collect();
                if first_error.is_some() || retry == quoted || !retry.contains(&true) {
                    return Err(format!(
                        "{} (the machine with {})",
                        first_error.unwrap_or(e),
                        overrides
                            .iter()
                            .map(|o| format!("{}={}", o.path, o.value))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                first_error = Some(e);
                quoted = retry;
            }
        }
    }
}

/// The metric columns, in order (the first two only for scenarios).
pub const METRICS: [&str; 15] = [
    "passed",
    "violations",
    "cycles",
    "read_latency_mean_ns",
    "read_latency_p50_ns",
    "read_latency_p95_ns",
    "read_latency_p99_ns",
    "dram_bandwidth_gbps",
    "dram_reads",
    "dram_writes",
    "l1d_hit_rate",
    "llc_hit_rate",
    "decrypt_utilisation",
    "decrypt_wait_mean_ns",
    "encrypt_utilisation",
];

/// A figure rounded to 4 decimals (what the results files keep).
fn figure(v: f64) -> Value {
    let r = (v * 1e4).round() / 1e4;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// A run's metrics, by name.
fn metrics(outcome: &Outcome) -> Vec<(&'static str, Value)> {
    let m = &outcome.measured;
    let f = m.figures();
    let count = |name: &str| m.stats.get_count(name).unwrap_or(0);
    let rate = |level: &str| {
        let accesses = count(&format!("{level}.accesses"));
        (accesses > 0).then(|| count(&format!("{level}.hits")) as f64 / accesses as f64)
    };
    let opt = |v: Option<f64>| v.map_or(Value::Null, figure);
    let mut out = Vec::new();
    if let Some(r) = &outcome.scenario {
        out.push(("passed", Value::Bool(r.passed)));
        out.push((
            "violations",
            Value::from(r.violations.len() as u64 + r.violations_not_kept),
        ));
    }
    let l = f.read_latency_ns;
    out.extend([
        ("cycles", Value::from(f.cycles)),
        ("read_latency_mean_ns", opt(l.mean)),
        ("read_latency_p50_ns", opt(l.p50)),
        ("read_latency_p95_ns", opt(l.p95)),
        ("read_latency_p99_ns", opt(l.p99)),
        ("dram_bandwidth_gbps", figure(f.dram_bandwidth_gbps)),
        (
            "dram_reads",
            Value::from(crate::measure::controller_sum(&m.stats, "dram.read_cmds")),
        ),
        (
            "dram_writes",
            Value::from(crate::measure::controller_sum(&m.stats, "dram.write_cmds")),
        ),
        ("l1d_hit_rate", opt(rate("l1d"))),
        ("llc_hit_rate", opt(rate("llc"))),
        ("decrypt_utilisation", opt(f.decrypt.map(|e| e.utilisation))),
        (
            "decrypt_wait_mean_ns",
            opt(f.decrypt.map(|e| e.wait_mean_ns)),
        ),
        ("encrypt_utilisation", opt(f.encrypt.map(|e| e.utilisation))),
    ]);
    out
}
