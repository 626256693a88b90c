//! A datagram handler sizes its socket's kernel buffers (`SO_RCVBUF`, `SO_SNDBUF`) from
//! `on_open`, before any datagram is read, and reads back what the kernel set: on Linux
//! twice the value asked for, capped at `net.core.rmem_max` / `wmem_max` (`socket(7)`).
#![cfg(target_os = "linux")]

mod util;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use mio_reactor::{DatagramContext, DatagramHandler, Reactor};
use util::init_logging;

/// The buffer sizes the kernel reported, before and after setting them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sizes {
    recv_before: usize,
    send_before: usize,
    recv: usize,
    send: usize,
}

/// Sets both buffers to `bytes` on open and notes what the kernel reports.
struct SizeBuffers {
    bytes: usize,
    sizes: Rc<Cell<Sizes>>,
}

impl DatagramHandler for SizeBuffers {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        let recv_before = ctx.recv_buffer_size().unwrap();
        let send_before = ctx.send_buffer_size().unwrap();
        ctx.set_recv_buffer_size(self.bytes).unwrap();
        ctx.set_send_buffer_size(self.bytes).unwrap();
        let stats = ctx.socket_stats().unwrap();
        assert_eq!(
            (stats.recv_buffer_size, stats.send_buffer_size),
            (
                ctx.recv_buffer_size().unwrap(),
                ctx.send_buffer_size().unwrap()
            )
        );
        self.sizes.set(Sizes {
            recv_before,
            send_before,
            recv: stats.recv_buffer_size,
            send: stats.send_buffer_size,
        });
    }

    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
}

fn sizes_after_setting(bytes: usize) -> Sizes {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let sizes = Rc::new(Cell::new(Sizes::default()));
    let handler = SizeBuffers {
        bytes,
        sizes: sizes.clone(),
    };
    reactor.bind_udp("udp:127.0.0.1:0", handler).unwrap();
    sizes.get()
}

fn sysctl(name: &str) -> usize {
    let path = format!("/proc/sys/net/core/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn buffers_set_on_open_are_what_the_kernel_reports_twice_the_value_asked_for() {
    let bytes = 48 * 1024; // below any default and any cap
    let sizes = sizes_after_setting(bytes);

    assert_eq!((sizes.recv, sizes.send), (2 * bytes, 2 * bytes));
    assert_eq!(sizes.recv_before, sysctl("rmem_default"));
    assert_eq!(sizes.send_before, sysctl("wmem_default"));
}

#[test]
fn a_buffer_larger_than_the_system_allows_is_capped_at_its_maximum() {
    let sizes = sizes_after_setting(1 << 30);

    assert_eq!(sizes.recv, 2 * sysctl("rmem_max"));
    assert_eq!(sizes.send, 2 * sysctl("wmem_max"));
}

#[test]
fn a_buffer_past_what_a_c_int_holds_is_capped_too_not_wrapped_to_the_minimum() {
    // 2^32 would reach setsockopt as 0 through a C int: the kernel's minimum, not its cap.
    let sizes = sizes_after_setting(1 << 32);

    assert_eq!(sizes.recv, 2 * sysctl("rmem_max"));
    assert_eq!(sizes.send, 2 * sysctl("wmem_max"));
}
