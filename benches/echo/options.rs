//! The command line: the driver's options, and the two child modes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::scenarios::{MEMORY_PARTS, SCENARIOS};
use crate::servers::{ServeOptions, ServerKind};
use crate::Fallible;

pub const USAGE: &str = "\
Usage: cargo bench --bench echo -- [OPTIONS]

Starts the tokio, plain-mio and mio-reactor echo servers one after another (each its own
process, pinned to one CPU), drives each with the same load generator (pinned to another),
checks every echoed byte, and reports round-trips/s, p50/p99 latency, server CPU time per
message, system calls per message, peak RSS and memory per connection, as ratios against
tokio. Exits non-zero on any echo error.

Options:
  --quick              smoke test: 1 run, short windows, fewer held connections
  --runs N             alternating runs per scenario (default 5)
  --warmup SECS        warm-up before each window (default 1)
  --duration SECS      measurement window (default 4)
  --scenario NAME      only this part (repeatable): c50x512, c1000x64, pingpong,
                       pipelined, paced, split, idle, held (default: all)
  --server NAME        only this server (repeatable): tokio, mio, reactor (tokio is the
                       baseline of the ratios); `faulty` corrupts a byte now and then,
                       to check that the benchmark then fails
  --tokio-buffer BYTES the tokio task's read buffer (default 4096)
  --idle N             idle connections for the memory figure (default 10000)
  --held N             connections for the held-connections run (default 19000)
  --max-noise PCT      other work on the machine (neither server nor load) may take up
                       to PCT % of a CPU during a window (default 25); above it the
                       measurement is repeated
  --retries N          repeats allowed per noisy measurement (default 1, the least noisy
                       is kept; 0 with --quick)
  --no-syscalls        skip the perf run that counts system calls
  --no-pin             do not pin the servers and the load to CPUs
  --chart PATH         where to write the SVG chart (default docs/echo-benchmark.svg;
                       with --quick, target/echo-bench/echo-benchmark.svg)
  -h, --help           show this help

Results (Markdown and CSV) also go to target/echo-bench/.
";

/// Flags and their values, consumed in order.
pub struct Args {
    items: VecDeque<String>,
}

impl Args {
    pub fn new(items: &[String]) -> Args {
        Args {
            items: items.iter().cloned().collect(),
        }
    }

    pub fn next_flag(&mut self) -> Option<String> {
        self.items.pop_front()
    }

    pub fn value<T: FromStr>(&mut self, flag: &str) -> Fallible<T> {
        let text = self
            .items
            .pop_front()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        text.parse()
            .map_err(|_| format!("{flag}: cannot understand {text:?}").into())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub help: bool,
    pub quick: bool,
    pub runs: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Selected parts; empty means all.
    pub parts: Vec<String>,
    pub servers: Vec<ServerKind>,
    pub idle: usize,
    pub held: usize,
    /// Share of a CPU that other work may take during a window before it is repeated.
    pub max_noise: f64,
    pub retries: usize,
    pub syscalls: bool,
    pub pin: bool,
    pub chart: Option<PathBuf>,
    pub serve: ServeOptions,
}

impl Options {
    pub fn parse(args: &[String]) -> Fallible<Options> {
        let mut options = Options {
            help: false,
            quick: false,
            runs: 5,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(4),
            parts: Vec::new(),
            servers: Vec::new(),
            idle: 10_000,
            held: 19_000,
            max_noise: 0.25,
            retries: 1,
            syscalls: true,
            pin: true,
            chart: None,
            serve: ServeOptions::default(),
        };
        let (mut runs, mut warmup, mut duration) = (None, None, None);
        let (mut idle, mut held, mut retries) = (None, None, None);
        let mut args = Args::new(args);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "-h" | "--help" => options.help = true,
                "--quick" => options.quick = true,
                "--runs" => runs = Some(args.value(&flag)?),
                "--warmup" => warmup = Some(secs(args.value(&flag)?, &flag)?),
                "--duration" => duration = Some(secs(args.value(&flag)?, &flag)?),
                "--scenario" => {
                    let name: String = args.value(&flag)?;
                    let known = SCENARIOS.iter().any(|s| s.name == name)
                        || MEMORY_PARTS.contains(&name.as_str());
                    if !known {
                        return Err(format!("no scenario {name:?}\n\n{USAGE}").into());
                    }
                    options.parts.push(name);
                }
                "--server" => {
                    let name: String = args.value(&flag)?;
                    let kind = ServerKind::parse(&name)
                        .ok_or_else(|| format!("no server {name:?}\n\n{USAGE}"))?;
                    if !options.servers.contains(&kind) {
                        options.servers.push(kind);
                    }
                }
                "--tokio-buffer" => {
                    options.serve.tokio_buffer = args.value(&flag)?;
                    if options.serve.tokio_buffer == 0 {
                        return Err("--tokio-buffer must be at least 1".into());
                    }
                }
                "--idle" => idle = Some(args.value(&flag)?),
                "--held" => held = Some(args.value(&flag)?),
                "--max-noise" => options.max_noise = args.value::<f64>(&flag)? / 100.0,
                "--retries" => retries = Some(args.value(&flag)?),
                "--no-syscalls" => options.syscalls = false,
                "--no-pin" => options.pin = false,
                "--chart" => options.chart = Some(PathBuf::from(args.value::<String>(&flag)?)),
                other => return Err(format!("unknown option {other:?}\n\n{USAGE}").into()),
            }
        }
        if options.quick {
            options.runs = 1;
            options.warmup = Duration::from_millis(300);
            options.duration = Duration::from_secs(1);
            options.idle = 2_000;
            options.held = 6_000;
            options.retries = 0;
        }
        options.runs = runs.unwrap_or(options.runs);
        options.warmup = warmup.unwrap_or(options.warmup);
        options.duration = duration.unwrap_or(options.duration);
        options.idle = idle.unwrap_or(options.idle);
        options.held = held.unwrap_or(options.held);
        options.retries = retries.unwrap_or(options.retries);
        if options.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        // The report and the chart list servers in a fixed order.
        options.servers = if options.servers.is_empty() {
            ServerKind::ALL.to_vec()
        } else {
            ServerKind::ALL
                .into_iter()
                .chain([ServerKind::Faulty])
                .filter(|k| options.servers.contains(k))
                .collect()
        };
        Ok(options)
    }

    pub fn wants(&self, part: &str) -> bool {
        self.parts.is_empty() || self.parts.iter().any(|p| p == part)
    }
}

fn secs(value: f64, flag: &str) -> Fallible<Duration> {
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("{flag} must be a positive number of seconds").into());
    }
    Ok(Duration::from_secs_f64(value))
}
