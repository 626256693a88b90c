//! Many connections at once: the memory an idle connection costs a server, and a run with
//! more connections than one process may hold descriptors for.
//!
//! A process here may hold at most 20,000 descriptors, and one source address has about
//! 28,000 ephemeral ports. So the connections come from several helper processes (this same
//! binary with `--hold-clients`), each holding at most [`PER_PROCESS`] connections from its
//! own source address, 127.0.0.2, 127.0.0.3... (bound before connecting). Each helper:
//! connects its share, echoes one message on every connection (so the server has surely
//! accepted and served each one), says `ready N`, then on `sweep` echoes one more message on
//! every connection at once and says how long that took; it exits when its stdin closes.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mio::Poll;

use crate::client::{self, Target};
use crate::histogram::Histogram;
use crate::pattern::Pattern;
use crate::server_process::ServerProcess;
use crate::servers::{ServeOptions, ServerKind};
use crate::{tls, Fallible};

/// Connections per helper process: well below the descriptor limit.
pub const PER_PROCESS: usize = 5_000;
/// The message each connection echoes.
const MESSAGE: usize = 64;

/// The helper process's `main`; over TLS (trusting the certificate in `tls_dir`) if given.
pub fn client_main(
    addr: SocketAddr,
    tls_dir: Option<&Path>,
    source: IpAddr,
    count: usize,
    first: usize,
) -> Fallible<()> {
    let target = target(addr, tls_dir)?;
    let pattern = Pattern::new();
    let mut poll = Poll::new()?;
    let mut conns = client::open_many(&mut poll, &target, count, MESSAGE, Some(source), first)?;
    let mut latencies = Histogram::default();
    client::round_trip_all(&mut poll, &mut conns, &pattern, &mut latencies)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready {count}")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        match line?.trim() {
            "sweep" => {
                let mut latencies = Histogram::default();
                let took = client::round_trip_all(&mut poll, &mut conns, &pattern, &mut latencies)?;
                let p99 = latencies.quantile(0.99) / 1000;
                writeln!(out, "swept {count} {} {p99}", took.as_micros())?;
                out.flush()?;
            }
            other => return Err(format!("hold-clients: unknown command {other:?}").into()),
        }
    }
    Ok(()) // stdin closed: dropping the connections closes them
}

fn target(addr: SocketAddr, tls_dir: Option<&Path>) -> Fallible<Target> {
    let tls = tls_dir.map(tls::client_config).transpose()?;
    Ok(Target { addr, tls })
}

/// What holding `conns` connections cost one server.
#[derive(Debug, Clone)]
pub struct HeldOutcome {
    pub server: ServerKind,
    /// Whether the connections were TLS (handshaken, one echo each).
    pub tls: bool,
    pub conns: usize,
    pub processes: usize,
    /// Server RSS before any connection (after one warm-up echo), KiB.
    pub rss_before_kib: u64,
    /// With every connection open and idle (each echoed one message), KiB.
    pub rss_idle_kib: u64,
    /// After a sweep that echoed one more message on every connection at once, KiB.
    pub rss_after_sweep_kib: u64,
    pub hwm_kib: u64,
    /// How long the sweep took (the slowest helper), and its p99 latency.
    pub sweep: Duration,
    pub sweep_p99_us: u64,
}

impl HeldOutcome {
    /// What the tables call the run: the server, and whether over TLS.
    pub fn label(&self) -> String {
        match self.tls {
            false => self.server.name().to_string(),
            true => format!("{} (TLS)", self.server.name()),
        }
    }

    /// Bytes of server memory per idle connection.
    pub fn idle_bytes_per_conn(&self) -> f64 {
        self.rss_idle_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0 / self.conns as f64
    }

    pub fn swept_bytes_per_conn(&self) -> f64 {
        let grown = self.rss_after_sweep_kib.saturating_sub(self.rss_before_kib);
        grown as f64 * 1024.0 / self.conns as f64
    }

    /// RSS with 100,000 connections, extrapolated linearly from this run, MiB.
    pub fn extrapolated_100k_mib(&self) -> f64 {
        let per_conn = self.idle_bytes_per_conn().max(self.swept_bytes_per_conn());
        (self.rss_before_kib as f64 * 1024.0 + per_conn * 100_000.0) / (1024.0 * 1024.0)
    }
}

/// A running helper process.
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    index: usize,
}

impl Helper {
    fn read_line(&mut self, expect: &str) -> Fallible<Vec<u64>> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let Some(rest) = line.trim().strip_prefix(expect) else {
            let status = self.child.try_wait()?;
            return Err(format!(
                "hold-clients helper {} said {line:?} instead of {expect:?} (exit status {status:?})",
                self.index
            )
            .into());
        };
        Ok(rest
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect())
    }
}

impl Helper {
    /// Closes its stdin (its cue to close everything and exit) and checks that it succeeded.
    fn finish(mut self) -> Fallible<()> {
        self.stdin.take();
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("hold-clients helper {} failed: {status}", self.index).into());
        }
        Ok(())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.wait();
    }
}

/// Opens `conns` connections to a fresh `kind` server (over TLS with the certificate in
/// `tls_dir`, if given) and measures its memory.
pub fn measure(
    kind: ServerKind,
    conns: usize,
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    serve: ServeOptions,
    tls_dir: Option<&Path>,
) -> Fallible<HeldOutcome> {
    let mut server = ServerProcess::start(kind, server_cpu, serve, tls_dir)?;
    let target = target(server.addr, tls_dir)?;
    // One echo first, so that what every server allocates once (read buffers, the runtime's
    // first task...) is in the "before" figure rather than charged to the connections.
    {
        let mut poll = Poll::new()?;
        let mut warm = client::open_many(&mut poll, &target, 1, MESSAGE, None, 999_999)?;
        client::round_trip_all(
            &mut poll,
            &mut warm,
            &Pattern::new(),
            &mut Histogram::default(),
        )?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = server.sample()?;

    let processes = conns.div_ceil(PER_PROCESS);
    let mut helpers = Vec::with_capacity(processes);
    for index in 0..processes {
        let count = conns / processes + usize::from(index < conns % processes);
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8));
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--hold-clients")
            .args(["--addr", &server.addr.to_string()])
            .args(["--source", &source.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--first", &(index * PER_PROCESS).to_string()]);
        if let Some(cpu) = load_cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        if let Some(dir) = tls_dir {
            command.arg("--tls-dir").arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        helpers.push(Helper {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("piped stdout")),
            child,
            index,
        });
    }
    let mut ready = 0;
    for helper in helpers.iter_mut() {
        ready += helper.read_line("ready")?.first().copied().unwrap_or(0) as usize;
    }
    if ready != conns {
        return Err(format!("{ready} of {conns} connections ready").into());
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle = server.sample()?;

    for helper in helpers.iter_mut() {
        let stdin = helper.stdin.as_mut().expect("open until drop");
        stdin.write_all(b"sweep\n")?;
        stdin.flush()?;
    }
    let (mut sweep_us, mut sweep_p99_us) = (0, 0);
    for helper in helpers.iter_mut() {
        let numbers = helper.read_line("swept")?;
        sweep_us = sweep_us.max(numbers.get(1).copied().unwrap_or(0));
        sweep_p99_us = sweep_p99_us.max(numbers.get(2).copied().unwrap_or(0));
    }
    let swept = server.sample()?;
    for helper in helpers {
        helper.finish()?;
    }
    server.stop()?;
    Ok(HeldOutcome {
        server: kind,
        tls: tls_dir.is_some(),
        conns,
        processes,
        rss_before_kib: before.rss_kib,
        rss_idle_kib: idle.rss_kib,
        rss_after_sweep_kib: swept.rss_kib,
        hwm_kib: swept.hwm_kib,
        sweep: Duration::from_micros(sweep_us),
        sweep_p99_us,
    })
}
