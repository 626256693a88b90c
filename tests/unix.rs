//! Unix-domain stream sockets are served by exactly the same handlers as TCP.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use mio_reactor::{Config, Endpoint, ListenOptions, PeerAddr, Reactor};
use util::{loopback, random_bytes, Echo, Server, WAIT};

/// A socket path unique to this test, in a fresh temporary directory.
fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mio-reactor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("echo.sock")
}

fn unix_client(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// An echo server listening on `path` (and on TCP, which `Server` needs for its address).
fn unix_echo(path: &Path) -> Server {
    let path = path.to_path_buf();
    Server::start(Config::default(), move |reactor| {
        reactor.listen(Endpoint::Unix(path), ListenOptions::default(), |_| {
            Some(Echo)
        })?;
        reactor.listen(loopback(), ListenOptions::default(), |_| Some(Echo))
    })
}

#[test]
fn echoes_many_unix_connections_byte_exact_in_random_fragments() {
    let path = socket_path("fragments");
    let server = unix_echo(&path);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<_> = (0..25u64)
                    .map(|c| (unix_client(&path), random_bytes(t * 100 + c, 20_000)))
                    .collect();
                let mut cuts = random_bytes(t, 10_000).into_iter().cycle();
                let mut offsets = vec![0; conns.len()];
                while conns.iter().zip(&offsets).any(|((_, d), &o)| o < d.len()) {
                    for ((stream, data), offset) in conns.iter_mut().zip(offsets.iter_mut()) {
                        let end = (*offset + 1 + cuts.next().unwrap() as usize * 8).min(data.len());
                        stream.write_all(&data[*offset..end]).unwrap();
                        *offset = end;
                    }
                }
                for (stream, data) in conns.iter_mut() {
                    let mut echo = vec![0; data.len()];
                    stream.read_exact(&mut echo).unwrap();
                    assert!(echo == *data, "echo differs");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = server.stop();
    assert_eq!(stats.accepted, 100);
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[test]
fn a_unix_peer_half_closing_gets_everything_back() {
    let path = socket_path("half-close");
    let server = unix_echo(&path);
    let mut stream = unix_client(&path);
    let data = random_bytes(7, 3_000_000);
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echo = Vec::new();
    stream.read_to_end(&mut echo).unwrap();
    sender.join().unwrap();
    assert!(echo == data);
    drop(stream);
    server.stop();
}

#[test]
fn a_stale_socket_file_left_by_a_crashed_server_is_replaced() {
    let path = socket_path("stale");
    // A server that "crashed": its socket file exists, but nobody listens on it.
    drop(StdUnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = unix_echo(&path);
    let mut stream = unix_client(&path);
    stream.write_all(b"alive").unwrap();
    let mut reply = [0; 5];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"alive");
    drop(stream);
    server.stop();
}

#[test]
fn a_live_servers_socket_is_never_stolen() {
    let path = socket_path("live");
    let live = StdUnixListener::bind(&path).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(
            Endpoint::Unix(path.clone()),
            ListenOptions::default(),
            |_| Some(Echo),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // The live server still owns its socket.
    let _client = UnixStream::connect(&path).unwrap();
    let (_, _) = live.accept().unwrap();
}

#[test]
fn a_regular_file_at_the_path_is_never_removed() {
    let path = socket_path("regular-file");
    std::fs::write(&path, b"someone's data").unwrap();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(
            Endpoint::Unix(path.clone()),
            ListenOptions::default(),
            |_: &_| Some(Echo),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"someone's data");
}

#[test]
fn handlers_see_a_unix_peer_address() {
    let path = socket_path("peer");
    let (tx, rx) = mpsc::channel();
    let listen_path = path.clone();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            Endpoint::Unix(listen_path),
            ListenOptions::default(),
            move |peer: &PeerAddr| {
                tx.send(peer.clone()).unwrap();
                Some(Echo)
            },
        )?;
        reactor.listen(loopback(), ListenOptions::default(), |_| Some(Echo))
    });
    let stream = unix_client(&path);
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        PeerAddr::Unix(None),
        "an unnamed client"
    );
    drop(stream);
    server.stop();
}
