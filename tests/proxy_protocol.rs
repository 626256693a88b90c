//! The PROXY protocol listen option (HAProxy's spec, v1 and v2): the handler hears the
//! client the header names, and a connection without a good header never gets a handler.
//!
//! The test plays the balancer: it connects from 127.0.0.1 and writes headers by hand, as
//! literal bytes. A connection's handler greets with what its `Context` says; connections
//! that never get one are seen through the trace's `Closed` records.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use mio_reactor::{
    CloseReason, Config, Context, Handler, ListenOptions, PeerAddr, ProxyHeader, ProxyProtocol,
    Record,
};
use util::{client, loopback, read_to_end, Server, WAIT};

/// The client address the factory refuses.
const REFUSED_CLIENT: &str = "192.0.2.66";

/// Greets with its peer and header, then echoes.
struct Greeter;

impl Handler for Greeter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let header = ctx.proxy_header().map_or("no header".to_string(), |h| {
            format!(
                "via {} v{} local={} alpn={:?} authority={:?}",
                h.proxy_addr(),
                h.version(),
                h.is_local(),
                h.alpn()
                    .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
                h.authority(),
            )
        });
        let greeting = format!("{} {header}\n", ctx.peer_addr());
        ctx.write(greeting.as_bytes());
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// A server with the PROXY protocol on, and the close reasons of its connections.
struct Proxied {
    server: Server,
    closes: Receiver<CloseReason>,
}

impl Proxied {
    fn start(proxy: ProxyProtocol) -> Proxied {
        Proxied::start_with(ListenOptions::default().proxy_protocol(proxy))
    }

    fn start_with(options: ListenOptions) -> Proxied {
        Proxied::start_config(Config::default(), options)
    }

    fn start_config(config: Config, options: ListenOptions) -> Proxied {
        let (tx, closes) = mpsc::channel();
        let server = Server::start(config, move |reactor| {
            reactor.set_observer(move |_, record: &Record| {
                if let Record::Closed { reason, .. } = record {
                    let _ = tx.send(reason.clone());
                }
            });
            reactor.listen(loopback(), options, |peer: &PeerAddr| {
                let refused = peer
                    .tcp()
                    .is_some_and(|a| a.ip().to_string() == REFUSED_CLIENT);
                (!refused).then_some(Greeter)
            })
        });
        Proxied { server, closes }
    }

    /// The reason the next connection closed with.
    fn next_close(&self) -> CloseReason {
        self.closes.recv_timeout(WAIT).expect("a connection closed")
    }
}

/// Reads up to and with the next newline.
fn line(stream: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    while line.last() != Some(&b'\n') {
        stream.read_exact(&mut byte).expect("a whole line");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// A version 2 header: `command` 0x20 (LOCAL) or 0x21 (PROXY), `family` 0x11 (TCP over
/// IPv4), 0x21 (TCP over IPv6) or 0x00, then the addresses and TLVs as bytes.
fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut rest = addresses.to_vec();
    for (kind, value) in tlvs {
        rest.push(*kind);
        rest.extend_from_slice(&(value.len() as u16).to_be_bytes());
        rest.extend_from_slice(value);
    }
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[command, family]);
    header.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    header.extend_from_slice(&rest);
    header
}

/// 192.0.2.1:56324 -> 198.51.100.2:443, as v2 IPv4 addresses.
const V2_IPV4: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb];

fn balancer(server: &Proxied) -> (TcpStream, SocketAddr) {
    let stream = client(server.server.addr);
    let own = stream.local_addr().unwrap();
    (stream, own)
}

#[test]
fn v1_tcp4_header_names_the_client() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, own) = balancer(&server);
    conn.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n")
        .unwrap();
    let expected = format!("192.0.2.1:56324 via {own} v1 local=false alpn=None authority=None\n");
    assert_eq!(line(&mut conn), expected);
}

#[test]
fn v1_tcp6_header_names_the_client() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    conn.write_all(b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n")
        .unwrap();
    assert!(line(&mut conn).starts_with("[2001:db8::1]:56324 via 127.0.0.1:"));
}

#[test]
fn v1_unknown_is_the_proxys_own_connection() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, own) = balancer(&server);
    conn.write_all(b"PROXY UNKNOWN\r\n").unwrap();
    assert_eq!(
        line(&mut conn),
        format!("{own} via {own} v1 local=true alpn=None authority=None\n")
    );
}

#[test]
fn v2_proxy_header_names_the_client_and_carries_tlvs() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, own) = balancer(&server);
    let tlvs: [(u8, &[u8]); 2] = [(0x01, b"h2"), (0x02, b"example.com")];
    conn.write_all(&v2(0x21, 0x11, &V2_IPV4, &tlvs)).unwrap();
    let expected = format!(
        "192.0.2.1:56324 via {own} v2 local=false alpn=Some(\"h2\") \
         authority=Some(\"example.com\")\n"
    );
    assert_eq!(line(&mut conn), expected);
}

#[test]
fn v2_proxy_header_over_ipv6_names_the_client() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    let mut addresses = Vec::new();
    addresses.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addresses.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addresses.extend_from_slice(&[0xdc, 0x04, 0x01, 0xbb]);
    conn.write_all(&v2(0x21, 0x21, &addresses, &[])).unwrap();
    assert!(line(&mut conn).starts_with("[2001:db8::1]:56324 via 127.0.0.1:"));
}

#[test]
fn v2_local_is_the_proxys_own_connection_and_keeps_its_tlvs() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, own) = balancer(&server);
    // LOCAL with addresses: the spec says the receiver ignores them.
    conn.write_all(&v2(0x20, 0x11, &V2_IPV4, &[(0x02, b"health")]))
        .unwrap();
    let expected = format!("{own} via {own} v2 local=true alpn=None authority=Some(\"health\")\n");
    assert_eq!(line(&mut conn), expected);
}

#[test]
fn header_split_one_byte_at_a_time_is_read_whole() {
    let server = Proxied::start(ProxyProtocol::default());
    for header in [
        v2(0x21, 0x11, &V2_IPV4, &[(0x02, b"example.com")]),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec(),
    ] {
        let (mut conn, _) = balancer(&server);
        for byte in &header {
            conn.write_all(&[*byte]).unwrap(); // TCP_NODELAY: a segment each
        }
        assert!(line(&mut conn).starts_with("192.0.2.1:56324 via 127.0.0.1:"));
        assert_eq!(util::round_trip(&mut conn, b"after"), b"after");
    }
}

#[test]
fn a_v1_header_cut_anywhere_is_incomplete_until_its_line_ends() {
    // Where a segment ends is the network's choice: a cut right after a field's separator
    // ("... 56324 ") once closed the connection as a malformed port.
    let proxy = PeerAddr::Tcp("127.0.0.1:9000".parse().unwrap());
    for header in [
        &b"PROXY TCP4 192.0.2.9 127.0.0.1 56324 65442\r\n"[..],
        b"PROXY TCP6 2001:db8::1 ::1 56324 443\r\n",
        b"PROXY UNKNOWN\r\n",
    ] {
        for cut in 1..header.len() {
            let start = &header[..cut];
            assert_eq!(
                ProxyHeader::parse(start, proxy.clone()).map(|found| found.is_some()),
                Ok(false),
                "{:?}",
                String::from_utf8_lossy(start)
            );
        }
        let (_, len) = ProxyHeader::parse(header, proxy.clone()).unwrap().unwrap();
        assert_eq!(len, header.len());
    }
}

#[test]
fn data_in_the_headers_segment_reaches_the_handler_intact() {
    let server = Proxied::start(ProxyProtocol::default());
    for header in [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec(),
        v2(0x21, 0x11, &V2_IPV4, &[]),
    ] {
        let (mut conn, _) = balancer(&server);
        let data = util::random_bytes(7, 3000);
        conn.write_all(&[header, data.clone()].concat()).unwrap();
        assert!(line(&mut conn).starts_with("192.0.2.1:56324 "));
        let mut echoed = vec![0; data.len()];
        conn.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, data);
    }
}

/// Asserts the connection gets no greeting (it is closed), and returns its close reason.
fn refused(server: &Proxied, mut conn: TcpStream) -> CloseReason {
    let reason = server.next_close();
    // EOF or a reset, but never a greeting.
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    assert_eq!(got, b"", "a refused connection was greeted");
    reason
}

fn assert_bad_header(reason: CloseReason, why: &str) {
    match reason {
        CloseReason::ProxyHeader(text) => assert!(text.contains(why), "{text:?}"),
        other => panic!("closed with {other:?}, not a bad header ({why})"),
    }
}

#[test]
fn truncated_header_then_eof_is_a_bad_header() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    conn.write_all(b"PROXY TCP4 192.0").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    assert_bad_header(refused(&server, conn), "closed after 16 B");
}

#[test]
fn v1_header_longer_than_107_bytes_is_refused() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    let long = format!(
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443{}\r\n",
        " ".repeat(70)
    );
    conn.write_all(long.as_bytes()).unwrap();
    assert_bad_header(refused(&server, conn), "107 bytes");
}

#[test]
fn v2_header_announcing_more_than_the_limit_is_refused_before_it_arrives() {
    let server = Proxied::start(ProxyProtocol::default().max_header_len(1000));
    let (mut conn, _) = balancer(&server);
    let header = v2(0x21, 0x11, &V2_IPV4, &[(0x05, &[b'x'; 2000])]);
    conn.write_all(&header[..16]).unwrap(); // the length field, nothing more
    assert_bad_header(refused(&server, conn), "over the limit of 1000 B");
}

#[test]
fn wrong_signature_is_refused() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    conn.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_bad_header(refused(&server, conn), "no PROXY protocol signature");
}

#[test]
fn silent_peer_is_closed_at_the_header_deadline() {
    let proxy = ProxyProtocol::default().header_timeout(Duration::from_millis(200));
    let server = Proxied::start(proxy);
    let (conn, _) = balancer(&server);
    assert_eq!(refused(&server, conn), CloseReason::ProxyHeaderTimeout);
    let stats = server.server.stop();
    assert_eq!(stats.closed.proxy_protocol, 1);
}

#[test]
fn shutdown_closes_a_connection_still_waiting_for_its_header() {
    // Neither the header's deadline nor the shutdown's would come within the test's wait.
    let proxy = ProxyProtocol::default().header_timeout(Duration::from_secs(600));
    let options = ListenOptions::default().proxy_protocol(proxy);
    let server = Proxied::start_config(
        Config::default().shutdown_timeout(Duration::from_secs(600)),
        options,
    );
    let (conn, _) = balancer(&server);
    let (tx, closes) = (server.server.shutdown.clone(), &server.closes);
    // Wait until the reactor has accepted it (its stage began), then stop.
    let mut probe = client(server.server.addr);
    probe.write_all(b"PROXY UNKNOWN\r\n").unwrap();
    assert!(line(&mut probe).starts_with("127.0.0.1:"));
    drop(probe);
    assert_eq!(closes.recv_timeout(WAIT).unwrap(), CloseReason::PeerClosed);
    tx.shutdown();
    assert_eq!(refused(&server, conn), CloseReason::Shutdown);
}

#[test]
fn untrusted_source_is_refused_before_its_header() {
    let proxy = ProxyProtocol::default().trust("192.0.2.0/24").unwrap();
    let server = Proxied::start(proxy);
    let (mut conn, _) = balancer(&server);
    conn.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n")
        .unwrap();
    assert_eq!(refused(&server, conn), CloseReason::UntrustedProxy);
}

#[test]
fn trusted_network_is_served() {
    let proxy = ProxyProtocol::default()
        .trust("192.0.2.0/24")
        .unwrap()
        .trust("127.0.0.0/8")
        .unwrap();
    let server = Proxied::start(proxy);
    let (mut conn, _) = balancer(&server);
    conn.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n")
        .unwrap();
    assert!(line(&mut conn).starts_with("192.0.2.1:56324 "));
}

#[test]
fn factory_is_asked_with_the_clients_address() {
    let server = Proxied::start(ProxyProtocol::default());
    let (mut conn, _) = balancer(&server);
    let header = format!("PROXY TCP4 {REFUSED_CLIENT} 198.51.100.2 56324 443\r\n");
    conn.write_all(header.as_bytes()).unwrap();
    assert_eq!(refused(&server, conn), CloseReason::Aborted);
    assert_eq!(server.server.stop().refused, 1);
}

#[test]
fn without_the_option_the_header_is_data() {
    // The control: the same bytes reach a handler unread when the option is off.
    let server = Proxied::start_with(ListenOptions::default());
    let (mut conn, own) = balancer(&server);
    assert_eq!(line(&mut conn), format!("{own} no header\n"));
    let header = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    assert_eq!(util::round_trip(&mut conn, header), header);
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut conn), b"");
}

#[cfg(feature = "tls")]
#[test]
fn tls_handshake_follows_the_header_in_its_segment() {
    use mio_reactor::rustls;

    let pki = util::tls::Pki::localhost();
    let options = ListenOptions::default()
        .tls(pki.server_config())
        .proxy_protocol(ProxyProtocol::default());
    let server = Proxied::start_with(options);
    let (conn, _) = balancer(&server);
    let name = "localhost".try_into().unwrap();
    let mut session = rustls::ClientConnection::new(pki.client_config(), name).unwrap();
    // The header and the ClientHello in one write: the stage reads both at once.
    let mut first = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec();
    session.write_tls(&mut first).unwrap();
    (&conn).write_all(&first).unwrap();
    let mut tls = rustls::StreamOwned::new(session, conn);
    assert!(line(&mut tls).starts_with("192.0.2.1:56324 via 127.0.0.1:"));
    tls.write_all(b"secret").unwrap();
    let mut echoed = [0; 6];
    tls.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"secret");
}
