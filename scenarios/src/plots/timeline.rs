//! The line timeline: one DRAM line's life in a run, read off the merged event stream the
//! coherency checker is fed (`cpu_model::System::record_events`).
//!
//! One lane per KeyID alias and cache (core 0's L1D, its L2, ..., the LLC), a bar wherever
//! that alias had a copy there (light while clean, dark once dirty), and one lane per alias
//! for memory: its reads from DRAM and its write-backs. Stores are marked where they land;
//! flushes, PCONFIG (a key-table change of an alias's KeyID), attacks on the line's DIMM
//! cells and the checker's violations are vertical lines across every lane, so two dirty
//! aliases, or a write-back landing after the other alias's, show at a glance.

use super::charts::SIZE;
use super::{Picture, PlotError};
use crate::report::ViolationReport;
use cache_model::{CacheEvent, CacheId, FlushKind, Level};
use cpu_model::SystemEvent;
use plotters::prelude::*;
use sim_core::{AddressLayout, DramAddr, MemEvent};
use std::collections::BTreeMap;

/// What a lane is: an alias's copy in one cache, or the alias's traffic with memory.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Place {
    /// A cache: (core, level) with the LLC after every core.
    Cache(u32, u8),
    /// Memory.
    Memory,
}

/// A lane's bar: from, to (cycles), dirty.
type Bar = (u64, u64, bool);

/// A vertical line across the lanes.
#[derive(Clone, Debug)]
struct Mark {
    cycle: u64,
    label: String,
    color: RGBColor,
}

/// One lane's bars and point markers (`cycle`, kind).
type Lane = (Vec<Bar>, Vec<(u64, Point)>);

/// A line's timeline, ready to draw.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The DRAM line.
    line: u64,
    /// Lanes in order, with their bars and point markers (`cycle`, kind).
    lanes: BTreeMap<(u16, Place), Lane>,
    marks: Vec<Mark>,
    first: u64,
    last: u64,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Point {
    Store,
    Read,
    Writeback,
}

fn place(cache: CacheId) -> Place {
    let level = match cache.level {
        Level::L1d => 0,
        Level::L2 => 1,
        Level::Llc => 2,
    };
    Place::Cache(cache.core.map_or(u32::MAX, |c| c.get()), level)
}

fn lane_name(keyid: u16, place: Place) -> String {
    match place {
        Place::Cache(u32::MAX, _) => format!("KeyID {keyid} LLC"),
        Place::Cache(core, 0) => format!("KeyID {keyid} core{core} L1D"),
        Place::Cache(core, _) => format!("KeyID {keyid} core{core} L2"),
        Place::Memory => format!("KeyID {keyid} DRAM"),
    }
}

/// A DRAM line's address as `--plot-line` takes it: `0x`-hex or decimal.
pub fn parse_line(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    }
    .map_err(|_| format!("`{text}`: expected an address such as 0x10000"))
}

/// The line a timeline should show by default: the first violation's, else the line whose
/// events name the most KeyIDs (then the most events, then the lowest address).
pub fn pick_line(
    events: &[SystemEvent],
    layout: AddressLayout,
    violations: &[ViolationReport],
) -> Option<DramAddr> {
    if let Some(v) = violations.first() {
        let hex = v.line.trim_start_matches("0x");
        if let Ok(a) = u64::from_str_radix(hex, 16) {
            return Some(DramAddr::new(a));
        }
    }
    let mut seen: BTreeMap<u64, (std::collections::BTreeSet<u16>, u64)> = BTreeMap::new();
    for e in events {
        if let SystemEvent::Cache(c) = e
            && let Some(line) = c.line()
        {
            let entry = seen.entry(layout.line_dram_addr(line).raw()).or_default();
            entry.0.insert(layout.line_keyid(line).get());
            entry.1 += 1;
        }
    }
    seen.into_iter()
        .max_by(|a, b| {
            (a.1.0.len(), a.1.1)
                .cmp(&(b.1.0.len(), b.1.1))
                .then(b.0.cmp(&a.0))
        })
        .map(|(a, _)| DramAddr::new(a))
}

impl Timeline {
    /// The timeline of DRAM line `line` (its address, KeyID bits cleared) in `events`, with
    /// the checker's `violations` on it; `end` closes the copies still cached.
    pub fn new(
        events: &[SystemEvent],
        layout: AddressLayout,
        line: DramAddr,
        violations: &[ViolationReport],
        end: u64,
    ) -> Timeline {
        let line = line.line_base();
        let mut t = Timeline {
            line: line.raw(),
            first: u64::MAX,
            ..Timeline::default()
        };
        // Open copies: (keyid, place) -> (since, dirty).
        let mut open: BTreeMap<(u16, Place), (u64, bool)> = BTreeMap::new();
        let mut keyids = std::collections::BTreeSet::new();
        for e in events {
            let c = match e {
                SystemEvent::Memory(MemEvent::DimmWritten {
                    cycle, line: at, ..
                }) if at.line_base() == line => {
                    t.mark(
                        cycle.get(),
                        "DIMM cells written".to_owned(),
                        RGBColor(230, 120, 0),
                    );
                    continue;
                }
                SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                    // Shown only for the line's aliases, known by the end (filtered below).
                    t.marks.push(Mark {
                        cycle: cycle.get(),
                        label: format!("PCONFIG KeyID {}", keyid.get()),
                        color: RGBColor(0, 0, 0),
                    });
                    continue;
                }
                SystemEvent::Memory(_) => continue,
                SystemEvent::Cache(c) => c,
            };
            if let CacheEvent::FlushStart {
                cycle,
                kind: FlushKind::Wbinvd,
                ..
            } = c
            {
                t.mark(cycle.get(), "WBINVD".to_owned(), RGBColor(120, 60, 160));
                continue;
            }
            let Some(l) = c.line() else { continue };
            if layout.line_dram_addr(l).line_base() != line {
                continue;
            }
            let keyid = layout.line_keyid(l).get();
            keyids.insert(keyid);
            let cycle = c.cycle().get();
            t.first = t.first.min(cycle);
            t.last = t.last.max(cycle);
            match *c {
                CacheEvent::Fill { cache, dirty, .. } => {
                    let key = (keyid, place(cache));
                    if let Some((since, was)) = open.insert(key, (cycle, dirty)) {
                        t.bar(key, (since, cycle, was));
                    }
                    t.lane(key);
                }
                CacheEvent::Remove { cache, .. } => {
                    let key = (keyid, place(cache));
                    if let Some((since, dirty)) = open.remove(&key) {
                        t.bar(key, (since, cycle, dirty));
                    }
                }
                CacheEvent::Store { core, .. } => {
                    let key = (keyid, Place::Cache(core.get(), 0));
                    match open.get_mut(&key) {
                        Some((since, dirty)) if !*dirty => {
                            let was = (*since, cycle, false);
                            *since = cycle;
                            *dirty = true;
                            t.bar(key, was);
                        }
                        _ => {}
                    }
                    t.lane(key).1.push((cycle, Point::Store));
                }
                CacheEvent::MemRead { .. } => {
                    t.lane((keyid, Place::Memory)).1.push((cycle, Point::Read));
                }
                CacheEvent::MemWriteback { .. } => {
                    t.lane((keyid, Place::Memory))
                        .1
                        .push((cycle, Point::Writeback));
                }
                CacheEvent::FlushStart { kind, .. } => {
                    let name = match kind {
                        FlushKind::Clflush => "CLFLUSH",
                        FlushKind::Clflushopt => "CLFLUSHOPT",
                        FlushKind::Clwb => "CLWB",
                        FlushKind::Wbinvd => "WBINVD",
                    };
                    t.mark(
                        cycle,
                        format!("{name} KeyID {keyid}"),
                        RGBColor(120, 60, 160),
                    );
                }
                CacheEvent::Load { .. } | CacheEvent::FlushDone { .. } => {}
            }
        }
        let end = end.max(t.last);
        for (key, (since, dirty)) in open {
            t.bar(key, (since, end, dirty));
        }
        t.marks.retain(|m| {
            !m.label.starts_with("PCONFIG")
                || keyids
                    .iter()
                    .any(|k| m.label == format!("PCONFIG KeyID {k}"))
        });
        for v in violations {
            let hex = v.line.trim_start_matches("0x");
            if u64::from_str_radix(hex, 16).ok() == Some(line.raw()) {
                t.mark(
                    v.cycle,
                    format!("violation: {}", v.kind),
                    RGBColor(220, 0, 0),
                );
            }
        }
        for m in &t.marks {
            t.first = t.first.min(m.cycle);
            t.last = t.last.max(m.cycle);
        }
        if t.first == u64::MAX {
            t.first = 0;
        }
        t.last = t.last.max(end.min(t.last.max(t.first) + 1));
        t
    }

    fn lane(&mut self, key: (u16, Place)) -> &mut (Vec<Bar>, Vec<(u64, Point)>) {
        self.lanes.entry(key).or_default()
    }

    fn bar(&mut self, key: (u16, Place), bar: Bar) {
        self.lane(key).0.push(bar);
    }

    fn mark(&mut self, cycle: u64, label: String, color: RGBColor) {
        self.marks.push(Mark {
            cycle,
            label,
            color,
        });
    }

    /// The lanes' names, top to bottom.
    pub fn lane_names(&self) -> Vec<String> {
        self.lanes.keys().map(|&(k, p)| lane_name(k, p)).collect()
    }

    /// The picture.
    pub fn picture(&self) -> Result<Picture, PlotError> {
        Ok(Picture {
            file: "line-timeline.svg".to_owned(),
            svg: self.svg()?,
        })
    }

    /// The SVG.
    pub fn svg(&self) -> Result<String, PlotError> {
        let err = |e: &dyn std::fmt::Debug| PlotError(format!("cannot draw: {e:?}"));
        let names = self.lane_names();
        let n = names.len().max(1);
        let height = (140 + 44 * n as u32).max(SIZE.1 / 2);
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (SIZE.0 + 200, height)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            let span = (self.last - self.first).max(1);
            let x0 = self.first.saturating_sub(span / 20);
            let x1 = self.last + span / 20 + 1;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "DRAM line {:#x}: copies per KeyID alias and cache",
                        self.line
                    ),
                    ("sans-serif", 20),
                )
                .margin(12)
                .margin_right(230)
                .x_label_area_size(44)
                .y_label_area_size(170)
                .build_cartesian_2d(x0..x1, (0..n).into_segmented())
                .map_err(|e| err(&e))?;
            // Lane 0 at the top.
            let row = |i: usize| n - 1 - i;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc("cycle")
                .y_desc("")
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n => {
                        names.get(n - 1 - *i).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .draw()
                .map_err(|e| err(&e))?;
            let clean = RGBColor(140, 190, 230);
            let dirty = RGBColor(230, 120, 40);
            // The legend, drawn in the right margin once everything is placed.
            let mut legend: Vec<(&'static str, RGBColor, bool)> = Vec::new();
            for (i, (bars, points)) in self.lanes.values().enumerate() {
                let y = row(i);
                for &(a, b, d) in bars {
                    let color = if d { dirty } else { clean };
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [
                                (a, SegmentValue::Exact(y)),
                                (b.max(a + 1), SegmentValue::Exact(y + 1)),
                            ],
                            color.filled(),
                        )))
                        .map_err(|e| err(&e))?;
                    let name = if d { "dirty copy" } else { "clean copy" };
                    if !legend.iter().any(|l| l.0 == name) {
                        legend.push((name, color, true));
                    }
                }
                for &(cycle, p) in points {
                    let at = (cycle, SegmentValue::CenterOf(y));
                    let (label, color) = match p {
                        Point::Store => ("store (cross)", RGBColor(0, 110, 0)),
                        Point::Read => ("read from DRAM (dot)", RGBColor(31, 119, 180)),
                        Point::Writeback => ("write-back to DRAM (triangle)", RGBColor(200, 0, 0)),
                    };
                    match p {
                        Point::Store => chart.draw_series(std::iter::once(Cross::new(
                            at,
                            5,
                            color.stroke_width(2),
                        ))),
                        Point::Read => {
                            chart.draw_series(std::iter::once(Circle::new(at, 5, color.filled())))
                        }
                        Point::Writeback => chart.draw_series(std::iter::once(
                            TriangleMarker::new(at, 7, color.filled()),
                        )),
                    }
                    .map_err(|e| err(&e))?;
                    if !legend.iter().any(|l| l.0 == label) {
                        legend.push((label, color, false));
                    }
                }
            }
            let mut placed: Vec<(i32, i32, i32)> = Vec::new();
            for m in &self.marks {
                let color = m.color;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![
                            (m.cycle, SegmentValue::Exact(0)),
                            (m.cycle, SegmentValue::Exact(n)),
                        ],
                        color.stroke_width(2),
                    )))
                    .map_err(|e| err(&e))?;
                // Labels staggered so neighbours do not overlap.
                let (px, py) = chart
                    .plotting_area()
                    .map_coordinate(&(m.cycle, SegmentValue::Exact(n)));
                // A label that would run past the plot (into the legend) goes left of its line,
                // and each takes the first row where it overlaps no label placed before (7
                // pixels a character is a generous width for the 12-pixel font).
                let right = chart.plotting_area().get_pixel_range().0.end;
                let width = 7 * m.label.chars().count() as i32;
                let lx = if px + 3 + width > right {
                    px - 3 - width
                } else {
                    px + 3
                };
                let row = (0..)
                    .find(|r| {
                        !placed
                            .iter()
                            .any(|&(pr, a, b)| pr == *r && lx < b && a < lx + width)
                    })
                    .expect("an unbounded range");
                placed.push((row, lx, lx + width));
                root.draw(&Text::new(
                    m.label.clone(),
                    (lx, py + 2 + 14 * row),
                    ("sans-serif", 12).into_font().color(&color),
                ))
                .map_err(|e| err(&e))?;
            }
            for (label, color) in [
                ("flush", RGBColor(120, 60, 160)),
                ("PCONFIG", RGBColor(0, 0, 0)),
                ("violation", RGBColor(220, 0, 0)),
                ("DIMM cells written", RGBColor(230, 120, 0)),
            ] {
                if self.marks.iter().any(|m| m.color == color) {
                    legend.push((label, color, false));
                }
            }
            let x = SIZE.0 as i32 - 10;
            for (k, (label, color, bar)) in legend.iter().enumerate() {
                let y = 60 + 22 * k as i32;
                let swatch = if *bar {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
                } else {
                    Rectangle::new([(x + 4, y - 4), (x + 12, y + 4)], color.filled())
                };
                root.draw(&swatch).map_err(|e| err(&e))?;
                root.draw(&Text::new(
                    (*label).to_owned(),
                    (x + 24, y - 7),
                    ("sans-serif", 14),
                ))
                .map_err(|e| err(&e))?;
            }
            root.present().map_err(|e| err(&e))?;
        }
        Ok(svg)
    }
}
