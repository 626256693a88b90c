//! The TLS scenarios (the `tls` feature): hostile TLS peers against a TLS echo server, each
//! of which must cost only its own connection, with the close reason that names what it did,
//! while a well-behaved TLS client (the probe) keeps getting its round trips back byte for
//! byte; afterwards the server's descriptors are back to the baseline and its memory growth
//! is bounded.
//!
//! The certificates are made in this process (`support/pki.rs`, with rcgen) and handed to
//! the server child in its spec (`TlsSpec`). The offenders that need no TLS of their own
//! (bytes that are not a ClientHello, a handshake that stops) are swarm clients; the ones
//! that need a real session are blocking rustls clients, or a [`TlsPeer`] for the one that
//! never reads.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use mio_reactor::rustls::{ClientConnection, RootCertStore};

use super::child::{ChildServer, Launcher, ServerReport};
use super::pattern::{Kind, Pattern};
use super::pki::Pki;
use super::probe::{self, Probe, TlsStream};
use super::report::{kib_as_mib, millis, secs, size, OrFail, Report};
use super::scenarios::{
    await_fds, check_memory_and_probe, check_rss_bounded_while_stalled, check_stats_consistent,
    first_failures, RssWatch, StallWatch, PATIENCE,
};
use super::server::{ServerSpec, TlsSpec};
use super::swarm::{End, Peer, Step, Swarm};
use super::tls::{client_config_from, ClientTls};
use super::tls_peer::{TlsEnd, TlsPeer};

/// How often the probe does a round trip.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// A server's certificate (for `localhost`) and what its clients need to trust it.
struct Identity {
    pki: Pki,
}

impl Identity {
    fn new() -> Result<Identity, String> {
        let pki = Pki::issue("mio-reactor stress CA", &["localhost", "127.0.0.1"])
            .map_err(|err| format!("making a certificate: {err}"))?;
        Ok(Identity { pki })
    }

    /// The server's side, for its child.
    fn spec(&self) -> TlsSpec {
        TlsSpec {
            cert: self.pki.leaf.clone(),
            key: self.pki.leaf_key.clone(),
            client_ca: None,
        }
    }

    /// A client config trusting this CA, presenting `certificate`'s leaf if given.
    fn client(&self, certificate: Option<&Pki>) -> Result<ClientTls, String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.pki.ca.clone()))
            .map_err(|err| format!("trusting the CA: {err}"))?;
        let identity = certificate.map(|pki| {
            let key = PrivateKeyDer::Pkcs8(pki.leaf_key.clone().into());
            (vec![CertificateDer::from(pki.leaf.clone())], key)
        });
        client_config_from(roots, identity).or_fail("building the client config")
    }
}

/// A running TLS server with its baseline figures and the probe that watches it.
struct Watched {
    server: ChildServer,
    fds_before: usize,
    rss: RssWatch,
    probe: Probe,
}

impl Watched {
    /// Starts `spec` (a TLS echo server reporting each close) and a probe using `probe_tls`,
    /// and waits until the probe has been served once (its handshake done).
    fn start(launcher: &Launcher, spec: ServerSpec, probe_tls: ClientTls) -> Result<Self, String> {
        let spec = ServerSpec {
            report_closes: true,
            ..spec
        };
        let server = launcher.spawn(&spec).or_fail("starting the server")?;
        // The baselines come before the probe's connection.
        let fds_before = server.fd_count().or_fail("counting descriptors")?;
        let rss = RssWatch::start(&server)?;
        let addr = server.addr;
        let probe = Probe::start_over(
            move || probe::connect_tls(addr, probe_tls),
            PROBE_EVERY,
            probe::line,
        );
        let watched = Watched {
            server,
            fds_before,
            rss,
            probe,
        };
        let mut idle = Swarm::new().or_fail("creating a poll loop")?;
        watched.await_probe(&mut idle, 1)?;
        Ok(watched)
    }

    /// Runs `swarm` until the probe has been served `round_trips` times in all (or it failed:
    /// its log says why).
    fn await_probe(&self, swarm: &mut Swarm, round_trips: u64) -> Result<(), String> {
        swarm
            .run_until(PATIENCE, |_| {
                self.probe.served() >= round_trips || self.probe.is_finished()
            })
            .or_fail("waiting for the probe")?;
        Ok(())
    }

    /// Stops the probe, waits for the server's descriptors to return to the baseline, stops
    /// the server, and checks what every TLS scenario must hold: memory bounded, the probe
    /// served byte-exact throughout, exactly `offenders` connections closed as `reason`, the
    /// rest (`graceful`, the probe included) closed gracefully by a close_notify, the
    /// server's counts consistent.
    fn finish(
        mut self,
        report: &mut Report,
        swarm: &mut Swarm,
        (offenders, reason): (usize, &str),
        graceful: usize,
    ) -> Result<ServerReport, String> {
        // The probe is served after the offenders too, not only before and meanwhile.
        self.await_probe(swarm, self.probe.served() + 2)?;
        let log = self.probe.stop();
        let fds_after = await_fds(swarm, &self.server, self.fds_before)?;
        let rss_after = self.rss.now(&self.server)?;
        report.figure("server_fds_before", self.fds_before);
        report.figure("server_fds_after", fds_after);
        report.check(fds_after == self.fds_before, || {
            format!(
                "server descriptors: {} before, {fds_after} after",
                self.fds_before
            )
        });
        report.figure("rss_before", kib_as_mib(self.rss.before as i64));
        report.figure(
            "rss_growth_after",
            kib_as_mib(rss_after as i64 - self.rss.before as i64),
        );
        check_memory_and_probe(report, &self.rss, &log);
        report.figure("probe_max", millis(log.quantile(1.0)));
        let stats = self.server.finish()?;
        check_stats_consistent(report, &stats);
        let count = |token: &str| stats.closes.iter().filter(|c| c.reason == token).count();
        let closed_as = count(reason);
        if offenders > 0 {
            report.figure("closed_as", format!("{reason}:{closed_as}"));
        }
        report.check(closed_as == offenders, || {
            format!("{closed_as} connections closed as {reason} for {offenders} offenders")
        });
        let others = stats.closes.len() - closed_as;
        report.check(
            count("peer-closed") == graceful && others == graceful,
            || {
                let mut others = std::collections::BTreeMap::new();
                for close in stats.closes.iter().filter(|c| c.reason != reason) {
                    *others.entry(close.reason.as_str()).or_insert(0) += 1;
                }
                format!("the others closed as {others:?}: {graceful} peer-closed expected")
            },
        );
        report.check(stats.get("tls") == offenders as u64, || {
            format!("{} TLS closes for {offenders} offenders", stats.get("tls"))
        });
        Ok(stats)
    }
}

/// Swarm clients ended by the server, as an offender is: its EOF (after the alert) or a
/// reset (bytes it sent were left unread).
fn ended_by_server(peer: &Peer) -> bool {
    matches!(
        peer.end,
        Some(End::Done | End::ServerClosed | End::ServerReset)
    )
}

/// Bytes that are not a ClientHello: plaintext HTTP requests (every other client) and random
/// bytes. Each gets rustls's alert and a `CloseReason::Tls` close.
pub fn tls_garbage(launcher: &Launcher, clients: usize, random_each: u64) -> Report {
    Report::run("tls-garbage", |report| {
        let identity = Identity::new()?;
        let spec = ServerSpec {
            max_connections: clients + 16,
            ..ServerSpec::tls_echo(identity.spec())
        };
        let mut watched = Watched::start(launcher, spec, identity.client(None)?)?;
        const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        for index in 0..clients {
            let random = Pattern::new(index as u64, Kind::Random);
            let (pattern, len) = match index % 2 {
                0 => (
                    Pattern::after(REQUEST.to_vec(), random),
                    REQUEST.len() as u64,
                ),
                _ => (random, random_each),
            };
            let script = vec![Step::Send(len), Step::AwaitEof];
            let client = swarm.add(watched.server.addr, None, pattern, script);
            // What comes back is an alert, not an echo.
            swarm.ignore_echo(client);
        }
        report.figure("clients", clients);
        report.figure("http_requests", clients.div_ceil(2));
        report.figure("random_each", size(random_each));
        swarm
            .run_until(PATIENCE, |s| {
                watched.rss.sample(&watched.server);
                s.ended() == clients
            })
            .or_fail("sending garbage")?;
        if let Some(why) = first_failures(swarm.peers(), ended_by_server) {
            report.check(false, || format!("not closed by the server: {why}"));
        }
        // The plaintext requests are read whole before the server closes: each one's
        // answer is the alert rustls prepared.
        let alerted = (swarm.peers().iter().step_by(2))
            .filter(|p| p.received > 0)
            .count();
        report.figure("http_alerted", alerted);
        report.check(alerted == clients.div_ceil(2), || {
            format!("{alerted} HTTP requests got an alert")
        });
        watched.finish(report, &mut swarm, (clients, "tls-error"), 1)?;
        Ok(())
    })
}

/// The first flight of a real client: a ClientHello for `localhost`.
fn client_hello(config: ClientTls) -> Result<Vec<u8>, String> {
    let name = ServerName::try_from("localhost").map_err(|err| err.to_string())?;
    let mut session = ClientConnection::new(config, name).map_err(|err| err.to_string())?;
    let mut hello = Vec::new();
    while session.wants_write() {
        session
            .write_tls(&mut hello)
            .or_fail("writing the ClientHello")?;
    }
    Ok(hello)
}

/// Handshakes that stop: a third of the clients send a whole ClientHello and then nothing
/// (the server's flight is read and ignored), a third half of one, a third nothing at all.
/// Each is closed at the handshake deadline (`Config::tls_handshake_timeout`), which rustls
/// has none of: without it they would hold their slots for ever.
pub fn tls_stalled_handshake(launcher: &Launcher, clients: usize, deadline: Duration) -> Report {
    Report::run("tls-stalled-handshake", |report| {
        let identity = Identity::new()?;
        let spec = ServerSpec {
            max_connections: clients + 16,
            tls_handshake_timeout: deadline,
            ..ServerSpec::tls_echo(identity.spec())
        };
        let hello = client_hello(identity.client(None)?)?;
        let mut watched = Watched::start(launcher, spec, identity.client(None)?)?;
        let mut swarm = Swarm::new().or_fail("creating the clients")?;
        for index in 0..clients {
            let sent = match index % 3 {
                0 => hello.len(),
                1 => hello.len() / 2,
                _ => 0,
            };
            let pattern = Pattern::after(hello[..sent].to_vec(), Pattern::new(0, Kind::Random));
            let script = match sent {
                0 => vec![Step::AwaitEof],
                _ => vec![Step::Send(sent as u64), Step::AwaitEof],
            };
            let client = swarm.add(watched.server.addr, None, pattern, script);
            swarm.ignore_echo(client);
        }
        report.figure("clients", clients);
        report.figure("hello", size(hello.len() as u64));
        report.figure("deadline", secs(deadline));
        let started = Instant::now();
        swarm
            .run_until(deadline + PATIENCE, |s| {
                watched.rss.sample(&watched.server);
                s.ended() == clients
            })
            .or_fail("stalling")?;
        if let Some(why) = first_failures(swarm.peers(), |p| p.connected && ended_by_server(p)) {
            report.check(false, || format!("not closed by the server: {why}"));
        }
        let ends = swarm.peers().iter().filter_map(|p| p.ended_at);
        let after = |at: Instant| secs(at.saturating_duration_since(started));
        if let (Some(first), Some(last)) = (ends.clone().min(), ends.max()) {
            report.figure("first_closed_after", after(first));
            report.figure("last_closed_after", after(last));
            // Each deadline runs from its accept, after `started`: a close before it would
            // be a handshake cut short, not one that ran out of time.
            report.check(first >= started + deadline, || {
                format!(
                    "a client was closed {} after the start, before the deadline",
                    after(first)
                )
            });
        }
        watched.finish(report, &mut swarm, (clients, "tls-handshake-timeout"), 1)?;
        Ok(())
    })
}

/// A TLS client that sends `bytes` without reading: the server stops reading (the output it
/// holds, plaintext and records inside the session included, passes the high water mark),
/// so its memory stays put however much the client pushes; then the client reads, and
/// everything it sent comes back intact before a close_notify from each side.
pub fn tls_never_reads(launcher: &Launcher, bytes: u64, watch: Duration) -> Report {
    Report::run("tls-never-reads", |report| {
        let identity = Identity::new()?;
        let probe_tls = identity.client(None)?;
        let mut watched =
            Watched::start(launcher, ServerSpec::tls_echo(identity.spec()), probe_tls)?;
        let pattern = Pattern::new(7, Kind::Random);
        let mut peer =
            TlsPeer::connect(watched.server.addr, identity.client(None)?, pattern, bytes)
                .or_fail("connecting")?;
        peer.set_reading(false);
        report.figure("bytes", size(bytes));
        let (server, rss) = (&watched.server, &mut watched.rss);
        let mut stall = StallWatch::new();
        let stalled = peer
            .run_until(PATIENCE, |p| {
                rss.sample(server);
                stall.stalled(p.sent)
            })
            .or_fail("sending")?;
        if !stalled || peer.end.is_some() || peer.sent >= bytes {
            return Err(format!(
                "the client never stalled ({} of {bytes} B sent, {:?})",
                peer.sent, peer.end
            ));
        }
        report.figure("stalled_after", size(peer.sent));
        // The client keeps trying to send while we watch the server's memory.
        peer.run_until(watch, |_| {
            rss.sample(server);
            false
        })
        .or_fail("watching")?;
        let growth_stalled = rss.growth_kib();
        report.figure("rss_growth_stalled", kib_as_mib(growth_stalled));

        let started = Instant::now();
        peer.set_reading(true);
        peer.close();
        peer.run_until(PATIENCE * 4, |p| {
            rss.sample(server);
            p.end.is_some()
        })
        .or_fail("reading the echo")?;
        report.figure("read_back_in", secs(started.elapsed()));
        report.check(
            peer.end == Some(TlsEnd::CloseNotify) && peer.sent == bytes && peer.received == bytes,
            || {
                format!(
                    "{:?}, sent {}, echoed {}",
                    peer.end, peer.sent, peer.received
                )
            },
        );
        check_rss_bounded_while_stalled(report, rss, growth_stalled);
        drop(peer);
        let mut idle = Swarm::new().or_fail("creating a poll loop")?;
        // No offender: the never-reader is no fault, and ends with a close_notify too.
        let stats = watched.finish(report, &mut idle, (0, "tls-error"), 2)?;
        report.check(stats.get("read_pauses") >= 1, || {
            "the server never paused reading".to_string()
        });
        Ok(())
    })
}

/// Opens `clients` TLS sessions to `server` with `config`, all held at once; a handshake
/// that fails is `Err`, with the client's number.
fn open_sessions(
    server: &ChildServer,
    config: &ClientTls,
    clients: usize,
    rss: &mut RssWatch,
) -> Result<Vec<TlsStream>, String> {
    (0..clients)
        .map(|index| {
            rss.sample(server);
            probe::connect_tls(server.addr, config.clone())
                .or_fail(&format!("connecting client {index}"))
        })
        .collect()
}

/// TLS clients that send some data, read its echo, then end the TCP stream without a
/// close_notify (a FIN only): the server must report each as `CloseReason::TlsTruncated`,
/// never as a clean EOF, since an attacker in between could have cut the stream there.
///
/// In two rounds of `clients / 2` held at once: the memory the first round leaves with the
/// allocator (freed, not returned to the system) must serve the second, which then adds
/// less than half as much (about a fifth at full size, fragmentation): a leak per
/// connection would add as much again.
pub fn tls_truncation(launcher: &Launcher, clients: usize, bytes_each: u64) -> Report {
    Report::run("tls-truncation", |report| {
        let identity = Identity::new()?;
        let spec = ServerSpec {
            max_connections: clients + 16,
            ..ServerSpec::tls_echo(identity.spec())
        };
        let config = identity.client(None)?;
        let mut watched = Watched::start(launcher, spec, config.clone())?;
        let mut idle = Swarm::new().or_fail("creating a poll loop")?;
        let round = clients / 2;
        report.figure("clients", 2 * round);
        report.figure("bytes_each", size(bytes_each));
        let mut after_round = Vec::new();
        for first in [0, round] {
            let wrong =
                truncate_after_echo(&mut watched, &config, first..first + round, bytes_each)?;
            report.check(wrong.is_empty(), || {
                format!("{} echoes wrong: {}", wrong.len(), wrong[0])
            });
            // All closed (the probe's connection is still open).
            await_fds(&mut idle, &watched.server, watched.fds_before + 1)?;
            after_round.push(watched.rss.now(&watched.server)? as i64);
        }
        let kept = after_round[0] - watched.rss.before as i64;
        let added = after_round[1] - after_round[0];
        report.figure("rss_kept_after_round_1", kib_as_mib(kept));
        report.figure("rss_added_by_round_2", kib_as_mib(added));
        report.check(added <= (kept / 2).max(1024), || {
            format!("round 1 left {kept} KiB, round 2 added {added} KiB: a leak per connection")
        });
        watched.finish(report, &mut idle, (2 * round, "tls-truncated"), 1)?;
        Ok(())
    })
}

/// Opens the sessions numbered `clients` at once, has each echo `bytes_each` bytes, then
/// sends each one's FIN without a close_notify and reads until the server closes. Returns
/// the echoes that went wrong.
fn truncate_after_echo(
    watched: &mut Watched,
    config: &ClientTls,
    clients: std::ops::Range<usize>,
    bytes_each: u64,
) -> Result<Vec<String>, String> {
    let mut sessions = open_sessions(&watched.server, config, clients.len(), &mut watched.rss)?;
    let exchange = |index: usize, session: &mut TlsStream| -> io::Result<bool> {
        let mut data = vec![0; bytes_each as usize];
        Pattern::new(index as u64, Kind::Random).fill(&mut data);
        session.write_all(&data)?;
        let mut echo = vec![0; data.len()];
        session.read_exact(&mut echo)?;
        Ok(echo == data)
    };
    let mut wrong = Vec::new();
    for (index, session) in clients.zip(&mut sessions) {
        watched.rss.sample(&watched.server);
        match exchange(index, session) {
            Ok(true) => {}
            Ok(false) => wrong.push(format!("client {index}: wrong echo")),
            Err(err) => wrong.push(format!("client {index}: {err}")),
        }
    }
    // The FIN without a close_notify, then whatever the server does about it.
    for session in &mut sessions {
        let _ = session.sock.shutdown(Shutdown::Write);
    }
    for session in &mut sessions {
        let _ = session.sock.read_to_end(&mut Vec::new());
    }
    Ok(wrong)
}

/// Clients presenting a certificate from a CA the server does not trust, to a server that
/// requires client certificates: each handshake fails with rustls's alert and a
/// `CloseReason::Tls` close. The probe presents one that verifies.
pub fn tls_bad_client_cert(launcher: &Launcher, clients: usize) -> Report {
    Report::run("tls-bad-client-cert", |report| {
        let identity = Identity::new()?;
        let issue = |ca: &str| {
            Pki::issue(ca, &["client.example"])
                .map_err(|err| format!("making a certificate: {err}"))
        };
        // The same name, signed by another CA.
        let (trusted, stranger) = (issue("trusted clients CA")?, issue("stranger CA")?);
        let spec = ServerSpec {
            max_connections: clients + 16,
            ..ServerSpec::tls_echo(TlsSpec {
                client_ca: Some(trusted.ca.clone()),
                ..identity.spec()
            })
        };
        let mut watched = Watched::start(launcher, spec, identity.client(Some(&trusted))?)?;
        let config = identity.client(Some(&stranger))?;
        let mut sessions = open_sessions(&watched.server, &config, clients, &mut watched.rss)?;
        // TLS 1.3: the client finishes its side of the handshake first, and learns of the
        // refusal on its next read.
        let mut admitted = 0;
        for session in &mut sessions {
            watched.rss.sample(&watched.server);
            let _ = session.write_all(b"let me in");
            if session.read(&mut [0; 16]).is_ok() {
                admitted += 1;
            }
        }
        drop(sessions);
        report.figure("clients", clients);
        report.figure("admitted", admitted);
        report.check(admitted == 0, || {
            format!("{admitted} clients with a certificate that does not verify were served")
        });
        let mut idle = Swarm::new().or_fail("creating a poll loop")?;
        watched.finish(report, &mut idle, (clients, "tls-error"), 1)?;
        Ok(())
    })
}
