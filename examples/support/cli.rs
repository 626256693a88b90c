//! What every example needs and is not the point of the example: option parsing (with
//! `clap`), `--listen ENDPOINT` for every server, name resolution and logging set-up.
//! Included with `#[path = "support/cli.rs"] mod cli;`.
#![allow(dead_code)] // each example uses a different part

use std::net::{SocketAddr, ToSocketAddrs};
use std::process;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use mio_reactor::{DeadPeerDetection, Endpoint, Keepalive, ListenOptions, ProxyProtocol};

/// What `--listen` takes, as every server's `--help` shows it: the library's endpoint
/// grammar ([`Endpoint`]), the same in code, on the command line and in the logs.
pub const LISTEN_HELP: &str = "\
Listen on ENDPOINT (repeatable): tcp:HOST:PORT (tcp:127.0.0.1:7000, tcp:[::1]:7000), a bare \
IP with a port (127.0.0.1:7000, [::1]:PORT), tcp:NAME:PORT (every address of a host name, \
tcp:localhost:7000), udp:HOST:PORT (echo_server only), unix:PATH, fd:N or systemd:NAME (a \
socket inherited through systemd socket activation, LISTEN_FDS/LISTEN_FDNAMES). Port 0 picks \
a free port";

/// `--listen ENDPOINT`, repeatable: how every server is told where to listen
/// (`#[command(flatten)]` into its `Args`). The older flags each server kept (`--addr`,
/// `--unix`, `--udp`, `--listen-fd`, app_server's HOST PORT) are aliases, announced in
/// their old form; a `--listen` is announced in the grammar (`tcp:127.0.0.1:7000`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenArgs {
    #[arg(
        long = "listen",
        value_name = "ENDPOINT",
        value_parser = endpoint,
        help = LISTEN_HELP
    )]
    pub listen: Vec<Endpoint>,
}

impl ListenArgs {
    /// The endpoints of a server that serves streams only (every one but echo_server): a
    /// `udp:` endpoint is a usage error that names it.
    pub fn streams<T: CommandFactory>(&self) -> Vec<Endpoint> {
        for endpoint in &self.listen {
            if is_udp(endpoint) {
                usage_error::<T>(format!(
                    "--listen {endpoint}: {} serves streams (tcp:, unix:, fd:, systemd:), not udp:",
                    T::command().get_name()
                ));
            }
        }
        self.listen.clone()
    }

    /// Whether no `--listen` was given.
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty()
    }
}

/// `--tcp-keepalive SECS` and `--tcp-user-timeout MS`: how every server finds TCP peers
/// that vanished without a FIN or a RST (`#[command(flatten)]` into its `Args`), as
/// [`DeadPeerDetection`] describes. The names and units are Redis's (`tcp-keepalive`,
/// seconds, 0 = off) and HAProxy's (`tcp-ut`, a time; milliseconds here).
#[derive(clap::Args, Debug, Clone)]
pub struct DeadPeerArgs {
    /// Send TCP keepalive probes after SECS without traffic, then 3 more SECS/3 apart, so
    /// that a peer that vanished (crashed host, expired NAT entry) is dropped after about
    /// 2 x SECS; 0 = off (as Redis's tcp-keepalive)
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=32767))]
    pub tcp_keepalive: u64,
    /// Drop a TCP connection whose sent data stays unacknowledged (or unsent, the peer's
    /// window closed) for MS milliseconds (TCP_USER_TIMEOUT, RFC 5482); 0 = the kernel's
    /// default (about 15 minutes of retransmissions)
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u32))]
    pub tcp_user_timeout: u32,
}

impl DeadPeerArgs {
    /// The settings for [`Config::dead_peer_detection`](mio_reactor::Config::dead_peer_detection).
    pub fn detection(&self) -> DeadPeerDetection {
        let keepalive = (self.tcp_keepalive > 0)
            .then(|| Keepalive::after_idle(Duration::from_secs(self.tcp_keepalive)));
        let user_timeout = (self.tcp_user_timeout > 0)
            .then(|| Duration::from_millis(u64::from(self.tcp_user_timeout)));
        DeadPeerDetection::default()
            .keepalive(keepalive)
            .user_timeout(user_timeout)
    }
}

/// `--proxy-protocol`: every server behind a load balancer that relays TCP
/// (`#[command(flatten)]` into its `Args`), so the server names the client, not the
/// balancer, in its logs and answers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProxyArgs {
    /// Every connection starts with a PROXY protocol header, v1 or v2 (HAProxy's send-proxy
    /// or send-proxy-v2): the server then sees the client's address, not the balancer's. A
    /// connection without one is closed
    #[arg(long)]
    pub proxy_protocol: bool,
}

impl ProxyArgs {
    /// `options` with the PROXY protocol on if `--proxy-protocol` was given.
    pub fn apply(&self, options: ListenOptions) -> ListenOptions {
        if self.proxy_protocol {
            options.proxy_protocol(ProxyProtocol::default())
        } else {
            options
        }
    }
}

/// Whether `endpoint` names a datagram socket (`udp:`).
pub fn is_udp(endpoint: &Endpoint) -> bool {
    matches!(endpoint, Endpoint::Udp(_) | Endpoint::UdpName { .. })
}

/// Whether `endpoint` is TCP on an address or a name (what `SO_REUSEPORT` can share).
pub fn is_tcp(endpoint: &Endpoint) -> bool {
    matches!(endpoint, Endpoint::Tcp(_) | Endpoint::TcpName { .. })
}

/// Parses an [`Endpoint`] for `value_parser`: the library's own message ("bad endpoint
/// `tpc:1`: unknown scheme `tpc` ..."), and `handover:`, which no command line can serve,
/// refused the same way.
pub fn endpoint(text: &str) -> Result<Endpoint, String> {
    match text.parse::<Endpoint>() {
        Ok(Endpoint::Handover) => Err(format!(
            "bad endpoint `{text}`: handover: is for streams other threads hand over \
             in-process, not for a command line"
        )),
        Ok(endpoint) => Ok(endpoint),
        Err(err) => Err(err.to_string()),
    }
}

/// How a server announces a listen: `{what} listening on {bound}`, one line per socket
/// bound, in the endpoint grammar; ` (TLS)` after it for a TLS listen.
pub fn announce(what: &str, bound: &[Endpoint], tls: bool) {
    let suffix = if tls { " (TLS)" } else { "" };
    for endpoint in bound {
        println!("{what} listening on {endpoint}{suffix}");
    }
}

/// The process's command line as `T` (a `clap` derive), the same way in every example:
/// `--help` and `--version` print to standard output and exit 0; bad usage exits with code 2
/// and one line that names the option, as the tests (`tests/examples_cli.rs`) pin.
pub fn parse<T: Parser>() -> T {
    // `args_os`: an argument that is not UTF-8 is clap's usage error (exit 2), where
    // `std::env::args` would panic before clap sees it.
    parse_from(std::env::args_os())
}

/// [`parse`] from these arguments (the program's name first).
pub fn parse_from<T: Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> T {
    T::try_parse_from(args).unwrap_or_else(|err| exit_on(T::command().get_name(), err))
}

/// Exits for a usage error found after parsing (two options that do not go together), in
/// the same one-line form as clap's own errors.
pub fn usage_error<T: CommandFactory>(message: impl std::fmt::Display) -> ! {
    let mut command = T::command();
    let err = command.error(ErrorKind::ArgumentConflict, message);
    exit_on(command.get_name(), err)
}

/// clap's help and version as clap prints them; its errors cut to one line. clap's full error
/// repeats the usage over five lines, which scrolls the one that matters away in a script's
/// log; a "similar argument" tip is kept, since it is usually the fix.
fn exit_on(program: &str, err: clap::Error) -> ! {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        err.exit()
    }
    let text = err.to_string();
    // The first paragraph says what is wrong (a missing argument's name, or the possible
    // values, are on its next lines); the usage and "for more information" follow it.
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let first = first.join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first);
    let tip = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tip: "))
        .find(|tip| tip.contains("similar"))
        .map_or(String::new(), |tip| format!("; {tip}"));
    eprintln!("{program}: {message}{tip} (try --help)");
    process::exit(err.exit_code())
}

/// Parses `SECS` (`2`, `0.5`) as a positive duration: for `value_parser`.
pub fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err("must be a positive number of seconds".to_string()),
    }
}

/// Parses a count that must be at least 1: for `value_parser`.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// Resolves `HOST:PORT` (`localhost:8080`, `[::1]:8080`, `127.0.0.1:0`) to its addresses.
///
/// This blocks (it may ask DNS), so it happens before the reactor starts, never inside it.
pub fn resolve(addr: &str) -> std::io::Result<Vec<SocketAddr>> {
    let named = |err: std::io::Error| std::io::Error::new(err.kind(), format!("{addr}: {err}"));
    let mut addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(named)?.collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// What SIGTERM and SIGINT do in every server that runs a reactor (a macro, so that the
/// upgradable servers' paragraph can extend it with `concat!`).
macro_rules! server_signals_help {
    () => {
        "\
Signals: SIGTERM (docker stop, systemctl stop, Kubernetes) or SIGINT (Ctrl-C) shuts
down gracefully: stop accepting, let connections finish (up to 5 s); a second aborts."
    };
}

/// The `--help` paragraph of every server that runs a reactor: what the signals do.
pub const SERVER_SIGNALS_HELP: &str = server_signals_help!();

/// The `--help` paragraph of the servers that upgrade without a gap on SIGUSR2.
pub const UPGRADE_SIGNALS_HELP: &str = concat!(
    server_signals_help!(),
    "\n\
SIGUSR2 upgrades without a gap (one reactor thread): the program at the path this one was
started from starts with the same arguments and inherits the listening sockets; once it
has written --pid-file (if given) this process stops accepting, lets its connections
finish (up to 5 s) and exits 0. If the new one fails or is not ready in time
(--ready-timeout), this one serves on."
);

/// The `--help` paragraph of chat_server: what an upgrade would do to its room.
pub const CHAT_SIGNALS_HELP: &str = concat!(
    server_signals_help!(),
    "\n\
No upgrade on SIGUSR2 (it is logged and ignored): the room, its members and their names,
lives in this process; a new process would start with an empty room, and every member
would have to reconnect and rejoin. Restart with SIGTERM, knowing that."
);

/// The `--help` paragraph of slow_kv and kv_server: what an upgrade would do to their keys.
pub const KV_SIGNALS_HELP: &str = concat!(
    server_signals_help!(),
    "\n\
No upgrade on SIGUSR2 (it is logged and ignored): the keys live in this process's memory
only; a new process would start empty, every key lost. Restart with SIGTERM, knowing that."
);

/// SIGUSR2 logged and ignored, for a server whose state lives in the process (`why`): its
/// default action would end the process at once, which an operator who tried an upgrade
/// did not mean.
pub fn refuse_upgrades(
    reactor: &mut mio_reactor::Reactor,
    why: &'static str,
) -> std::io::Result<()> {
    reactor.on_signals(&[libc::SIGUSR2], move |_, _| {
        log::warn!("SIGUSR2 received: no upgrade, {why}; restart with SIGTERM instead");
    })?;
    Ok(())
}

/// `--pid-file PATH`: where a server writes its PID when it serves, and where the successor
/// of a SIGUSR2 upgrade writes its own (`#[command(flatten)]` into its `Args`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpgradeArgs {
    /// Write this process's PID to PATH once it serves; after a SIGUSR2 upgrade the new
    /// process rewrites it with its own (never removed)
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<std::path::PathBuf>,
    /// How long the new process of a SIGUSR2 upgrade has to be ready [default: 10]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub ready_timeout: Option<Duration>,
}

impl UpgradeArgs {
    /// Makes SIGUSR2 upgrade `reactor` (and writes the PID file when it first turns).
    pub fn upgrade_on_signal(&self, reactor: &mut mio_reactor::Reactor) -> std::io::Result<()> {
        let mut upgrade = mio_reactor::Upgrade::new()?;
        if let Some(path) = &self.pid_file {
            upgrade = upgrade.pid_file(path);
        }
        if let Some(timeout) = self.ready_timeout {
            upgrade = upgrade.ready_timeout(timeout);
        }
        reactor.upgrade_on_signal(upgrade)?;
        Ok(())
    }
}

/// The `--help` paragraph of every program that leaves the signals their default action.
pub const DEFAULT_SIGNALS_HELP: &str =
    "Signals: SIGTERM and SIGINT (Ctrl-C) end it at once (their default action).";

/// Shuts down gracefully when standard input reaches EOF: how scripts and tests stop a
/// server without signals. Standard input may be a regular file (`< /dev/null` is a
/// character device, but `< file` is not), which the reactor cannot watch, so a thread reads
/// it. A drain already under way (SIGTERM) is left to finish, not turned into an abort.
pub fn stop_on_stdin_eof(handle: mio_reactor::ShutdownHandle) {
    std::thread::spawn(move || {
        // Read and ignore until EOF (or an error), then stop.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        handle.shutdown_gracefully();
    });
}

/// SIGTERM and SIGINT for reactors that run on other threads ([`ReactorThreads`]): a small
/// reactor on its own thread watches the signals and passes each on to `handle` (the first
/// drains, the second aborts). Returns once the signals are watched, so that none is missed.
///
/// [`ReactorThreads`]: mio_reactor::ReactorThreads
pub fn forward_signals(handle: mio_reactor::ShutdownHandle) -> std::io::Result<()> {
    let (watching, watched) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let setup = mio_reactor::Reactor::new().and_then(|mut signals| {
            signals.on_signals(&[libc::SIGTERM, libc::SIGINT], move |signal, _| {
                let name = if signal == libc::SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                log::info!("{name} received: passed on to the reactor threads");
                handle.shutdown();
            })?;
            Ok(signals)
        });
        match setup {
            Ok(mut signals) => {
                let _ = watching.send(Ok(()));
                // Runs until the process exits: nothing but the watch is in it.
                let _ = signals.run();
            }
            Err(err) => {
                let _ = watching.send(Err(err));
            }
        }
    });
    watched
        .recv()
        .map_err(|_| std::io::Error::other("the signal thread ended early"))?
}

/// Logs through `env_logger`: `RUST_LOG=debug` shows each connection, `trace` each event.
/// Without `RUST_LOG`, lifecycle messages (`info`) are shown.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_micros()
        .init();
}

/// Resolves a host (`localhost`, `127.0.0.1`, `::1`, no brackets needed) and a port given
/// separately, as the Python tutorial's programs take them.
pub fn resolve_host(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let named =
        |err: std::io::Error| std::io::Error::new(err.kind(), format!("{host}:{port}: {err}"));
    let mut addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(named)?.collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        ));
    }
    Ok(addrs)
}
