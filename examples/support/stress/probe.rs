//! A well-behaved client that keeps doing round trips while others misbehave, and records
//! how long each took: the figure that says whether the misbehaviour hurt anyone else.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one round trip may take before the probe calls it a failure.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the probe saw.
#[derive(Debug, Default)]
pub struct ProbeLog {
    pub round_trips: Vec<Duration>,
    pub failures: Vec<String>,
}

impl ProbeLog {
    /// The `q` quantile of the round trips (zero if there were none).
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }
}

/// The connection a probe talks over: plaintext TCP, or TLS.
pub trait Transport: Read + Write {
    /// Ends the connection the polite way, once the probe is done.
    fn finish(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    /// Dropping it sends the FIN.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rustls client session over a blocking TCP stream.
#[cfg(feature = "tls")]
pub type TlsStream =
    mio_reactor::rustls::StreamOwned<mio_reactor::rustls::ClientConnection, TcpStream>;

#[cfg(feature = "tls")]
impl Transport for TlsStream {
    /// A close_notify before the FIN (a FIN alone is a truncation, which the TLS scenarios
    /// count as an offence), then the server's close_notify: the close is graceful on both
    /// sides, never a reset for data arriving at a closed socket.
    fn finish(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(std::net::Shutdown::Write)?;
        self.read_to_end(&mut Vec::new()).map(|_| ())
    }
}

/// A TCP connection to `addr` with the probe's bounded waits, not delayed by Nagle.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// A TLS session for `localhost` to `addr` with `config` (the handshake runs with the first
/// round trip).
#[cfg(feature = "tls")]
pub fn connect_tls(
    addr: SocketAddr,
    config: std::sync::Arc<mio_reactor::rustls::ClientConfig>,
) -> io::Result<TlsStream> {
    let name = mio_reactor::rustls::pki_types::ServerName::try_from("localhost")
        .map_err(io::Error::other)?;
    let session =
        mio_reactor::rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    Ok(mio_reactor::rustls::StreamOwned::new(
        session,
        connect(addr)?,
    ))
}

/// A probe running on its own thread until [`Probe::stop`].
pub struct Probe {
    stop: Arc<AtomicBool>,
    /// Round trips done so far, the warm-up included.
    served: Arc<AtomicU64>,
    thread: JoinHandle<ProbeLog>,
}

impl Probe {
    /// Connects to `addr` and sends `message(n)` every `every`, checking that each comes
    /// back unchanged: [`line`] suits echo and line servers, [`frame`] the frame server.
    pub fn start(addr: SocketAddr, every: Duration, message: fn(u64) -> Vec<u8>) -> Probe {
        Probe::start_over(move || connect(addr), every, message)
    }

    /// The same over the connection `open` makes (on the probe's thread): a TLS session.
    pub fn start_over<T: Transport>(
        open: impl FnOnce() -> io::Result<T> + Send + 'static,
        every: Duration,
        message: fn(u64) -> Vec<u8>,
    ) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stopping, counting) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let mut log = ProbeLog::default();
            let result = open().and_then(|mut stream| {
                probe(
                    &mut stream,
                    every,
                    message,
                    (&stopping, &counting),
                    &mut log,
                )?;
                stream.finish()
            });
            if let Err(err) = result {
                log.failures.push(err.to_string());
            }
            log
        });
        Probe {
            stop,
            served,
            thread,
        }
    }

    /// Round trips done so far (the warm-up included): a scenario can wait for the probe to
    /// be served before the offenders start, and again after they are done.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// Whether the probe's thread ended (it failed: `stop` returns why).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub fn stop(self) -> ProbeLog {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_else(|_| ProbeLog {
            failures: vec!["the probe panicked".to_string()],
            ..ProbeLog::default()
        })
    }
}

/// A short line of text.
pub fn line(n: u64) -> Vec<u8> {
    format!("probe {n:0>48} round trip\n").into_bytes()
}

/// A frame of the application protocol with a small JSON document.
pub fn frame(n: u64) -> Vec<u8> {
    let mut frame = Vec::new();
    mio_reactor::protocol::encode_json(&serde_json::json!({ "probe": n }), &mut frame);
    frame
}

fn probe(
    stream: &mut impl Transport,
    every: Duration,
    message: fn(u64) -> Vec<u8>,
    (stop, served): (&AtomicBool, &AtomicU64),
    log: &mut ProbeLog,
) -> io::Result<()> {
    let mut counter = 0u64;
    while !stop.load(Ordering::SeqCst) {
        counter += 1;
        let line = message(counter);
        let started = Instant::now();
        stream.write_all(&line)?;
        let mut echo = vec![0; line.len()];
        stream.read_exact(&mut echo)?;
        // The first round trip waits for the server to accept: a warm-up, not a sample.
        if counter > 1 {
            log.round_trips.push(started.elapsed());
        }
        if echo != line {
            log.failures
                .push(format!("round trip {counter}: wrong echo"));
            return Ok(());
        }
        served.fetch_add(1, Ordering::SeqCst);
        // Pacing, not synchronisation: a steady, light load.
        std::thread::sleep(every);
    }
    Ok(())
}
