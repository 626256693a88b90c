//! Segmentation offload on send (UDP GSO): queued datagrams to one destination leave as one
//! message that the kernel splits, and a receiver without GRO (a plain std socket) still
//! gets every datagram as its own, exact, in its destination's order; with batches off, or
//! for a destination the kernel refuses, the datagrams go (or are counted) one by one.

mod util;

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio_reactor::{Config, DatagramContext, DatagramHandler, Reactor, Stats};
use nix::sys::socket::SockaddrStorage;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use util::{init_logging, random_bytes, turn_until, WAIT};

/// Queues its datagrams as soon as it opens: they wait for the socket's first writable
/// edge, then leave together.
struct Script {
    datagrams: Vec<(Vec<u8>, SocketAddr)>,
}

impl DatagramHandler for Script {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        for (data, to) in &self.datagrams {
            ctx.send_to(data, *to).unwrap();
        }
    }

    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
}

/// Sends `datagrams` from a reactor with `config` until each has gone or been refused.
fn send(config: Config, datagrams: &[(Vec<u8>, SocketAddr)]) -> Stats {
    init_logging();
    let mut reactor = Reactor::with_config(config.max_queued_datagrams(1024)).unwrap();
    let script = Script {
        datagrams: datagrams.to_vec(),
    };
    reactor.bind_udp("udp:127.0.0.1:0", script).unwrap();
    let total = datagrams.len() as u64;
    turn_until(&mut reactor, |r| {
        r.stats().datagrams_out + r.stats().datagram_send_errors == total
    });
    reactor.stats().clone()
}

fn receiver() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// The next `count` datagrams `socket` receives, each whole.
fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0; 65_536];
    (0..count)
        .map(|_| {
            let (len, _) = socket.recv_from(&mut buf).expect("a datagram in time");
            buf[..len].to_vec()
        })
        .collect()
}

/// Nothing more arrives on `socket` within a short while.
fn assert_nothing_more(socket: &UdpSocket) {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let extra = socket.recv_from(&mut [0; 65_536]);
    assert!(extra.is_err(), "an extra datagram: {extra:?}");
}

/// `lens` datagrams of random bytes, all to `to`.
fn datagrams_to(to: SocketAddr, lens: &[usize]) -> Vec<(Vec<u8>, SocketAddr)> {
    lens.iter()
        .enumerate()
        .map(|(seed, &len)| (random_bytes(seed as u64 + 1, len), to))
        .collect()
}

/// Sends datagrams of `lens` to one plain receiver and checks it got exactly them, in order.
fn assert_arrive_as_sent(lens: &[usize]) -> Stats {
    let (socket, addr) = receiver();
    let datagrams = datagrams_to(addr, lens);
    let stats = send(Config::default(), &datagrams);
    let sent: Vec<Vec<u8>> = datagrams.into_iter().map(|(data, _)| data).collect();
    assert_eq!(receive(&socket, sent.len()), sent);
    assert_nothing_more(&socket);
    assert_eq!(stats.datagrams_out, lens.len() as u64);
    assert_eq!(stats.bytes_out, lens.iter().sum::<usize>() as u64);
    stats
}

#[test]
fn equal_datagrams_to_one_destination_arrive_each_whole_and_in_order() {
    let stats = assert_arrive_as_sent(&[100; 10]);
    assert_eq!(stats.datagram_send_calls, 1);
}

#[test]
fn a_shorter_last_datagram_arrives_as_sent() {
    assert_arrive_as_sent(&[100, 100, 100, 37]);
}

#[test]
fn a_longer_datagram_after_shorter_ones_arrives_whole() {
    assert_arrive_as_sent(&[50, 50, 100, 100, 50, 200]);
}

#[test]
fn more_than_64_datagrams_to_one_destination_arrive_each_whole() {
    assert_arrive_as_sent(&[20; 150]);
}

#[test]
fn datagrams_beyond_one_ip_datagram_s_payload_arrive_each_whole() {
    // 3 x 30,000 bytes exceed the 65,507 of one IPv4 datagram: two messages.
    assert_arrive_as_sent(&[30_000, 30_000, 30_000, 5]);
}

#[test]
fn empty_datagrams_among_others_arrive_each_as_its_own() {
    assert_arrive_as_sent(&[10, 10, 0, 10, 0, 0, 10]);
}

#[test]
fn interleaved_destinations_each_receive_theirs_in_order() {
    let receivers: Vec<(UdpSocket, SocketAddr)> = (0..3).map(|_| receiver()).collect();
    // Round robin over the three, lengths varying per destination.
    let datagrams: Vec<(Vec<u8>, SocketAddr)> = (0..45)
        .map(|i| {
            let len = [64, 64, 64, 20][(i / 3) % 4] + i % 3;
            (random_bytes(i as u64 + 1, len), receivers[i % 3].1)
        })
        .collect();
    let stats = send(Config::default(), &datagrams);
    assert_eq!(stats.datagrams_out, 45);
    for (socket, addr) in &receivers {
        let theirs: Vec<Vec<u8>> = datagrams
            .iter()
            .filter(|(_, to)| to == addr)
            .map(|(data, _)| data.clone())
            .collect();
        assert_eq!(receive(socket, theirs.len()), theirs);
        assert_nothing_more(socket);
    }
}

#[test]
fn a_refused_destination_among_others_is_counted_while_the_rest_go() {
    let (before, before_addr) = receiver();
    let (after, after_addr) = receiver();
    let refused = SocketAddr::from(([127, 0, 0, 1], 0)); // port 0: EINVAL
    let mut datagrams = datagrams_to(before_addr, &[100; 4]);
    datagrams.extend(datagrams_to(refused, &[100; 5]));
    datagrams.extend(datagrams_to(after_addr, &[100; 4]));
    let stats = send(Config::default(), &datagrams);

    assert_eq!(stats.datagram_send_errors, 5);
    assert_eq!(stats.datagrams_dropped, 5);
    assert_eq!(stats.datagrams_out, 8);
    for (socket, addr) in [(before, before_addr), (after, after_addr)] {
        let theirs: Vec<Vec<u8>> = datagrams
            .iter()
            .filter(|(_, to)| *to == addr)
            .map(|(data, _)| data.clone())
            .collect();
        assert_eq!(receive(&socket, 4), theirs);
    }
}

/// A receiver that coalesces (UDP_GRO): a segmented message arrives as one read, with its
/// segment size.
fn coalescing_receiver() -> (UdpSocket, SocketAddr) {
    let (socket, addr) = receiver();
    setsockopt(&socket, sockopt::UdpGroSegment, &true).unwrap();
    (socket, addr)
}

/// The reads of `socket` until `bytes` arrived: each read's length and segment size (the
/// datagrams it coalesced are that long; `None` for one datagram read alone).
fn coalesced_reads(socket: &UdpSocket, mut bytes: usize) -> Vec<(usize, Option<i32>)> {
    let mut reads = Vec::new();
    let mut buf = vec![0; 65_536];
    while bytes > 0 {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut control = nix::cmsg_space!(i32);
        let message = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::empty(),
        )
        .expect("a read in time");
        let segment = message.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::UdpGroSegments(size) => Some(size),
            _ => None,
        });
        bytes -= message.bytes;
        reads.push((message.bytes, segment));
    }
    reads
}

#[test]
fn datagrams_to_one_destination_leave_as_one_segmented_message() {
    let (socket, addr) = coalescing_receiver();
    let stats = send(Config::default(), &datagrams_to(addr, &[100; 10]));
    assert_eq!(stats.datagrams_out, 10);
    // Loopback passes the message on whole: the receiver sees the ten as one.
    assert_eq!(coalesced_reads(&socket, 1000), [(1000, Some(100))]);
}

#[test]
fn with_batches_off_datagrams_leave_one_by_one_unsegmented() {
    let (socket, addr) = coalescing_receiver();
    let datagrams = datagrams_to(addr, &[100; 10]);
    let stats = send(Config::default().datagram_batches(false), &datagrams);
    assert_eq!(stats.datagrams_out, 10);
    assert_eq!(stats.datagram_send_calls, 10);
    assert_eq!(coalesced_reads(&socket, 1000), [(100, None); 10]);
}

#[test]
fn a_segmented_message_carries_at_most_64_datagrams() {
    let (socket, addr) = coalescing_receiver();
    send(Config::default(), &datagrams_to(addr, &[20; 150]));
    let reads = coalesced_reads(&socket, 150 * 20);
    assert_eq!(
        reads,
        [
            (64 * 20, Some(20)),
            (64 * 20, Some(20)),
            (22 * 20, Some(20))
        ]
    );
}

#[test]
fn a_segmented_message_stays_within_one_ip_datagram() {
    let (socket, addr) = coalescing_receiver();
    send(
        Config::default(),
        &datagrams_to(addr, &[30_000, 30_000, 30_000, 5]),
    );
    let reads = coalesced_reads(&socket, 90_005);
    assert_eq!(reads, [(60_000, Some(30_000)), (30_005, Some(30_000))]);
}
