//! A blocking echo server that serves one client at a time: the program the reactor replaces.
//!
//! ```text
//! cargo run --example blocking_echo                                  # 127.0.0.1:65432
//! cargo run --example blocking_echo -- --addr 127.0.0.1:9001
//! cargo run --example blocking_echo -- --listen tcp:[::1]:9001
//! ```
//! Try it with two `nc 127.0.0.1 65432` in two terminals: the first is echoed, the second
//! connects at once but hears nothing until the first one leaves. Chapter 1 of the guide
//! (`docs/guide/01-sockets-and-blocking.md`) walks through it.
//!
//! This is the shape of the first server in most socket tutorials. It is correct, and it is
//! simple because every call *blocks*: `accept` sleeps until a client arrives, `read` sleeps
//! until bytes arrive, `write_all` sleeps until the kernel has taken every byte. The thread
//! can sleep in only one of those calls at a time, so while it waits in `read` for client A,
//! nobody calls `accept` for client B, nor `read` for B's bytes.
//!
//! Client B is not refused, though: the kernel completes B's TCP handshake on its own and
//! keeps B in the listener's *backlog* queue, and keeps B's bytes in B's receive buffer. B's
//! `connect` returns and its first writes succeed. Only the replies wait.
//!
//! `--stop-on-stdin-eof` stops the server when its standard input closes, so scripts can run
//! it. Look at how: a thread exits the whole process. A thread blocked in `accept` or `read`
//! cannot be told to stop, which is one more thing an event loop (with its `mio::Waker`)
//! does better.

#[path = "support/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use clap::Parser;
use mio_reactor::Endpoint;

/// Echoes every byte back to its sender, one client at a time, with blocking calls.
#[derive(Parser)]
#[command(
    name = "blocking_echo",
    version,
    after_help = "Signals: SIGTERM and SIGINT (Ctrl-C) end it at once, the signals' default \
                  action: a thread blocked in accept or read has no loop to hear them (the \
                  reactor examples drain)."
)]
struct Args {
    /// Listen on one tcp:HOST:PORT ENDPOINT (a blocking accept waits on one socket), as
    /// --addr does, announced with the `tcp:`
    #[arg(long, value_name = "ENDPOINT", value_parser = cli::endpoint, conflicts_with = "addr")]
    listen: Option<Endpoint>,
    /// Listen here
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:65432")]
    addr: String,
    /// Exit when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
}

fn main() {
    let args: Args = cli::parse();
    // A tcp: endpoint is HOST:PORT after its scheme: the --addr this program always took.
    let (addr, scheme) = match &args.listen {
        None => (args.addr.clone(), ""),
        Some(endpoint) if cli::is_tcp(endpoint) => {
            let text = endpoint.to_string();
            (text.trim_start_matches("tcp:").to_string(), "tcp:")
        }
        Some(other) => cli::usage_error::<Args>(format!(
            "--listen {other}: blocking_echo serves one tcp: endpoint"
        )),
    };
    if let Err(err) = serve(&addr, scheme, args.stop_on_stdin_eof) {
        eprintln!("blocking_echo: {err}");
        std::process::exit(1);
    }
}

fn serve(addr: &str, scheme: &str, stop_on_stdin_eof: bool) -> io::Result<()> {
    let started = Instant::now();
    // Each line is stamped with the seconds since start, so waiting shows in the output.
    let say = |what: String| println!("{:6.2}s  {what}", started.elapsed().as_secs_f64());

    // socket() + bind() + listen(): from now on the kernel accepts connections for us and
    // queues them, whether or not we call accept().
    let listener = TcpListener::bind(&cli::resolve(addr)?[..])?;
    say(format!("listening on {scheme}{}", listener.local_addr()?));

    if stop_on_stdin_eof {
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            println!("standard input closed: exiting");
            std::process::exit(0);
        });
    }

    loop {
        // Blocks until a client is in the backlog. While we serve a client below, this line
        // is not running, so nobody takes the next client out of the queue.
        let (stream, peer) = listener.accept()?;
        say(format!("accepted {peer}"));
        match echo(stream) {
            Ok(bytes) => say(format!("{peer} sent EOF after {bytes} bytes; next client")),
            // A peer's error ends that client only; the server goes on to the next one.
            Err(err) => say(format!("{peer}: {err}; next client")),
        }
    }
}

/// Echoes until the client shuts down its write side (`read` returns 0), and returns the
/// number of bytes echoed. Nothing else can happen while this runs.
fn echo(mut stream: TcpStream) -> io::Result<u64> {
    let mut buf = [0; 4096];
    let mut total = 0;
    loop {
        // Blocks until at least one byte arrives (or EOF). It returns whatever the kernel has,
        // up to buf.len(): one write by the client may take several reads, and several writes
        // may arrive in one read. TCP is a byte stream; it has no messages.
        let n = stream.read(&mut buf)?;
        if n == 0 {
            // EOF: the peer sent its FIN. Returning drops `stream`, which closes the socket
            // and sends our FIN: the client reads EOF after the last echoed byte.
            return Ok(total);
        }
        // Blocks until the kernel has taken all n bytes. A client that sends but never reads
        // fills its receive buffer and then our send buffer, and this call never returns.
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
