//! The multi-connection echo server: every byte a client sends comes back, in order.
//!
//! ```text
//! cargo run --release --example echo_server                      # 127.0.0.1:65432
//! cargo run --release --example echo_server -- --addr localhost:9000 --addr '[::1]:9000'
//! RUST_LOG=debug cargo run --release --example echo_server      # see each connection
//! ```
//! Try it with `nc 127.0.0.1 65432`, or with the `echo_client` example. `--udp` echoes
//! datagrams on the same addresses too (`nc -u 127.0.0.1 65432`), and `--unix PATH` listens on
//! a Unix-domain socket (`nc -U PATH`); all of it in one reactor, on one thread. Ctrl-C stops it
//! gracefully (connections finish, up to 5 s); a second Ctrl-C aborts at once. With
//! `--stop-on-stdin-eof` it also stops when its standard input closes, which is how scripts
//! and tests stop it without signals.
//!
//! The whole protocol is the `Echo` handler below; the reactor does the rest.

#[path = "support/cli.rs"]
mod cli;

use std::time::Duration;

use std::net::SocketAddr;

use mio_reactor::{
    Config, Context, DatagramContext, DatagramHandler, Handler, Reactor, ReactorThreads,
};

const USAGE: &str = "\
Usage: echo_server [OPTIONS]

Echoes every byte back to its sender, over many connections at once.

Options:
  --addr HOST:PORT         listen here (repeatable; a name listens on all its
                           addresses; default 127.0.0.1:65432)
  --unix PATH              also listen on a Unix-domain socket (repeatable)
  --udp                    also echo UDP datagrams on each --addr
  --threads N              run N reactors on N threads sharing one --addr through
                           SO_REUSEPORT (default 1; TCP on one address only)
  --max-connections N      connections served at once (default 10000)
  --idle-timeout SECS      close connections idle this long (default: never)
  --stop-on-stdin-eof      shut down gracefully when standard input closes
  -h, --help               show this help
";

/// The protocol: write back whatever arrives, and consume all of it.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
    // on_eof is left at its default: close gracefully once the echo is flushed, so a client
    // that half-closes still receives every byte.
}

/// The same protocol for datagrams: each one goes back to its sender. A reply that cannot
/// be sent is dropped (and counted), as UDP may drop it anyway.
struct UdpEcho;

impl DatagramHandler for UdpEcho {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        if let Err(err) = ctx.send_to(data, from) {
            log::debug!("udp reply to {from}: {err}");
        }
    }
}

struct Options {
    threads: usize,
    udp: bool,
    addrs: Vec<String>,
    unix_paths: Vec<String>,
    config: Config,
    stop_on_stdin_eof: bool,
}

fn parse_options() -> Options {
    let mut cli = cli::Options::from_env("echo_server", USAGE);
    let mut options = Options {
        threads: 1,
        udp: false,
        addrs: Vec::new(),
        unix_paths: Vec::new(),
        config: Config::default(),
        stop_on_stdin_eof: false,
    };
    while let Some(flag) = cli.next_flag() {
        match flag.as_str() {
            "--addr" => options.addrs.push(cli.value(&flag)),
            "--unix" => options.unix_paths.push(cli.value(&flag)),
            "--max-connections" => {
                options.config = options.config.max_connections(cli.value(&flag))
            }
            "--idle-timeout" => {
                let secs: f64 = cli.value(&flag);
                if !(secs.is_finite() && secs > 0.0) {
                    cli.fail("--idle-timeout must be a positive number of seconds");
                }
                let timeout = Some(Duration::from_secs_f64(secs));
                options.config = options.config.idle_timeout(timeout);
            }
            "--stop-on-stdin-eof" => options.stop_on_stdin_eof = true,
            "--udp" => options.udp = true,
            "--threads" => options.threads = cli.value(&flag),
            other => cli.unknown(other),
        }
    }
    if options.addrs.is_empty() && options.unix_paths.is_empty() {
        options.addrs.push("127.0.0.1:65432".to_string());
    }
    if options.threads == 0 {
        cli.fail("--threads must be at least 1");
    }
    if options.threads > 1
        && (options.addrs.len() != 1 || options.udp || !options.unix_paths.is_empty())
    {
        cli.fail("--threads > 1 serves TCP on exactly one --addr (no --udp, no --unix)");
    }
    options
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    if let Err(err) = serve(options) {
        eprintln!("echo_server: {err}");
        std::process::exit(1);
    }
}

/// One reactor per thread, all accepting on one port (`SO_REUSEPORT`).
fn serve_threads(options: Options) -> std::io::Result<()> {
    let addr = cli::resolve(&options.addrs[0])?[0];
    let (threads, bound) =
        ReactorThreads::serve(options.threads, options.config, addr, |_| |_| Some(Echo))?;
    println!("echo server listening on {bound}");
    println!("({} reactor threads share the port)", options.threads);
    cli::stop_on_ctrl_c(threads.shutdown_handle(), options.stop_on_stdin_eof)?;
    let stats = threads.join()?;
    let per_thread: Vec<u64> = stats.iter().map(|s| s.accepted).collect();
    println!(
        "echo server stopped: {} connections accepted (per thread: {per_thread:?}), {} B in, {} B out",
        per_thread.iter().sum::<u64>(),
        stats.iter().map(|s| s.bytes_in).sum::<u64>(),
        stats.iter().map(|s| s.bytes_out).sum::<u64>()
    );
    Ok(())
}

fn serve(options: Options) -> std::io::Result<()> {
    if options.threads > 1 {
        return serve_threads(options);
    }
    let mut reactor = Reactor::with_config(options.config)?;
    for addr in &options.addrs {
        for resolved in cli::resolve(addr)? {
            let bound = reactor.listen(resolved, |_| Some(Echo))?;
            println!("echo server listening on {bound}");
            if options.udp {
                let bound = reactor.bind_udp(resolved, UdpEcho)?;
                println!("echo server listening on udp:{bound}");
            }
        }
    }
    for path in &options.unix_paths {
        reactor.listen_unix(path, |_| Some(Echo))?;
        println!("echo server listening on unix:{path}");
    }

    // Ctrl-C: the first asks for a graceful shutdown, the second aborts.
    cli::stop_on_ctrl_c(reactor.shutdown_handle(), options.stop_on_stdin_eof)?;
    reactor.run()?;
    let stats = reactor.stats();
    println!(
        "echo server stopped: {} connections accepted, {} datagrams, {} B in, {} B out, {} turns",
        stats.accepted, stats.datagrams_in, stats.bytes_in, stats.bytes_out, stats.turns
    );
    Ok(())
}
