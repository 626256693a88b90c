//! The automatic fallback of datagram batches, on a kernel that refuses them: a seccomp
//! filter (seccomp(2)) makes `recvmmsg` and `sendmmsg` fail with `ENOSYS` on the test's own
//! thread, as on a kernel or an emulation (gVisor, old QEMU user mode) without them, and the
//! reactor must carry on with one receive call (`recvmsg` on a socket with GRO on, else
//! `recvfrom`) or one `sendto` per datagram, losing nothing.
//! (`Config::datagram_batches(false)` asks for the same path from the start: tests/udp_batches.rs.)

mod util;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use mio_reactor::{Config, DatagramContext, DatagramHandler, Reactor, Stats};
use seccompiler::{apply_filter, BpfProgram, SeccompAction, SeccompFilter};
use util::{init_logging, random_bytes, send_segmented, turn_until};

/// Runs `test` on a thread of its own where `calls` fail with `ENOSYS` (the filter stays with
/// that thread and dies with it; the rest of the test process is untouched).
fn without_calls<T: Send + 'static>(calls: &[i64], test: impl FnOnce() -> T + Send + 'static) -> T {
    let rules = calls
        .iter()
        .map(|&call| (call, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        std::env::consts::ARCH
            .try_into()
            .expect("an architecture seccomp knows"),
    )
    .expect("a seccomp filter");
    let program: BpfProgram = filter.try_into().expect("a BPF program");
    thread::spawn(move || {
        apply_filter(&program).expect("seccomp filter applied");
        test()
    })
    .join()
    .expect("the filtered thread")
}

/// Echoes every datagram, and keeps a copy.
struct KeepingEcho {
    received: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl DatagramHandler for KeepingEcho {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        self.received.borrow_mut().push(data.to_vec());
        ctx.send_to(data, from).expect("queued");
    }
}

/// Sends 20 numbered datagrams to a fresh echo reactor before it turns (so that they wait
/// together in the kernel, a batch's worth), turns until all are echoed, and returns what the
/// handler received, what came back, and the reactor's stats.
fn echo_twenty() -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Stats) {
    init_logging();
    let mut reactor = Reactor::with_config(Config::default()).unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let echo = KeepingEcho {
        received: received.clone(),
    };
    let addr = reactor.bind_udp("udp:127.0.0.1:0", echo).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sent: Vec<Vec<u8>> = (0..20u32).map(|n| n.to_be_bytes().to_vec()).collect();
    for datagram in &sent {
        client.send_to(datagram, addr).unwrap();
    }

    turn_until(&mut reactor, |r| r.stats().datagrams_out == 20);

    let mut echoed = Vec::new();
    let mut buf = [0; 16];
    for _ in 0..20 {
        let (len, _) = client.recv_from(&mut buf).expect("an echo within 10 s");
        echoed.push(buf[..len].to_vec());
    }
    let received = received.borrow().clone();
    (received, echoed, reactor.stats())
}

#[test]
fn a_kernel_without_recvmmsg_gets_one_receive_call_per_datagram_and_loses_none() {
    let (received, echoed, stats) = without_calls(&[libc::SYS_recvmmsg], echo_twenty);

    let sent: Vec<Vec<u8>> = (0..20u32).map(|n| n.to_be_bytes().to_vec()).collect();
    assert_eq!(received, sent);
    assert_eq!(echoed, sent);
    // One batch would have taken all 20 (they waited together): 20 calls means refused.
    assert_eq!(stats.datagram_receive_calls, 20, "{stats:?}");
}

#[test]
fn a_kernel_without_sendmmsg_gets_one_sendto_per_datagram_and_loses_none() {
    let (received, echoed, stats) = without_calls(&[libc::SYS_sendmmsg], echo_twenty);

    let sent: Vec<Vec<u8>> = (0..20u32).map(|n| n.to_be_bytes().to_vec()).collect();
    assert_eq!(received, sent);
    assert_eq!(echoed, sent);
    assert_eq!(stats.datagram_send_calls, 20, "{stats:?}");
    assert_eq!(stats.datagram_send_errors, 0, "{stats:?}");
}

/// Keeps every datagram it receives, in order.
struct Keep {
    received: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl DatagramHandler for Keep {
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, data: &[u8], _: SocketAddr) {
        self.received.borrow_mut().push(data.to_vec());
    }
}

#[test]
fn a_message_coalesced_before_the_fallback_is_still_split_into_its_datagrams() {
    // The socket turns GRO on when it is bound (batches are on), so a GSO message sent
    // before the first read waits in the kernel coalesced; then the reactor learns that
    // recvmmsg is refused. A plain recvfrom would hand the 10,500 bytes as one datagram.
    let received = without_calls(&[libc::SYS_recvmmsg], || {
        init_logging();
        let mut reactor = Reactor::with_config(Config::default()).unwrap();
        let received = Rc::new(RefCell::new(Vec::new()));
        let keep = Keep {
            received: received.clone(),
        };
        let addr = reactor.bind_udp("udp:127.0.0.1:0", keep).unwrap();
        let payload = random_bytes(7, 10 * 1_000 + 500);
        send_segmented(addr, &payload, 1_000);
        // Read whole, the message would be one datagram of 10,500 bytes: never 11.
        turn_until(&mut reactor, |r| r.stats().datagrams_in >= 11);
        let received = received.borrow().clone();
        (received, payload)
    });

    let (received, payload) = received;
    let expected: Vec<Vec<u8>> = payload.chunks(1_000).map(<[u8]>::to_vec).collect();
    assert_eq!(received, expected);
}
