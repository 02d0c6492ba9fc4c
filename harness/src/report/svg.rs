//! SVG plots (plotters' SVG backend): grouped bars with 95% intervals mirroring the
//! paper's Figures 3–10, learning curves and allocation traces.

use std::path::Path;

use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;

use crate::eval::metrics::Interval;

/// A plotting failure, as text (plotters' error types are generic over the backend).
pub type PlotError = String;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn color(k: usize) -> RGBColor {
    COLORS[k % COLORS.len()]
}

/// Grouped bars: one group per `groups` entry (policies), one bar per `series` entry (VMs)
/// in each, with the 95% interval as a whisker. `values[g][s]`.
///
/// # Errors
/// The drawing error, as text.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[String],
    values: &[Vec<Interval>],
) -> Result<(), PlotError> {
    let slots = series.len() + 1;
    let n = (groups.len() * slots) as i32;
    let top = values
        .iter()
        .flatten()
        .map(|i| i.hi.max(i.mean))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let root = SVGBackend::new(path, (860, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(RangedCoordi32::from(0..n).into_segmented(), 0.0..top)
        .map_err(|e| e.to_string())?;
    let middle = series.len().saturating_sub(1) / 2;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n as usize)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) if (*k as usize) % slots == middle => {
                groups.get(*k as usize / slots).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .y_desc(y_label)
        .y_label_formatter(&|y| {
            if top >= 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.3}")
            }
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for (s, name) in series.iter().enumerate() {
        let c = color(s);
        let bars = values.iter().enumerate().filter_map(|(g, row)| {
            let k = (g * slots + s) as i32;
            row.get(s).map(|i| {
                Rectangle::new(
                    [
                        (SegmentValue::Exact(k), 0.0),
                        (SegmentValue::Exact(k + 1), i.mean),
                    ],
                    c.filled(),
                )
            })
        });
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        let whiskers = values.iter().enumerate().filter_map(|(g, row)| {
            let k = (g * slots + s) as i32;
            row.get(s).filter(|i| i.n > 1).map(|i| {
                PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(k), i.lo),
                        (SegmentValue::CenterOf(k), i.hi),
                    ],
                    BLACK.stroke_width(2),
                )
            })
        });
        chart.draw_series(whiskers).map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Lines: one per `(name, points)`.
///
/// # Errors
/// The drawing error, as text.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), PlotError> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if !(x0.is_finite() && y0.is_finite()) {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let root = SVGBackend::new(path, (860, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let c = color(k);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
