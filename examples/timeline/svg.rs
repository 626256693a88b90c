//! Drawing a [`Timeline`] as a self-contained SVG, by hand: rectangles, lines, polygons and
//! text, written as XML. No plotting crate: the picture is simple enough that its code can
//! be read as a description of the picture.
//!
//! ```text
//!              0          100        200   (ms)
//! the loop     |▬▬▬▬|▬▬|▬▬▬▬▬▬▬▬▬|▬▬▬▬|        grey: waiting in poll; a tick: one turn
//!               ▲      ▲     ▲                above the band: what came in (reads, EOF)
//!               •      •     •                on its edge: poll reported the socket ready
//! echo 1        [Open              ]▌ peer closed
//! #1.2          ▼      ▼     ▼       EOF→PeerHalfClosed→Closing→FIN→Closed
//!                                             below: what went out (writes, FIN)
//! ```
//!
//! A state that lasted no time cannot be seen on the band, so an instant (one turn) that
//! went through several states is spelled out as a chain of labels, in order.
//! Every shape carries a `<title>`: browsers show it on hover, with the record behind it.
//! Marks are grouped into columns a few pixels wide (a turn's reads all share one instant),
//! so a flood of reads draws as a row of marks, not as a smear.

use std::fmt::Write;

use mio_reactor::{Input, State};

use crate::lanes::{state_name, Lane, Mark, Timeline, What};

/// The picture's width, unless a chain of labels at the end of a lane needs more; the
/// height follows from the number of lanes.
const WIDTH: f64 = 1200.0;
/// Left of the plot: lane labels.
const PLOT_LEFT: f64 = 180.0;
/// Right of the plot: room for the last close's reason.
const PLOT_RIGHT: f64 = WIDTH - 170.0;
/// The top of the loop's lane.
const TURNS_TOP: f64 = 64.0;
const TURNS_HEIGHT: f64 = 34.0;
/// Connection lanes.
const LANES_TOP: f64 = TURNS_TOP + TURNS_HEIGHT + 10.0;
const LANE_HEIGHT: f64 = 60.0;
/// Within a lane: the reads zone, then the state band, then the writes zone.
const READS_BASE: f64 = 21.0;
const BAND_TOP: f64 = 23.0;
const BAND_HEIGHT: f64 = 14.0;
const WRITES_BASE: f64 = BAND_TOP + BAND_HEIGHT + 2.0;
/// Where the legend's items start, right of its row titles.
const LEGEND_LEFT: f64 = 96.0;
/// Marks closer than this (in pixels) share one column.
const COLUMN: f64 = 6.0;
/// The tallest mark: a column of a MiB or more.
const MARK_MAX: f64 = 16.0;

const FONT: &str = "font-family=\"DejaVu Sans, Verdana, sans-serif\"";
const MONO: &str = "font-family=\"DejaVu Sans Mono, Menlo, monospace\"";
const READ_COLOUR: &str = "#2563eb";
const WRITE_COLOUR: &str = "#7c3aed";
const FULL_COLOUR: &str = "#dc2626";
const EOF_COLOUR: &str = "#b45309";
const FIN_COLOUR: &str = "#111827";
const GRID_COLOUR: &str = "#e5e7eb";
const TEXT_COLOUR: &str = "#1f2937";
const QUIET_COLOUR: &str = "#6b7280";
const FAIL_COLOUR: &str = "#b91c1c";

/// The fill of a state's span.
fn state_colour(state: State) -> &'static str {
    match state {
        State::Connecting => "#e5e7eb",
        State::Open => "#bbf7d0",
        State::PeerHalfClosed => "#fde68a",
        State::WriteShutdown => "#bfdbfe",
        State::Closing { .. } => "#fecaca",
        State::Closed => "#374151",
    }
}

/// The states drawn as spans, in the order a connection goes through them. (`Closed` is the
/// end cap.)
const SPAN_STATES: [State; 4] = [
    State::Open,
    State::PeerHalfClosed,
    State::WriteShutdown,
    State::Closing { peer_eof: false },
];

/// The SVG document for `timeline`.
pub fn draw(timeline: &Timeline) -> String {
    let axis = Axis::for_duration(timeline.duration);
    let lanes_bottom = LANES_TOP + LANE_HEIGHT * timeline.lanes.len() as f64;
    let legend_top = lanes_bottom + 44.0;
    let height = legend_top + 96.0;
    // The chains of labels right of the last closes may reach past the usual width.
    let width = timeline
        .lanes
        .iter()
        .flat_map(|lane| {
            chains(lane)
                .into_iter()
                .map(|chain| chain_end(lane, &chain, &axis))
        })
        .fold(WIDTH, |width, end| width.max(end + 12.0));
    let mut svg = Svg {
        out: String::new(),
        width,
    };
    svg.open(height);
    svg.defs();
    svg.heading(timeline);
    svg.grid(&axis, lanes_bottom);
    svg.turns(timeline, &axis);
    for (index, lane) in timeline.lanes.iter().enumerate() {
        svg.lane(index, lane, &axis);
    }
    svg.legend(legend_top);
    svg.out.push_str("</svg>\n");
    svg.out
}

/// The time axis: milliseconds to pixels, and where the labelled ticks go.
#[derive(Debug, Clone, Copy)]
struct Axis {
    /// Milliseconds between labelled ticks.
    step: f64,
    /// The axis's end, a whole number of steps.
    end: f64,
}

impl Axis {
    /// A "round" step (1, 2 or 5 times a power of ten) giving at most a dozen ticks.
    fn for_duration(duration: f64) -> Axis {
        let duration = duration.max(1.0);
        let mut step = 1.0;
        'search: loop {
            for factor in [1.0, 2.0, 5.0] {
                if duration / (step * factor) <= 12.0 {
                    step *= factor;
                    break 'search;
                }
            }
            step *= 10.0;
        }
        Axis {
            step,
            end: (duration / step).ceil() * step,
        }
    }

    /// The x of `ms`.
    fn x(&self, ms: f64) -> f64 {
        PLOT_LEFT + ms / self.end * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// The ticks' times.
    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let count = (self.end / self.step).round() as usize;
        (0..=count).map(move |i| i as f64 * self.step)
    }
}

/// One read or write call, as a column sees it.
#[derive(Debug, Clone, Copy)]
struct Call {
    at: f64,
    /// Bytes moved; `None` for a call that only raises the flag (a read that would block).
    bytes: Option<usize>,
    /// A read that would block, or a write that filled the socket.
    flag: bool,
}

/// The calls of one kind that fall within [`COLUMN`] pixels: drawn as one mark.
#[derive(Debug, Clone)]
struct Column {
    x: f64,
    calls: usize,
    bytes: usize,
    first: f64,
    last: f64,
    flagged: bool,
}

impl Column {
    /// "2 reads, 128.0 KiB (at 212.4 ms)".
    fn describe(&self, what: &str) -> String {
        let plural = if self.calls == 1 { "" } else { "s" };
        let when = if self.last - self.first < 0.05 {
            format!("at {:.1} ms", self.first)
        } else {
            format!("{:.1}–{:.1} ms", self.first, self.last)
        };
        format!(
            "{} {what}{plural}, {} ({when})",
            self.calls,
            bytes(self.bytes as u64)
        )
    }
}

/// Groups calls into columns, in order.
fn columns(axis: &Axis, calls: impl Iterator<Item = Call>) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::new();
    for call in calls {
        let x = axis.x(call.at);
        if !columns.last().is_some_and(|column| x - column.x < COLUMN) {
            columns.push(Column {
                x,
                calls: 0,
                bytes: 0,
                first: call.at,
                last: call.at,
                flagged: false,
            });
        }
        let column = columns.last_mut().expect("just pushed");
        if let Some(bytes) = call.bytes {
            column.calls += 1;
            column.bytes += bytes;
        }
        column.last = call.at;
        column.flagged |= call.flag;
    }
    columns
}

/// A mark's height for `bytes`: logarithmic, so that 100 B and 1 MiB both show.
fn mark_height(bytes: usize) -> f64 {
    let scale = (bytes.max(1) as f64).log2() / 20.0;
    3.0 + (MARK_MAX - 3.0) * scale.clamp(0.0, 1.0)
}

/// "812 B", "48.0 KiB", "4.00 MiB".
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n_f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n_f < KIB * KIB {
        format!("{:.1} KiB", n_f / KIB)
    } else {
        format!("{:.2} MiB", n_f / KIB / KIB)
    }
}

/// Escapes text for XML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A rough width of `text` at `size` px, to decide whether a label fits.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// The document being written. Each method draws one part of the picture.
#[derive(Debug)]
struct Svg {
    out: String,
    width: f64,
}

impl Svg {
    fn open(&mut self, height: f64) {
        let width = self.width.ceil();
        let _ = writeln!(
            self.out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" {FONT} font-size=\"12\">"
        );
        let _ = writeln!(
            self.out,
            "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
        );
    }

    /// The hatching of "reading paused".
    fn defs(&mut self) {
        self.out.push_str(
            "<defs><pattern id=\"paused\" patternUnits=\"userSpaceOnUse\" width=\"6\" \
             height=\"6\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" \
             fill=\"#fee2e2\"/><rect width=\"2.5\" height=\"6\" fill=\"#ef4444\"/></pattern>\
             </defs>\n",
        );
    }

    fn text(&mut self, x: f64, y: f64, attrs: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" {attrs}>{}</text>",
            escape(text)
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str, title: &str) {
        let _ = write!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" {attrs}"
        );
        self.close_shape("rect", title);
    }

    /// Ends a shape, with a hover title if any.
    fn close_shape(&mut self, tag: &str, title: &str) {
        if title.is_empty() {
            self.out.push_str("/>\n");
        } else {
            let _ = writeln!(self.out, "><title>{}</title></{tag}>", escape(title));
        }
    }

    /// A triangle pointing up (a read, above the band) or down (a write, below it).
    fn triangle(&mut self, x: f64, base: f64, height: f64, up: bool, attrs: &str, title: &str) {
        let half = (height * 0.45).max(2.5);
        let tip = if up { base - height } else { base + height };
        let _ = write!(
            self.out,
            "<polygon points=\"{:.1},{base:.1} {:.1},{base:.1} {x:.1},{tip:.1}\" {attrs}",
            x - half,
            x + half
        );
        self.close_shape("polygon", title);
    }

    fn heading(&mut self, timeline: &Timeline) {
        self.text(
            16.0,
            26.0,
            &format!("font-size=\"17\" font-weight=\"bold\" fill=\"{TEXT_COLOUR}\""),
            &format!(
                "One echo server, {} clients: the reactor's timeline",
                timeline.lanes.len()
            ),
        );
        let summary = format!(
            "{} connections, {} loop turns, {:.0} ms. One lane per connection, time left to \
             right. Everything a turn does after poll returns shares one instant. Hover for \
             the records.",
            timeline.lanes.len(),
            timeline.turns.len(),
            timeline.duration,
        );
        self.text(
            16.0,
            45.0,
            &format!("fill=\"{QUIET_COLOUR}\" font-size=\"12\""),
            &summary,
        );
    }

    /// Vertical grid lines and the labelled axis under the lanes.
    fn grid(&mut self, axis: &Axis, lanes_bottom: f64) {
        for ms in axis.ticks() {
            let x = axis.x(ms);
            let _ = writeln!(
                self.out,
                "<line x1=\"{x:.1}\" y1=\"{TURNS_TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
                 stroke=\"{GRID_COLOUR}\"/>",
                lanes_bottom + 4.0
            );
            self.text(
                x,
                lanes_bottom + 18.0,
                &format!("text-anchor=\"middle\" fill=\"{QUIET_COLOUR}\" font-size=\"11\""),
                &format!("{ms:.0}"),
            );
        }
        self.text(
            PLOT_RIGHT,
            lanes_bottom + 32.0,
            &format!("text-anchor=\"end\" fill=\"{QUIET_COLOUR}\" font-size=\"11\""),
            "ms since the script started",
        );
    }

    /// The loop's lane: grey while blocked in `poll`, a tick each time it woke up.
    fn turns(&mut self, timeline: &Timeline, axis: &Axis) {
        let middle = TURNS_TOP + TURNS_HEIGHT / 2.0;
        self.text(
            16.0,
            middle - 1.0,
            &format!("font-weight=\"bold\" fill=\"{TEXT_COLOUR}\""),
            "the loop",
        );
        self.text(
            16.0,
            middle + 13.0,
            &format!("fill=\"{QUIET_COLOUR}\" font-size=\"11\""),
            "one tick per turn",
        );
        self.out.push_str("<g class=\"turns\">\n");
        for turn in &timeline.turns {
            let (x0, x1) = (axis.x(turn.polled_at), axis.x(turn.woke_at));
            let title = format!(
                "turn {}: blocked in poll {:.1} ms, woke at {:.1} ms with {} event{}",
                turn.number,
                turn.woke_at - turn.polled_at,
                turn.woke_at,
                turn.events,
                if turn.events == 1 { "" } else { "s" }
            );
            if x1 - x0 >= 0.5 {
                self.rect(x0, middle - 4.0, x1 - x0, 8.0, "fill=\"#d1d5db\"", &title);
            }
            let tick = 6.0 + 2.0 * (turn.events.min(5) as f64);
            let _ = write!(
                self.out,
                "<line x1=\"{x1:.1}\" y1=\"{:.1}\" x2=\"{x1:.1}\" y2=\"{:.1}\" \
                 stroke=\"{TEXT_COLOUR}\" stroke-width=\"1.2\"",
                middle - tick,
                middle + tick
            );
            self.close_shape("line", &title);
        }
        self.out.push_str("</g>\n");
    }

    fn lane(&mut self, index: usize, lane: &Lane, axis: &Axis) {
        let top = LANES_TOP + LANE_HEIGHT * index as f64;
        let _ = writeln!(
            self.out,
            "<g class=\"lane\" data-conn=\"{}\" data-role=\"{}\">",
            lane.conn,
            escape(&lane.role)
        );
        if index % 2 == 0 {
            self.rect(0.0, top, self.width, LANE_HEIGHT, "fill=\"#f9fafb\"", "");
        }
        self.text(
            16.0,
            top + BAND_TOP + BAND_HEIGHT - 3.0,
            &format!("font-weight=\"bold\" fill=\"{TEXT_COLOUR}\" font-size=\"13\""),
            &lane.role,
        );
        self.text(
            16.0,
            top + BAND_TOP + BAND_HEIGHT + 12.0,
            &format!("{MONO} fill=\"{QUIET_COLOUR}\" font-size=\"11\""),
            &lane.conn.to_string(),
        );
        self.paused(lane, axis, top);
        self.spans(lane, axis, top);
        self.marks(lane, axis, top);
        self.end(lane, axis, top);
        self.out.push_str("</g>\n");
    }

    /// States as coloured spans, named where the name fits; transitions as thin lines.
    fn spans(&mut self, lane: &Lane, axis: &Axis, top: f64) {
        let y = top + BAND_TOP;
        for span in &lane.spans {
            if span.state == State::Closed {
                continue; // drawn as the end cap
            }
            let (x0, x1) = (axis.x(span.from), axis.x(span.to));
            let title = format!(
                "{} {:?} from {:.1} to {:.1} ms",
                lane.conn, span.state, span.from, span.to
            );
            let fill = format!("fill=\"{}\"", state_colour(span.state));
            self.rect(x0, y, (x1 - x0).max(0.8), BAND_HEIGHT, &fill, &title);
            let name = state_name(span.state);
            if x1 - x0 >= text_width(name, 10.0) + 6.0 {
                self.text(
                    x0 + 4.0,
                    y + BAND_HEIGHT - 3.5,
                    &format!("font-size=\"10\" fill=\"{TEXT_COLOUR}\""),
                    name,
                );
            }
        }
        for mark in &lane.marks {
            if let What::Transition { from, input, to } = mark.what {
                let x = axis.x(mark.at);
                let title = format!(
                    "{} {from:?} --{input:?}--> {to:?} at {:.1} ms",
                    lane.conn, mark.at
                );
                let _ = write!(
                    self.out,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
                     stroke=\"{TEXT_COLOUR}\" stroke-width=\"1\"",
                    y - 1.0,
                    y + BAND_HEIGHT + 1.0
                );
                self.close_shape("line", &title);
            }
        }
    }

    /// Reading paused: hatching where the reads would be.
    fn paused(&mut self, lane: &Lane, axis: &Axis, top: f64) {
        for paused in &lane.paused {
            let (x0, x1) = (axis.x(paused.from), axis.x(paused.to));
            let title = format!(
                "{} reading paused from {:.1} to {:.1} ms: {} of output buffered (above the \
                 high water mark)",
                lane.conn,
                paused.from,
                paused.to,
                bytes(paused.buffered as u64)
            );
            // A hair of white where it resumed, so that back-to-back pauses stay apart.
            self.rect(
                x0,
                top + 3.0,
                (x1 - x0 - 1.5).max(1.5),
                READS_BASE - 3.0,
                "fill=\"url(#paused)\" stroke=\"#ef4444\" stroke-width=\"0.6\"",
                &title,
            );
        }
    }

    /// Reads above the band, writes below, each column one triangle sized by its bytes;
    /// EOF and FIN as labelled flags.
    fn marks(&mut self, lane: &Lane, axis: &Axis, top: f64) {
        // A read that would block ends a column of reads: the socket is drained until the
        // next edge. It says nothing new at this scale, so it is told in the column's title.
        let reads = lane.marks.iter().filter_map(|mark| {
            let (bytes, flag) = match mark.what {
                What::Read { bytes } => (Some(bytes), false),
                What::ReadWouldBlock => (None, true),
                _ => return None,
            };
            Some(Call {
                at: mark.at,
                bytes,
                flag,
            })
        });
        for column in columns(axis, reads) {
            if column.calls == 0 {
                continue; // only would-blocks: nothing was read
            }
            let mut title = format!("{} {}", lane.conn, column.describe("read"));
            if column.flagged {
                title.push_str(", then would block (drained)");
            }
            let fill = format!("fill=\"{READ_COLOUR}\"");
            let height = mark_height(column.bytes);
            self.triangle(column.x, top + READS_BASE, height, true, &fill, &title);
        }
        let writes = lane.marks.iter().filter_map(|mark| match mark.what {
            What::Write { bytes, would_block } => Some(Call {
                at: mark.at,
                bytes: Some(bytes),
                flag: would_block,
            }),
            _ => None,
        });
        for column in columns(axis, writes) {
            let mut title = format!("{} {}", lane.conn, column.describe("write"));
            let colour = if column.flagged {
                title.push_str("; the socket was full (would block)");
                FULL_COLOUR
            } else {
                WRITE_COLOUR
            };
            let fill = format!("fill=\"{colour}\"");
            let height = mark_height(column.bytes);
            self.triangle(column.x, top + WRITES_BASE, height, false, &fill, &title);
        }
        let events = lane.marks.iter().filter_map(|mark| match mark.what {
            What::Readiness { readable, writable } => Some((mark.at, readable, writable)),
            _ => None,
        });
        self.readiness(lane, axis, top, events);
        let chains = chains(lane);
        for mark in &lane.marks {
            let chained = |mark: &Mark| chains.iter().any(|chain| chain[0].at == mark.at);
            match mark.what {
                What::Eof if !chained(mark) => {
                    self.flag(mark, axis, top + 4.0, EOF_COLOUR, "EOF", lane)
                }
                What::Fin if !chained(mark) => self.flag(
                    mark,
                    axis,
                    top + LANE_HEIGHT - 12.0,
                    FIN_COLOUR,
                    "FIN",
                    lane,
                ),
                What::Timer(kind) => {
                    let title = format!("{} timer fired: {kind:?}", lane.conn);
                    let x = axis.x(mark.at);
                    let _ = write!(
                        self.out,
                        "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#f59e0b\"",
                        top + BAND_TOP + BAND_HEIGHT / 2.0
                    );
                    self.close_shape("circle", &title);
                }
                _ => {}
            }
        }
        for chain in chains {
            self.chain(lane, &chain, axis, top);
        }
    }

    /// Readiness events as dots on the band: the loop woke up for this connection. Most sit
    /// under a read or a write; the ones that do not are wake-ups with nothing to do (interest
    /// is never changed, so a paused connection still reports new bytes).
    fn readiness(
        &mut self,
        lane: &Lane,
        axis: &Axis,
        top: f64,
        events: impl Iterator<Item = (f64, bool, bool)>,
    ) {
        let mut dots: Vec<(f64, f64, f64, usize, usize, usize)> = Vec::new();
        for (at, readable, writable) in events {
            let x = axis.x(at);
            match dots.last_mut() {
                Some(dot) if x - dot.0 < COLUMN => {
                    dot.2 = at;
                    dot.3 += 1;
                    dot.4 += usize::from(readable);
                    dot.5 += usize::from(writable);
                }
                _ => dots.push((x, at, at, 1, usize::from(readable), usize::from(writable))),
            }
        }
        // On the band's top edge, clear of the state's name.
        let y = top + BAND_TOP;
        for (x, first, last, count, readable, writable) in dots {
            let when = if last - first < 0.05 {
                format!("at {first:.1} ms")
            } else {
                format!("{first:.1}–{last:.1} ms")
            };
            let title = format!(
                "{} {count} readiness event{} ({when}): readable ×{readable}, writable \
                 ×{writable}",
                lane.conn,
                if count == 1 { "" } else { "s" }
            );
            let _ = write!(
                self.out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"1.8\" fill=\"{QUIET_COLOUR}\""
            );
            self.close_shape("circle", &title);
        }
    }

    /// States that lasted no time cannot be seen on the band, so an instant that went
    /// through several is spelled out: `EOF → PeerHalfClosed → Closing → FIN → Closed`,
    /// each state on its colour, under the band just after the instant.
    fn chain(&mut self, lane: &Lane, chain: &[Mark], axis: &Axis, top: f64) {
        let at = chain[0].at;
        let x = chain_start(lane, chain, axis);
        let y = top + BAND_TOP + BAND_HEIGHT + 4.0;
        let title = format!(
            "{} at {:.1} ms, all in one turn: {}",
            lane.conn,
            at,
            chain
                .iter()
                .map(|mark| describe(&mark.what))
                .collect::<Vec<_>>()
                .join(", then ")
        );
        let _ = writeln!(
            self.out,
            "<g class=\"chain\"><title>{}</title>",
            escape(&title)
        );
        let whats: Vec<What> = chain.iter().map(|mark| mark.what).collect();
        self.pills(x, y, &whats);
        self.out.push_str("</g>\n");
    }

    /// A small labelled flag: a tick at the instant, the label to its right.
    fn flag(&mut self, mark: &Mark, axis: &Axis, y: f64, colour: &str, label: &str, lane: &Lane) {
        let x = axis.x(mark.at);
        let what = if label == "EOF" {
            "read returned 0: the peer's FIN"
        } else {
            "our FIN sent (shutdown of the write side)"
        };
        let title = format!("{} {label} at {:.1} ms: {what}", lane.conn, mark.at);
        let _ = writeln!(self.out, "<g><title>{}</title>", escape(&title));
        let _ = writeln!(
            self.out,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
             stroke-width=\"1.5\"/>",
            y + 9.0
        );
        self.text(
            x + 2.0,
            y + 8.0,
            &format!("font-size=\"9\" font-weight=\"bold\" fill=\"{colour}\""),
            label,
        );
        self.out.push_str("</g>\n");
    }

    /// The close: a cap at the instant the connection was removed, and why.
    fn end(&mut self, lane: &Lane, axis: &Axis, top: f64) {
        let y = top + BAND_TOP;
        let Some(end) = &lane.end else {
            let x = axis.x(lane.closed());
            self.text(
                x + 4.0,
                y + BAND_HEIGHT - 3.0,
                &format!("fill=\"{QUIET_COLOUR}\""),
                "still open",
            );
            return;
        };
        let x = axis.x(end.at);
        let graceful = end.reason.is_graceful();
        let colour = if graceful { "#374151" } else { FAIL_COLOUR };
        let title = format!(
            "{} Closed at {:.1} ms: {} ({} in, {} out)",
            lane.conn,
            end.at,
            end.reason,
            bytes(end.bytes_in),
            bytes(end.bytes_out)
        );
        self.rect(
            x,
            y - 3.0,
            3.5,
            BAND_HEIGHT + 6.0,
            &format!("fill=\"{colour}\""),
            &title,
        );
        let weight = if graceful { "normal" } else { "bold" };
        self.text(
            x + 8.0,
            y + BAND_HEIGHT - 3.0,
            &format!("fill=\"{colour}\" font-weight=\"{weight}\""),
            &end.reason.to_string(),
        );
    }

    /// Labels in a row, `EOF → PeerHalfClosed → FIN`: states on their colour, EOF and FIN
    /// in their ink. Returns where the row ends.
    fn pills(&mut self, mut x: f64, y: f64, whats: &[What]) -> f64 {
        let labels = whats.iter().filter_map(pill);
        for (i, (label, fill, ink)) in labels.enumerate() {
            if i > 0 {
                let arrow = format!("font-size=\"9\" fill=\"{QUIET_COLOUR}\"");
                self.text(x + 1.0, y + 9.0, &arrow, "→");
                x += 11.0;
            }
            let width = pill_width(label);
            let _ = writeln!(
                self.out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"12\" rx=\"3\" \
                 fill=\"{fill}\" stroke=\"{ink}\" stroke-width=\"0.6\"/>"
            );
            let attrs = format!("font-size=\"9\" font-weight=\"bold\" fill=\"{ink}\"");
            self.text(x + 3.0, y + 9.0, &attrs, label);
            x += width;
        }
        x
    }

    /// What each colour and shape means: one row per part of a lane.
    fn legend(&mut self, top: f64) {
        let _ = writeln!(
            self.out,
            "<line x1=\"16\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GRID_COLOUR}\"/>",
            top - 12.0,
            self.width - 16.0,
            top - 12.0
        );
        let bold = format!("fill=\"{TEXT_COLOUR}\" font-size=\"11\" font-weight=\"bold\"");

        let y = top + 6.0;
        self.text(16.0, y + 4.0, &bold, "the band");
        let mut x = LEGEND_LEFT;
        for state in SPAN_STATES {
            let fill = format!("fill=\"{}\"", state_colour(state));
            self.rect(x, y - 6.0, 24.0, 12.0, &fill, "");
            x = self.legend_text(x + 30.0, y, state_name(state));
        }
        self.rect(x, y - 7.0, 3.5, 14.0, "fill=\"#374151\"", "");
        x = self.legend_text(x + 9.0, y, "closed gracefully (why, on its right)");
        self.rect(
            x,
            y - 7.0,
            3.5,
            14.0,
            &format!("fill=\"{FAIL_COLOUR}\""),
            "",
        );
        self.legend_text(x + 9.0, y, "closed by an error");

        let y = top + 28.0;
        self.text(16.0, y + 4.0, &bold, "above: in");
        let read = format!("fill=\"{READ_COLOUR}\"");
        let mut x = LEGEND_LEFT + 4.0;
        self.triangle(x, y + 5.0, mark_height(100), true, &read, "");
        self.triangle(x + 13.0, y + 5.0, mark_height(64 * 1024), true, &read, "");
        x = self.legend_text(
            x + 24.0,
            y,
            "reads of 100 B and 64 KiB (height: log of the bytes)",
        );
        self.rect(
            x,
            y - 6.0,
            28.0,
            12.0,
            "fill=\"url(#paused)\" stroke=\"#ef4444\" stroke-width=\"0.6\"",
            "",
        );
        x = self.legend_text(x + 34.0, y, "reading paused (backpressure)");
        x = self.legend_flag(x, y, EOF_COLOUR, "EOF");
        x = self.legend_text(x, y, "read returned 0");
        let _ = writeln!(
            self.out,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"1.8\" fill=\"{QUIET_COLOUR}\"/>",
            x + 2.0
        );
        self.legend_text(x + 9.0, y, "poll reported it ready");

        let y = top + 50.0;
        self.text(16.0, y + 4.0, &bold, "below: out");
        let mut x = LEGEND_LEFT + 4.0;
        let write = format!("fill=\"{WRITE_COLOUR}\"");
        self.triangle(x, y - 6.0, mark_height(100), false, &write, "");
        self.triangle(x + 13.0, y - 6.0, mark_height(64 * 1024), false, &write, "");
        x = self.legend_text(x + 24.0, y, "writes");
        let full = format!("fill=\"{FULL_COLOUR}\"");
        self.triangle(x + 4.0, y - 6.0, mark_height(64 * 1024), false, &full, "");
        x = self.legend_text(x + 14.0, y, "a write that filled the socket (would block)");
        x = self.legend_flag(x, y, FIN_COLOUR, "FIN");
        self.legend_text(x, y, "our FIN sent");

        let y = top + 72.0;
        self.text(16.0, y + 4.0, &bold, "one turn");
        let example = [
            What::Eof,
            What::Transition {
                from: State::Open,
                input: Input::PeerEof,
                to: State::PeerHalfClosed,
            },
            What::Fin,
        ];
        let x = self.pills(LEGEND_LEFT, y - 6.0, &example);
        let x = self.legend_text(
            x + 6.0,
            y,
            "several steps within one turn (one instant), in order",
        );
        self.rect(x, y - 4.0, 28.0, 8.0, "fill=\"#d1d5db\"", "");
        let _ = writeln!(
            self.out,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{TEXT_COLOUR}\" \
             stroke-width=\"1.2\"/>",
            x + 28.0,
            y - 8.0,
            y + 8.0
        );
        self.legend_text(
            x + 36.0,
            y,
            "the loop: waiting in poll, then a turn (taller: more events)",
        );
    }

    /// A legend's words at `x`; returns where the next item starts.
    fn legend_text(&mut self, x: f64, y: f64, text: &str) -> f64 {
        let attrs = format!("fill=\"{TEXT_COLOUR}\" font-size=\"11\"");
        self.text(x, y + 4.0, &attrs, text);
        x + text_width(text, 11.0) * 0.88 + 20.0
    }

    /// A legend's EOF or FIN flag at `x`; returns where its words start.
    fn legend_flag(&mut self, x: f64, y: f64, colour: &str, label: &str) -> f64 {
        let _ = writeln!(
            self.out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
             stroke-width=\"1.5\"/>",
            y - 6.0,
            y + 5.0
        );
        self.text(
            x + 2.0,
            y + 4.0,
            &format!("font-size=\"9\" font-weight=\"bold\" fill=\"{colour}\""),
            label,
        );
        x + 28.0
    }
}

/// The instants of a lane that changed its state more than once: EOF, transitions and FIN
/// that share one timestamp (one turn).
fn chains(lane: &Lane) -> Vec<Vec<Mark>> {
    let mut chains: Vec<Vec<Mark>> = Vec::new();
    let story = lane
        .marks
        .iter()
        .filter(|mark| matches!(mark.what, What::Eof | What::Fin | What::Transition { .. }));
    for mark in story {
        match chains.last_mut() {
            Some(chain) if chain[0].at == mark.at => chain.push(*mark),
            _ => chains.push(vec![*mark]),
        }
    }
    chains.retain(|chain| {
        let changes = chain
            .iter()
            .filter(|mark| matches!(mark.what, What::Transition { .. }))
            .count();
        changes > 1
    });
    chains
}

/// Where a chain's labels start: after the end cap, or just after the instant.
fn chain_start(lane: &Lane, chain: &[Mark], axis: &Axis) -> f64 {
    let at = chain[0].at;
    let ends_lane = lane.end.as_ref().is_some_and(|end| end.at == at);
    axis.x(at) + if ends_lane { 8.0 } else { 4.0 }
}

/// Where a chain's labels end.
fn chain_end(lane: &Lane, chain: &[Mark], axis: &Axis) -> f64 {
    let labels: f64 = chain
        .iter()
        .filter_map(|mark| pill(&mark.what))
        .map(|(label, _, _)| pill_width(label) + 11.0)
        .sum();
    chain_start(lane, chain, axis) + labels - 11.0
}

/// A label's text, fill and ink in a chain; `None` for marks that have none.
fn pill(what: &What) -> Option<(&'static str, &'static str, &'static str)> {
    match *what {
        What::Eof => Some(("EOF", "#ffffff", EOF_COLOUR)),
        What::Fin => Some(("FIN", "#ffffff", FIN_COLOUR)),
        What::Transition { to, .. } if to == State::Closed => {
            Some(("Closed", state_colour(to), "#ffffff"))
        }
        What::Transition { to, .. } => Some((state_name(to), state_colour(to), TEXT_COLOUR)),
        _ => None,
    }
}

/// A chain label's width: bold text, padded.
fn pill_width(label: &str) -> f64 {
    text_width(label, 9.0) * 1.12 + 6.0
}

/// One mark in words, for titles.
fn describe(what: &What) -> String {
    match what {
        What::Eof => "read EOF".to_string(),
        What::Fin => "sent our FIN".to_string(),
        What::Transition { from, input, to } => format!("{from:?} --{input:?}--> {to:?}"),
        other => format!("{other:?}"),
    }
}
