//! The UDP part of the report (the `udp-*` scenarios): per server the figures of issue 22
//! (datagrams/s, server CPU and system calls per datagram, the calls by name, loss, p50 and
//! p99 round trip), then the reactor's ratios against tokio and against the plain mio loop.

use std::fmt::Write as _;

use crate::report::{kilo, Measurement, Results};
use crate::scenarios::Scenario;
use crate::servers::ServerKind;

/// The calls a UDP echo server spends per datagram or per wake-up, in the table's order.
const UDP_CALLS: [&str; 7] = [
    "recvfrom",
    "sendto",
    "recvmmsg",
    "sendmmsg",
    "recvmsg",
    "sendmsg",
    "epoll_wait",
];

/// One figure of a measurement, for a ratio.
type Metric = fn(&Measurement) -> f64;

impl Results {
    pub fn udp_tables(&self, out: &mut String) {
        let udp: Vec<&Scenario> = self.scenarios.iter().filter(|s| s.udp).collect();
        if udp.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### UDP: against tokio and a plain mio loop\n\n\
             Per echoed datagram, medians over the runs: the server's CPU time (user + \
             system, /proc) and its system calls (`perf stat`, a separate run, total and by \
             name). Loss: datagrams not echoed within 200 ms, as a share of those sent and \
             settled in the window. Round trips are timed per datagram (`Instant` at send and \
             at receive). Issue 22's goals at 50 sockets x 16 in flight: at most 0.25 system \
             calls per datagram, CPU per datagram at most 0.6x tokio's, no more loss than \
             tokio at the same offered load (a paced scenario offers the same load to every \
             server; a closed loop offers less to a server that loses more).\n"
        );
        let mut header =
            "| scenario | server | datagrams/s | CPU µs/datagram | syscalls/datagram |".to_string();
        for call in UDP_CALLS {
            let _ = write!(header, " {call} |");
        }
        let _ = writeln!(
            out,
            "{header} loss % | p50 µs | p99 µs |\n|---|---|---:|---:|---:|{}---:|---:|---:|",
            "---:|".repeat(UDP_CALLS.len())
        );
        for scenario in &udp {
            for &server in &self.servers {
                let Some(s) = self.summary(scenario.name, server) else {
                    continue;
                };
                let calls = self.syscalls_of(scenario.name, server);
                let per = |call: Option<&str>| {
                    calls.map_or("-".to_string(), |c| {
                        format!(
                            "{:.3}",
                            call.map_or(c.per_msg(), |call| c.call_per_msg(call))
                        )
                    })
                };
                let _ = write!(
                    out,
                    "| {} | {} | {} | {:.2} | {} |",
                    scenario.title,
                    server.name(),
                    kilo(s.rate),
                    s.cpu_us_per_msg,
                    per(None)
                );
                for call in UDP_CALLS {
                    let _ = write!(out, " {} |", per(Some(call)));
                }
                let _ = writeln!(
                    out,
                    " {:.3} | {:.1} | {:.1} |",
                    s.loss * 100.0,
                    s.p50_us,
                    s.p99_us
                );
            }
        }
        self.udp_ratio_table(out, &udp);
    }

    /// reactor / tokio and reactor / mio, medians with the per-run range in brackets.
    fn udp_ratio_table(&self, out: &mut String, udp: &[&Scenario]) {
        let baselines = [ServerKind::Tokio, ServerKind::Mio];
        let _ = writeln!(
            out,
            "\nThe reactor's UDP figures over tokio's and over the mio loop's (medians; in \
             brackets the range of the per-run ratios; system calls from the one counted run). \
             Datagrams/s: higher is better; the rest: lower is better.\n\n\
             | scenario | metric | reactor / tokio | reactor / mio |\n|---|---|---:|---:|"
        );
        let metrics: [(&str, Metric); 4] = [
            ("datagrams/s", |m| m.rate),
            ("CPU/datagram", |m| m.cpu_us_per_msg),
            ("p50", |m| m.p50_us),
            ("p99", |m| m.p99_us),
        ];
        for scenario in udp {
            for (name, metric) in metrics {
                let _ = write!(out, "| {} | {name} |", scenario.title);
                for baseline in baselines {
                    let cell = self.ratio_to(scenario.name, ServerKind::Reactor, baseline, metric);
                    let cell = match cell {
                        Some((r, lo, hi)) if self.runs > 1 => format!("{r:.2} ({lo:.2}-{hi:.2})"),
                        Some((r, ..)) => format!("{r:.2}"),
                        None => "-".into(),
                    };
                    let _ = write!(out, " {cell} |");
                }
                let _ = writeln!(out);
            }
            let _ = write!(out, "| {} | syscalls/datagram |", scenario.title);
            for baseline in baselines {
                let ratio = self
                    .syscalls_of(scenario.name, ServerKind::Reactor)
                    .zip(self.syscalls_of(scenario.name, baseline))
                    .map(|(ours, theirs)| ours.per_msg() / theirs.per_msg());
                let _ = write!(
                    out,
                    " {} |",
                    ratio.map_or("-".into(), |r| format!("{r:.2}"))
                );
            }
            let _ = writeln!(out);
        }
    }
}
