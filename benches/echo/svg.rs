//! Grouped bar charts, drawn with `plotters` on its SVG backend (no system libraries, no
//! fonts needed: text stays text in the SVG, so the file is small, diffable, and readable
//! on GitHub). The layout follows the hand-written chart this replaced: a title, a legend,
//! then one panel per question, each with its values written on the bars.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Fallible;

pub const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 270;
const LEFT: u32 = 70;
const RIGHT: u32 = 20;
const TITLE_SPACE: u32 = 34;
const PLOT_HEIGHT: u32 = 170;
const FONT: &str = "Helvetica, Arial, sans-serif";
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// One chart panel: groups along x, one bar per series in each group.
pub struct Panel {
    pub title: String,
    pub groups: Vec<Group>,
    pub scale: Scale,
}

/// How values map to heights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// From zero up.
    Linear,
    /// Ratios against a baseline, on a log2 axis: bars grow up or down from a dashed line at
    /// 1, so that 2x and 0.5x look equally far from it, and one wild ratio does not flatten
    /// the others.
    LogRatio,
}

pub struct Group {
    /// Up to two lines under the group.
    pub label: [String; 2],
    /// One per series; `None` leaves a gap. The text is drawn above the bar.
    pub bars: Vec<Option<(f64, String)>>,
}

pub struct Series {
    pub name: &'static str,
    pub color: RGBColor,
}

/// Text of `px` pixels (plotters' SVG backend writes `font-size` as size / 1.24).
fn text(px: f64, bold: bool, pos: Pos) -> TextStyle<'static> {
    let font = (FONT, px * 1.24).into_font();
    let font = if bold {
        font.style(FontStyle::Bold)
    } else {
        font
    };
    font.color(&INK).pos(pos)
}

const LEFT_TEXT: Pos = Pos {
    h_pos: HPos::Left,
    v_pos: VPos::Bottom,
};

/// A whole chart: a title, a legend, then the panels one under the other.
pub fn chart(
    title: &str,
    subtitle: &[String],
    series: &[Series],
    panels: &[Panel],
) -> Fallible<String> {
    // Title, subtitle lines, then the legend.
    let legend = 48 + 15 * subtitle.len() as i32 + 8;
    let header = legend as u32 + 20;
    let height = header + PANEL_HEIGHT * panels.len() as u32 + 10;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let left = LEFT as i32;
        root.draw(&Text::new(title, (left, 28), text(20.0, true, LEFT_TEXT)))?;
        for (i, line) in subtitle.iter().enumerate() {
            let y = 48 + 15 * i as i32;
            root.draw(&Text::new(
                line.as_str(),
                (left, y),
                text(12.0, false, LEFT_TEXT),
            ))?;
        }
        for (i, s) in series.iter().enumerate() {
            let x = left + 110 * i as i32;
            let swatch = [(x, legend - 12), (x + 14, legend + 2)];
            root.draw(&Rectangle::new(swatch, s.color.filled()))?;
            root.draw(&Text::new(
                s.name,
                (x + 20, legend),
                text(13.0, false, LEFT_TEXT),
            ))?;
        }
        let (_, body) = root.split_vertically(header);
        let body = body.shrink((0, 0), (WIDTH, PANEL_HEIGHT * panels.len() as u32));
        for (area, panel) in body
            .split_evenly((panels.len().max(1), 1))
            .iter()
            .zip(panels)
        {
            draw_panel(area, series, panel)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[Series],
    panel: &Panel,
) -> Fallible<()> {
    area.draw(&Text::new(
        panel.title.as_str(),
        (LEFT as i32, 20),
        text(15.0, true, LEFT_TEXT),
    ))?;
    let Axis {
        to_axis,
        range,
        gridlines,
        label,
    } = Axis::of(panel);
    let groups = panel.groups.len().max(1) as f64;
    let bottom = PANEL_HEIGHT - TITLE_SPACE - PLOT_HEIGHT;
    let mut chart = ChartBuilder::on(area)
        .margin_top(TITLE_SPACE)
        .margin_bottom(bottom)
        .margin_right(RIGHT)
        .y_label_area_size(LEFT)
        .build_cartesian_2d(0.0..groups, range.clone())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_labels(gridlines)
        .y_label_formatter(&|v| label(*v))
        .y_label_style(text(11.0, false, Pos::new(HPos::Right, VPos::Center)))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .light_line_style(TRANSPARENT)
        .axis_style(TRANSPARENT)
        .set_all_tick_mark_size(0)
        .draw()?;
    let origin = if panel.scale == Scale::LogRatio {
        0.0
    } else {
        range.start
    };
    if panel.scale == Scale::LogRatio {
        let baseline = vec![(0.0, 0.0), (groups, 0.0)];
        let style = RGBColor(0x44, 0x44, 0x44).stroke_width(1);
        chart.draw_series(std::iter::once(DashedPathElement::new(
            baseline, 5, 4, style,
        )))?;
    }
    let bar_width = 0.8 / series.len().max(1) as f64;
    for (g, group) in panel.groups.iter().enumerate() {
        let group_left = g as f64 + 0.1;
        for (s, bar) in group.bars.iter().enumerate() {
            let Some((value, value_label)) = bar else {
                continue;
            };
            let x0 = group_left + bar_width * s as f64;
            let y = to_axis(*value);
            let color = series[s % series.len()].color;
            let mut bar = Rectangle::new([(x0, origin), (x0 + bar_width, y)], color.filled());
            bar.set_margin(0, 0, 1, 1); // a pixel of white between neighbours
            chart.draw_series(std::iter::once(bar))?;
            // Above a bar that grows up, below one that grows down.
            let (offset, v_pos) = if y >= origin {
                (-4, VPos::Bottom)
            } else {
                (3, VPos::Top)
            };
            let at = EmptyElement::at((x0 + bar_width / 2.0, y))
                + Text::new(
                    value_label.clone(),
                    (0, offset),
                    text(11.0, false, Pos::new(HPos::Center, v_pos)),
                );
            chart.draw_series(std::iter::once(at))?;
        }
        // The group's name under the axis, outside the plot: placed in pixels.
        let (x, axis_y) = chart.backend_coord(&(g as f64 + 0.5, range.start));
        let (base_x, base_y) = area.get_base_pixel();
        let (x, axis_y) = (x - base_x, axis_y - base_y);
        let centered = Pos::new(HPos::Center, VPos::Bottom);
        area.draw(&Text::new(
            group.label[0].as_str(),
            (x, axis_y + 16),
            text(12.0, true, centered),
        ))?;
        area.draw(&Text::new(
            group.label[1].as_str(),
            (x, axis_y + 31),
            text(11.0, false, centered),
        ))?;
    }
    // The axis line, darker than the grid.
    let axis = vec![(0.0, range.start), (groups, range.start)];
    chart.draw_series(std::iter::once(PathElement::new(
        axis,
        RGBColor(0x33, 0x33, 0x33),
    )))?;
    Ok(())
}

/// How a panel's values become heights: bars are drawn in "axis units", the value itself
/// (linear) or its log2 (ratios).
struct Axis {
    to_axis: fn(f64) -> f64,
    /// The axis units shown.
    range: Range<f64>,
    /// About how many gridlines: plotters picks round values itself.
    gridlines: usize,
    /// The text beside a gridline at this many axis units.
    label: fn(f64) -> String,
}

impl Axis {
    fn of(panel: &Panel) -> Axis {
        let values = panel
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().flatten().map(|(v, _)| *v));
        match panel.scale {
            Scale::Linear => {
                let max = values.fold(0.0, f64::max);
                let step = nice_ceiling(max * 1.12 / 4.0);
                Axis {
                    to_axis: |v| v,
                    range: 0.0..step * 4.0,
                    gridlines: 5,
                    label: short,
                }
            }
            Scale::LogRatio => {
                // Whole powers of two each way, at least 0.5..2.
                let widest = values
                    .filter(|v| *v > 0.0)
                    .map(|v| v.log2().abs())
                    .fold(0.0, f64::max);
                let reach = (widest * 1.08).ceil().max(1.0);
                // At most about seven gridlines: every power of two, or every second or third.
                let every = (reach / 3.0).ceil();
                Axis {
                    to_axis: |v| v.max(1e-9).log2(),
                    range: -reach..reach,
                    gridlines: (2.0 * reach / every) as usize + 1,
                    label: ratio_label,
                }
            }
        }
    }
}

/// `4x`, `1x`, `1/2x` for a power of two given as its exponent.
fn ratio_label(power: f64) -> String {
    let value = power.exp2();
    if value >= 1.0 {
        format!("{value}x")
    } else {
        format!("1/{}x", (-power).exp2())
    }
}

/// The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`: round axis ends.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= value)
        .unwrap_or(10.0);
    nice * power
}

/// Axis labels: 0.5, 2, 150, 12k.
fn short(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 100.0 || value == value.round() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}
