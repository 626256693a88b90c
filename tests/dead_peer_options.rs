//! Dead-peer detection reaches the sockets: the keepalive and `TCP_USER_TIMEOUT` of the
//! reactor's `Config`, of a listen's and of a connect's options, read back with
//! `getsockopt` (socket2) on the connection's own socket (`Context::as_fd`).

mod util;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use mio_reactor::{
    Config, ConnectOptions, Context, DeadPeerDetection, Handler, Keepalive, ListenOptions, Reactor,
};
use util::{client, loopback, turn_until};

/// What `getsockopt` says about a connection's socket.
#[derive(Debug, PartialEq)]
struct SocketOptions {
    keepalive: bool,
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`: read only when keepalive is on.
    keepalive_settings: Option<Keepalive>,
    user_timeout: Option<Duration>,
}

/// Reads its socket's options when it opens, and sends them to the test.
struct ReadOptions(Sender<SocketOptions>);

impl Handler for ReadOptions {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let fd = ctx.as_fd().expect("an open connection has a socket");
        let socket = socket2::SockRef::from(&fd);
        let keepalive = socket.keepalive().expect("SO_KEEPALIVE");
        let keepalive_settings = keepalive.then(|| {
            Keepalive::new(
                socket.keepalive_time().expect("TCP_KEEPIDLE"),
                socket.keepalive_interval().expect("TCP_KEEPINTVL"),
                socket.keepalive_retries().expect("TCP_KEEPCNT"),
            )
        });
        let user_timeout = socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT");
        let _ = self.0.send(SocketOptions {
            keepalive,
            keepalive_settings,
            user_timeout,
        });
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

/// The options of the socket a reactor with `config` accepts on a listen with `options`.
fn accepted(config: Config, options: ListenOptions) -> SocketOptions {
    let mut reactor = Reactor::with_config(config).expect("reactor");
    let (tx, rx) = mpsc::channel();
    let addr = reactor
        .listen(loopback(), options, move |_| Some(ReadOptions(tx.clone())))
        .and_then(|listening| listening.local_addr())
        .expect("listen");
    let _peer = client(addr);
    read(&mut reactor, &rx)
}

fn read(reactor: &mut Reactor, rx: &Receiver<SocketOptions>) -> SocketOptions {
    let mut seen = None;
    turn_until(reactor, |_| {
        seen = seen.take().or_else(|| rx.try_recv().ok());
        seen.is_some()
    });
    seen.expect("read")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_default_is_redis_keepalive_and_no_user_timeout() {
    let options = accepted(Config::default(), ListenOptions::default());
    assert_eq!(
        options,
        SocketOptions {
            keepalive: true,
            keepalive_settings: Some(Keepalive::new(secs(300), secs(100), 3)),
            user_timeout: None,
        }
    );
}

#[test]
fn the_config_reaches_accepted_sockets() {
    let detection = DeadPeerDetection::default()
        .keepalive(Some(Keepalive::new(secs(7), secs(3), 4)))
        .user_timeout(Some(Duration::from_millis(2500)));
    let config = Config::default().dead_peer_detection(detection);
    let options = accepted(config, ListenOptions::default());
    assert_eq!(
        options.keepalive_settings,
        Some(Keepalive::new(secs(7), secs(3), 4))
    );
    assert_eq!(options.user_timeout, Some(Duration::from_millis(2500)));
}

#[test]
fn listen_options_override_the_config() {
    let reactor_wide = DeadPeerDetection::default().user_timeout(Some(secs(60)));
    let this_listen = DeadPeerDetection::default()
        .keepalive(Some(Keepalive::new(secs(20), secs(5), 2)))
        .user_timeout(Some(Duration::from_millis(1234)));
    let config = Config::default().dead_peer_detection(reactor_wide);
    let options = accepted(
        config,
        ListenOptions::default().dead_peer_detection(this_listen),
    );
    assert_eq!(
        options.keepalive_settings,
        Some(Keepalive::new(secs(20), secs(5), 2))
    );
    assert_eq!(options.user_timeout, Some(Duration::from_millis(1234)));
}

#[test]
fn off_leaves_the_kernel_defaults() {
    let config = Config::default().dead_peer_detection(DeadPeerDetection::off());
    let options = accepted(config, ListenOptions::default());
    assert_eq!(
        options,
        SocketOptions {
            keepalive: false,
            keepalive_settings: None,
            user_timeout: None,
        }
    );
}

#[test]
fn connect_options_reach_connected_sockets() {
    let server = TcpListener::bind(loopback()).expect("bind");
    let mut reactor = Reactor::new().expect("reactor");
    let (tx, rx) = mpsc::channel();
    let detection = DeadPeerDetection::off()
        .keepalive(Some(Keepalive::new(secs(9), secs(2), 5)))
        .user_timeout(Some(Duration::from_millis(4321)));
    let options = ConnectOptions::default().dead_peer_detection(detection);
    reactor
        .connect(server.local_addr().unwrap(), options, ReadOptions(tx))
        .expect("connect");
    let _accepted = server.accept().expect("accept");
    let options = read(&mut reactor, &rx);
    assert_eq!(
        options.keepalive_settings,
        Some(Keepalive::new(secs(9), secs(2), 5))
    );
    assert_eq!(options.user_timeout, Some(Duration::from_millis(4321)));
}

#[test]
fn a_listen_refuses_a_keepalive_the_kernel_cannot_take() {
    let mut reactor = Reactor::new().expect("reactor");
    let sub_second = Duration::from_millis(500);
    let detection =
        DeadPeerDetection::off().keepalive(Some(Keepalive::new(sub_second, sub_second, 2)));
    let options = ListenOptions::default().dead_peer_detection(detection);
    let err = reactor
        .listen(loopback(), options, |_| None::<ReadOptions>)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
