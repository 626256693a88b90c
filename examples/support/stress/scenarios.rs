//! The scenarios of the stress and fault suite, each a function of its size.
//!
//! `cargo test` runs them small (`tests/stress_*.rs`), the `stress` example runs them at full
//! size. Each starts its own server child (through a [`Launcher`]), drives clients at it,
//! checks what must hold, and returns a [`Report`] with its figures. No check is about
//! speed: the waits are bounded only so that a hang fails instead of hanging.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::child::{ChildServer, Launcher};
use super::pattern::{Kind, Pattern};
use super::probe::{self, Probe};
use super::report::{kib_as_mib, millis, secs, size, OrFail, Report};
use super::server::ServerSpec;
use super::swarm::{End, Peer, Step, Swarm};

/// The bound on any one phase of a scenario.
pub(super) const PATIENCE: Duration = Duration::from_secs(60);

/// How often the `/proc` figures of the server are sampled while waiting.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// 127.0.0.2, 127.0.0.3, ...: loopback is a whole /8, and each source address has its own
/// ephemeral ports, so thousands of clients do not crowd one address.
pub fn source_address(index: usize, sources: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        2 + (index % sources.max(1) as usize) as u8,
    ))
}

/// Rate-limits `/proc` reads inside a swarm's wait condition.
pub(super) struct Sampler {
    next: Instant,
}

impl Sampler {
    pub(super) fn new() -> Sampler {
        Sampler {
            next: Instant::now(),
        }
    }

    pub(super) fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + SAMPLE_EVERY;
        true
    }
}

/// Tracks the server's peak resident memory.
pub(super) struct RssWatch {
    pub(super) before: u64,
    peak: u64,
    sampler: Sampler,
}

impl RssWatch {
    pub(super) fn start(server: &ChildServer) -> Result<RssWatch, String> {
        let before = server.rss_kib().or_fail("reading the server's RSS")?;
        Ok(RssWatch {
            before,
            peak: before,
            sampler: Sampler::new(),
        })
    }

    pub(super) fn sample(&mut self, server: &ChildServer) {
        if self.sampler.due() {
            if let Ok(rss) = server.rss_kib() {
                self.peak = self.peak.max(rss);
            }
        }
    }

    /// Reads the server's RSS now (not rate-limited), counts it in the peak, and returns it.
    pub(super) fn now(&mut self, server: &ChildServer) -> Result<u64, String> {
        let rss = server.rss_kib().or_fail("reading the server's RSS")?;
        self.peak = self.peak.max(rss);
        Ok(rss)
    }

    pub(super) fn growth_kib(&self) -> i64 {
        self.peak as i64 - self.before as i64
    }
}

/// Tells when a sender that never reads has stalled: nothing it sends has moved for
/// [`StallWatch::QUIET`], so every buffer on the way is full and the server stopped reading.
/// (No event announces "nothing happens": a bounded watch is the only way to see it.)
pub(super) struct StallWatch {
    sent: u64,
    since: Instant,
}

impl StallWatch {
    const QUIET: Duration = Duration::from_millis(500);

    pub(super) fn new() -> StallWatch {
        StallWatch {
            sent: 0,
            since: Instant::now(),
        }
    }

    /// Whether `sent` (the sender's running total) has not moved for the quiet time.
    pub(super) fn stalled(&mut self, sent: u64) -> bool {
        if sent != self.sent {
            (self.sent, self.since) = (sent, Instant::now());
        }
        self.since.elapsed() >= StallWatch::QUIET
    }
}

/// The never-reading sender's verdict on memory: growth while stalled independent of what it
/// pushed (a few buffers' worth), and bounded at any time.
pub(super) fn check_rss_bounded_while_stalled(
    report: &mut Report,
    rss: &RssWatch,
    growth_stalled: i64,
) {
    report.figure("rss_growth_peak", kib_as_mib(rss.growth_kib()));
    report.check(growth_stalled < 16 * 1024, || {
        format!(
            "server RSS grew by {} KiB while the client did not read",
            growth_stalled
        )
    });
    report.check(rss.growth_kib() < 32 * 1024, || {
        format!("server RSS grew by {} KiB", rss.growth_kib())
    });
}

/// Waits (bounded) until the server's descriptor count is back to `baseline`; returns it.
pub(super) fn await_fds(
    swarm: &mut Swarm,
    server: &ChildServer,
    baseline: usize,
) -> Result<usize, String> {
    let mut sampler = Sampler::new();
    let mut last = usize::MAX;
    swarm
        .run_until(PATIENCE, |_| {
            if sampler.due() {
                last = server.fd_count().unwrap_or(usize::MAX);
            }
            last == baseline
        })
        .or_fail("running the clients")?;
    Ok(last)
}

/// Describes the first few clients that fail `ok`, or `None` if all pass.
pub(super) fn first_failures(peers: &[Peer], ok: impl Fn(&Peer) -> bool) -> Option<String> {
    let bad: Vec<String> = peers
        .iter()
        .enumerate()
        .filter(|(_, peer)| !ok(peer))
        .map(|(i, p)| {
            format!(
                "client {i}: {:?}, sent {}, echoed {}",
                p.end, p.sent, p.received
            )
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let shown = bad.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    Some(format!("{} clients wrong ({shown})", bad.len()))
}

/// The client ended as its script said, with its whole echo. (Each byte was compared with
/// what was sent as it arrived: a difference would have ended it as `Corrupt`.)
pub(super) fn echoed_exactly(peer: &Peer, bytes: u64) -> bool {
    peer.end == Some(End::Done) && peer.received == bytes
}

/// The server's memory stayed bounded, and the well-behaved probe client was served
/// throughout.
pub(super) fn check_memory_and_probe(report: &mut Report, rss: &RssWatch, log: &probe::ProbeLog) {
    report.figure("rss_growth", kib_as_mib(rss.growth_kib()));
    report.check(rss.growth_kib() < 64 * 1024, || {
        format!("server RSS grew by {} KiB", rss.growth_kib())
    });
    report.figure("probe_round_trips", log.round_trips.len());
    report.figure("probe_p99", millis(log.quantile(0.99)));
    report.check(
        log.failures.is_empty() && !log.round_trips.is_empty(),
        || format!("the well-behaved client was not served: {:?}", log.failures),
    );
}

/// Exactly `expected` connections were closed for a protocol error (`offenders`: what they
/// were, for the failure message).
fn check_protocol_closes(
    report: &mut Report,
    stats: &super::child::ServerReport,
    expected: u64,
    offenders: &str,
) {
    let closes = stats.get("protocol");
    report.figure("protocol_closes", closes);
    report.check(closes == expected, || {
        format!("{closes} protocol closes for {expected} {offenders}")
    });
}

pub(super) fn check_stats_consistent(report: &mut Report, stats: &super::child::ServerReport) {
    let (accepted, closed, open) = (
        stats.get("accepted"),
        stats.get("closed"),
        stats.get("open"),
    );
    report.check(closed == accepted && open == 0, || {
        format!("server stats inconsistent: accepted {accepted}, closed {closed}, open {open}")
    });
    let (before, after) = (stats.get("fds_before"), stats.get("fds_after"));
    report.check(before == after, || {
        format!("the server process kept descriptors: {before} before the reactor, {after} after")
    });
}

/// Scenario 1: Many connections at once, each echoing its own random bytes, byte-exact.
pub fn many_connections(
    launcher: &Launcher,
    connections: usize,
    bytes_each: u64,
    sources: u8,
) -> Report {
    Report::run("many-connections", |report| {
        let spec = ServerSpec {
            max_connections: connections + 16,
            ..ServerSpec::echo()
        };
        let server = launcher.spawn(&spec).or_fail("starting the server")?;
        let fds_before = server.fd_count().or_fail("counting descriptors")?;
        let mut rss = RssWatch::start(&server)?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        for index in 0..connections {
            let script = vec![
                Step::AwaitGate,
                Step::Send(bytes_each),
                Step::AwaitEcho,
                Step::HalfClose,
                Step::AwaitEof,
            ];
            let pattern = Pattern::new(index as u64, Kind::Random);
            swarm.add(
                server.addr,
                Some(source_address(index, sources)),
                pattern,
                script,
            );
        }
        report.figure("connections", connections);
        report.figure("sources", sources);
        let started = Instant::now();

        // All connected, and all held by the server at once: its descriptor count says so.
        let mut peak_fds = 0;
        let mut sampler = Sampler::new();
        let all_open = swarm
            .run_until(PATIENCE, |s| {
                if s.connected() + s.ended() < connections || !sampler.due() {
                    return false;
                }
                peak_fds = peak_fds.max(server.fd_count().unwrap_or(0));
                rss.sample(&server);
                peak_fds >= fds_before + connections || s.ended() > 0
            })
            .or_fail("connecting")?;
        if let Some(why) = first_failures(swarm.peers(), |p| p.end.is_none()) {
            return Err(format!("connecting: {why}"));
        }
        report.figure("server_fds_peak", peak_fds);
        report.figure("all_open_after", secs(started.elapsed()));
        if !all_open {
            return Err(format!("the server never held all {connections} at once"));
        }

        let echo_started = Instant::now();
        swarm.open_gate();
        swarm
            .run_until(PATIENCE, |s| {
                rss.sample(&server);
                s.ended() == connections
            })
            .or_fail("echoing")?;
        report.figure("echo_time", secs(echo_started.elapsed()));
        report.figure("bytes_each_way", size(connections as u64 * bytes_each));
        if let Some(why) = first_failures(swarm.peers(), |p| echoed_exactly(p, bytes_each)) {
            report.check(false, || why);
        }
        let fds_after = await_fds(&mut swarm, &server, fds_before)?;
        report.figure("fds_before", fds_before);
        report.figure("fds_after", fds_after);
        report.figure("rss_growth", kib_as_mib(rss.growth_kib()));
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.check(stats.get("accepted") == connections as u64, || {
            format!("accepted {} of {connections}", stats.get("accepted"))
        });
        Ok(())
    })
}

/// Scenario 2: A big transfer through one connection, then the same with a half-close right
/// after sending: every byte back, checked by hash (and byte by byte as it arrives).
pub fn big_transfer(launcher: &Launcher, bytes: u64) -> Report {
    Report::run("big-transfer", |report| {
        let server = launcher
            .spawn(&ServerSpec::echo())
            .or_fail("starting the server")?;
        report.figure("bytes", size(bytes));
        for (label, half_close_at_once) in [("read_all_then_close", false), ("half_close", true)] {
            let script = if half_close_at_once {
                vec![Step::Send(bytes), Step::HalfClose, Step::AwaitEof]
            } else {
                vec![
                    Step::Send(bytes),
                    Step::AwaitEcho,
                    Step::HalfClose,
                    Step::AwaitEof,
                ]
            };
            let mut swarm = Swarm::new().or_fail("creating the client")?;
            swarm.hash = true;
            swarm.add(server.addr, None, Pattern::new(64, Kind::Random), script);
            let started = Instant::now();
            swarm
                .run_until(PATIENCE, |s| s.ended() == 1)
                .or_fail("transferring")?;
            let peer = &swarm.peers()[0];
            report.figure(label, secs(started.elapsed()));
            let same_hash = peer.received_hash == peer.sent_hash;
            report.check(echoed_exactly(peer, bytes) && same_hash, || {
                format!(
                    "{label}: {:?}, sent {}, echoed {}, hashes {:016x} / {:016x}",
                    peer.end, peer.sent, peer.received, peer.sent_hash.0, peer.received_hash.0
                )
            });
            report.figure("fnv1a", format!("{:016x}", peer.received_hash.0));
        }
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.check(stats.get("peer_closed") == 2, || {
            format!("expected 2 peer-closed connections: {:?}", stats.stats)
        });
        Ok(())
    })
}

/// Scenario 3: A client sends without reading: the server stops reading instead of buffering,
/// so its memory stays put however much the client pushes; once the client reads, all of it
/// arrives intact.
pub fn never_reads(launcher: &Launcher, bytes: u64, watch: Duration) -> Report {
    Report::run("never-reads", |report| {
        let server = launcher
            .spawn(&ServerSpec::echo())
            .or_fail("starting the server")?;
        let mut rss = RssWatch::start(&server)?;
        let mut swarm = Swarm::new().or_fail("creating the client")?;
        let script = vec![
            Step::StopReading,
            Step::Send(bytes),
            Step::AwaitEcho,
            Step::HalfClose,
            Step::AwaitEof,
        ];
        swarm.add(server.addr, None, Pattern::new(3, Kind::Random), script);
        report.figure("bytes", size(bytes));

        // Push until nothing moves for a while: the kernel buffers are full and the server
        // has stopped reading.
        let mut stall = StallWatch::new();
        let stalled = swarm
            .run_until(PATIENCE, |s| {
                rss.sample(&server);
                s.ended() > 0 || stall.stalled(s.peers()[0].sent)
            })
            .or_fail("sending")?;
        let stalled_at = swarm.peers()[0].sent;
        if !stalled || swarm.ended() > 0 || stalled_at >= bytes {
            return Err(format!(
                "the client never stalled ({} of {bytes} B sent, {:?})",
                stalled_at,
                swarm.peers()[0].end
            ));
        }
        report.figure("stalled_after", size(stalled_at));
        // The client keeps trying to send while we watch the server's memory.
        swarm
            .run_until(watch, |_| {
                rss.sample(&server);
                false
            })
            .or_fail("watching")?;
        let growth_stalled = rss.growth_kib();
        report.figure("rss_before", kib_as_mib(rss.before as i64));
        report.figure("rss_growth_stalled", kib_as_mib(growth_stalled));

        swarm.set_reading(0, true);
        swarm
            .run_until(PATIENCE, |s| {
                rss.sample(&server);
                s.ended() == 1
            })
            .or_fail("reading the echo")?;
        let peer = &swarm.peers()[0];
        report.check(echoed_exactly(peer, bytes), || {
            format!(
                "{:?}, sent {}, echoed {}",
                peer.end, peer.sent, peer.received
            )
        });
        check_rss_bounded_while_stalled(report, &rss, growth_stalled);
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.check(stats.get("read_pauses") >= 1, || {
            "the server never paused reading".to_string()
        });
        Ok(())
    })
}

/// Scenario 4: Slowloris: connections that trickle a byte per interval and never finish a line.
/// An idle timeout cannot shed them (each byte is activity); the line server's per-message
/// deadline does. A well-behaved client is served throughout; its round trips are reported.
pub fn slowloris(
    launcher: &Launcher,
    tricklers: usize,
    interval: Duration,
    deadline: Duration,
    idle_timeout: Duration,
) -> Report {
    Report::run("slowloris", |report| {
        let spec = ServerSpec {
            idle_timeout: Some(idle_timeout),
            max_connections: tricklers + 16,
            ..ServerSpec::lines(4096, Some(deadline))
        };
        let server = launcher.spawn(&spec).or_fail("starting the server")?;
        let probe = Probe::start(server.addr, Duration::from_millis(10), probe::line);
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        for index in 0..tricklers {
            // Printable bytes and never a newline: a line that never ends.
            let pattern = Pattern::new(index as u64, Kind::Lines { line_len: 0 });
            let trickle = Step::Stream {
                chunk: 1,
                every: interval,
            };
            swarm.add(server.addr, None, pattern, vec![trickle]);
        }
        report.figure("tricklers", tricklers);
        report.figure("interval", secs(interval));
        report.figure("deadline", secs(deadline));
        report.figure("idle_timeout", secs(idle_timeout));
        let started = Instant::now();
        let all_shed = swarm
            .run_until(deadline + PATIENCE, |s| s.ended() == tricklers)
            .or_fail("trickling")?;
        let log = probe.stop();
        report.check(all_shed, || {
            format!(
                "{} of {tricklers} tricklers still connected",
                tricklers - swarm.ended()
            )
        });
        let shed = |p: &Peer| matches!(p.end, Some(End::ServerReset | End::ServerClosed));
        if let Some(why) = first_failures(swarm.peers(), |p| p.connected && shed(p)) {
            report.check(false, || format!("not shed by the server: {why}"));
        }
        let last_shed = swarm.peers().iter().filter_map(|p| p.ended_at).max();
        if let Some(last) = last_shed {
            report.figure(
                "all_shed_after",
                secs(last.saturating_duration_since(started)),
            );
        }
        report.figure("probe_round_trips", log.round_trips.len());
        report.figure("probe_p50", millis(log.quantile(0.50)));
        report.figure("probe_p99", millis(log.quantile(0.99)));
        report.figure("probe_max", millis(log.quantile(1.0)));
        report.check(
            log.failures.is_empty() && !log.round_trips.is_empty(),
            || format!("the well-behaved client was not served: {:?}", log.failures),
        );
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.figure("shed_by_deadline", stats.get("shed"));
        report.figure("closed_by_idle_timeout", stats.get("idle_timeout"));
        report.check(
            stats.get("shed") + stats.get("idle_timeout") >= tricklers as u64,
            || format!("the server shed {} of {tricklers}", stats.get("shed")),
        );
        Ok(())
    })
}

/// Scenario 5: Clients that reset mid-stream (`SO_LINGER` 0), interleaved with normal ones: the
/// normal ones are served, no error escapes the loop, and the server's descriptors return to
/// their baseline.
pub fn resets(launcher: &Launcher, pairs: usize) -> Report {
    Report::run("resets", |report| {
        let server = launcher
            .spawn(&ServerSpec::echo())
            .or_fail("starting the server")?;
        let fds_before = server.fd_count().or_fail("counting descriptors")?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        const RUDE: u64 = 64 * 1024;
        const POLITE: u64 = 4 * 1024;
        for pair in 0..pairs as u64 {
            // Sends, leaves the echo unread (the server is mid-write), then resets.
            let rude = vec![
                Step::StopReading,
                Step::Send(RUDE),
                Step::Pause(Duration::from_millis(1)),
                Step::Reset,
            ];
            swarm.add(
                server.addr,
                None,
                Pattern::new(2 * pair, Kind::Random),
                rude,
            );
            let polite = vec![
                Step::Send(POLITE),
                Step::AwaitEcho,
                Step::HalfClose,
                Step::AwaitEof,
            ];
            swarm.add(
                server.addr,
                None,
                Pattern::new(2 * pair + 1, Kind::Random),
                polite,
            );
        }
        let total = 2 * pairs;
        swarm
            .run_until(PATIENCE, |s| s.ended() == total)
            .or_fail("running the clients")?;
        report.figure("resetting", pairs);
        report.figure("normal", pairs);
        let peers = swarm.peers();
        let rude: Vec<&Peer> = peers.iter().step_by(2).collect();
        let polite: Vec<&Peer> = peers.iter().skip(1).step_by(2).collect();
        let bad_rude = rude
            .iter()
            .filter(|p| p.end != Some(End::Done) || p.sent != RUDE)
            .count();
        report.check(bad_rude == 0, || {
            format!("{bad_rude} resetting clients failed")
        });
        let bad_polite: Vec<String> = polite
            .iter()
            .filter(|p| !echoed_exactly(p, POLITE))
            .take(3)
            .map(|p| format!("{:?} echoed {}", p.end, p.received))
            .collect();
        report.check(bad_polite.is_empty(), || {
            format!("normal clients not served: {}", bad_polite.join(", "))
        });
        let fds_after = await_fds(&mut swarm, &server, fds_before)?;
        report.figure("server_fds_before", fds_before);
        report.figure("server_fds_after", fds_after);
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.figure("accepted", stats.get("accepted"));
        report.figure("closed_as_reset", stats.get("reset"));
        report.check(stats.get("io_error") == 0, || {
            format!(
                "{} connections closed with I/O errors",
                stats.get("io_error")
            )
        });
        Ok(())
    })
}

/// A script that sends `total` bytes in pieces of 1 to 7 bytes, a third of them followed by
/// a pause under a millisecond, then waits for the whole echo, half-closes and waits for the
/// server's EOF. Returns it with its number of pieces.
fn in_pieces(seed: u64, total: u64) -> (Vec<Step>, usize) {
    let mut rng = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let (mut script, mut pieces, mut left) = (Vec::new(), 0, total);
    while left > 0 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let piece = (1 + rng % 7).min(left);
        left -= piece;
        script.push(Step::Send(piece));
        pieces += 1;
        if rng % 3 == 0 {
            script.push(Step::Pause(Duration::from_micros(100 + rng % 900)));
        }
    }
    script.extend([Step::AwaitEcho, Step::HalfClose, Step::AwaitEof]);
    (script, pieces)
}

/// Scenario 6: Messages cut into 1 to 7 byte pieces with tiny pauses, each piece its own
/// segment (`TCP_NODELAY`): echoed byte-exact.
pub fn fragmentation(launcher: &Launcher, connections: usize, bytes_each: u64) -> Report {
    Report::run("fragmentation", |report| {
        let server = launcher
            .spawn(&ServerSpec::echo())
            .or_fail("starting the server")?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        let mut pieces = 0;
        for index in 0..connections as u64 {
            let (script, n) = in_pieces(index, bytes_each);
            pieces += n;
            swarm.add(server.addr, None, Pattern::new(index, Kind::Random), script);
        }
        report.figure("connections", connections);
        report.figure("bytes_each", bytes_each);
        report.figure("pieces", pieces);
        swarm
            .run_until(PATIENCE, |s| s.ended() == connections)
            .or_fail("sending pieces")?;
        if let Some(why) = first_failures(swarm.peers(), |p| echoed_exactly(p, bytes_each)) {
            report.check(false, || why);
        }
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        Ok(())
    })
}

/// Scenario 6, the application protocol: frames (`mio_reactor::protocol`) cut into 1 to 7
/// byte pieces with tiny pauses. The server decodes each frame from its pieces and echoes
/// it whole: every frame comes back, byte-exact, and none is a protocol error.
pub fn fragmented_frames(launcher: &Launcher, connections: usize, bytes_each: u64) -> Report {
    Report::run("fragmented-frames", |report| {
        const MAX_CONTENT: usize = 600;
        let server = launcher
            .spawn(&ServerSpec::frames())
            .or_fail("starting the server")?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        let (mut pieces, mut frames, mut lengths) = (0, 0, Vec::new());
        for index in 0..connections as u64 {
            // Whole frames only: a frame cut off by the end would be a protocol error.
            let (len, n) = Pattern::whole_frames(index, MAX_CONTENT, bytes_each);
            let (script, p) = in_pieces(index, len);
            pieces += p;
            frames += n;
            lengths.push(len);
            let pattern = Pattern::new(
                index,
                Kind::Frames {
                    max_content: MAX_CONTENT,
                },
            );
            swarm.add(server.addr, None, pattern, script);
        }
        report.figure("connections", connections);
        report.figure("frames", frames);
        report.figure("bytes", size(lengths.iter().sum()));
        report.figure("pieces", pieces);
        swarm
            .run_until(PATIENCE, |s| s.ended() == connections)
            .or_fail("sending pieces")?;
        let wrong: Vec<String> = swarm
            .peers()
            .iter()
            .zip(&lengths)
            .enumerate()
            .filter(|(_, (p, &len))| !echoed_exactly(p, len))
            .take(3)
            .map(|(i, (p, len))| format!("client {i}: {:?}, echoed {} of {len}", p.end, p.received))
            .collect();
        report.check(wrong.is_empty(), || {
            format!("frames not echoed: {}", wrong.join(", "))
        });
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.check(
            stats.get("frames") == frames && stats.get("protocol") == 0,
            || {
                format!(
                    "the server decoded {} of {frames} frames, {} protocol errors",
                    stats.get("frames"),
                    stats.get("protocol")
                )
            },
        );
        Ok(())
    })
}

/// Scenario 7: Descriptor exhaustion: a server limited to `limit` descriptors, and more clients
/// than it can hold. While full it backs off instead of spinning (its CPU time over `window` is
/// reported and must stay low); as clients leave, the waiting ones are served.
pub fn fd_exhaustion(launcher: &Launcher, limit: u64, extra: usize, window: Duration) -> Report {
    Report::run("fd-exhaustion", |report| {
        let server = launcher
            .spawn_with_fd_limit(&ServerSpec::echo(), limit)
            .or_fail("starting the server under prlimit")?;
        let fds_base = server.fds_below(limit).or_fail("counting descriptors")?;
        let capacity = (limit as usize)
            .checked_sub(fds_base)
            .filter(|&c| c > 0)
            .ok_or(format!(
                "{fds_base} descriptors in use at start, limit {limit}"
            ))?;
        // The kernel completes handshakes for up to the listen backlog (1024) beyond what
        // the server accepts: keep the extra clients within it.
        let total = capacity + extra;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        for index in 0..total {
            let script = vec![Step::Send(16), Step::AwaitEcho, Step::AwaitGate];
            swarm.add(
                server.addr,
                None,
                Pattern::new(index as u64, Kind::Random),
                script,
            );
        }
        report.figure("fd_limit", limit);
        report.figure("capacity", capacity);
        report.figure("clients", total);

        let mut sampler = Sampler::new();
        let mut fds = 0;
        let full = swarm
            .run_until(PATIENCE, |s| {
                if sampler.due() {
                    fds = server.fds_below(limit).unwrap_or(0);
                }
                fds as u64 >= limit && s.count(Peer::echoed_all) >= capacity
            })
            .or_fail("filling the server")?;
        if !full {
            return Err(format!(
                "the server never filled up: {fds} descriptors, {} clients served",
                swarm.count(Peer::echoed_all)
            ));
        }

        // Full, with clients waiting in the backlog. A loop that retried accept at once
        // would burn a core now.
        let cpu_before = server.cpu_time().or_fail("reading CPU time")?;
        swarm.run_for(window).or_fail("waiting while full")?;
        let cpu = server
            .cpu_time()
            .or_fail("reading CPU time")?
            .saturating_sub(cpu_before);
        let served_while_full = swarm.count(Peer::echoed_all);
        report.figure("window", secs(window));
        report.figure("cpu_while_full", format!("{}ms", cpu.as_millis()));
        report.check(cpu < window / 4, || {
            format!("the full server used {cpu:?} of CPU in {window:?}: spinning")
        });
        report.check(served_while_full == capacity, || {
            format!("{served_while_full} served while full, capacity {capacity}")
        });

        // The served clients leave; each one that does lets one waiting client in.
        swarm.open_gate();
        swarm
            .run_until(PATIENCE, |s| s.ended() == total)
            .or_fail("serving the rest")?;
        if let Some(why) = first_failures(swarm.peers(), |p| echoed_exactly(p, 16)) {
            report.check(false, || format!("not served after others left: {why}"));
        }
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        report.figure("accept_backoffs", stats.get("accept_backoffs"));
        report.check(stats.get("accepted") == total as u64, || {
            format!("accepted {} of {total}", stats.get("accepted"))
        });
        report.check(stats.get("accept_backoffs") >= 1, || {
            "the server never ran out of descriptors".to_string()
        });
        Ok(())
    })
}

/// Scenario 8: Garbage at volume against a line server (random bytes, lines that never end,
/// resets halfway) while a well-behaved client is served: nothing panics, memory stays bounded,
/// and only the offenders are closed.
pub fn garbage(launcher: &Launcher, peers: usize, bytes_each: u64) -> Report {
    Report::run("garbage", |report| {
        const MAX_LINE: usize = 64 * 1024;
        let spec = ServerSpec::lines(MAX_LINE, Some(Duration::from_secs(10)));
        let server = launcher.spawn(&spec).or_fail("starting the server")?;
        let mut rss = RssWatch::start(&server)?;
        let probe = Probe::start(server.addr, Duration::from_millis(10), probe::line);
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        let mut endless = 0;
        for index in 0..peers {
            let seed = index as u64;
            let (pattern, script) = match index % 4 {
                // Random bytes: a newline every 256 bytes on average, so mostly short lines.
                0 | 1 => (
                    Pattern::new(seed, Kind::Random),
                    vec![Step::Send(bytes_each), Step::HalfClose, Step::AwaitEof],
                ),
                // One line that never ends: past `MAX_LINE` it is a protocol error.
                2 => {
                    endless += 1;
                    (
                        Pattern::new(seed, Kind::Lines { line_len: 0 }),
                        vec![Step::Send(bytes_each), Step::HalfClose, Step::AwaitEof],
                    )
                }
                // Random bytes, then a reset halfway.
                _ => (
                    Pattern::new(seed, Kind::Random),
                    vec![Step::Send(bytes_each / 2), Step::Reset],
                ),
            };
            swarm.add(server.addr, None, pattern, script);
        }
        swarm
            .run_until(PATIENCE, |s| {
                rss.sample(&server);
                s.ended() == peers
            })
            .or_fail("sending garbage")?;
        let log = probe.stop();
        let sent: u64 = swarm.peers().iter().map(|p| p.sent).sum();
        let echoed: u64 = swarm.peers().iter().map(|p| p.received).sum();
        report.figure("clients", peers);
        report.figure("garbage_sent", size(sent));
        report.figure("lines_echoed", size(echoed));
        let expected_end = |index: usize, peer: &Peer| match index % 4 {
            2 => matches!(
                peer.end,
                Some(End::Done | End::ServerClosed | End::ServerReset)
            ),
            _ => peer.end == Some(End::Done),
        };
        let wrong: Vec<String> = swarm
            .peers()
            .iter()
            .enumerate()
            .filter(|(i, p)| !expected_end(*i, p))
            .take(3)
            .map(|(i, p)| format!("client {i}: {:?}", p.end))
            .collect();
        report.check(wrong.is_empty(), || {
            format!("unexpected ends: {}", wrong.join(", "))
        });
        check_memory_and_probe(report, &rss, &log);
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        check_protocol_closes(report, &stats, endless, "endless lines");
        Ok(())
    })
}

/// Scenario 8, the application protocol: malformed frames at volume (random bytes, a header
/// longer than the limit, content longer than the limit, a header that is not JSON, a frame
/// cut short by EOF) among well-formed frame streams, while a well-behaved client is
/// served. Each offender gets an error frame and is closed alone; memory stays bounded.
pub fn malformed_frames(launcher: &Launcher, peers: usize, garbage_each: u64) -> Report {
    Report::run("malformed-frames", |report| {
        use mio_reactor::protocol::Header;
        const MAX_CONTENT: usize = 4096;
        let server = launcher
            .spawn(&ServerSpec::frames())
            .or_fail("starting the server")?;
        let mut rss = RssWatch::start(&server)?;
        let probe = Probe::start(server.addr, Duration::from_millis(10), probe::frame);
        let with_prefix = |header: &[u8]| {
            let mut frame = (header.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(header);
            frame
        };
        let too_long_content = Header::binary("binary/stress", 100 << 20).to_json();
        let truncated = Header::binary("binary/stress", 1000).to_json();
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        let (mut offenders, mut valid_frames, mut lengths) = (0, 0, Vec::new());
        for index in 0..peers {
            let seed = index as u64;
            let random = Pattern::new(seed, Kind::Random);
            let (pattern, len) = match index % 6 {
                0 => {
                    let (len, n) = Pattern::whole_frames(seed, MAX_CONTENT, garbage_each);
                    valid_frames += n;
                    let frames = Kind::Frames {
                        max_content: MAX_CONTENT,
                    };
                    (Pattern::new(seed, frames), len)
                }
                1 => (random, garbage_each),
                2 => (Pattern::after(vec![0xFF, 0xFF], random), garbage_each),
                3 => {
                    let prefix = with_prefix(too_long_content.as_bytes());
                    (Pattern::after(prefix, random), garbage_each)
                }
                4 => {
                    let prefix = with_prefix(b"{not json at all!!!}");
                    (Pattern::after(prefix, random), garbage_each)
                }
                _ => {
                    // Half the announced content, then EOF.
                    let prefix = with_prefix(truncated.as_bytes());
                    let len = prefix.len() as u64 + 500;
                    (Pattern::after(prefix, random), len)
                }
            };
            let client = swarm.add(
                server.addr,
                None,
                pattern,
                vec![Step::Send(len), Step::HalfClose, Step::AwaitEof],
            );
            if index % 6 != 0 {
                // Its answer is an error frame, not an echo.
                swarm.ignore_echo(client);
                offenders += 1;
            }
            lengths.push(len);
        }
        swarm
            .run_until(PATIENCE, |s| {
                rss.sample(&server);
                s.ended() == peers
            })
            .or_fail("sending frames")?;
        let log = probe.stop();
        report.figure("clients", peers);
        report.figure("offenders", offenders);
        report.figure("sent", size(swarm.peers().iter().map(|p| p.sent).sum()));
        let wrong: Vec<String> = swarm
            .peers()
            .iter()
            .zip(&lengths)
            .enumerate()
            .filter(|(i, (p, &len))| match i % 6 {
                0 => !echoed_exactly(p, len),
                // Closed by the server after its error frame (or after the whole send).
                _ => !matches!(p.end, Some(End::Done | End::ServerClosed)) || p.received == 0,
            })
            .take(3)
            .map(|(i, (p, _))| format!("client {i}: {:?}, received {}", p.end, p.received))
            .collect();
        report.check(wrong.is_empty(), || {
            format!("unexpected: {}", wrong.join(", "))
        });
        check_memory_and_probe(report, &rss, &log);
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        check_protocol_closes(report, &stats, offenders, "offenders");
        report.check(stats.get("frames") >= valid_frames, || {
            format!("{} frames echoed of {valid_frames}", stats.get("frames"))
        });
        Ok(())
    })
}

/// Scenario 9: Shutdown while thousands of connections are mid-transfer: every byte the
/// reactor accepted for sending is delivered (graceful close) or the connection is reported
/// aborted at the deadline; `run()` returns; no descriptor is left open.
///
/// All clients are mid-transfer when the request comes. One in ten never reads and never
/// closes: it must be aborted at the deadline. Twenty "late readers" send 8 MiB without
/// reading, more than the kernels' buffers hold, so that the server holds output for them
/// when the request comes; they read everything afterwards. The rest stream `chunk` bytes
/// every 20 ms and read all along.
pub fn shutdown_under_load(
    launcher: &Launcher,
    connections: usize,
    chunk: u64,
    deadline: Duration,
) -> Report {
    stop_under_load(launcher, connections, chunk, deadline, Stop::StdinClosed)
}

/// Scenario 12: the same load stopped the way `docker stop`, `systemctl stop` and
/// Kubernetes stop a service: SIGTERM. The same must hold: every byte the server accepted is
/// delivered to the clients that read it, what cannot finish is aborted at the deadline, and
/// the process exits 0 with no descriptor left open.
pub fn sigterm_under_load(
    launcher: &Launcher,
    connections: usize,
    chunk: u64,
    deadline: Duration,
) -> Report {
    stop_under_load(launcher, connections, chunk, deadline, Stop::Sigterm)
}

/// How the server under load is asked to stop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Its standard input closes.
    StdinClosed,
    /// It is sent SIGTERM.
    Sigterm,
}

fn stop_under_load(
    launcher: &Launcher,
    connections: usize,
    chunk: u64,
    deadline: Duration,
    stop: Stop,
) -> Report {
    let name = match stop {
        Stop::StdinClosed => "shutdown-under-load",
        Stop::Sigterm => "sigterm-under-load",
    };
    Report::run(name, |report| {
        let spec = ServerSpec {
            max_connections: connections + 16,
            shutdown_timeout: deadline,
            // The shutdown deadline, not a close timeout, is what ends the stragglers.
            close_timeout: deadline * 4,
            report_closes: true,
            ..ServerSpec::echo()
        };
        let mut server = launcher.spawn(&spec).or_fail("starting the server")?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        // Small socket buffers: what the kernels hold in flight per connection stays small,
        // so the bytes to deliver after the request are mostly the server's own output.
        swarm.socket_buffer = Some(64 * 1024);
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Role {
            NeverReads,
            LateReader,
            Reader,
        }
        const LATE_READERS: usize = 20;
        let kind = |index: usize| match index % 10 {
            0 => Role::NeverReads,
            1 if index / 10 < LATE_READERS => Role::LateReader,
            _ => Role::Reader,
        };
        for index in 0..connections {
            let script = match kind(index) {
                // Sends, then waits for an EOF it does not read (or reads, once told to): the
                // server's EOF or reset ends it. A late reader's burst fills the buffers
                // both ways.
                kind @ (Role::NeverReads | Role::LateReader) => vec![
                    Step::AwaitGate,
                    Step::StopReading,
                    Step::Send(if kind == Role::LateReader {
                        8 << 20
                    } else {
                        64 << 10
                    }),
                    Step::AwaitEof,
                ],
                Role::Reader => vec![
                    Step::AwaitGate,
                    Step::Stream {
                        chunk,
                        every: Duration::from_millis(20),
                    },
                ],
            };
            let pattern = Pattern::new(index as u64, Kind::Random);
            swarm.add(server.addr, None, pattern, script);
        }
        // All connected first, then all start at once.
        let connected = swarm
            .run_until(PATIENCE, |s| s.connected() + s.ended() == connections)
            .or_fail("connecting")?;
        if !connected || swarm.ended() > 0 {
            return Err(format!("{} of {connections} connected", swarm.connected()));
        }
        swarm.open_gate();
        // Mid-transfer: readers have had some echo; the others have filled every buffer
        // on the way (nothing they send moves any more), so the server holds their output.
        let mut progress: Vec<(u64, Instant)> = vec![(0, Instant::now()); connections];
        let mid_transfer = swarm
            .run_until(PATIENCE, |s| {
                let mut all = true;
                for (index, peer) in s.peers().iter().enumerate() {
                    let (sent, since) = &mut progress[index];
                    if peer.sent != *sent {
                        (*sent, *since) = (peer.sent, Instant::now());
                    }
                    all &= match kind(index) {
                        Role::Reader => peer.received > 0,
                        _ => since.elapsed() >= Duration::from_millis(300),
                    };
                }
                all
            })
            .or_fail("starting the transfers")?;
        report.check(mid_transfer && swarm.ended() == 0, || {
            format!("not all mid-transfer: {} ended early", swarm.ended())
        });
        let count = |k: Role| (0..connections).filter(|&i| kind(i) == k).count();
        report.figure("connections", connections);
        report.figure("never_reading", count(Role::NeverReads));
        report.figure("reading_after_stop", count(Role::LateReader));
        let sent: u64 = swarm.peers().iter().map(|p| p.sent).sum();
        report.figure("sent_before_stop", size(sent));

        let stop_requested = Instant::now();
        match stop {
            Stop::StdinClosed => server.request_stop(),
            Stop::Sigterm => server.signal("TERM").or_fail("sending SIGTERM")?,
        }
        for index in 0..connections {
            if kind(index) == Role::LateReader {
                swarm.set_reading(index, true);
            }
        }
        swarm
            .run_until(deadline + PATIENCE, |s| s.ended() == connections)
            .or_fail("finishing")?;
        let stats = server.finish()?;
        report.figure("stop_to_exit", secs(stop_requested.elapsed()));
        check_stats_consistent(report, &stats);
        report.figure("fds_before", stats.get("fds_before"));
        report.figure("fds_after", stats.get("fds_after"));

        // Match the server's record of each connection with the client's.
        let by_addr: std::collections::HashMap<SocketAddr, (usize, &Peer)> = swarm
            .peers()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((p.local?, (i, p))))
            .collect();
        report.check(stats.closes.len() == connections, || {
            format!(
                "{} close records for {connections} connections",
                stats.closes.len()
            )
        });
        let (mut graceful, mut aborted, mut delivered) = (0, 0, 0u64);
        let mut wrong = Vec::new();
        for close in &stats.closes {
            let Some(&(index, peer)) = by_addr.get(&close.peer) else {
                wrong.push(format!("unknown peer {}", close.peer));
                continue;
            };
            delivered += peer.received;
            match close.reason.as_str() {
                "shutdown" | "peer-closed" => {
                    graceful += 1;
                    if peer.received != close.accepted {
                        wrong.push(format!(
                            "client {index}: closed gracefully, {} B accepted, {} B delivered",
                            close.accepted, peer.received
                        ));
                    }
                }
                "shutdown-aborted" => aborted += 1,
                other => wrong.push(format!("client {index}: closed as {other}")),
            }
            if kind(index) == Role::NeverReads && close.reason != "shutdown-aborted" {
                wrong.push(format!(
                    "client {index} never read, closed as {}",
                    close.reason
                ));
            }
        }
        report.figure("graceful", graceful);
        report.figure("aborted_at_deadline", aborted);
        report.figure("delivered", size(delivered));
        report.check(wrong.is_empty(), || {
            let shown: Vec<String> = wrong.iter().take(3).cloned().collect();
            format!("{} wrong: {}", wrong.len(), shown.join(", "))
        });
        let corrupt = swarm.count(|p| matches!(p.end, Some(End::Corrupt(_) | End::Error(_))));
        report.check(corrupt == 0, || {
            format!("{corrupt} clients saw corrupt data or errors")
        });
        Ok(())
    })
}

/// Scenario 13: a panic storm. `panicking` clients each send bytes that make their handler
/// panic, among `normal` clients in the middle of their echo exchanges. Each panic must cost
/// only its own connection (a reset, counted), every normal client must get its echo byte for
/// byte, and the server's descriptors must return to the baseline.
pub fn panic_storm(launcher: &Launcher, panicking: usize, normal: usize, bytes: u64) -> Report {
    Report::run("panic-storm", |report| {
        // Normal clients send printable lines, which never contain the byte; panicking ones
        // send random bytes, which do within a few hundred bytes.
        const PANIC_BYTE: u8 = 0xFF;
        let spec = ServerSpec {
            max_connections: panicking + normal + 16,
            panic_byte: Some(PANIC_BYTE),
            ..ServerSpec::echo()
        };
        let server = launcher.spawn(&spec).or_fail("starting the server")?;
        let fds_before = server.fd_count().or_fail("counting descriptors")?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        let is_panicking = |index: usize| index % 2 == 0 && index / 2 < panicking;
        let total = panicking + normal;
        for index in 0..total {
            let (script, kind) = if is_panicking(index) {
                (
                    vec![Step::AwaitGate, Step::Send(bytes), Step::AwaitEof],
                    Kind::Random,
                )
            } else {
                let script = vec![
                    Step::Send(bytes / 2),
                    Step::AwaitEcho,
                    Step::AwaitGate,
                    Step::Send(bytes - bytes / 2),
                    Step::AwaitEcho,
                    Step::HalfClose,
                    Step::AwaitEof,
                ];
                (script, Kind::Lines { line_len: 64 })
            };
            let source = Some(source_address(index, 16));
            swarm.add(
                server.addr,
                source,
                Pattern::new(index as u64, kind),
                script,
            );
        }
        // Normal clients are mid-exchange (their first half echoed) when the storm begins.
        let ready = swarm
            .run_until(PATIENCE, |s| {
                let peers = s.peers();
                let halfway = (0..total)
                    .filter(|&i| !is_panicking(i))
                    .all(|i| peers[i].received >= bytes / 2);
                halfway && s.connected() == total
            })
            .or_fail("starting the exchanges")?;
        if !ready {
            return Err(format!(
                "{} of {total} connected and halfway",
                swarm.connected()
            ));
        }
        swarm.open_gate();
        swarm
            .run_until(PATIENCE, |s| s.ended() == total)
            .or_fail("running the clients")?;
        report.figure("panicking", panicking);
        report.figure("normal", normal);
        let peers = swarm.peers();
        let unserved: Vec<String> = (0..total)
            .filter(|&i| !is_panicking(i) && !echoed_exactly(&peers[i], bytes))
            .map(|i| {
                format!(
                    "client {i}: {:?}, {} B echoed",
                    peers[i].end, peers[i].received
                )
            })
            .collect();
        report.figure("normal_served", normal - unserved.len());
        report.check(unserved.is_empty(), || {
            let shown: Vec<&str> = unserved.iter().take(3).map(String::as_str).collect();
            format!(
                "{} normal clients not served: {}",
                unserved.len(),
                shown.join("; ")
            )
        });
        let reset = (0..total)
            .filter(|&i| is_panicking(i) && peers[i].end == Some(End::ServerReset))
            .count();
        report.figure("panicking_reset", reset);
        report.check(reset == panicking, || {
            format!("{reset} of {panicking} panicking clients saw a reset")
        });
        let fds_after = await_fds(&mut swarm, &server, fds_before)?;
        report.figure("server_fds_before", fds_before);
        report.figure("server_fds_after", fds_after);
        report.check(fds_after == fds_before, || {
            format!("server descriptors: {fds_before} before the storm, {fds_after} after")
        });
        let stats = server.finish()?;
        check_stats_consistent(report, &stats);
        let (panics, panicked) = (stats.get("handler_panics"), stats.get("handler_panicked"));
        report.figure("handler_panics", panics);
        report.check(
            panics == panicking as u64 && panicked == panicking as u64,
            || {
                format!(
                    "{panics} panics caught, {panicked} closes for {panicking} panicking clients"
                )
            },
        );
        Ok(())
    })
}
