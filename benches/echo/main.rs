//! The echo benchmark of issue #5: mio-reactor against what a user would pick instead.
//!
//! ```text
//! cargo bench --bench echo -- --quick                 # smoke test, about a minute
//! cargo bench --bench echo                            # 5 alternating runs, ~20 minutes
//! cargo bench --bench echo -- --runs 9 --scenario pingpong --server tokio --server reactor
//! # Over TLS (issue 14): our TLS listen (ListenOptions::tls) against tokio-rustls, same rustls and provider
//! cargo bench --bench echo --features tls -- --scenario tls-c50x512 --scenario tls-c1000x64 \
//!     --scenario tls-handshakes --scenario tls-idle --server tokio --server reactor
//! # UDP (issue 22): a DatagramHandler against tokio's UdpSocket and a plain mio loop
//! cargo bench --bench echo -- --scenario udp-c50x64-k16 --scenario udp-c1x64-k1 \
//!     --scenario udp-c50x64-paced --runs 3
//! ```
//!
//! The `udp-*` scenarios echo datagrams instead: the servers are in `udp_servers.rs`, the
//! load generator (K datagrams in flight per socket, or a fixed rate, each echo matched by
//! its sequence number and checked, a datagram not echoed within 200 ms counted lost) in
//! `udp_load.rs`, their table in `udp_report.rs`. Loss is a figure there, not a failure.
//!
//! Without the `tls` feature the TLS parts (`tls-*`) are left out of a full run; with it, a
//! full run includes them. Their certificate is made in-process (`tls.rs`).
//!
//! One binary plays every part. Run plainly it is the **driver**: for each scenario and
//! run it starts each server in turn as a child process (this same executable with
//! `--serve tokio|mio|reactor`), pinned to one CPU, and loads it from its own thread, pinned
//! to the other CPU, with a single-threaded mio client that checks every echoed byte
//! (`load.rs`). The server's CPU time and memory come from `/proc/PID` (`process_counters.rs`)
//! over the measurement window, so a saturated load generator cannot hide a difference in cost. A second pass
//! counts each server's system calls with `perf stat` attached over the window only
//! (`syscalls.rs`). The memory runs open thousands of connections from helper processes
//! (`--hold-clients`, `held.rs`). Then it prints the tables (`report.rs`), and writes the
//! chart (`chart.rs`, `svg.rs`) and the raw numbers. While it works, a bar with the step and
//! the time left shows on a terminal; in a log, a plain line announces each step.
//!
//! Servers run in alternating order (rotated every run) and figures are medians, because
//! the machine is shared and noisy: see `docs/performance.md` for how to read the results.
//! Nothing here asserts anything about speed; any wrong, missing or extra echoed byte, a
//! failed connect or a server that dies makes the benchmark fail with a non-zero exit.

mod affinity;
mod chart;
#[path = "../../examples/support/cli.rs"]
mod cli;
mod client;
mod held;
mod histogram;
mod load;
mod machine;
mod options;
mod pattern;
mod process_counters;
#[path = "../../examples/support/progress.rs"]
mod progress;
mod report;
mod scenarios;
mod server_process;
mod servers;
mod svg;
mod syscalls;
mod tls;
mod tokio_tls_server;
mod udp_load;
mod udp_report;
mod udp_servers;
mod window;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

use crate::client::Target;
use crate::load::Mark;
use crate::machine::Machine;
use crate::options::{is_tls_part, HoldArgs, LoadArgs, Options, ServeArgs};
use crate::process_counters::ProcSample;
use crate::progress::Progress;
use crate::report::{kilo, Measurement, Results, SyscallMeasurement};
use crate::scenarios::{Scenario, SCENARIOS};
use crate::server_process::ServerProcess;
use crate::servers::{ServeOptions, ServerKind};
use crate::syscalls::{SyscallCounter, SyscallCounts};
use crate::tls::TlsFiles;

pub type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    // `cargo bench` passes `--bench` to every bench binary. `cargo test --benches` (or
    // `--all-targets`) runs it with no arguments at all, and must not start a 15-minute
    // benchmark: then only the instruments check themselves.
    let all: Vec<String> = std::env::args().skip(1).collect();
    let under_cargo_test = all.is_empty();
    let args: Vec<String> = all.into_iter().filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("--serve") => serve_main(&args),
        Some("--hold-clients") => hold_main(&args),
        Some("--load") => load_main(&args),
        _ if under_cargo_test => {
            histogram::self_check();
            pattern::self_check();
            println!("echo benchmark: instruments OK; run it with `cargo bench --bench echo`");
            Ok(())
        }
        _ => drive(&args),
    };
    if let Err(err) = result {
        eprintln!("echo benchmark FAILED: {err}");
        std::process::exit(1);
    }
}

/// Child mode: a server under test (see [`ServeArgs`]).
fn serve_main(args: &[String]) -> Fallible<()> {
    let args = ServeArgs::try_parse_from(args)?;
    if let Some(cpu) = args.cpu {
        affinity::pin_to(cpu)?; // first, so that every thread inherits it
    }
    let serve = ServeOptions {
        tokio_buffer: args.tokio_buffer,
        reply_pieces: args.reply_pieces,
        udp: args.udp,
    };
    let tls = args
        .tls_dir
        .as_deref()
        .map(tls::server_config)
        .transpose()?;
    servers::serve(args.kind, args.addr, serve, tls)
}

/// Child mode: a helper holding connections (see [`HoldArgs`]).
fn hold_main(args: &[String]) -> Fallible<()> {
    let args = HoldArgs::try_parse_from(args)?;
    if let Some(cpu) = args.cpu {
        affinity::pin_to(cpu)?;
    }
    let tls_dir = args.tls_dir.as_deref();
    held::client_main(args.addr, tls_dir, args.source, args.count, args.first)
}

/// Helper mode: this benchmark's load generator against a server already running (an
/// `echo_server` example, say), to compare other clients with it on the same server (see
/// [`LoadArgs`]).
fn load_main(args: &[String]) -> Fallible<()> {
    let args = LoadArgs::try_parse_from(args)?;
    if let Some(cpu) = args.cpu {
        affinity::pin_to(cpu)?;
    }
    let addr = args.load;
    let mut spec = scenarios::SCENARIOS[0].load(args.warmup, args.duration);
    spec.conns = args.conns;
    spec.size = args.size;
    spec.depth = args.depth;
    spec.reconnect = args.reconnect;
    let tls = args
        .tls_dir
        .as_deref()
        .map(tls::client_config)
        .transpose()?;
    let outcome = if args.udp {
        udp_load::run(addr, &spec, |_| Ok(()))?
    } else {
        load::run(&Target { addr, tls }, &spec, |_| Ok(()))?
    };
    let messages = outcome.messages.max(1) as f64;
    println!(
        "load: {} {} x {} B, {} in flight: {} messages, {} lost, {:.0} messages/s, \
         p50 {:.0} µs, {:.2} µs client CPU/msg",
        spec.conns,
        if args.udp { "sockets" } else { "conns" },
        spec.size,
        spec.depth,
        outcome.messages,
        outcome.lost,
        messages / outcome.window.as_secs_f64(),
        outcome.latency.quantile(0.50) as f64 / 1000.0,
        outcome.client_cpu_ns as f64 / 1000.0 / messages
    );
    Ok(())
}

/// Which CPUs the servers and the load run on.
#[derive(Debug, Clone, Copy)]
struct Cpus {
    server: Option<usize>,
    load: Option<usize>,
}

fn drive(args: &[String]) -> Fallible<()> {
    let options = Options::parse(args);
    let started = Instant::now();
    histogram::self_check();
    pattern::self_check();
    let plan = if options.pin { affinity::plan() } else { None };
    let cpus = Cpus {
        server: plan.map(|(server, _)| server),
        load: plan.map(|(_, load)| load),
    };
    if let Some(cpu) = cpus.load {
        affinity::pin_to(cpu)?; // the load generator is this thread
    }
    let pinning = match plan {
        Some((server, load)) => format!("servers pinned to CPU {server}, load to CPU {load}"),
        None if !options.pin => "nothing pinned (--no-pin)".to_string(),
        None => "nothing pinned (fewer than 2 CPUs available)".to_string(),
    };
    let machine = Machine::describe(pinning);
    println!("machine: {}", machine.one_line());

    let scenarios: Vec<Scenario> = SCENARIOS
        .iter()
        .filter(|s| options.wants(s.name))
        .copied()
        .collect();
    let memory_parts = [
        ("idle", options.idle),
        ("held", options.held),
        ("tls-idle", options.tls_idle),
    ]
    .into_iter()
    .filter(|&(part, conns)| options.wants(part) && conns > 0)
    .collect::<Vec<_>>();
    let tls_parts = scenarios
        .iter()
        .map(|s| s.name)
        .chain(memory_parts.iter().map(|p| p.0));
    let tls_files = match tls_parts.filter(|p| is_tls_part(p)).count() {
        0 => None,
        _ if !cfg!(feature = "tls") && options.servers.contains(&ServerKind::Reactor) => {
            return Err("the TLS parts need our TLS server: `cargo bench --features tls`".into())
        }
        _ => Some(TlsFiles::generate()?),
    };
    let counting_syscalls = options.syscalls && !scenarios.is_empty() && syscalls::perf_works();
    let load_steps: usize = scenarios
        .iter()
        .map(|s| servers_for(s.tls, &options.servers, 0).len())
        .sum();
    let memory_steps: usize = memory_parts
        .iter()
        .map(|(part, _)| servers_for(is_tls_part(part), &options.servers, 0).len())
        .sum();
    let steps = load_steps * (options.runs + usize::from(counting_syscalls)) + memory_steps;
    let mut progress = Progress::new(steps as u64);

    let mut measurements = Vec::new();
    for run in 0..options.runs {
        for (i, scenario) in scenarios.iter().enumerate() {
            for server in servers_for(scenario.tls, &options.servers, run + i) {
                progress.start(&format!(
                    "run {}/{}: {} against {}",
                    run + 1,
                    options.runs,
                    scenario.title,
                    server.name()
                ));
                let tls = tls_files.as_ref().filter(|_| scenario.tls);
                let m = measure_quietly(scenario, server, run, &options, cpus, tls, &progress)?;
                measurements.push(m);
                progress.step_done();
            }
        }
    }

    let mut syscalls = Vec::new();
    let mut syscall_note = None;
    if options.syscalls && !scenarios.is_empty() {
        if counting_syscalls {
            progress.println("-- counting system calls (perf stat attached: a separate run) --");
            for (i, scenario) in scenarios.iter().enumerate() {
                for server in servers_for(scenario.tls, &options.servers, i) {
                    progress.start(&format!(
                        "system calls: {} against {}",
                        scenario.title,
                        server.name()
                    ));
                    let tls = tls_files.as_ref().filter(|_| scenario.tls);
                    let (m, counts) = measure(scenario, server, 0, &options, cpus, tls, true)?;
                    let counts = counts.expect("counted");
                    let per_msg = counts.total as f64 / m.messages.max(1) as f64;
                    progress.println(&format!(
                        "{:<34} {:<8} {per_msg:.2} syscalls/msg ({} msgs)",
                        scenario.title,
                        server.name(),
                        m.messages
                    ));
                    syscalls.push(SyscallMeasurement {
                        scenario: scenario.name,
                        server,
                        messages: m.messages,
                        counts,
                    });
                    progress.step_done();
                }
            }
        } else {
            syscall_note = Some(
                "`perf stat -e raw_syscalls:sys_enter` does not work here (no perf, or no \
                 tracepoint access); count with `strace -c -f -p PID` by hand instead"
                    .to_string(),
            );
        }
    }

    let mut memory = Vec::new();
    for (part, conns) in memory_parts {
        progress.println(&format!("-- {part}: {conns} connections per server --"));
        let tls = is_tls_part(part);
        let tls_dir = tls_files.as_ref().filter(|_| tls).map(TlsFiles::dir);
        for server in servers_for(tls, &options.servers, 0) {
            progress.start(&format!("{part}: {conns} connections to {}", server.name()));
            let (server_cpu, load_cpu, serve) = (cpus.server, cpus.load, options.serve);
            let outcome = held::measure(
                server,
                conns,
                server_cpu,
                load_cpu,
                serve,
                tls_dir.as_deref(),
            )?;
            progress.println(&format!(
                "{:<8} {} conns: {:.0} B/conn idle, {:.0} B/conn after a sweep ({:.0} ms), \
                 RSS {:.1} MiB",
                server.name(),
                conns,
                outcome.idle_bytes_per_conn(),
                outcome.swept_bytes_per_conn(),
                outcome.sweep.as_secs_f64() * 1000.0,
                outcome.rss_after_sweep_kib as f64 / 1024.0
            ));
            memory.push(outcome);
            progress.step_done();
        }
    }
    progress.finish();

    let features = if cfg!(feature = "tls") {
        " --features tls"
    } else {
        ""
    };
    let results = Results {
        machine,
        command: format!("cargo bench --bench echo{features} -- {}", args.join(" "))
            .trim_end()
            .trim_end_matches(" --")
            .to_string(),
        runs: options.runs,
        warmup: options.warmup,
        duration: options.duration,
        scenarios,
        servers: options.servers.clone(),
        measurements,
        syscalls,
        syscall_note,
        memory,
        elapsed: started.elapsed(),
        max_noise: options.max_noise,
    };
    write_outputs(&results, &options)
}

/// The servers in an order rotated by `by`: each server takes each position in turn, so
/// that warming caches, thermal drift or a neighbour's build does not favour one of them.
fn rotated(servers: &[ServerKind], by: usize) -> Vec<ServerKind> {
    let mut order = servers.to_vec();
    if !order.is_empty() {
        let len = order.len();
        order.rotate_left(by % len);
    }
    order
}

/// The servers that take part in a scenario (over TLS: those with a TLS server), in an
/// order rotated by `by` (see [`rotated`]).
fn servers_for(tls: bool, servers: &[ServerKind], by: usize) -> Vec<ServerKind> {
    let mut taking_part = rotated(servers, by);
    taking_part.retain(|server| !tls || server.speaks_tls());
    taking_part
}

/// Measures, and measures again (up to `--retries` times) while other work on the machine
/// took more than `--max-noise` of a CPU during the window; keeps the least noisy try.
fn measure_quietly(
    scenario: &Scenario,
    server: ServerKind,
    run: usize,
    options: &Options,
    cpus: Cpus,
    tls: Option<&TlsFiles>,
    progress: &Progress,
) -> Fallible<Measurement> {
    let mut best: Option<Measurement> = None;
    for tries in 1..=options.retries + 1 {
        let (mut m, _) = measure(scenario, server, run, options, cpus, tls, false)?;
        m.tries = tries;
        progress.println(&measurement_line(scenario, &m, options.runs));
        let quiet = m.other_util <= options.max_noise;
        if best.as_ref().is_none_or(|b| m.other_util < b.other_util) {
            best = Some(m);
        }
        if quiet {
            break;
        }
        if tries <= options.retries {
            progress.println("        (noisy window: measuring again)");
        }
    }
    Ok(best.expect("measured at least once"))
}

/// Runs one scenario against a fresh server process (over TLS with `tls`).
fn measure(
    scenario: &Scenario,
    kind: ServerKind,
    run: usize,
    options: &Options,
    cpus: Cpus,
    tls: Option<&TlsFiles>,
    count_syscalls: bool,
) -> Fallible<(Measurement, Option<SyscallCounts>)> {
    let serve = ServeOptions {
        reply_pieces: scenario.reply_pieces,
        udp: scenario.udp,
        ..options.serve
    };
    let tls_dir = tls.map(TlsFiles::dir);
    let mut server = ServerProcess::start(kind, cpus.server, serve, tls_dir.as_deref())?;
    let target = Target {
        addr: server.addr,
        tls: tls_dir.as_deref().map(tls::client_config).transpose()?,
    };
    let mut counter = if count_syscalls {
        Some(SyscallCounter::attach(server.pid())?)
    } else {
        None
    };
    let (mut first, mut last) = (ProcSample::default(), ProcSample::default());
    let (mut busy_first, mut busy_last) = (0, 0);
    let spec = scenario.load(options.warmup, options.duration);
    let server_addr = server.addr;
    let mark = |mark| {
        match mark {
            Mark::Start => {
                if let Some(counter) = counter.as_mut() {
                    counter.enable()?;
                }
                first = server.sample()?;
                busy_first = process_counters::machine_busy_ns();
            }
            Mark::End => {
                last = server.sample()?;
                busy_last = process_counters::machine_busy_ns();
                if let Some(counter) = counter.as_mut() {
                    counter.disable()?;
                }
            }
        }
        Ok(())
    };
    let outcome = if scenario.udp {
        udp_load::run(server_addr, &spec, mark)
    } else {
        load::run(&target, &spec, mark)
    };
    let outcome = outcome.map_err(|err| {
        format!(
            "{} against the {} server: {err}",
            scenario.title,
            kind.name()
        )
    })?;
    // The connections are closed by now; the peak RSS is final.
    let peak = server.sample()?;
    let counts = counter.map(SyscallCounter::finish).transpose()?;
    server.stop()?;

    let window_ns = outcome.window.as_nanos() as f64;
    let cpu_ns = last.cpu_ns.saturating_sub(first.cpu_ns) as f64;
    let ticks = |s: &ProcSample| (s.user_ticks, s.system_ticks);
    let ((u0, s0), (u1, s1)) = (ticks(&first), ticks(&last));
    let (user, system) = (u1.saturating_sub(u0), s1.saturating_sub(s0));
    let busy = busy_last.saturating_sub(busy_first) as f64;
    let messages = outcome.messages;
    if messages == 0 {
        return Err(format!("{}: no message echoed by {}", scenario.title, kind.name()).into());
    }
    let measurement = Measurement {
        scenario: scenario.name,
        server: kind,
        run,
        messages,
        loss: outcome.lost as f64 / (messages + outcome.lost) as f64,
        rate: messages as f64 / outcome.window.as_secs_f64(),
        p50_us: outcome.latency.quantile(0.50) as f64 / 1000.0,
        p99_us: outcome.latency.quantile(0.99) as f64 / 1000.0,
        cpu_us_per_msg: cpu_ns / 1000.0 / messages as f64,
        stat_cpu_us_per_msg: (user + system) as f64 * 1e6
            / process_counters::ticks_per_second() as f64
            / messages as f64,
        server_util: cpu_ns / window_ns,
        sys_share: system as f64 / (user + system).max(1) as f64,
        client_util: outcome.client_cpu_ns as f64 / window_ns,
        other_util: ((busy - cpu_ns - outcome.client_cpu_ns as f64) / window_ns).max(0.0),
        hwm_kib: peak.hwm_kib,
        tries: 1,
    };
    Ok((measurement, counts))
}

fn measurement_line(scenario: &Scenario, m: &Measurement, runs: usize) -> String {
    let loss = if scenario.udp {
        format!("  loss {:.3} %", m.loss * 100.0)
    } else {
        String::new()
    };
    format!(
        "run {}/{runs} {:<34} {:<8} {:>8}/s  p50 {:>7.1} µs  p99 {:>8.1} µs  {:>5.2} µs CPU/msg  \
         server {:>3.0} %  load {:>3.0} %  other {:>3.0} %  peak {:.1} MiB{loss}",
        m.run + 1,
        scenario.title,
        m.server.name(),
        kilo(m.rate),
        m.p50_us,
        m.p99_us,
        m.cpu_us_per_msg,
        m.server_util * 100.0,
        m.client_util * 100.0,
        m.other_util * 100.0,
        m.hwm_kib as f64 / 1024.0
    )
}

fn write_outputs(results: &Results, options: &Options) -> Fallible<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target").join("echo-bench");
    fs::create_dir_all(&out_dir)?;
    let markdown = results.markdown();
    println!("\n{markdown}");
    fs::write(out_dir.join("results.md"), &markdown)?;
    fs::write(out_dir.join("runs.csv"), results.csv())?;
    let chart = options.chart.clone().unwrap_or_else(|| {
        if options.quick {
            out_dir.join("echo-benchmark.svg")
        } else {
            root.join("docs").join("echo-benchmark.svg")
        }
    });
    if let Some(dir) = chart.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&chart, chart::render(results)?)?;
    println!(
        "results: {}, {}; chart: {}",
        out_dir.join("results.md").display(),
        out_dir.join("runs.csv").display(),
        chart.display()
    );
    Ok(())
}
