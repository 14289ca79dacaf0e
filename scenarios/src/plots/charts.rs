//! The chart shapes every picture is drawn with: bars over a numeric axis (histograms), bars
//! per category in groups (per-KeyID traffic, throughput by batch), and lines over a numeric
//! axis (bandwidth over time, a sweep's metric against an axis). Each returns the SVG text.

use super::PlotError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Picture size, in pixels.
pub(super) const SIZE: (u32, u32) = (900, 520);

/// Series colours, in order.
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One named series of points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Titles of a chart.
#[derive(Clone, Debug)]
pub(super) struct Labels<'a> {
    pub(super) title: &'a str,
    pub(super) x: &'a str,
    pub(super) y: &'a str,
}

/// The series' legend, in the upper right corner on a light box.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), PlotError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError(format!("cannot draw: {e:?}"))
}

/// A range with some room around `lo..hi` (never empty).
fn padded(lo: f64, hi: f64, from_zero: bool) -> std::ops::Range<f64> {
    let (lo, hi) = if from_zero {
        (lo.min(0.0), hi)
    } else {
        (lo, hi)
    };
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return (lo - 1.0)..(lo + 1.0);
    }
    let pad = (hi - lo) * 0.05;
    (if from_zero && lo >= 0.0 { lo } else { lo - pad })..(hi + pad)
}

fn white(root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(err)
}

/// Lines (with their points marked) over a numeric x axis; `log_x` spaces x by powers of two
/// (x must be positive); with `x_names`, x is an index into them and the axis shows names.
pub(super) fn lines(
    labels: &Labels<'_>,
    series: &[Series],
    log_x: bool,
    x_names: &[String],
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        white(&root)?;
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let tx = |x: f64| {
            if log_x {
                x.max(f64::MIN_POSITIVE).log2()
            } else {
                x
            }
        };
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(tx(x)), b.max(tx(x)))
        });
        let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
        let (y0, y1) = if y0.is_finite() { (y0, y1) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(
                padded(x0, x1, false),
                // Headroom for the legend.
                padded(y0, y1 + (y1 - y0.min(0.0)) * 0.2, true),
            )
            .map_err(err)?;
        let x_fmt = |x: &f64| {
            if !x_names.is_empty() {
                let i = x.round();
                if (x - i).abs() < 1e-9 && i >= 0.0 {
                    x_names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            } else if log_x {
                short(2f64.powf(*x))
            } else {
                short(*x)
            }
        };
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (tx(x), y)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        if series.len() > 1 || series.first().is_some_and(|s| !s.name.is_empty()) {
            legend(&mut chart)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A histogram's bars: `(from, to, height)`.
pub(super) type Bars = Vec<(f64, f64, f64)>;

/// Bars over a numeric x axis: `(from, to, height)` per bar, one colour per series.
pub(super) fn histogram(
    labels: &Labels<'_>,
    series: &[(String, Bars)],
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        white(&root)?;
        let bars = series.iter().flat_map(|s| s.1.iter());
        let (x0, x1, y1) = bars.fold((f64::INFINITY, f64::NEG_INFINITY, 0f64), |acc, b| {
            (acc.0.min(b.0), acc.1.max(b.1), acc.2.max(b.2))
        });
        let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(padded(x0, x1, false), padded(0.0, y1.max(1.0), true))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        for (i, (name, bars)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = if series.len() > 1 {
                color.mix(0.55).filled()
            } else {
                color.filled()
            };
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(a, b, h)| Rectangle::new([(a, 0.0), (b, h)], style)),
                )
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Bars in groups: one group per category (named on the x axis), one bar per series.
pub(super) fn grouped_bars(
    labels: &Labels<'_>,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        white(&root)?;
        let top = series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .fold(0f64, f64::max);
        let n = categories.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..(top.max(1.0) * 1.25))
            .map_err(err)?;
        let names = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            // Bars are drawn in the plotting area's pixels, placed within each category.
            let area = chart.plotting_area();
            let (px, _) = area.get_pixel_range();
            let per = (px.end - px.start) as f64 / n as f64;
            let y_to_px = |y: f64| area.map_coordinate(&(SegmentValue::Exact(0), y)).1;
            for (i, &v) in values.iter().enumerate() {
                let left = px.start as f64 + per * (i as f64 + 0.1 + width * k as f64);
                let right = left + per * width;
                let rect = Rectangle::new(
                    [
                        (left.round() as i32, y_to_px(v)),
                        (right.round() as i32, y_to_px(0.0)),
                    ],
                    color.filled(),
                );
                root.draw(&rect).map_err(err)?;
            }
            let _ = name;
        }
        // Category names under their groups.
        let area = chart.plotting_area();
        let (px, py) = area.get_pixel_range();
        let per = (px.end - px.start) as f64 / n as f64;
        for (i, name) in names.iter().enumerate() {
            let x = px.start as f64 + per * (i as f64 + 0.5);
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(
                name.clone(),
                (x.round() as i32, py.end + 6),
                style,
            ))
            .map_err(err)?;
        }
        // The legend: a swatch and the name per series, top right.
        for (k, (name, _)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let x = SIZE.0 as i32 - 220;
            let y = 40 + 20 * k as i32;
            root.draw(&Rectangle::new(
                [(x, y - 6), (x + 14, y + 6)],
                color.filled(),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                name.clone(),
                (x + 20, y - 7),
                ("sans-serif", 14),
            ))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A number in few characters: `1.5k`, `2.3M`, `0.25`, `12`.
pub(super) fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(1_500_000.0), "1.5M");
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(2.25), "2.2");
        assert_eq!(short(0.25), "0.25");
    }
}
