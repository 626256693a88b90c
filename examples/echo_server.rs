//! The multi-connection echo server: every byte a client sends comes back, in order.
//!
//! ```text
//! cargo run --release --example echo_server                      # 127.0.0.1:65432
//! cargo run --release --example echo_server -- --listen tcp:localhost:9000 --listen unix:/tmp/echo.sock
//! cargo run --release --example echo_server -- --listen udp:127.0.0.1:9000   # datagrams
//! RUST_LOG=debug cargo run --release --example echo_server      # see each connection
//! ```
//! Try it with `nc 127.0.0.1 65432`, or with the `echo_client` example. Each `--listen
//! ENDPOINT` names a socket in the library's grammar ([`mio_reactor::Endpoint`]): `tcp:` (an
//! address or a name), `unix:PATH` (`nc -U PATH`), `udp:` (datagrams, `nc -u`), or `fd:N` /
//! `systemd:NAME` under systemd socket activation; all of it in one reactor, on one thread.
//! The older `--addr HOST:PORT`, `--unix PATH` and `--udp` (datagrams on each `--addr` too)
//! remain as aliases. SIGTERM or
//! Ctrl-C (SIGINT) stops it gracefully (connections finish, up to 5 s); a second one aborts at
//! once. With
//! `--stop-on-stdin-eof` it also stops when its standard input closes, which is how scripts
//! and tests stop it without signals.
//!
//! With `--tls-cert FILE --tls-key FILE` (built with `--features tls`) every listener speaks
//! TLS, with the same `Echo` handler: the reactor decrypts before `on_data` and encrypts what
//! it writes; with `--threads N` too, each reactor thread running its own connections' TLS
//! sessions. `cargo run --example gen_cert` makes a certificate for localhost; then
//! `openssl s_client -connect 127.0.0.1:65432 -CAfile tls/ca.pem -servername localhost`.
//!
//! Behind a load balancer that relays TCP (HAProxy's `send-proxy` or `send-proxy-v2`),
//! `--proxy-protocol` reads the PROXY protocol header every connection then starts with: the
//! logs (`RUST_LOG=debug`) name the client, not the balancer.
//!
//! The whole protocol is the `Echo` handler below; the reactor does the rest.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use mio_reactor::{
    CloseReason, Config, Context, DatagramContext, DatagramHandler, Endpoint, Handler,
    ListenOptions, Reactor, Spread,
};

/// The protocol: write back whatever arrives, and consume all of it.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
    // on_eof is left at its default: close gracefully once the echo is flushed, so a client
    // that half-closes still receives every byte.

    /// A shutdown closes gracefully (the default); the drain after a SIGUSR2 upgrade keeps
    /// echoing instead, until the client closes (or the deadline): an echo has no clean
    /// point to stop at, and a close could cut off bytes the client is sending.
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        if !ctx.is_upgrading() {
            ctx.close_with(CloseReason::Shutdown);
        }
    }
}

/// The same protocol for datagrams: each one goes back to its sender. A reply that cannot
/// be sent is dropped (and counted), as UDP may drop it anyway.
struct UdpEcho {
    /// `--udp-recv-buffer`: the socket's kernel receive buffer, set when it opens.
    recv_buffer: Option<usize>,
}

impl DatagramHandler for UdpEcho {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        if let Some(bytes) = self.recv_buffer {
            // Before any datagram is read: a burst at start-up meets the larger buffer.
            match ctx.set_recv_buffer_size(bytes) {
                Ok(()) => log::info!(
                    "udp receive buffer: {} B (the kernel's doubled value)",
                    ctx.recv_buffer_size().unwrap_or(0)
                ),
                Err(err) => log::warn!("--udp-recv-buffer {bytes}: {err}"),
            }
        }
    }

    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        if let Err(err) = ctx.send_to(data, from) {
            log::debug!("udp reply to {from}: {err}");
        }
    }
}

/// Echoes every byte back to its sender, over many connections at once.
#[derive(Parser)]
#[command(name = "echo_server", version, allow_negative_numbers = true, after_help = cli::UPGRADE_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
    /// Alias of --listen tcp:HOST:PORT, announced without the `tcp:` (repeatable; a name
    /// listens on all its addresses) [default without --listen: 127.0.0.1:65432]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Vec<String>,
    /// Alias of --listen unix:PATH (repeatable)
    #[arg(long, value_name = "PATH")]
    unix: Vec<String>,
    /// Also echo UDP datagrams on each --addr (as --listen udp:HOST:PORT does)
    #[arg(long)]
    udp: bool,
    /// Each UDP socket's kernel receive buffer (SO_RCVBUF), which absorbs bursts; Linux
    /// doubles it and caps the request at net.core.rmem_max [default: the system's,
    /// net.core.rmem_default]
    #[arg(long, value_name = "BYTES", value_parser = cli::at_least_one)]
    udp_recv_buffer: Option<usize>,
    /// Run N reactors on N threads sharing one TCP endpoint through SO_REUSEPORT (one
    /// --addr or one tcp: --listen only)
    #[arg(long, value_name = "N", default_value = "1", value_parser = cli::at_least_one)]
    threads: usize,
    /// Connections served at once
    #[arg(long, value_name = "N", default_value = "10000")]
    max_connections: usize,
    /// Close connections idle this long [default: never]
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    idle_timeout: Option<Duration>,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    #[command(flatten)]
    upgrade: cli::UpgradeArgs,
    #[command(flatten)]
    tls: tls::ServerTlsArgs,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
    #[command(flatten)]
    proxy: cli::ProxyArgs,
}

struct Options {
    threads: usize,
    udp: bool,
    udp_recv_buffer: Option<usize>,
    /// `--listen`: announced in the endpoint grammar.
    listens: Vec<Endpoint>,
    /// `--addr` (or the default): announced as before, `127.0.0.1:65432`.
    addrs: Vec<String>,
    unix_paths: Vec<String>,
    config: Config,
    stop_on_stdin_eof: bool,
    upgrade: cli::UpgradeArgs,
    tls: Option<tls::ServerTls>,
    /// Every stream listen's options (`--proxy-protocol`), before TLS.
    listen: ListenOptions,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let listens = args.listen.listen;
    let mut addrs = args.addr;
    if addrs.is_empty() && args.unix.is_empty() && listens.is_empty() {
        addrs.push("127.0.0.1:65432".to_string());
    }
    if args.threads > 1 {
        let one_addr = addrs.len() == 1 && listens.is_empty();
        let one_listen = addrs.is_empty() && listens.len() == 1 && cli::is_tcp(&listens[0]);
        if args.upgrade.pid_file.is_some() {
            cli::usage_error::<Args>("--pid-file and SIGUSR2 upgrades serve one reactor thread");
        }
        if !(one_addr || one_listen) || args.udp || !args.unix.is_empty() {
            cli::usage_error::<Args>(
                "--threads > 1 serves TCP on exactly one --addr or tcp: --listen (no --udp, \
                 no --unix, no other --listen)",
            );
        }
    }
    let tls = args
        .tls
        .config()
        .unwrap_or_else(|err| cli::usage_error::<Args>(err));
    Options {
        threads: args.threads,
        udp: args.udp,
        udp_recv_buffer: args.udp_recv_buffer,
        listens,
        addrs,
        unix_paths: args.unix,
        config: Config::default()
            .max_connections(args.max_connections)
            .idle_timeout(args.idle_timeout)
            .dead_peer_detection(args.dead_peers.detection()),
        stop_on_stdin_eof: args.stop_on_stdin_eof,
        upgrade: args.upgrade,
        tls,
        listen: args.proxy.apply(ListenOptions::default()),
    }
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    if let Err(err) = serve(options) {
        eprintln!("echo_server: {err}");
        std::process::exit(1);
    }
}

/// How the announced address of an --addr starts: `tls:` when the listeners speak TLS.
fn scheme(tls: Option<&tls::ServerTls>) -> &'static str {
    if tls.is_some() {
        "tls:"
    } else {
        ""
    }
}

/// One reactor per thread, all accepting on one port (`SO_REUSEPORT`), each with its own
/// TLS sessions when --tls-cert is given.
fn serve_threads(options: Options) -> std::io::Result<()> {
    let endpoint = match options.listens.first() {
        Some(endpoint) => endpoint.clone(),
        None => Endpoint::Tcp(cli::resolve(&options.addrs[0])?[0]),
    };
    let threads = tls::serve_threads(
        options.threads,
        options.config,
        endpoint,
        (options.listen.clone(), options.tls.as_ref()),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    )?;
    // Signals are watched before the address is announced: none can be missed.
    cli::forward_signals(threads.shutdown_handle())?;
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(threads.shutdown_handle());
    }
    if options.listens.is_empty() {
        println!(
            "echo server listening on {}{}",
            scheme(options.tls.as_ref()),
            threads.local_addr()?
        );
    } else {
        cli::announce("echo server", threads.bound(), options.tls.is_some());
    }
    println!("({} reactor threads share the port)", options.threads);
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
    let recv_buffer = options.udp_recv_buffer;
    let mut reactor = Reactor::with_config(options.config)?;
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts. Watched before the
    // address is announced, so that none can be missed.
    reactor.shutdown_on_signals()?;
    let tls = (options.listen.clone(), options.tls.as_ref());
    // --listen: streams for every endpoint but udp:, which echoes datagrams.
    for endpoint in &options.listens {
        if cli::is_udp(endpoint) {
            let bound = reactor.bind_udp(endpoint, UdpEcho { recv_buffer })?;
            cli::announce("echo server", &[Endpoint::Udp(bound)], false);
        } else {
            let listening = tls::listen(&mut reactor, endpoint, tls.clone(), |_| Some(Echo))?;
            cli::announce("echo server", listening.bound(), tls.1.is_some());
        }
    }
    // The older flags, announced as they always were.
    for addr in &options.addrs {
        for resolved in cli::resolve(addr)? {
            let bound =
                tls::listen(&mut reactor, resolved, tls.clone(), |_| Some(Echo))?.local_addr()?;
            println!("echo server listening on {}{bound}", scheme(tls.1));
            if options.udp {
                let bound = reactor.bind_udp(Endpoint::Udp(resolved), UdpEcho { recv_buffer })?;
                println!("echo server listening on udp:{bound}");
            }
        }
    }
    for path in &options.unix_paths {
        let unix = Endpoint::Unix(path.into());
        tls::listen(&mut reactor, unix, tls.clone(), |_| Some(Echo))?;
        println!("echo server listening on unix:{path}");
    }

    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(reactor.shutdown_handle());
    }
    // SIGUSR2: hand the listeners to a new process and drain; after the listens, so that
    // a successor tells us it is ready only once it has adopted them all.
    options.upgrade.upgrade_on_signal(&mut reactor)?;
    reactor.run()?;
    let stats = reactor.stats();
    println!(
        "echo server stopped: {} connections accepted, {} datagrams, {} B in, {} B out, {} turns",
        stats.accepted, stats.datagrams_in, stats.bytes_in, stats.bytes_out, stats.turns
    );
    if stats.datagram_receive_overflows > 0 {
        println!(
            "({} dropped by the kernel on full receive buffers (datagrams, or GRO trains of them): see --udp-recv-buffer)",
            stats.datagram_receive_overflows
        );
    }
    Ok(())
}
