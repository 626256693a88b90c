//! The results of a whole benchmark run, and the tables made from them.
//!
//! Every figure is a median over the alternating runs; ratios are against tokio (the
//! default choice a user would compare with), with the range of the per-run ratios (each
//! run compares servers measured back to back) beside them as an honest error bar.

use std::fmt::Write as _;
use std::time::Duration;

use crate::held::HeldOutcome;
use crate::machine::Machine;
use crate::scenarios::Scenario;
use crate::servers::ServerKind;
use crate::syscalls::SyscallCounts;

/// One server in one scenario in one run.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub scenario: &'static str,
    pub server: ServerKind,
    pub run: usize,
    pub messages: u64,
    /// Over UDP, the share of the datagrams settled in the window (echoed or given up on)
    /// that were lost; 0 on streams.
    pub loss: f64,
    /// Round trips (echoed messages) per second.
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Server CPU time (user + system) per echoed message.
    pub cpu_us_per_msg: f64,
    /// The same from `/proc/PID/stat`'s utime + stime (10 ms ticks): a cross-check.
    pub stat_cpu_us_per_msg: f64,
    /// Fractions of one CPU during the window: the server, its system share, the load
    /// generator, and everything else on the machine (other people's work: noise).
    pub server_util: f64,
    pub sys_share: f64,
    pub client_util: f64,
    pub other_util: f64,
    /// The server's peak RSS (VmHWM), KiB.
    pub hwm_kib: u64,
    /// How many times it was measured (more than once when other work was too noisy).
    pub tries: usize,
}

/// System calls of one server in one scenario, counted in a separate run.
#[derive(Debug, Clone)]
pub struct SyscallMeasurement {
    pub scenario: &'static str,
    pub server: ServerKind,
    pub messages: u64,
    pub counts: SyscallCounts,
}

impl SyscallMeasurement {
    pub fn per_msg(&self) -> f64 {
        self.counts.total as f64 / self.messages.max(1) as f64
    }

    pub fn call_per_msg(&self, call: &str) -> f64 {
        let count = self.counts.by_call.iter().find(|(c, _)| c == call);
        count.map_or(0.0, |(_, n)| *n as f64 / self.messages.max(1) as f64)
    }
}

pub struct Results {
    pub machine: Machine,
    pub command: String,
    pub runs: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub scenarios: Vec<Scenario>,
    pub servers: Vec<ServerKind>,
    pub measurements: Vec<Measurement>,
    pub syscalls: Vec<SyscallMeasurement>,
    /// Why system calls were not counted, if they were not.
    pub syscall_note: Option<String>,
    pub memory: Vec<HeldOutcome>,
    pub elapsed: Duration,
    pub max_noise: f64,
}

/// Medians over runs of one server in one scenario.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub rate: f64,
    pub rate_min: f64,
    pub rate_max: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_msg: f64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub server_util: f64,
    pub sys_share: f64,
    pub client_util: f64,
    pub other_util: f64,
    pub hwm_kib: f64,
    pub loss: f64,
}

pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

impl Results {
    pub fn runs_of(&self, scenario: &str, server: ServerKind) -> Vec<&Measurement> {
        self.measurements
            .iter()
            .filter(|m| m.scenario == scenario && m.server == server)
            .collect()
    }

    pub fn summary(&self, scenario: &str, server: ServerKind) -> Option<Summary> {
        let runs = self.runs_of(scenario, server);
        if runs.is_empty() {
            return None;
        }
        let med = |f: fn(&Measurement) -> f64| median(runs.iter().map(|m| f(m)).collect());
        let rates: Vec<f64> = runs.iter().map(|m| m.rate).collect();
        let cpus: Vec<f64> = runs.iter().map(|m| m.cpu_us_per_msg).collect();
        let ((rate_min, rate_max), (cpu_min, cpu_max)) = (min_max(&rates), min_max(&cpus));
        Some(Summary {
            rate: med(|m| m.rate),
            rate_min,
            rate_max,
            p50_us: med(|m| m.p50_us),
            p99_us: med(|m| m.p99_us),
            cpu_us_per_msg: med(|m| m.cpu_us_per_msg),
            cpu_min,
            cpu_max,
            server_util: med(|m| m.server_util),
            sys_share: med(|m| m.sys_share),
            client_util: med(|m| m.client_util),
            other_util: med(|m| m.other_util),
            hwm_kib: med(|m| m.hwm_kib as f64),
            loss: med(|m| m.loss),
        })
    }

    pub fn syscalls_of(&self, scenario: &str, server: ServerKind) -> Option<&SyscallMeasurement> {
        self.syscalls
            .iter()
            .find(|s| s.scenario == scenario && s.server == server)
    }

    /// `server`'s median of `metric` over tokio's, and the range of the per-run ratios.
    pub fn ratio(
        &self,
        scenario: &str,
        server: ServerKind,
        metric: fn(&Measurement) -> f64,
    ) -> Option<(f64, f64, f64)> {
        self.ratio_to(scenario, server, ServerKind::Tokio, metric)
    }

    /// `server`'s median of `metric` over `baseline`'s, and the range of the per-run ratios.
    pub fn ratio_to(
        &self,
        scenario: &str,
        server: ServerKind,
        baseline: ServerKind,
        metric: fn(&Measurement) -> f64,
    ) -> Option<(f64, f64, f64)> {
        let ours = self.runs_of(scenario, server);
        let theirs = self.runs_of(scenario, baseline);
        if ours.is_empty() || theirs.is_empty() {
            return None;
        }
        let of = |runs: &[&Measurement]| median(runs.iter().map(|m| metric(m)).collect());
        let per_run: Vec<f64> = ours
            .iter()
            .filter_map(|m| {
                let t = theirs.iter().find(|t| t.run == m.run)?;
                Some(metric(m) / metric(t))
            })
            .collect();
        let (min, max) = min_max(&per_run);
        Some((of(&ours) / of(&theirs), min, max))
    }

    /// The whole report, as Markdown (it reads fine in a terminal too).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Echo benchmark\n");
        let _ = writeln!(out, "- machine: {}", self.machine.one_line());
        let _ = writeln!(out, "- command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- {} alternating run(s) per scenario (server order rotated each run), warm-up {:?}, \
             window {:?}; figures are medians; took {:.0?}",
            self.runs, self.warmup, self.duration, self.elapsed
        );
        if !self.measurements.is_empty() {
            let retried = self.measurements.iter().filter(|m| m.tries > 1).count();
            let noisy = self
                .measurements
                .iter()
                .filter(|m| m.other_util > self.max_noise);
            let _ = writeln!(
                out,
                "- noise: {retried} of {} measurements were repeated because other work took \
                 more than {:.0} % of a CPU during the window; {} still exceed that (least noisy \
                 try kept)",
                self.measurements.len(),
                self.max_noise * 100.0,
                noisy.count()
            );
            if self.scenarios.iter().any(|s| s.tls) {
                let _ = writeln!(
                    out,
                    "- TLS scenarios: `tokio` is tokio-rustls, `reactor` is a `listen` with `ListenOptions::tls`, both \
                     with one rustls `ServerConfig` (ring, no resumption); `mio` sits them out"
                );
            }
            self.ratio_table(&mut out);
            self.median_table(&mut out);
            self.udp_tables(&mut out);
        }
        self.syscall_table(&mut out);
        self.memory_table(&mut out);
        out
    }

    /// The servers compared with tokio: those measured in this run (`mio` sits out a run
    /// of TLS scenarios only).
    fn others(&self) -> Vec<ServerKind> {
        let others =
            self.servers.iter().copied().filter(|&s| {
                s != ServerKind::Tokio && self.measurements.iter().any(|m| m.server == s)
            });
        others.collect()
    }

    fn ratio_table(&self, out: &mut String) {
        let others = self.others();
        let _ = writeln!(
            out,
            "\n### Ratios against tokio\n\nServer / tokio, medians; in brackets the range of \
             the per-run ratios. Round-trips/s: higher is better; the rest: lower is better.\n"
        );
        let mut header = "| scenario |".to_string();
        let mut rule = "|---|".to_string();
        for metric in [
            "round-trips/s",
            "p99",
            "CPU/msg",
            "syscalls/msg",
            "peak RSS",
        ] {
            for server in &others {
                let _ = write!(header, " {metric} {} |", server.name());
                rule.push_str("---:|");
            }
        }
        let _ = writeln!(out, "{header}\n{rule}");
        let metrics: [fn(&Measurement) -> f64; 4] = [
            |m| m.rate,
            |m| m.p99_us,
            |m| m.cpu_us_per_msg,
            |m| m.hwm_kib as f64,
        ];
        for scenario in &self.scenarios {
            let mut row = format!("| {} |", scenario.title);
            for (i, metric) in metrics.iter().enumerate() {
                if i == 3 {
                    // syscalls/msg sits before peak RSS, from the separate perf run.
                    for &server in &others {
                        let ratio = self
                            .syscalls_of(scenario.name, server)
                            .zip(self.syscalls_of(scenario.name, ServerKind::Tokio))
                            .map(|(s, t)| s.per_msg() / t.per_msg());
                        let _ = write!(
                            row,
                            " {} |",
                            ratio.map_or("-".into(), |r| format!("{r:.2}"))
                        );
                    }
                }
                for &server in &others {
                    let cell = match self.ratio(scenario.name, server, *metric) {
                        Some((r, lo, hi)) if self.runs > 1 => format!("{r:.2} ({lo:.2}-{hi:.2})"),
                        Some((r, ..)) => format!("{r:.2}"),
                        None => "-".into(),
                    };
                    let _ = write!(row, " {cell} |");
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }

    fn median_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Medians\n\nCPU/msg is the server's own CPU time (user + system, from \
             /proc) over the window divided by the messages echoed in it. The CPU columns \
             are shares of one core over the window: the server, the system part of its \
             time, the load generator (near 100 % = the load was the bottleneck), and other \
             work on the machine (noise).\n\n\
             | scenario | server | round-trips/s (min-max) | p50 µs | p99 µs | CPU µs/msg \
             (min-max) | syscalls/msg | peak RSS MiB | server CPU | of it sys | load gen CPU \
             | other CPU |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for scenario in &self.scenarios {
            for &server in &self.servers {
                let Some(s) = self.summary(scenario.name, server) else {
                    continue;
                };
                let syscalls = self
                    .syscalls_of(scenario.name, server)
                    .map_or("-".into(), |s| format!("{:.2}", s.per_msg()));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ({}-{}) | {:.1} | {:.1} | {:.2} ({:.2}-{:.2}) | {} | {:.1} \
                     | {:.0} % | {:.0} % | {:.0} % | {:.0} % |",
                    scenario.title,
                    server.name(),
                    kilo(s.rate),
                    kilo(s.rate_min),
                    kilo(s.rate_max),
                    s.p50_us,
                    s.p99_us,
                    s.cpu_us_per_msg,
                    s.cpu_min,
                    s.cpu_max,
                    syscalls,
                    s.hwm_kib / 1024.0,
                    s.server_util * 100.0,
                    s.sys_share * 100.0,
                    s.client_util * 100.0,
                    s.other_util * 100.0,
                );
            }
        }
    }

    fn syscall_table(&self, out: &mut String) {
        let _ = writeln!(out, "\n### System calls per echoed message, by call\n");
        if let Some(note) = &self.syscall_note {
            let _ = writeln!(out, "Not counted: {note}");
            return;
        }
        if self.syscalls.is_empty() {
            let _ = writeln!(out, "Not counted in this run.");
            return;
        }
        let _ = writeln!(
            out,
            "A separate run per scenario and server with `perf stat -e raw_syscalls:sys_enter,\
             syscalls:sys_enter_<call>... -p PID` enabled only over the window. Calls below \
             0.005 per message in every row are left out.\n"
        );
        let calls: Vec<String> = self
            .syscalls
            .iter()
            .flat_map(|s| s.counts.by_call.iter().map(|(c, _)| c.clone()))
            .fold(Vec::new(), |mut seen, c| {
                if !seen.contains(&c) && self.syscalls.iter().any(|s| s.call_per_msg(&c) >= 0.005) {
                    seen.push(c);
                }
                seen
            });
        let _ = write!(out, "| scenario | server | total |");
        for call in &calls {
            let _ = write!(out, " {call} |");
        }
        let _ = writeln!(
            out,
            " other |\n|---|---|---:|{}---:|",
            "---:|".repeat(calls.len())
        );
        for scenario in &self.scenarios {
            for &server in &self.servers {
                let Some(s) = self.syscalls_of(scenario.name, server) else {
                    continue;
                };
                let _ = write!(
                    out,
                    "| {} | {} | {:.2} |",
                    scenario.title,
                    server.name(),
                    s.per_msg()
                );
                let mut listed = 0.0;
                for call in &calls {
                    let per_msg = s.call_per_msg(call);
                    listed += per_msg;
                    let _ = write!(out, " {per_msg:.2} |");
                }
                let _ = writeln!(out, " {:.2} |", (s.per_msg() - listed).max(0.0));
            }
        }
    }

    fn memory_table(&self, out: &mut String) {
        if self.memory.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### Memory per connection\n\nEach connection echoed one 64-byte message, \
             then sat idle (`idle`); then every connection echoed one more at once (`swept`). \
             Bytes per connection = (server RSS then - RSS before any connection) / connections. \
             The 100k column extrapolates linearly from the larger of the two.\n\n\
             | server | connections | helper processes | RSS before MiB | RSS idle MiB | B/conn idle \
             | RSS swept MiB | B/conn swept | peak RSS MiB | sweep ms | sweep p99 ms | RSS at 100k MiB \
             (extrapolated) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for m in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {:.0} |",
                m.label(),
                m.conns,
                m.processes,
                m.rss_before_kib as f64 / 1024.0,
                m.rss_idle_kib as f64 / 1024.0,
                m.idle_bytes_per_conn(),
                m.rss_after_sweep_kib as f64 / 1024.0,
                m.swept_bytes_per_conn(),
                m.hwm_kib as f64 / 1024.0,
                m.sweep.as_secs_f64() * 1000.0,
                m.sweep_p99_us as f64 / 1000.0,
                m.extrapolated_100k_mib(),
            );
        }
    }

    /// One line per measurement, for a spreadsheet.
    pub fn csv(&self) -> String {
        let mut out = "scenario,server,run,messages,rate,p50_us,p99_us,cpu_us_per_msg,server_util,\
                       sys_share,client_util,other_util,hwm_kib,tries,stat_cpu_us_per_msg,loss\n"
            .to_string();
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.1},{:.2},{:.2},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{:.4},{:.6}",
                m.scenario,
                m.server.name(),
                m.run,
                m.messages,
                m.rate,
                m.p50_us,
                m.p99_us,
                m.cpu_us_per_msg,
                m.server_util,
                m.sys_share,
                m.client_util,
                m.other_util,
                m.hwm_kib,
                m.tries,
                m.stat_cpu_us_per_msg,
                m.loss
            );
        }
        out
    }
}

/// 95123.4 -> "95.1k".
pub fn kilo(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else {
        format!("{value:.0}")
    }
}
