//! The application client of the Python sockets tutorial, on the reactor: sends one request
//! (a JSON header + content message, see `docs/protocol.md`), prints the reply, and closes.
//!
//! ```text
//! cargo run --release --example app_server -- 127.0.0.1 65432 &
//! cargo run --release --example app_client -- 127.0.0.1 65432 search morpheus
//! cargo run --release --example app_client -- 127.0.0.1 65432 search 🐶
//! cargo run --release --example app_client -- localhost 65432 double 'some bytes'
//! ```
//! The action `search` sends the `text/json` request `{"action": "search", "value": VALUE}`;
//! any other action sends ACTION followed by VALUE as opaque bytes. The reply's result (or
//! its bytes) is printed on standard output.
//!
//! The client is a [`Handler`] like the server's connections: it writes the request in
//! `on_open`, lets the reply arrive in whatever pieces TCP delivers, and closes once the
//! reply is complete. Every way the exchange can fail (connection refused, the server
//! closing mid-reply, a malformed reply, an error reply, no reply in time) ends the program
//! with one line on standard error and exit code 1.
//!
//! `--tls --ca FILE` (built with `--features tls`) sends the same request over TLS, trusting
//! the CA in `FILE` (see the `gen_cert` example) and checking the server's certificate
//! against HOST (or `--server-name`): the same `Exchange` handler, unchanged.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/tls.rs"]
mod tls;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use mio_reactor::protocol::{encode_binary, encode_json, Content, Decoder, EncodeError, Frame};
use mio_reactor::{CloseReason, Config, Context, Handler, Reactor};
use serde_json::{json, Value};

/// The content type of the client's binary requests, as in the tutorial.
const CLIENT_BINARY_TYPE: &str = "binary/custom-client-binary-type";

/// The request the tutorial's client sends for ACTION VALUE, as one encoded frame.
fn request(action: &str, value: &str) -> Result<Vec<u8>, EncodeError> {
    let mut frame = Vec::new();
    if action == "search" {
        encode_json(&json!({ "action": action, "value": value }), &mut frame);
    } else {
        let content = format!("{action}{value}");
        encode_binary(CLIENT_BINARY_TYPE, content.as_bytes(), &mut frame)?;
    }
    Ok(frame)
}

/// How one exchange ended.
#[derive(Debug)]
enum Outcome {
    /// A `text/json` reply with a `result`.
    Result(Value),
    /// A reply of another content type.
    Binary {
        content_type: String,
        content: Vec<u8>,
    },
    /// No connection; the next address of the name may do better.
    ConnectFailed(String),
    /// Anything else that went wrong, in one line.
    Failed(String),
}

/// What the server's reply means.
fn outcome(frame: &Frame<'_>) -> Outcome {
    match frame.parse_content() {
        Err(err) => Outcome::Failed(format!("malformed reply: {err}")),
        Ok(Content::Binary(bytes)) => Outcome::Binary {
            content_type: frame.header.content_type.clone(),
            content: bytes.to_vec(),
        },
        Ok(Content::Json(reply)) => {
            if let Some(error) = reply.get("error") {
                let error = error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned);
                Outcome::Failed(format!("server error: {error}"))
            } else if let Some(result) = reply.get("result") {
                Outcome::Result(result.clone())
            } else {
                Outcome::Failed(format!(
                    r#"malformed reply: no "result" or "error" in {reply}"#
                ))
            }
        }
    }
}

/// The one connection: send the request, read the reply, close.
struct Exchange {
    addr: SocketAddr,
    request: Vec<u8>,
    decoder: Decoder,
    /// Whether the reply so far starts as a TLS alert record does.
    reply_is_tls_alert: bool,
    /// Shared with `main`, which reads it once the reactor is done.
    outcome: Rc<RefCell<Option<Outcome>>>,
}

impl Exchange {
    /// Records how the exchange ended; the first word is final.
    fn finish(&self, outcome: Outcome) {
        self.outcome.borrow_mut().get_or_insert(outcome);
    }

    fn is_finished(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// Why the reply never came, if what came was a TLS alert: only possible without
    /// `--tls` (over TLS the reactor takes the records itself), and the user's likely mistake.
    fn tls_alert(&self) -> Option<String> {
        self.reply_is_tls_alert
            .then(|| tls::ANSWERED_WITH_TLS.to_string())
    }
}

impl Handler for Exchange {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        log::debug!("connected to {}", self.addr);
        // Nothing follows the request, and no half-close either: the server must not need
        // one. The reactor flushes whatever the socket does not take at once.
        ctx.write(&self.request);
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        // `data` always starts at the reply's first byte: nothing is consumed before the end.
        // As a reply of ours, an alert's first bytes would announce a 5 KiB header, which
        // no server of this protocol sends: the check cannot mistake a real reply.
        self.reply_is_tls_alert = tls::starts_as_tls_alert(data);
        match self.decoder.decode(data) {
            // Keep the bytes until the whole reply is there.
            Ok(None) => return 0,
            Ok(Some(frame)) => self.finish(outcome(&frame)),
            Err(err) => self.finish(Outcome::Failed(format!("malformed reply: {err}"))),
        }
        // The whole reply is here (or it never will be): done with this connection.
        ctx.close();
        data.len()
    }

    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        let buffered = ctx.buffered_input();
        let why = if let Some(why) = self.tls_alert() {
            why
        } else if self.decoder.is_mid_frame(buffered) {
            format!("server closed the connection mid-reply ({buffered} B received)")
        } else {
            "server closed the connection without replying".to_string()
        };
        self.finish(Outcome::Failed(why));
        ctx.close();
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        if self.is_finished() {
            return;
        }
        let addr = self.addr;
        self.finish(match reason {
            CloseReason::ConnectFailed(kind) => {
                Outcome::ConnectFailed(format!("cannot connect to {addr}: {kind}"))
            }
            CloseReason::ConnectTimeout => {
                Outcome::ConnectFailed(format!("cannot connect to {addr}: timed out"))
            }
            reason if tls::answered_in_plaintext(reason) => {
                Outcome::Failed(tls::ANSWERED_IN_PLAINTEXT.to_string())
            }
            // The server may reset rather than close: it stopped reading our request.
            _ => Outcome::Failed(self.tls_alert().unwrap_or_else(|| {
                format!("connection to {addr} ended without a reply: {reason}")
            })),
        });
    }
}

/// Sends one request to an application server and prints its reply. ACTION search looks
/// VALUE up; any other ACTION sends ACTION and VALUE as a binary message. Put -- before a
/// VALUE that starts with a dash.
#[derive(Parser)]
#[command(name = "app_client", version, allow_negative_numbers = true, after_help = cli::DEFAULT_SIGNALS_HELP)]
struct Args {
    /// Give up after this long
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = cli::seconds)]
    timeout: Duration,
    /// The server's host name or address
    host: String,
    /// The server's port
    port: u16,
    /// search, or any other word for a binary request
    action: String,
    /// What to search for, or the binary request's text
    value: String,
    #[command(flatten)]
    tls: tls::ClientTlsArgs,
}

struct Options {
    addrs: Vec<SocketAddr>,
    action: String,
    value: String,
    timeout: Duration,
    /// The TLS config and the server name to verify, with `--tls`.
    tls: Option<(tls::ClientTls, String)>,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let tls = args
        .tls
        .config(&args.host)
        .unwrap_or_else(|err| cli::usage_error::<Args>(err));
    let addrs = cli::resolve_host(&args.host, args.port).unwrap_or_else(|err| {
        cli::usage_error::<Args>(format!("cannot resolve {}: {err}", args.host))
    });
    Options {
        addrs,
        action: args.action,
        value: args.value,
        timeout: args.timeout,
        tls,
    }
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    match run(&options) {
        Outcome::Result(Value::String(text)) => println!("result: {text}"),
        Outcome::Result(other) => println!("result: {other}"),
        Outcome::Binary {
            content_type,
            content,
        } => println!(
            "binary reply ({content_type}, {} B): {}",
            content.len(),
            readable(&content)
        ),
        Outcome::ConnectFailed(why) | Outcome::Failed(why) => {
            eprintln!("app_client: {why}");
            std::process::exit(1);
        }
    }
}

/// Tries each address of the name in turn (`localhost` may be `::1` and `127.0.0.1`, and
/// the server may listen on only one), within one overall deadline.
fn run(options: &Options) -> Outcome {
    let request = match request(&options.action, &options.value) {
        Ok(request) => request,
        Err(err) => return Outcome::Failed(format!("cannot encode the request: {err}")),
    };
    let deadline = Instant::now() + options.timeout;
    let mut last = Outcome::Failed("no address to connect to".to_string());
    for &addr in &options.addrs {
        last = match exchange(addr, &request, deadline, options) {
            Ok(outcome) => outcome,
            Err(err) => Outcome::Failed(format!("{addr}: {err}")),
        };
        if !matches!(last, Outcome::ConnectFailed(_)) {
            break;
        }
        log::debug!("{last:?}");
    }
    last
}

/// One connection to `addr` (over TLS with `--tls`), driven turn by turn until it is over
/// or the deadline passes.
fn exchange(
    addr: SocketAddr,
    request: &[u8],
    deadline: Instant,
    options: &Options,
) -> std::io::Result<Outcome> {
    let decoder = Decoder::default();
    let config = Config::default().max_input(decoder.limits().max_frame());
    let mut reactor = Reactor::with_config(config)?;
    let outcome = Rc::new(RefCell::new(None));
    let tls = options
        .tls
        .as_ref()
        .map(|(config, name)| (config, name.as_str()));
    tls::connect(
        &mut reactor,
        addr,
        tls,
        Exchange {
            addr,
            request: request.to_vec(),
            decoder,
            reply_is_tls_alert: false,
            outcome: outcome.clone(),
        },
    )?;
    // The reactor is finished once the connection is closed: the server closes after its
    // reply, and so do we.
    while !reactor.is_finished() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        reactor.turn(Some(deadline - now))?;
    }
    let result = outcome.borrow_mut().take();
    let timeout = options.timeout;
    Ok(result
        .unwrap_or_else(|| Outcome::Failed(format!("no reply from {addr} within {timeout:?}"))))
}

/// Bytes as text if they are UTF-8 (quoted, control characters escaped), else as a byte
/// string with non-ASCII bytes in hex, like Python's `repr`.
fn readable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("b\"{}\"", bytes.escape_ascii()),
    }
}
