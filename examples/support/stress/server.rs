//! The server under test, as it runs in its own child process: a reactor with one of three
//! protocols, over plaintext TCP or TLS, reporting on standard output in lines that start with [`MARK`].
//!
//! A child process is what makes the figures honest: its resident memory, descriptors and
//! CPU time (`/proc/PID/...`) are the server's alone, and a descriptor limit
//! (`prlimit --nofile`) applies to it alone. The stress example and the stress tests both
//! start a copy of their own executable with [`SPEC_VAR`] set; [`serve_if_asked`] at the top
//! of `main` (or of the test) turns that copy into the server.
//!
//! Output, one line each: `@stress listening ADDR`, then per connection (if asked)
//! `@stress close PEER REASON ACCEPTED_BYTES`, then `@stress stats key=value...`. The server
//! stops gracefully when its standard input closes, or on SIGTERM or SIGINT (a second
//! signal aborts).

use std::cell::Cell;
use std::io::{self, Read};
use std::os::fd::AsFd;

use mio::unix::pipe;
use mio::Interest;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use mio_reactor::protocol::{encode_error, Decoder, Limits};
use mio_reactor::{
    CloseReason, Config, Context, Handler, ListenOptions, Reactor, Readiness, TimerId, WatchContext,
};

use super::process_figures;
use super::tls as example_tls;

/// The environment variable that carries a [`ServerSpec`] to the child.
pub const SPEC_VAR: &str = "MIO_REACTOR_STRESS_SERVER";

/// Marks the child's report lines among whatever else it prints (a test harness does).
pub const MARK: &str = "@stress ";

/// What the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Echo every byte.
    Echo,
    /// Echo complete lines. A partial line longer than `max_line` is a protocol error; a
    /// line not complete within `deadline` of its first byte gets the connection shed (a
    /// reset): the defence against slowloris, which an idle timeout is not (see
    /// `docs/reliability.md`).
    Lines {
        max_line: usize,
        deadline: Option<Duration>,
    },
    /// Echo each whole frame of the application protocol (`mio_reactor::protocol`), as it
    /// arrived. A malformed or oversized frame, or an EOF in the middle of one, gets an
    /// error frame and a graceful close with `CloseReason::Protocol`.
    Frames { limits: Limits },
}

/// How the child server is configured.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub protocol: Protocol,
    pub max_connections: usize,
    pub idle_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub close_timeout: Duration,
    /// Print one line per closed connection (peer, reason, bytes accepted for sending).
    pub report_closes: bool,
    /// Echo only: the handler panics on input containing this byte.
    pub panic_byte: Option<u8>,
    /// Serve TLS (the `tls` feature) with this identity, instead of plaintext.
    pub tls: Option<TlsSpec>,
    /// `Config::tls_handshake_timeout`.
    pub tls_handshake_timeout: Duration,
}

/// A TLS server's certificate and key, and the CA that its clients' certificates must be
/// signed by if it requires them: DER, as made by `Pki` (`support/pki.rs`) in the parent.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub cert: Vec<u8>,
    /// PKCS#8.
    pub key: Vec<u8>,
    pub client_ca: Option<Vec<u8>>,
}

impl TlsSpec {
    #[cfg(feature = "tls")]
    fn server_config(&self) -> io::Result<example_tls::ServerTls> {
        use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let client_roots = match &self.client_ca {
            None => None,
            Some(ca) => {
                let mut roots = mio_reactor::rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from(ca.clone()))
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
                Some(roots)
            }
        };
        let chain = vec![CertificateDer::from(self.cert.clone())];
        let key = PrivateKeyDer::Pkcs8(self.key.clone().into());
        example_tls::server_config_from(chain, key, client_roots)
    }

    #[cfg(not(feature = "tls"))]
    fn server_config(&self) -> io::Result<example_tls::ServerTls> {
        example_tls::without_tls()
    }
}

/// Bytes as lowercase hex: certificates travel to the child in the environment.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(format!("odd hex length {}", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(format!("bad hex digits {pair:?}"))
        })
        .collect()
}

impl ServerSpec {
    /// An echo server with the reactor's defaults.
    pub fn echo() -> ServerSpec {
        let defaults = Config::default();
        ServerSpec {
            protocol: Protocol::Echo,
            max_connections: defaults.get_max_connections(),
            idle_timeout: None,
            shutdown_timeout: defaults.get_shutdown_timeout(),
            close_timeout: defaults.get_close_timeout(),
            report_closes: false,
            panic_byte: None,
            tls: None,
            tls_handshake_timeout: defaults.get_tls_handshake_timeout(),
        }
    }

    /// A TLS echo server: see [`TlsSpec`].
    pub fn tls_echo(tls: TlsSpec) -> ServerSpec {
        ServerSpec {
            tls: Some(tls),
            ..ServerSpec::echo()
        }
    }

    /// A frame server with the protocol's default limits: see [`Protocol::Frames`].
    pub fn frames() -> ServerSpec {
        ServerSpec {
            protocol: Protocol::Frames {
                limits: Limits::default(),
            },
            ..ServerSpec::echo()
        }
    }

    /// A line server: see [`Protocol::Lines`].
    pub fn lines(max_line: usize, deadline: Option<Duration>) -> ServerSpec {
        ServerSpec {
            protocol: Protocol::Lines { max_line, deadline },
            ..ServerSpec::echo()
        }
    }

    fn config(&self) -> Config {
        let config = match self.protocol {
            // The reactor keeps an incomplete frame; the largest the decoder admits must fit.
            Protocol::Frames { limits } => Config::default().max_input(limits.max_frame()),
            _ => Config::default(),
        };
        config
            .max_connections(self.max_connections)
            .idle_timeout(self.idle_timeout)
            .shutdown_timeout(self.shutdown_timeout)
            .close_timeout(self.close_timeout)
            .tls_handshake_timeout(self.tls_handshake_timeout)
    }

    /// `key=value` pairs, for the environment.
    pub fn encode(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis().max(1));
        let protocol = match self.protocol {
            Protocol::Echo => "protocol=echo".to_string(),
            Protocol::Lines { max_line, deadline } => {
                format!(
                    "protocol=lines max_line={max_line} deadline_ms={}",
                    ms(deadline)
                )
            }
            Protocol::Frames { limits } => format!(
                "protocol=frames max_header={} max_content={}",
                limits.max_header, limits.max_content
            ),
        };
        let mut text = format!(
            "{protocol} max_connections={} idle_ms={} shutdown_ms={} close_ms={} report_closes={} \
             panic_byte={} handshake_ms={}",
            self.max_connections,
            ms(self.idle_timeout),
            ms(Some(self.shutdown_timeout)),
            ms(Some(self.close_timeout)),
            u8::from(self.report_closes),
            self.panic_byte.map_or(-1, i16::from),
            ms(Some(self.tls_handshake_timeout)),
        );
        if let Some(tls) = &self.tls {
            text += &format!(" tls_cert={} tls_key={}", hex(&tls.cert), hex(&tls.key));
            if let Some(ca) = &tls.client_ca {
                text += &format!(" tls_client_ca={}", hex(ca));
            }
        }
        text
    }

    fn decode(text: &str) -> Result<ServerSpec, String> {
        let mut spec = ServerSpec::echo();
        let (mut protocol, mut max_line, mut deadline) = ("echo", 0, None);
        let mut limits = Limits::default();
        let (mut tls_cert, mut tls_key, mut client_ca) = (None, None, None);
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        for pair in text.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or(format!("bad pair {pair:?}"))?;
            let number = || value.parse::<u64>().map_err(|e| format!("{key}: {e}"));
            match key {
                "protocol" => {
                    protocol = match value {
                        "lines" => "lines",
                        "frames" => "frames",
                        _ => "echo",
                    }
                }
                "max_line" => max_line = number()? as usize,
                "max_header" => limits.max_header = number()? as usize,
                "max_content" => limits.max_content = number()? as usize,
                "deadline_ms" => deadline = ms(number()?),
                "max_connections" => spec.max_connections = number()? as usize,
                "idle_ms" => spec.idle_timeout = ms(number()?),
                "shutdown_ms" => spec.shutdown_timeout = Duration::from_millis(number()?),
                "close_ms" => spec.close_timeout = Duration::from_millis(number()?),
                "report_closes" => spec.report_closes = value == "1",
                "panic_byte" => spec.panic_byte = value.parse().ok(),
                "handshake_ms" => spec.tls_handshake_timeout = Duration::from_millis(number()?),
                "tls_cert" => tls_cert = Some(from_hex(value)?),
                "tls_key" => tls_key = Some(from_hex(value)?),
                "tls_client_ca" => client_ca = Some(from_hex(value)?),
                _ => return Err(format!("unknown key {key:?}")),
            }
        }
        spec.protocol = match protocol {
            "lines" => Protocol::Lines { max_line, deadline },
            "frames" => Protocol::Frames { limits },
            _ => Protocol::Echo,
        };
        spec.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsSpec {
                cert,
                key,
                client_ca,
            }),
            (None, None) => None,
            _ => return Err("tls_cert and tls_key go together".to_string()),
        };
        Ok(spec)
    }
}

/// If this process was started as a stress server, serves until standard input closes and
/// returns `true`; otherwise returns `false` at once.
pub fn serve_if_asked() -> bool {
    let Ok(text) = std::env::var(SPEC_VAR) else {
        return false;
    };
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = env_logger::builder().try_init();
    }
    let result = ServerSpec::decode(&text)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))
        .and_then(serve);
    if let Err(err) = result {
        println!("{MARK}error {err}");
        std::process::exit(1);
    }
    true
}

fn serve(spec: ServerSpec) -> io::Result<()> {
    let pid = std::process::id();
    let fds_before = process_figures::fd_count(pid)?;
    let mut reactor = Reactor::with_config(spec.config())?;
    let counters = Counters::default();
    let (protocol, report_closes, shared) = (spec.protocol, spec.report_closes, counters.clone());
    let panic_byte = spec.panic_byte;
    let tls = spec.tls.as_ref().map(TlsSpec::server_config).transpose()?;
    if panic_byte.is_some() {
        // A thousand panics by design: the reactor logs each one (`error!`, with RUST_LOG);
        // the default hook's message and backtrace for each would only bury the report.
        std::panic::set_hook(Box::new(|_| {}));
    }
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let addr = example_tls::listen(
        &mut reactor,
        loopback,
        (ListenOptions::default(), tls.as_ref()),
        move |_: &_| {
            let decoder = match protocol {
                Protocol::Frames { limits } => Decoder::new(limits),
                _ => Decoder::default(),
            };
            Some(Tested {
                protocol,
                report_closes,
                peer: String::new(),
                accepted: 0,
                message_timer: None,
                decoder,
                counters: shared.clone(),
                panic_byte,
            })
        },
    )?
    .local_addr()?;
    // SIGTERM or SIGINT drains (a second one aborts), as in the example servers; so does
    // standard input closing, which also takes the server with a parent that dies. Both are
    // watched by the reactor itself, and the watches end with it. Set up before the address
    // is announced: no signal is missed, and the parent's descriptor baseline includes them.
    reactor.shutdown_on_signals()?;
    watch_stdin(&mut reactor)?;
    println!("{MARK}listening {addr}");

    reactor.run()?;
    let stats = reactor.stats();
    drop(reactor);
    let fds_after = process_figures::fd_count(pid)?;
    let closed = &stats.closed;
    println!(
        "{MARK}stats accepted={} open={} closed={} peer_closed={} local={} aborted={} \
         reset={} idle_timeout={} close_timeout={} limit_exceeded={} protocol={} shutdown={} \
         io_error={} accept_errors={} accept_backoffs={} read_pauses={} turns={} bytes_in={} \
         bytes_out={} shed={} frames={} handler_panics={} handler_panicked={} tls={} \
         fds_before={fds_before} fds_after={fds_after}",
        stats.accepted,
        stats.open_connections,
        closed.total(),
        closed.peer_closed,
        closed.local,
        closed.aborted,
        closed.reset,
        closed.idle_timeout,
        closed.close_timeout,
        closed.limit_exceeded,
        closed.protocol,
        closed.shutdown,
        closed.io_error,
        stats.accept_errors,
        stats.accept_backoffs,
        stats.read_pauses,
        stats.turns,
        stats.bytes_in,
        stats.bytes_out,
        counters.shed.get(),
        counters.frames.get(),
        stats.handler_panics,
        closed.handler_panicked,
        closed.tls,
    );
    Ok(())
}

/// Asks for a graceful shutdown when standard input (a pipe from the parent) closes, unless
/// one is under way already: a second request would abort it.
fn watch_stdin(reactor: &mut Reactor) -> io::Result<()> {
    let stdin = pipe::Receiver::from(io::stdin().as_fd().try_clone_to_owned()?);
    stdin.set_nonblocking(true)?;
    let on_input = |stdin: &mut pipe::Receiver, _: Readiness, ctx: &mut WatchContext<'_>| {
        let mut buf = [0; 512];
        loop {
            match stdin.read(&mut buf) {
                Ok(n) if n > 0 => continue, // input means nothing; only its end does
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                _ => break, // EOF, or an error: the parent is gone either way
            }
        }
        if !ctx.is_shutting_down() {
            ctx.shutdown_reactor();
        }
        ctx.unwatch();
    };
    reactor.watch(stdin, Interest::READABLE, on_input)?;
    Ok(())
}

/// One token per close reason, for the report lines.
pub fn reason_token(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::PeerClosed => "peer-closed",
        CloseReason::Local => "local",
        CloseReason::Aborted => "aborted",
        CloseReason::Reset => "reset",
        CloseReason::IdleTimeout => "idle-timeout",
        CloseReason::PeerTimedOut => "peer-timed-out",
        CloseReason::ConnectFailed(_) | CloseReason::ConnectTimeout => "connect-failed",
        CloseReason::CloseTimeout => "close-timeout",
        CloseReason::LimitExceeded(_) => "limit-exceeded",
        CloseReason::Protocol(_) => "protocol",
        CloseReason::Shutdown => "shutdown",
        CloseReason::ShutdownAborted => "shutdown-aborted",
        CloseReason::Io(_) => "io-error",
        CloseReason::HandlerPanicked(_) => "handler-panicked",
        CloseReason::Tls(_) => "tls-error",
        CloseReason::TlsTruncated => "tls-truncated",
        CloseReason::TlsHandshakeTimeout => "tls-handshake-timeout",
        _ => "other",
    }
}

/// What all connections count together.
#[derive(Clone, Default)]
struct Counters {
    /// Connections shed for a line that missed its deadline.
    shed: Rc<Cell<u64>>,
    /// Whole frames echoed.
    frames: Rc<Cell<u64>>,
}

/// The handler under test: echo, line echo or frame echo, counting the bytes the reactor
/// accepted for sending (so a test can check that each one was delivered).
struct Tested {
    protocol: Protocol,
    report_closes: bool,
    /// The peer's address, kept from `on_open` for the close report.
    peer: String,
    /// Bytes the reactor took for sending (`write_to` succeeded).
    accepted: u64,
    /// The deadline of the line in progress.
    message_timer: Option<TimerId>,
    /// `Protocol::Frames`: where the frame in progress stands.
    decoder: Decoder,
    counters: Counters,
    /// Panic on input containing this byte (the panic storm).
    panic_byte: Option<u8>,
}

impl Tested {
    fn send(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        // `write_to` on our own id is `write` with a result: it says whether the reactor
        // took the bytes (it refuses them once the connection is closing).
        if ctx.write_to(ctx.id(), data).is_ok() {
            self.accepted += data.len() as u64;
        }
    }

    /// Echoes every whole frame in `data`; returns the bytes consumed.
    fn echo_frames(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            // The decoder's contract: the input starts at the frame in progress, and holds
            // at least what it was given last time. The reactor keeps what we leave.
            match self.decoder.decode(&data[consumed..]) {
                Ok(Some(frame)) => {
                    let end = consumed + frame.consumed;
                    self.send(ctx, &data[consumed..end]);
                    self.counters.frames.set(self.counters.frames.get() + 1);
                    consumed = end;
                }
                Ok(None) => return consumed,
                Err(err) => {
                    self.reject(ctx, err.to_string());
                    return data.len();
                }
            }
        }
    }

    /// The peer broke the protocol: an error frame, then a graceful close of this
    /// connection only.
    fn reject(&mut self, ctx: &mut Context<'_>, why: String) {
        let mut reply = Vec::new();
        encode_error(&why, &mut reply);
        self.send(ctx, &reply);
        ctx.close_with(CloseReason::Protocol(why));
    }
}

impl Handler for Tested {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.peer = ctx.peer_addr().to_string();
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if let Some(byte) = self.panic_byte {
            assert!(!data.contains(&byte), "byte {byte:#04x} from {}", self.peer);
        }
        let (max_line, deadline) = match self.protocol {
            Protocol::Echo => {
                self.send(ctx, data);
                return data.len();
            }
            Protocol::Frames { .. } => return self.echo_frames(ctx, data),
            Protocol::Lines { max_line, deadline } => (max_line, deadline),
        };
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete > 0 {
            self.send(ctx, &data[..complete]);
        }
        let partial = data.len() - complete;
        if partial > max_line {
            ctx.close_with(CloseReason::Protocol(format!(
                "a line longer than {max_line} bytes"
            )));
            return data.len();
        }
        // A new line began if one just ended or none was in progress: it gets its own
        // deadline. A line in progress keeps the deadline of its first byte, however
        // slowly its bytes arrive; that is what an idle timeout cannot do.
        let started = partial > 0 && (complete > 0 || self.message_timer.is_none());
        if partial == 0 || started {
            if let Some(timer) = self.message_timer.take() {
                ctx.cancel_timer(timer);
            }
        }
        if let (true, Some(deadline)) = (started, deadline) {
            self.message_timer = Some(ctx.set_timer(deadline));
        }
        complete
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        if self.message_timer == Some(timer) {
            // A line is still incomplete at its deadline: shed the peer. A reset frees
            // everything at once; a graceful close would keep reading its trickle until
            // the close timeout.
            self.message_timer = None;
            self.counters.shed.set(self.counters.shed.get() + 1);
            ctx.abort();
        }
    }

    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        if let Protocol::Frames { .. } = self.protocol {
            // A half-closed peer can still read: a frame cut short gets its error reply.
            if let Err(err) = self.decoder.check_eof(ctx.buffered_input()) {
                return self.reject(ctx, err.to_string());
            }
        }
        ctx.close();
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        if self.report_closes {
            println!(
                "{MARK}close {} {} {}",
                self.peer,
                reason_token(reason),
                self.accepted
            );
        }
    }
}
