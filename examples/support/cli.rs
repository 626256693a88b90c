//! What every example needs and is not the point of the example: option parsing, name
//! resolution and logging set-up. Included with `#[path = "support/cli.rs"] mod cli;`.
#![allow(dead_code)] // each example uses a different part

use std::net::{SocketAddr, ToSocketAddrs};
use std::process;
use std::str::FromStr;

/// Command-line options, read one flag at a time. Errors exit with code 2 and one line.
pub struct Options {
    program: &'static str,
    usage: &'static str,
    args: std::vec::IntoIter<String>,
}

impl Options {
    /// The process's arguments; `--help` prints `usage` and exits 0.
    pub fn from_env(program: &'static str, usage: &'static str) -> Options {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Options {
            program,
            usage,
            args: args.into_iter(),
        }
    }

    /// The next flag (`--name`), `Some("--help")` already handled.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        if arg == "--help" || arg == "-h" {
            print!("{}", self.usage);
            process::exit(0);
        }
        Some(arg)
    }

    /// The value after `flag`, parsed.
    pub fn value<T: FromStr>(&mut self, flag: &str) -> T
    where
        T::Err: std::fmt::Display,
    {
        let Some(raw) = self.args.next() else {
            self.fail(&format!("{flag} needs a value"))
        };
        raw.parse()
            .unwrap_or_else(|err| self.fail(&format!("bad value {raw:?} for {flag}: {err}")))
    }

    /// Exits with a one-line error and code 2, as command-line tools do for bad usage.
    pub fn fail(&self, message: &str) -> ! {
        eprintln!("{}: {message} (try --help)", self.program);
        process::exit(2)
    }

    /// Rejects an unknown flag.
    pub fn unknown(&self, flag: &str) -> ! {
        self.fail(&format!("unknown option {flag:?}"))
    }
}

/// Resolves `HOST:PORT` (`localhost:8080`, `[::1]:8080`, `127.0.0.1:0`) to its addresses.
///
/// This blocks (it may ask DNS), so it happens before the reactor starts, never inside it.
pub fn resolve(addr: &str) -> std::io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Shuts down when standard input reaches EOF: how scripts and tests stop a server without
/// signals. Standard input may be a regular file (`< /dev/null` is a character device, but
/// `< file` is not), which the reactor cannot watch, so a thread reads it.
pub fn stop_on_stdin_eof(handle: mio_reactor::ShutdownHandle) {
    std::thread::spawn(move || {
        // Read and ignore until EOF (or an error), then stop.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        handle.shutdown();
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
    let mut addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        ));
    }
    Ok(addrs)
}
