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
    /// Connects to `addr` and sends a short line every `every`, checking each echo.
    /// The line ends in a newline, so echo and line servers both answer it.
    pub fn start(addr: SocketAddr, every: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut log = ProbeLog::default();
            if let Err(err) = probe(addr, every, &stopping, &mut log) {
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

fn probe(
    addr: SocketAddr,
    every: Duration,
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
        let line = format!("probe {counter:0>48} round trip\n");
        let started = Instant::now();
        stream.write_all(line.as_bytes())?;
        let mut echo = vec![0; line.len()];
        stream.read_exact(&mut echo)?;
        // The first round trip waits for the server to accept: a warm-up, not a sample.
        if counter > 1 {
            log.round_trips.push(started.elapsed());
        }
        if echo != line.as_bytes() {
            log.failures
                .push(format!("round trip {counter}: wrong echo"));
            return Ok(());
        }
        // Pacing, not synchronisation: a steady, light load.
        std::thread::sleep(every);
    }
    Ok(())
}
