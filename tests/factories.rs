//! Factories as a new user writes them: plain closures with no type annotation, for every
//! way of listening, and a type of one's own that implements `Factory`.
//!
//! Most of this file is checked by the compiler: before the listen methods bounded their
//! factory by `FnMut(&PeerAddr)` itself, `|_| Some(Echo)` failed to compile with
//! "implementation of `FnMut` is not general enough".

mod util;

use std::io::Read;

use mio_reactor::{
    Config, Endpoint, Factory, Handler, ListenOptions, PeerAddr, ReactorThreads, Spread,
};
use util::{client, loopback, round_trip, Echo, Server, WAIT};

#[test]
fn a_closure_that_ignores_the_peer_is_a_factory() {
    let server = Server::start(Config::default(), |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), |_| Some(Echo))
    });
    let mut stream = client(server.addr);
    assert_eq!(round_trip(&mut stream, b"plain"), b"plain");
    drop(stream);
    assert_eq!(server.stop().accepted, 1);
}

#[test]
fn a_closure_that_reads_the_peer_needs_no_annotation() {
    let server = Server::start(Config::default(), |reactor| {
        // Refuses loopback peers, which is every peer a test has.
        reactor.listen(loopback(), ListenOptions::default(), |peer| {
            match peer.tcp() {
                Some(addr) if addr.ip().is_loopback() => None,
                _ => Some(Echo),
            }
        })
    });
    let mut stream = client(server.addr);
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "refused at once");
    drop(stream);
    assert_eq!(server.stop().refused, 1);
}

#[test]
fn reuseport_and_unix_listeners_take_plain_closures() {
    let path =
        std::env::temp_dir().join(format!("mio-reactor-factories-{}.sock", std::process::id()));
    let unix_path = path.clone();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(Endpoint::Unix(unix_path), ListenOptions::default(), |_| {
            Some(Echo)
        })?;
        reactor.listen(
            loopback(),
            ListenOptions::default().reuse_port(true),
            |_| Some(Echo),
        )
    });
    let mut stream = client(server.addr);
    assert_eq!(round_trip(&mut stream, b"reuseport"), b"reuseport");
    let mut unix = std::os::unix::net::UnixStream::connect(&path).unwrap();
    unix.set_read_timeout(Some(WAIT)).unwrap();
    std::io::Write::write_all(&mut unix, b"unix").unwrap();
    let mut echo = [0; 4];
    unix.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"unix");
    drop((stream, unix));
    assert_eq!(server.stop().accepted, 2);
}

#[test]
fn reactor_threads_take_a_plain_closure_per_thread() {
    let threads = ReactorThreads::serve(
        2,
        Config::default(),
        loopback(),
        ListenOptions::default(),
        Spread::ReusePort,
        |_reactor, _thread| |_| Some(Echo),
    )
    .unwrap();
    let addr = threads.local_addr().unwrap();
    let mut stream = client(addr);
    assert_eq!(round_trip(&mut stream, b"threads"), b"threads");
    drop(stream);
    threads.shutdown_handle().shutdown();
    let stats = threads.join().unwrap();
    assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 1);
}

/// A factory written as a type, as the `Factory` trait allows.
struct EchoFactory {
    made: u32,
}

impl Factory for EchoFactory {
    fn new_handler(&mut self, _: &PeerAddr) -> Option<Box<dyn Handler>> {
        self.made += 1;
        Some(Box::new(Echo))
    }
}

#[test]
fn a_type_implementing_factory_is_passed_through_a_closure() {
    let server = Server::start(Config::default(), |reactor| {
        let mut factory = EchoFactory { made: 0 };
        reactor.listen(loopback(), ListenOptions::default(), move |peer| {
            factory.new_handler(peer)
        })
    });
    let mut stream = client(server.addr);
    assert_eq!(round_trip(&mut stream, b"typed"), b"typed");
    drop(stream);
    assert_eq!(server.stop().accepted, 1);
}
