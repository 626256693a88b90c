//! Grouped bar charts written as SVG by hand: a few rectangles and labels need no plotting
//! crate, and the file stays small, diffable, and readable on GitHub.

use std::fmt::Write as _;

pub const WIDTH: f64 = 1000.0;
const PANEL_HEIGHT: f64 = 270.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TITLE_SPACE: f64 = 34.0;
const PLOT_HEIGHT: f64 = 170.0;
const FONT: &str = "font-family=\"Helvetica, Arial, sans-serif\"";

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
    pub color: &'static str,
}

/// A whole chart: a title, a legend, then the panels one under the other.
pub fn chart(title: &str, subtitle: &[String], series: &[Series], panels: &[Panel]) -> String {
    // Title, subtitle lines, then the legend.
    let legend = 48.0 + 15.0 * subtitle.len() as f64 + 8.0;
    let header = legend + 20.0;
    let height = header + PANEL_HEIGHT * panels.len() as f64 + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" {FONT}>"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    text(&mut svg, LEFT, 28.0, 20.0, "start", "bold", title);
    for (i, line) in subtitle.iter().enumerate() {
        text(
            &mut svg,
            LEFT,
            48.0 + 15.0 * i as f64,
            12.0,
            "start",
            "normal",
            line,
        );
    }
    let mut x = LEFT;
    for s in series {
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>",
            legend - 12.0,
            s.color
        );
        text(&mut svg, x + 20.0, legend, 13.0, "start", "normal", s.name);
        x += 110.0;
    }
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut svg, header + PANEL_HEIGHT * i as f64, series, panel);
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_panel(svg: &mut String, top: f64, series: &[Series], panel: &Panel) {
    text(svg, LEFT, top + 20.0, 15.0, "start", "bold", &panel.title);
    let plot_top = top + TITLE_SPACE;
    let base = plot_top + PLOT_HEIGHT;
    let plot_width = WIDTH - LEFT - RIGHT;
    let values = panel
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().flatten().map(|(v, _)| *v));
    // Where value `v` sits, and where bars start from.
    let (y_of, origin): (Box<dyn Fn(f64) -> f64>, f64) = match panel.scale {
        Scale::Linear => {
            let max = values.fold(0.0, f64::max);
            let step = nice_ceiling(max * 1.12 / 4.0);
            for tick in 0..=4 {
                let value = step * tick as f64;
                gridline(
                    svg,
                    base - value / (step * 4.0) * PLOT_HEIGHT,
                    &short(value),
                    false,
                );
            }
            let y_of = move |v: f64| base - v / (step * 4.0) * PLOT_HEIGHT;
            (Box::new(y_of), base)
        }
        Scale::LogRatio => {
            // Whole powers of two each way, at least 0.5..2.
            let widest = values
                .filter(|v| *v > 0.0)
                .map(|v| v.log2().abs())
                .fold(0.0, f64::max);
            let reach = (widest * 1.08).ceil().max(1.0);
            let middle = plot_top + PLOT_HEIGHT / 2.0;
            let y_of = move |v: f64| middle - v.max(1e-9).log2() / reach * (PLOT_HEIGHT / 2.0);
            // At most about seven gridlines: every power of two, or every second or third.
            let every = (reach / 3.0).ceil() as i32;
            for power in (-(reach as i32)..=reach as i32).filter(|p| p % every == 0) {
                let value = 2f64.powi(power);
                let label = if value >= 1.0 {
                    format!("{value}x")
                } else {
                    format!("1/{}x", 2f64.powi(-power))
                };
                gridline(svg, y_of(value), &label, power == 0);
            }
            (Box::new(y_of), middle)
        }
    };
    let group_width = plot_width / panel.groups.len().max(1) as f64;
    let bar_width = group_width * 0.8 / series.len().max(1) as f64;
    for (g, group) in panel.groups.iter().enumerate() {
        let group_left = LEFT + group_width * g as f64 + group_width * 0.1;
        for (s, bar) in group.bars.iter().enumerate() {
            let Some((value, label)) = bar else { continue };
            let x = group_left + bar_width * s as f64;
            let y = y_of(*value);
            let (top, bottom) = (y.min(origin), y.max(origin));
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                x + 1.0,
                top.min(bottom - 1.5),
                bar_width - 2.0,
                (bottom - top).max(1.5),
                series[s % series.len()].color
            );
            // Above a bar that grows up, below one that grows down.
            let label_y = if y <= origin {
                top - 4.0
            } else {
                bottom + 13.0
            };
            text(
                svg,
                x + bar_width / 2.0,
                label_y,
                11.0,
                "middle",
                "normal",
                label,
            );
        }
        let center = LEFT + group_width * (g as f64 + 0.5);
        text(
            svg,
            center,
            base + 16.0,
            12.0,
            "middle",
            "bold",
            &group.label[0],
        );
        text(
            svg,
            center,
            base + 31.0,
            11.0,
            "middle",
            "normal",
            &group.label[1],
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"#333\"/>",
        WIDTH - RIGHT
    );
}

/// A horizontal line across the plot with its value on the axis; dashed and darker for
/// the baseline of a ratio panel.
fn gridline(svg: &mut String, y: f64, label: &str, baseline: bool) {
    let style = if baseline {
        "stroke=\"#444\" stroke-dasharray=\"5,4\""
    } else {
        "stroke=\"#ddd\""
    };
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" {style}/>",
        WIDTH - RIGHT
    );
    text(svg, LEFT - 6.0, y + 4.0, 11.0, "end", "normal", label);
}

fn text(svg: &mut String, x: f64, y: f64, size: f64, anchor: &str, weight: &str, content: &str) {
    let _ = writeln!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
         font-weight=\"{weight}\" fill=\"#222\">{}</text>",
        escape(content)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
