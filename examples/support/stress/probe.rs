//! A well-behaved client that keeps doing round trips while others misbehave, and records
//! how long each took: the figure that says whether the misbehaviour hurt anyone else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A probe running on its own thread until [`Probe::stop`].
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ProbeLog>,
}

impl Probe {
    /// Connects to `addr` and sends `message(n)` every `every`, checking that each comes
    /// back unchanged: [`line`] suits echo and line servers, [`frame`] the frame server.
    pub fn start(addr: SocketAddr, every: Duration, message: fn(u64) -> Vec<u8>) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut log = ProbeLog::default();
            if let Err(err) = probe(addr, every, message, &stopping, &mut log) {
                log.failures.push(err.to_string());
            }
            log
        });
        Probe { stop, thread }
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
    addr: SocketAddr,
    every: Duration,
    message: fn(u64) -> Vec<u8>,
    stop: &AtomicBool,
    log: &mut ProbeLog,
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
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
        // Pacing, not synchronisation: a steady, light load.
        std::thread::sleep(every);
    }
    Ok(())
}
