//! What the chart shows, built from the results: the same run as the tables.

use crate::report::{kilo, Results};
use crate::servers::ServerKind;
use crate::svg::{self, Group, Panel, Scale, Series};
use crate::Fallible;

use plotters::style::RGBColor;

fn color(server: ServerKind) -> RGBColor {
    match server {
        ServerKind::Tokio => RGBColor(0x4e, 0x79, 0xa7),
        ServerKind::Mio => RGBColor(0xf2, 0x8e, 0x2b),
        ServerKind::Reactor => RGBColor(0x59, 0xa1, 0x4f),
        ServerKind::Faulty => RGBColor(0xe1, 0x57, 0x59),
    }
}

pub fn render(results: &Results) -> Fallible<String> {
    let series: Vec<Series> = results
        .servers
        .iter()
        .map(|&s| Series {
            name: s.name(),
            color: color(s),
        })
        .collect();
    let mut panels = Vec::new();
    if !results.measurements.is_empty() {
        panels.push(throughput(results));
        panels.push(cpu_per_message(results));
        panels.push(p99(results));
    }
    if !results.syscalls.is_empty() {
        panels.push(syscalls(results));
    }
    if !results.memory.is_empty() {
        panels.push(memory(results));
    }
    let machine = &results.machine;
    let subtitle = [
        format!(
            "Medians of {} alternating run(s), {:?} windows; {}.",
            results.runs, results.duration, machine.pinning
        ),
        format!(
            "{} CPUs ({}), {}, {}. `{}`",
            machine.cpus, machine.cpu_model, machine.kernel, machine.rustc, results.command
        ),
    ];
    svg::chart(
        "Echo servers: mio-reactor vs tokio vs plain mio",
        &subtitle,
        &series,
        &panels,
    )
}

fn throughput(results: &Results) -> Panel {
    let groups = results
        .scenarios
        .iter()
        .filter(|s| !s.is_paced())
        .map(|scenario| {
            let tokio = results.summary(scenario.name, ServerKind::Tokio);
            Group {
                label: [
                    scenario.short.to_string(),
                    tokio.map_or(String::new(), |t| format!("tokio: {}/s", kilo(t.rate))),
                ],
                bars: results
                    .servers
                    .iter()
                    .map(|&server| {
                        let (ratio, ..) = results.ratio(scenario.name, server, |m| m.rate)?;
                        Some((ratio, format!("{ratio:.2}")))
                    })
                    .collect(),
            }
        })
        .collect();
    Panel {
        title: "Round-trips per second, relative to tokio (higher is better)".into(),
        groups,
        scale: Scale::LogRatio,
    }
}

fn cpu_per_message(results: &Results) -> Panel {
    let groups = results
        .scenarios
        .iter()
        .map(|scenario| Group {
            label: [scenario.short.to_string(), String::new()],
            bars: results
                .servers
                .iter()
                .map(|&server| {
                    let s = results.summary(scenario.name, server)?;
                    Some((s.cpu_us_per_msg, format!("{:.2}", s.cpu_us_per_msg)))
                })
                .collect(),
        })
        .collect();
    Panel {
        title: "Server CPU time per echoed message, µs (lower is better)".into(),
        groups,
        scale: Scale::Linear,
    }
}

fn p99(results: &Results) -> Panel {
    let groups = results
        .scenarios
        .iter()
        .map(|scenario| Group {
            label: [scenario.short.to_string(), "label: p99 in µs".into()],
            bars: results
                .servers
                .iter()
                .map(|&server| {
                    let (ratio, ..) = results.ratio(scenario.name, server, |m| m.p99_us)?;
                    let s = results.summary(scenario.name, server)?;
                    Some((ratio, format!("{:.0}", s.p99_us)))
                })
                .collect(),
        })
        .collect();
    Panel {
        title: "p99 latency relative to tokio (lower is better)".into(),
        groups,
        scale: Scale::LogRatio,
    }
}

fn syscalls(results: &Results) -> Panel {
    let groups = results
        .scenarios
        .iter()
        .map(|scenario| Group {
            label: [scenario.short.to_string(), String::new()],
            bars: results
                .servers
                .iter()
                .map(|&server| {
                    let per_msg = results.syscalls_of(scenario.name, server)?.per_msg();
                    Some((per_msg, format!("{per_msg:.2}")))
                })
                .collect(),
        })
        .collect();
    Panel {
        title: "System calls per echoed message (lower is better)".into(),
        groups,
        scale: Scale::Linear,
    }
}

fn memory(results: &Results) -> Panel {
    let mut runs: Vec<(usize, bool)> = results.memory.iter().map(|m| (m.conns, m.tls)).collect();
    runs.dedup();
    let groups = runs
        .iter()
        .flat_map(|&(conns, tls)| {
            let of = move |server: ServerKind| {
                let mut memory = results.memory.iter();
                memory.find(|m| m.conns == conns && m.tls == tls && m.server == server)
            };
            let conns = if tls {
                format!("{conns} TLS")
            } else {
                conns.to_string()
            };
            [
                Group {
                    label: [
                        format!("{conns} conns, idle"),
                        "one echo each, then idle".into(),
                    ],
                    bars: results
                        .servers
                        .iter()
                        .map(|&s| {
                            let b = of(s)?.idle_bytes_per_conn();
                            Some((b, format!("{b:.0}")))
                        })
                        .collect(),
                },
                Group {
                    label: [
                        format!("{conns} conns, swept"),
                        "one more echo on all at once".into(),
                    ],
                    bars: results
                        .servers
                        .iter()
                        .map(|&s| {
                            let b = of(s)?.swept_bytes_per_conn();
                            Some((b, format!("{b:.0}")))
                        })
                        .collect(),
                },
            ]
        })
        .collect();
    Panel {
        title: "Server memory (RSS) per connection, bytes (lower is better)".into(),
        groups,
        scale: Scale::Linear,
    }
}
