//! Outbound connections run in the same loop: clients are handlers too, and a connect that
//! fails or never completes is reported as a reason.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{CloseReason, Config, ConnectOptions, Context, Handler, ListenOptions, Reactor};
use util::{init_logging, Echo, Server, WAIT};

/// Sends a greeting, expects it back, then closes; reports every callback.
struct Greeter {
    log: mpsc::Sender<String>,
    received: Vec<u8>,
}

impl Handler for Greeter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.log.send("open".into()).unwrap();
        ctx.write(b"hello from a reactor client");
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.received.extend_from_slice(data);
        if self.received.len() >= 27 {
            ctx.close();
        }
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        let received = String::from_utf8_lossy(&self.received).into_owned();
        self.log
            .send(format!("close: {reason:?} {received}"))
            .unwrap();
    }
}

/// Runs a client reactor until its connection is done, bounded.
fn run_client(config: Config, addr: SocketAddr) -> Vec<String> {
    init_logging();
    let (tx, rx) = mpsc::channel();
    let mut reactor = Reactor::with_config(config).unwrap();
    reactor
        .connect(
            addr,
            ConnectOptions::default(),
            Greeter {
                log: tx,
                received: Vec::new(),
            },
        )
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while !reactor.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "client did not finish"
        );
        reactor.turn(Some(Duration::from_millis(100))).unwrap();
    }
    rx.try_iter().collect()
}

#[test]
fn an_outbound_connection_is_served_by_a_handler_in_the_loop() {
    let server = Server::echo(Config::default());
    let log = run_client(Config::default(), server.addr);
    assert_eq!(log, ["open", "close: Local hello from a reactor client"]);
    let stats = server.stop();
    assert_eq!(stats.bytes_out, 27);
}

#[test]
fn a_refused_connect_is_reported_as_connect_failed() {
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let log = run_client(Config::default(), addr);
    assert_eq!(
        log,
        [format!(
            "close: {:?} ",
            CloseReason::ConnectFailed(std::io::ErrorKind::ConnectionRefused)
        )],
        "on_close without on_open"
    );
}

#[test]
fn a_connect_that_never_completes_times_out() {
    // A listener with a backlog of 0 that never accepts: once its queue is full, the kernel
    // drops further SYNs, so a connect hangs without an answer, as it would to a dead host.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..4)
        .filter_map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
            s.set_nonblocking(true).ok()?;
            let _ = s.connect(&addr.into());
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100)); // let the fillers' handshakes complete

    let config = Config::default().connect_timeout(Duration::from_millis(300));
    let log = run_client(config, addr);
    assert_eq!(log, [format!("close: {:?} ", CloseReason::ConnectTimeout)]);
    drop((fillers, socket));
}

#[test]
fn an_echo_server_and_its_clients_share_one_reactor() {
    init_logging();
    let (tx, rx) = mpsc::channel();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))
        .unwrap()
        .local_addr()
        .unwrap();
    for _ in 0..3 {
        let greeter = Greeter {
            log: tx.clone(),
            received: Vec::new(),
        };
        reactor
            .connect(addr, ConnectOptions::default(), greeter)
            .unwrap();
    }
    let shutdown = reactor.shutdown_handle();
    let deadline = std::time::Instant::now() + WAIT;
    let mut closed = 0;
    while closed < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "clients did not finish"
        );
        reactor.turn(Some(Duration::from_millis(100))).unwrap();
        closed += rx
            .try_iter()
            .filter(|line| line.starts_with("close"))
            .count();
    }
    shutdown.shutdown();
    reactor.run().unwrap();
    assert_eq!(reactor.stats().connected, 3);
    assert_eq!(reactor.stats().accepted, 3);
}
