//! Pictures of runs, as SVG (plotters' SVG backend): `--plot DIR` on `run`, `trace`,
//! `overhead`, `sweep` and `bench-crypto`.
//!
//! - `read-latency.svg`: the DRAM read-latency histogram (accept to data out of the decrypt
//!   stage, every controller);
//! - `keyid-traffic.svg`: lines read from and written to memory per KeyID;
//! - `bandwidth.svg`: memory traffic over time (lines the hierarchy read and wrote, per bucket
//!   of cycles, in GB/s);
//! - `line-timeline.svg` (scenarios): one DRAM line's life, one lane per KeyID alias and cache
//!   ([`timeline`]);
//! - `overhead-*.svg`, `sweep-<metric>-vs-<axis>.svg`, `bench-crypto.svg`: the studies.
//!
//! Every picture is built as text by a pure function (tests read the series and labels out
//! of it) and written by [`write_all`] through [`crate::output::write_file`].

mod charts;
pub mod timeline;

pub use charts::Series;

use crate::bench_crypto::BenchResults;
use crate::measure::{Measured, Traffic};
use crate::overhead::OverheadReport;
use crate::sweep::Table;
use charts::Labels;
use std::path::{Path, PathBuf};

/// A picture could not be drawn or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(pub String);

/// One picture: its file name and its SVG text.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The file name (`read-latency.svg`).
    pub file: String,
    /// The SVG.
    pub svg: String,
}

/// Writes every picture into `dir`; the paths written, in order.
pub fn write_all(dir: &Path, pictures: &[Picture]) -> Result<Vec<PathBuf>, PlotError> {
    pictures
        .iter()
        .map(|p| {
            let path = dir.join(&p.file);
            crate::output::write_file(&path, p.svg.as_bytes()).map_err(PlotError)?;
            Ok(path)
        })
        .collect()
}

/// Bars of a latency histogram: `(value, count)` in DRAM cycles, scaled by `ns` per cycle,
/// one bar per value when there are few, else up to 60 equal bins.
fn latency_bars(hist: &[(u64, u64)], ns: f64) -> Vec<(f64, f64, f64)> {
    let (Some(first), Some(last)) = (hist.first(), hist.last()) else {
        return Vec::new();
    };
    let span = last.0 - first.0 + 1;
    let bin = span.div_ceil(60).max(1);
    let mut bars: Vec<(f64, f64, f64)> = Vec::new();
    for &(v, n) in hist {
        let b = (v - first.0) / bin;
        let from = (first.0 + b * bin) as f64 * ns;
        match bars.last_mut() {
            Some(last) if last.0 == from => last.2 += n as f64,
            _ => bars.push((from, from + bin as f64 * ns, n as f64)),
        }
    }
    bars
}

/// One run of [`read_latency`]: its name, its histogram (`(cycles, reads)`) and ns per DRAM
/// cycle.
pub type LatencyRun<'a> = (&'a str, &'a [(u64, u64)], f64);

/// The read-latency histogram of one or more runs (`name`, histogram in DRAM cycles, ns per
/// DRAM cycle).
pub fn read_latency(runs: &[LatencyRun<'_>]) -> Result<String, PlotError> {
    let series: Vec<(String, charts::Bars)> = runs
        .iter()
        .map(|(name, hist, ns)| ((*name).to_owned(), latency_bars(hist, *ns)))
        .collect();
    charts::histogram(
        &Labels {
            title: "DRAM read latency",
            x: "read latency (ns, accept to data out of the decrypt stage)",
            y: "reads",
        },
        &series,
    )
}

/// Lines read and written per KeyID.
pub fn keyid_traffic(traffic: &Traffic) -> Result<String, PlotError> {
    let categories: Vec<String> = traffic
        .per_keyid
        .keys()
        .map(|k| format!("KeyID {k}"))
        .collect();
    let column = |w: usize| traffic.per_keyid.values().map(|v| v[w] as f64).collect();
    charts::grouped_bars(
        &Labels {
            title: "Memory traffic per KeyID",
            x: "KeyID",
            y: "lines",
        },
        &categories,
        &[
            ("lines read".to_owned(), column(0)),
            ("lines written".to_owned(), column(1)),
        ],
    )
}

/// Memory traffic over time, in GB/s per bucket.
pub fn bandwidth(traffic: &Traffic, core_clock_mhz: u64) -> Result<String, PlotError> {
    let us = traffic.bucket_cycles as f64 / core_clock_mhz as f64;
    let series = |name: &str, w: usize| Series {
        name: name.to_owned(),
        points: traffic
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64 * us, b[w] as f64 * 64.0 / us / 1000.0))
            .collect(),
    };
    charts::lines(
        &Labels {
            title: "Memory bandwidth over time",
            x: "simulated time (us)",
            y: "GB/s",
        },
        &[series("read", 0), series("write", 1)],
        false,
        &[],
    )
}

/// The pictures every measured run has: read latency, traffic per KeyID, bandwidth over
/// time.
pub fn measured(m: &Measured) -> Result<Vec<Picture>, PlotError> {
    let hist = m.read_latency_cycles();
    Ok(vec![
        Picture {
            file: "read-latency.svg".to_owned(),
            svg: read_latency(&[("reads", &hist, m.dram_ns())])?,
        },
        Picture {
            file: "keyid-traffic.svg".to_owned(),
            svg: keyid_traffic(&m.traffic)?,
        },
        Picture {
            file: "bandwidth.svg".to_owned(),
            svg: bandwidth(&m.traffic, m.core_clock_mhz)?,
        },
    ])
}

/// Events a run keeps for its line timeline (`--plot`), at most.
pub const TIMELINE_EVENTS_MAX: usize = 200_000;

/// A scenario run's pictures: [`measured`]'s and the timeline of `line` (by default the
/// first violation's line, else the line most KeyIDs touched: [`timeline::pick_line`]).
pub fn scenario(
    report: &crate::report::ScenarioReport,
    m: &Measured,
    line: Option<sim_core::DramAddr>,
) -> Result<Vec<Picture>, PlotError> {
    let mut out = measured(m)?;
    let line = line.or_else(|| timeline::pick_line(&m.events, m.layout, &report.violations));
    if let Some(line) = line {
        let t = timeline::Timeline::new(&m.events, m.layout, line, &report.violations, m.cycles);
        out.push(t.picture()?);
    }
    Ok(out)
}

/// The overhead report's pictures: cycles and bandwidth against the engine's throughput, and
/// the read latency with and without the engine.
pub fn overhead(report: &OverheadReport) -> Result<Vec<Picture>, PlotError> {
    let points = |f: &dyn Fn(&crate::overhead::RunFigures) -> f64| {
        std::iter::once(&report.on)
            .chain(&report.sweep)
            .filter_map(|r| r.engine_gbps.map(|g| (g, f(r))))
            .rev()
            .collect::<Vec<_>>()
    };
    let off_cycles = report.off.figures.cycles as f64;
    let cycles = charts::lines(
        &Labels {
            title: "Cycles against the engine's throughput",
            x: "engine throughput per direction (GB/s, log scale)",
            y: "cycles",
        },
        &[
            Series {
                name: "engine on".to_owned(),
                points: points(&|r| r.figures.cycles as f64),
            },
            Series {
                name: "engine off".to_owned(),
                points: points(&|_| off_cycles),
            },
        ],
        true,
        &[],
    )?;
    let bandwidth = charts::lines(
        &Labels {
            title: "Sustained DRAM bandwidth against the engine's throughput",
            x: "engine throughput per direction (GB/s, log scale)",
            y: "DRAM bandwidth (GB/s)",
        },
        &[Series {
            name: "DRAM bandwidth".to_owned(),
            points: points(&|r| r.figures.dram_bandwidth_gbps),
        }],
        true,
        &[],
    )?;
    Ok(vec![
        Picture {
            file: "overhead-cycles.svg".to_owned(),
            svg: cycles,
        },
        Picture {
            file: "overhead-bandwidth.svg".to_owned(),
            svg: bandwidth,
        },
    ])
}

/// A sweep's pictures: each metric against each axis, one line per combination of the other
/// axes' values (at most 8; the rest are left out and the title says so).
pub fn sweep(table: &Table) -> Result<Vec<Picture>, PlotError> {
    let mut out = Vec::new();
    for (a, axis) in table.axes.iter().enumerate() {
        for metric in table.numeric_metrics() {
            let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
            let categorical = !table.axis_is_numeric(a);
            let values = table.axis_values(a);
            for row in &table.rows {
                let Some(y) = row.number(&metric) else {
                    continue;
                };
                let Some(xv) = row.cell(axis) else { continue };
                let x = if categorical {
                    values.iter().position(|v| v == xv).unwrap_or(0) as f64
                } else {
                    xv.as_f64().unwrap_or(0.0)
                };
                let key = table
                    .axes
                    .iter()
                    .filter(|o| *o != axis)
                    .map(|o| {
                        format!(
                            "{o}={}",
                            row.cell(o).map_or("-".to_owned(), crate::sweep::cell_text)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => g.1.push((x, y)),
                    None => groups.push((key, vec![(x, y)])),
                }
            }
            let dropped = groups.len().saturating_sub(8);
            groups.truncate(8);
            let series: Vec<Series> = groups
                .into_iter()
                .map(|(name, mut points)| {
                    points.sort_by(|p, q| p.0.total_cmp(&q.0));
                    Series { name, points }
                })
                .collect();
            let title = if dropped > 0 {
                format!("{metric} against {axis} ({dropped} more lines not shown)")
            } else {
                format!("{metric} against {axis}")
            };
            let names: Vec<String> = if categorical {
                values.iter().map(crate::sweep::cell_text).collect()
            } else {
                Vec::new()
            };
            let svg = charts::lines(
                &Labels {
                    title: &title,
                    x: axis,
                    y: &metric,
                },
                &series,
                false,
                &names,
            )?;
            out.push(Picture {
                file: format!("sweep-{}-vs-{}.svg", file_part(&metric), file_part(axis)),
                svg,
            });
        }
    }
    Ok(out)
}

/// `machine.caches.l1d.size` as a file-name part: `machine_caches_l1d_size`.
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// bench-crypto's picture: throughput by batch size, one line per thread count, and pages.
pub fn bench_crypto(results: &BenchResults) -> Result<Vec<Picture>, PlotError> {
    let series: Vec<Series> = results
        .curves()
        .into_iter()
        .map(|(name, points)| Series { name, points })
        .collect();
    let svg = charts::lines(
        &Labels {
            title: "Host AES-XTS-128 throughput",
            x: "lines per encrypt_lines call (log scale)",
            y: "GB/s",
        },
        &series,
        true,
        &[],
    )?;
    Ok(vec![Picture {
        file: "bench-crypto.svg".to_owned(),
        svg,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_bars_bin_wide_histograms() {
        let few = latency_bars(&[(10, 2), (12, 3)], 0.5);
        assert_eq!(few, vec![(5.0, 5.5, 2.0), (6.0, 6.5, 3.0)]);
        let wide: Vec<(u64, u64)> = (0..600).map(|v| (v, 1)).collect();
        let bars = latency_bars(&wide, 1.0);
        assert_eq!(bars.len(), 60);
        assert!(bars.iter().all(|b| b.2 == 10.0));
    }
}
