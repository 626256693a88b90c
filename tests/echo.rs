//! Echo correctness: every byte comes back, in order, over many connections, in any
//! fragmentation, and across a half-close.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;

use mio_reactor::Config;
use util::{client, fnv1a, random_bytes, read_to_end, Server};

const SIXTEEN_MIB: usize = 16 * 1024 * 1024;

#[test]
fn echoes_hundreds_of_concurrent_connections_byte_exact_in_random_fragments() {
    let server = Server::echo(Config::default());
    let addr = server.addr;
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            std::thread::spawn(move || {
                // 50 connections per thread, all open at once.
                let mut conns: Vec<_> = (0..50u64)
                    .map(|c| {
                        let seed = t * 1000 + c;
                        let data = random_bytes(seed, 8_000 + (seed as usize * 97) % 24_000);
                        (client(addr), data, 0usize)
                    })
                    .collect();
                // Write every connection's data in random-sized pieces, interleaved.
                let mut cuts = random_bytes(t, 1_000_000).into_iter().cycle();
                while conns.iter().any(|(_, data, sent)| *sent < data.len()) {
                    for (stream, data, sent) in conns.iter_mut() {
                        let piece = 1 + (cuts.next().unwrap() as usize * 16) % 4096;
                        let end = (*sent + piece).min(data.len());
                        stream.write_all(&data[*sent..end]).unwrap();
                        *sent = end;
                    }
                }
                for (stream, data, _) in conns.iter_mut() {
                    let mut echo = vec![0; data.len()];
                    stream.read_exact(&mut echo).unwrap();
                    assert!(echo == *data, "echo differs from what was sent");
                }
                conns.len()
            })
        })
        .collect();
    let served: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, 300);
    let stats = server.stop();
    assert_eq!(stats.accepted, 300);
    assert_eq!(stats.bytes_in, stats.bytes_out);
}

/// Sends `data` from one thread while reading the echo on another: neither side may wait for
/// the other, or 16 MiB would deadlock on full socket buffers.
fn echo_through(addr: std::net::SocketAddr, data: Vec<u8>, half_close: bool) -> Vec<u8> {
    let mut stream = client(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for chunk in data.chunks(100_003) {
            writer.write_all(chunk).unwrap();
        }
        if half_close {
            writer.shutdown(Shutdown::Write).unwrap();
        }
    });
    let echo = if half_close {
        read_to_end(&mut stream)
    } else {
        let mut echo = vec![0; SIXTEEN_MIB];
        stream.read_exact(&mut echo).unwrap();
        echo
    };
    sender.join().unwrap();
    echo
}

#[test]
fn sixteen_mib_comes_back_intact() {
    let server = Server::echo(Config::default());
    let data = random_bytes(16, SIXTEEN_MIB);
    let expected = fnv1a(&data);
    let echo = echo_through(server.addr, data, false);
    assert_eq!(echo.len(), SIXTEEN_MIB);
    assert_eq!(fnv1a(&echo), expected);
    server.stop();
}

#[test]
fn a_client_that_half_closes_still_gets_all_sixteen_mib_back_then_eof() {
    let server = Server::echo(Config::default());
    let data = random_bytes(17, SIXTEEN_MIB);
    let expected = fnv1a(&data);
    let echo = echo_through(server.addr, data, true);
    assert_eq!(echo.len(), SIXTEEN_MIB, "every byte, then EOF");
    assert_eq!(fnv1a(&echo), expected);
    let stats = server.stop();
    assert_eq!(
        stats.closed.peer_closed, 1,
        "closed because the peer finished"
    );
}

#[test]
fn a_small_message_then_half_close_is_echoed_and_closed() {
    let server = Server::echo(Config::default());
    let mut stream = client(server.addr);
    stream.write_all(b"last words").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut stream), b"last words");
    server.stop();
}
