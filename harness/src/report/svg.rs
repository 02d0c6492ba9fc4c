//! SVG plots (plotters' SVG backend): grouped bars with 95% intervals mirroring the
//! paper's Figures 3–10, learning curves and allocation traces.
//!
//! Every figure keeps its legend in a strip of its own at the right, so no legend covers
//! data; bars carry their values, so a bar too low to see still reads; whiskers longer than
//! [`WHISKER_CAP`] times the tallest bar are cut (marked ▲) so one wide interval does not
//! flatten the others.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::eval::metrics::Interval;

/// A plotting failure, as text (plotters' error types are generic over the backend).
pub type PlotError = String;

/// Size of every figure, pixels.
const FIGURE_PX: (u32, u32) = (900, 480);
/// Width of the legend strip at the right of every figure, pixels.
const LEGEND_PX: u32 = 210;
/// A whisker reaching above this many times the tallest bar is cut there (marked ▲).
pub const WHISKER_CAP: f64 = 2.0;

/// Tableau 10: ten colours told apart at a glance.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour `k` of the palette (it repeats after ten).
fn color(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

/// How a line is drawn: a palette colour and a dash pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineStyle {
    /// Colour index into the palette (ten colours, then they repeat).
    pub color: usize,
    /// Dash pattern: 0 solid, 1 dashed, 2 dotted (then they repeat).
    pub dash: usize,
}

impl LineStyle {
    /// The dash and gap lengths in pixels; `None` for a solid line.
    fn dashes(self) -> Option<(i32, i32)> {
        match self.dash % 3 {
            0 => None,
            1 => Some((8, 5)),
            _ => Some((2, 4)),
        }
    }
}

/// One line of a [`lines`] figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Its name in the legend.
    pub name: String,
    /// How it is drawn.
    pub style: LineStyle,
    /// Its points, `(x, y)`.
    pub points: Vec<(f64, f64)>,
}

/// A legend entry's sample.
enum Swatch {
    Bar(RGBColor),
    Line(LineStyle),
    Whisker,
    Cut,
}

fn err(e: impl std::fmt::Display) -> PlotError {
    e.to_string()
}

/// `v` with the decimals that ticks over a span of `span` need: 0 for 25,000, 1 for 1.6,
/// 4 for 0.004.
fn tick_label(v: f64, span: f64) -> String {
    let decimals = (1.0 - span.abs().max(1e-12).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// `v` to three significant digits (whole numbers whole): 17411, 1.22, 0.000234.
fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2.0 - v.abs().log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// The figure's canvas with `title` on top, split into the plot and the legend strip.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn canvas<'a>(path: &'a Path, title: &str) -> Result<(Area<'a>, Area<'a>, Area<'a>), PlotError> {
    let root = SVGBackend::new(path, FIGURE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let below_title = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (plot, legend) = below_title.split_horizontally(FIGURE_PX.0 - LEGEND_PX);
    Ok((root, plot, legend))
}

/// Draws `entries` down the legend strip.
fn draw_legend(area: &Area<'_>, entries: &[(String, Swatch)]) -> Result<(), PlotError> {
    let font = ("sans-serif", 13).into_font();
    for (k, (name, swatch)) in entries.iter().enumerate() {
        let (x, y) = (8, 30 + 22 * k as i32);
        match swatch {
            Swatch::Bar(c) => area
                .draw(&Rectangle::new([(x, y - 6), (x + 24, y + 6)], c.filled()))
                .map_err(err)?,
            Swatch::Line(style) => {
                let c = color(style.color);
                let (dash, gap) = style.dashes().unwrap_or((24, 0));
                let mut from = x;
                while from < x + 24 {
                    let to = (from + dash).min(x + 24);
                    area.draw(&PathElement::new(vec![(from, y), (to, y)], c.stroke_width(2)))
                        .map_err(err)?;
                    from = to + gap;
                }
            }
            Swatch::Whisker => area
                .draw(&PathElement::new(
                    vec![(x + 12, y - 8), (x + 12, y + 8)],
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?,
            Swatch::Cut => area
                .draw(&TriangleMarker::new((x + 12, y), 6, BLACK.filled()))
                .map_err(err)?,
        }
        area.draw(&Text::new(name.clone(), (x + 32, y - 7), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// Grouped bars: one group per `groups` entry (policies), one bar per `series` entry (VMs)
/// in each, labelled with its mean, and the 95% interval over seeds as a whisker. `values[g][s]`.
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
    let tallest = values.iter().flatten().map(|i| i.mean).fold(0.0_f64, f64::max);
    let reach = values
        .iter()
        .flatten()
        .filter(|i| i.n > 1)
        .map(|i| i.hi)
        .fold(tallest, f64::max);
    let cap = reach.min(tallest * WHISKER_CAP).max(tallest).max(1e-9);
    let top = cap * 1.12;
    let (root, plot, legend) = canvas(path, title)?;
    let group_count = groups.len().max(1);
    // Many groups: every other name one line lower, so long names do not overlap.
    let stagger = groups.len() > 6;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(if stagger { 52 } else { 36 })
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..group_count as f64, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .y_label_formatter(&|y| tick_label(*y, top))
        .draw()
        .map_err(err)?;
    let width = 0.8 / series.len().max(1) as f64;
    let left = |g: usize, s: usize| g as f64 + 0.1 + s as f64 * width;
    let label_style =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let mut cut = false;
    for (g, row) in values.iter().enumerate() {
        for (s, i) in row.iter().enumerate().take(series.len()) {
            let (x0, x) = (left(g, s), left(g, s) + width / 2.0);
            let bar = Rectangle::new(
                [(x0, 0.0), (x0 + width, i.mean.clamp(0.0, cap))],
                color(s).filled(),
            );
            chart.draw_series(std::iter::once(bar)).map_err(err)?;
            let mut label_at = i.mean.clamp(0.0, cap);
            if i.n > 1 {
                let (lo, hi) = (i.lo.clamp(0.0, cap), i.hi.clamp(0.0, cap));
                let whisker = PathElement::new(vec![(x, lo), (x, hi)], BLACK.stroke_width(2));
                chart.draw_series(std::iter::once(whisker)).map_err(err)?;
                if i.hi > cap {
                    cut = true;
                    let mark = TriangleMarker::new((x, cap), 6, BLACK.filled());
                    chart.draw_series(std::iter::once(mark)).map_err(err)?;
                }
                label_at = label_at.max(hi);
            }
            // Many groups make narrow bars: every other bar's value one line higher.
            let lift = if stagger && s % 2 == 1 { -20 } else { -8 };
            let label = EmptyElement::at((x, label_at))
                + Text::new(significant(i.mean), (0, lift), label_style.clone());
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
    }
    // Each group's name under its middle (the x axis has no ticks of its own).
    let name_style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, name) in groups.iter().enumerate() {
        let at = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        let below = if stagger && g % 2 == 1 { 26 } else { 10 };
        root.draw(&Text::new(name.clone(), (at.0, at.1 + below), name_style.clone()))
            .map_err(err)?;
    }
    let mut entries: Vec<(String, Swatch)> = series
        .iter()
        .enumerate()
        .map(|(s, name)| (name.clone(), Swatch::Bar(color(s))))
        .collect();
    entries.push(("95% interval over seeds".into(), Swatch::Whisker));
    if cut {
        entries.push((format!("cut at {WHISKER_CAP}× the tallest bar"), Swatch::Cut));
    }
    draw_legend(&legend, &entries)?;
    root.present().map_err(err)
}

/// Lines: one per [`Line`], each in its own colour and dash.
///
/// # Errors
/// The drawing error, as text.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line],
) -> Result<(), PlotError> {
    let points = series.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    let mut whole_x = true;
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(*x), x1.max(*x), y0.min(*y), y1.max(*y));
        whole_x &= x.fract() == 0.0;
    }
    if !(x0.is_finite() && y0.is_finite()) {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let (x_span, y_span) = (x1 - x0, y1 - y0 + 2.0 * pad);
    let (root, plot, legend) = canvas(path, title)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| {
            if whole_x {
                format!("{x:.0}")
            } else {
                tick_label(*x, x_span)
            }
        })
        .y_label_formatter(&|y| tick_label(*y, y_span))
        .draw()
        .map_err(err)?;
    for line in series {
        let stroke = color(line.style.color).stroke_width(2);
        let points = line.points.iter().copied();
        match line.style.dashes() {
            None => chart.draw_series(LineSeries::new(points, stroke)).map_err(err)?,
            Some((dash, gap)) => chart
                .draw_series(DashedLineSeries::new(points, dash, gap, stroke))
                .map_err(err)?,
        };
    }
    let entries: Vec<(String, Swatch)> = series
        .iter()
        .map(|l| (l.name.clone(), Swatch::Line(l.style)))
        .collect();
    draw_legend(&legend, &entries)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_labels_have_the_digits_their_scale_needs() {
        assert_eq!(tick_label(25_000.0, 28_000.0), "25000");
        assert_eq!(tick_label(1.6, 1.8), "1.6");
        assert_eq!(tick_label(0.001, 0.004), "0.0010");
        assert_eq!(significant(17_411.4), "17411");
        assert_eq!(significant(1.2249), "1.22");
        assert_eq!(significant(0.000_234_4), "0.000234");
        assert_eq!(significant(0.0), "0");
    }

    fn interval(mean: f64, lo: f64, hi: f64) -> Interval {
        Interval { mean, lo, hi, n: 3 }
    }

    /// One interval far above the bars is cut and marked; every bar carries its value, the
    /// near-zero one too; group and series names are drawn.
    #[test]
    fn svg_bars_cut_a_huge_interval_and_label_every_bar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.svg");
        let values = vec![
            vec![interval(100.0, 90.0, 110.0), interval(120.0, 0.0, 5_000.0)],
            vec![interval(0.000_2, 0.0, 0.000_4), interval(80.0, 70.0, 90.0)],
        ];
        let (groups, series) = (
            vec!["ddpg".into(), "static".into()],
            vec!["VM 0 (gcc)".into(), "VM 1 (bzip2)".into()],
        );
        grouped_bars(&path, "title", "y", &groups, &series, &values).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let has = |svg: &str, text: &str| svg.contains(&format!(">\n{text}\n</text>"));
        for text in ["100", "120", "0.000200", "80.0", "ddpg", "static", "VM 1 (bzip2)"] {
            assert!(has(&svg, text), "{text} missing");
        }
        assert!(svg.contains("cut at 2× the tallest bar"));
        let no_cut = vec![vec![interval(100.0, 90.0, 110.0)]];
        grouped_bars(&path, "title", "y", &groups[..1], &series[..1], &no_cut).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("cut at"));
    }

    /// Whole-number x values get whole-number ticks ("10", not "10.0").
    #[test]
    fn svg_lines_tick_whole_steps_without_decimals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.svg");
        let line = |dash| Line {
            name: format!("dash {dash}"),
            style: LineStyle { color: 0, dash },
            points: (0..=20).map(|x| (f64::from(x), f64::from(x) * 0.5)).collect(),
        };
        lines(&path, "t", "step", "GiB", &[line(0), line(1), line(2)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains(">\n10\n</text>") && !svg.contains(">\n10.0\n</text>"),
            "{svg}"
        );
        assert!(svg.contains("dash 2"));
    }
}
