//! The application server of the Python sockets tutorial, on the reactor: each connection
//! carries one request (a JSON header + content message, see `docs/protocol.md`), gets one
//! reply, and is closed gracefully.
//!
//! ```text
//! cargo run --release --example app_server -- 127.0.0.1 65432
//! cargo run --release --example app_client -- 127.0.0.1 65432 search morpheus
//! cargo run --release --example app_server -- localhost 0 --max-content 65536
//! cargo run --release --example app_server -- --listen tcp:[::1]:7000 --listen unix:/tmp/app.sock
//! RUST_LOG=debug cargo run --release --example app_server -- 127.0.0.1 65432
//! ```
//! A `text/json` request `{"action": "search", "value": V}` is looked up in the tutorial's
//! little table; any other content type is answered with its first ten bytes. SIGTERM or
//! Ctrl-C (SIGINT) stops the server gracefully (a second one aborts); so does the end of
//! standard input with
//! `--stop-on-stdin-eof`, which is how tests stop it.
//!
//! The point of the example is what happens when a client misbehaves. Every malformed
//! request (bad header, impossible length, invalid JSON content, a client that stops
//! mid-message) gets a warning in the log, a `{"error": "..."}` reply if the client can still
//! read, and a graceful close of *that* connection only. Oversized messages are refused from
//! their length prefix or header alone, before their bytes are buffered, and a client that
//! sends nothing is closed after `--idle-timeout`. Behind a load balancer that relays TCP,
//! `--proxy-protocol` reads the PROXY protocol header it sends, so these warnings name the
//! client, not the balancer.
//!
//! With `--tls-cert FILE --tls-key FILE` (built with `--features tls`) the same `Exchange`
//! handler serves the protocol over TLS: the reactor decrypts before `on_data` and encrypts
//! what it writes, and a client that does not speak TLS gets an alert and a close, on its
//! own connection only. `cargo run --example gen_cert` makes a certificate for localhost:
//!
//! ```text
//! cargo run --release --features tls --example app_server -- 127.0.0.1 65432 \
//!     --tls-cert tls/cert.pem --tls-key tls/key.pem
//! cargo run --release --features tls --example app_client -- 127.0.0.1 65432 search ring \
//!     --tls --ca tls/ca.pem
//! ```

#[path = "support/cli.rs"]
mod cli;
#[path = "support/tls.rs"]
mod tls;

use std::time::Duration;

use clap::Parser;
use mio_reactor::protocol::{encode_binary, encode_error, encode_json, Content, Decoder, Limits};
use mio_reactor::{
    CloseReason, Config, Context, DeadPeerDetection, Endpoint, Handler, IntoListener,
    ListenOptions, Listening, PeerAddr, Reactor,
};
use serde_json::{json, Value};

/// The content type of the server's binary replies, as in the tutorial.
const SERVER_BINARY_TYPE: &str = "binary/custom-server-binary-type";

/// How much of a binary request the reply quotes.
const QUOTED_BYTES: usize = 10;

/// The tutorial's search table.
fn search(value: &str) -> String {
    match value {
        "morpheus" => "Follow the white rabbit. \u{1F430}".to_string(),
        "ring" => "In the caves beneath the Misty Mountains. \u{1F48D}".to_string(),
        "\u{1F436}" => "\u{1F43E} Playing ball! \u{1F3D0}".to_string(),
        other => format!("No match for '{other}'."),
    }
}

/// What the application answers to a well-formed request, before encoding.
enum Reply {
    /// A `text/json` reply.
    Json(Value),
    /// A [`SERVER_BINARY_TYPE`] reply.
    Binary(Vec<u8>),
}

/// The application: a decoded request in, its reply out. An `Err` is a request that is
/// well-formed on the wire but not one this application understands.
fn answer(request: Content<'_>) -> Result<Reply, String> {
    match request {
        Content::Binary(bytes) => {
            let mut reply = b"First 10 bytes of request: ".to_vec();
            reply.extend_from_slice(&bytes[..bytes.len().min(QUOTED_BYTES)]);
            Ok(Reply::Binary(reply))
        }
        Content::Json(request) => {
            // `Value::get` is `None` for a non-object too: one check covers both mistakes.
            let Some(action) = request.get("action").and_then(Value::as_str) else {
                return Err(r#"request must be a JSON object with a string "action""#.into());
            };
            let result = if action == "search" {
                let Some(value) = request.get("value").and_then(Value::as_str) else {
                    return Err(r#"a search needs a string "value""#.into());
                };
                search(value)
            } else {
                format!("Error: invalid action '{action}'.")
            };
            Ok(Reply::Json(json!({ "result": result })))
        }
    }
}

/// One connection: read one request, write one reply, close.
///
/// Nothing is expected after the request: the reply goes out as soon as the request's last
/// byte arrives, whether or not the client then half-closes.
struct Exchange {
    decoder: Decoder,
    peer: PeerAddr,
}

impl Exchange {
    /// Refuses the request: logs why, tells the client, and closes this connection only.
    fn reject(&self, ctx: &mut Context<'_>, why: String) {
        log::warn!("{} from {}: bad request: {why}", ctx.id(), self.peer);
        let mut reply = Vec::new();
        encode_error(&why, &mut reply);
        // Written before the close: a graceful close flushes it before the FIN.
        ctx.write(&reply);
        ctx.close_with(CloseReason::Protocol(why));
    }

    fn send(&self, ctx: &mut Context<'_>, reply: Reply) {
        let mut frame = Vec::new();
        match reply {
            Reply::Json(value) => encode_json(&value, &mut frame),
            Reply::Binary(content) => {
                if let Err(err) = encode_binary(SERVER_BINARY_TYPE, &content, &mut frame) {
                    // Only a content type longer than 64 KiB could do this: our bug.
                    log::error!("{}: cannot encode the reply: {err}", ctx.id());
                    return ctx.abort();
                }
            }
        }
        ctx.write(&frame);
        ctx.close();
    }
}

impl Handler for Exchange {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        // Over TLS the reactor takes the records: only a plaintext server sees a ClientHello,
        // and answering at once spares the client its timeout (and the decoder waiting for a
        // "header" of 5,635 bytes).
        if !tls::is_tls(ctx) && tls::starts_as_tls_handshake(data) {
            self.reject(ctx, tls::SPOKE_TLS.to_string());
            return data.len();
        }
        let frame = match self.decoder.decode(data) {
            // Consume nothing: the reactor keeps the bytes and offers them again with the
            // next ones, so the decoder always sees the message from its first byte.
            Ok(None) => return 0,
            Ok(Some(frame)) => frame,
            Err(err) => {
                self.reject(ctx, err.to_string());
                return data.len();
            }
        };
        if frame.consumed < data.len() {
            // One request per connection: whatever follows it is not read as another.
            let extra = data.len() - frame.consumed;
            log::debug!("{}: ignoring {extra} B after the request", ctx.id());
        }
        let reply = frame
            .parse_content()
            .map_err(|err| err.to_string())
            .and_then(answer);
        match reply {
            Ok(reply) => self.send(ctx, reply),
            Err(why) => self.reject(ctx, why),
        }
        data.len()
    }

    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        // A half-closed client can still read, so a truncated request gets its error reply.
        match self.decoder.check_eof(ctx.buffered_input()) {
            Err(err) => self.reject(ctx, err.to_string()),
            Ok(()) => {
                log::debug!("{}: closed without sending a request", ctx.id());
                ctx.close();
            }
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        // A request under way may finish (the reactor aborts it at the shutdown deadline);
        // a connection that has sent nothing is closed now.
        if !self.decoder.is_mid_frame(ctx.buffered_input()) {
            ctx.close_with(CloseReason::Shutdown);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        // The other reasons are logged by the reactor (at debug) or by `reject` already.
        match reason {
            CloseReason::IdleTimeout => log::warn!(
                "{} from {}: no request in time: {reason}",
                ctx.id(),
                self.peer
            ),
            // A client that does not speak TLS, or not our TLS (it distrusts our
            // certificate, it offers nothing we accept): the peer's fault, like a bad request.
            CloseReason::Tls(_) | CloseReason::TlsHandshakeTimeout => {
                log::warn!("{} from {}: {reason}", ctx.id(), self.peer)
            }
            _ => {}
        }
    }
}

/// Serves the Python sockets tutorial's application protocol: one request per connection
/// (a search in a small table, or a binary message), one reply, then a graceful close.
/// HOST may be a name (localhost listens on all its addresses); PORT 0 picks a free port.
/// HOST PORT is the tutorial's way of saying --listen tcp:HOST:PORT, and is announced without
/// the `tcp:`.
#[derive(Parser)]
#[command(name = "app_server", version, allow_negative_numbers = true, after_help = cli::UPGRADE_SIGNALS_HELP)]
struct Args {
    /// Largest request content accepted
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_content)]
    max_content: usize,
    /// Close connections silent this long
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = cli::seconds)]
    idle_timeout: Duration,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    #[command(flatten)]
    upgrade: cli::UpgradeArgs,
    #[command(flatten)]
    tls: tls::ServerTlsArgs,
    #[command(flatten)]
    proxy: cli::ProxyArgs,
    #[command(flatten)]
    listen: cli::ListenArgs,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
    /// The host name or address to listen on (with PORT; not needed with --listen)
    #[arg(required_unless_present = "listen")]
    host: Option<String>,
    /// The port to listen on (0: any free port)
    #[arg(required_unless_present = "listen")]
    port: Option<u16>,
}

struct Options {
    /// `--listen`: announced in the endpoint grammar.
    listens: Vec<Endpoint>,
    /// HOST PORT: announced as before, `127.0.0.1:65432`.
    host_port: Option<(String, u16)>,
    limits: Limits,
    idle_timeout: Duration,
    dead_peers: DeadPeerDetection,
    stop_on_stdin_eof: bool,
    upgrade: cli::UpgradeArgs,
    tls: Option<tls::ServerTls>,
    /// Every listen's options (`--proxy-protocol`), before TLS.
    listen: ListenOptions,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let tls = args
        .tls
        .config()
        .unwrap_or_else(|err| cli::usage_error::<Args>(err));
    let host_port = match (args.host, args.port) {
        (Some(host), Some(port)) => Some((host, port)),
        (None, None) => None,
        _ => cli::usage_error::<Args>("HOST and PORT go together"),
    };
    Options {
        listens: args.listen.streams::<Args>(),
        host_port,
        limits: Limits {
            max_content: args.max_content,
            ..Limits::default()
        },
        idle_timeout: args.idle_timeout,
        dead_peers: args.dead_peers.detection(),
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
        eprintln!("app_server: {err}");
        std::process::exit(1);
    }
}

fn serve(options: Options) -> std::io::Result<()> {
    let limits = options.limits;
    // The reactor keeps a request's bytes until the request is complete; the largest request
    // the decoder admits must fit, and nothing larger ever needs to.
    let config = Config::default()
        .max_input(limits.max_frame())
        .idle_timeout(Some(options.idle_timeout))
        .dead_peer_detection(options.dead_peers);
    let mut reactor = Reactor::with_config(config)?;
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts.
    reactor.shutdown_on_signals()?;

    for endpoint in &options.listens {
        let secured = (options.listen.clone(), options.tls.as_ref());
        let listening = listen(&mut reactor, endpoint, limits, secured)?;
        cli::announce("app server", listening.bound(), options.tls.is_some());
    }
    if let Some((host, mut port)) = options.host_port {
        for mut addr in cli::resolve_host(&host, port)? {
            // With port 0, every address of the name gets the port the first one was given.
            addr.set_port(port);
            let secured = (options.listen.clone(), options.tls.as_ref());
            let bound = listen(&mut reactor, addr, limits, secured)?.local_addr()?;
            port = bound.port();
            let scheme = if options.tls.is_some() { "tls:" } else { "" };
            println!("app server listening on {scheme}{bound}");
        }
    }

    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(reactor.shutdown_handle());
    }
    // SIGUSR2: hand the listeners to a new process and drain (a request under way finishes:
    // on_shutdown above).
    options.upgrade.upgrade_on_signal(&mut reactor)?;

    reactor.run()?;
    let stats = reactor.stats();
    println!(
        "app server stopped: connections: {}, protocol errors: {}, idle timeouts: {}, over limits: {}, TLS failures: {}",
        stats.accepted,
        stats.closed.protocol,
        stats.closed.idle_timeout,
        stats.closed.limit_exceeded,
        stats.closed.tls
    );
    Ok(())
}

/// Listens on `on` with `options`, over TLS with `tls`: the same handler either way.
fn listen(
    reactor: &mut Reactor,
    on: impl IntoListener,
    limits: Limits,
    (options, tls): (ListenOptions, Option<&tls::ServerTls>),
) -> std::io::Result<Listening> {
    tls::listen(reactor, on, (options, tls), move |peer| {
        Some(Exchange {
            decoder: Decoder::new(limits),
            peer: peer.clone(),
        })
    })
}
