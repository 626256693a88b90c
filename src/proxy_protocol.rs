//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's spec defines it
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>): the listen option
//! [`ProxyProtocol`] and what a connection learns from the header, [`ProxyHeader`].
//!
//! A load balancer that relays TCP connects to us itself, so the socket's peer is the
//! balancer. With the PROXY protocol it first sends one header naming the client's address
//! and the address the client connected to; the rest of the stream is the client's bytes.
//! The header is parsed here, with the `ppp` crate, from the bytes read so far; reading it
//! before the handler hears the connection is the stage in `proxy_stage.rs`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::{v1, v2, HeaderResult, PartialResult};

use crate::net::PeerAddr;

/// The fixed part of a version 2 header: the 12-byte signature, version and command,
/// family and protocol, and the 2-byte length of what follows.
const V2_FIXED_LEN: usize = 16;

/// The smallest header limit a listen may set: a version 2 header with two Unix-domain
/// addresses (16 + 216 bytes) and no TLVs, which every sender may send.
const MIN_HEADER_LIMIT: usize = V2_FIXED_LEN + 216;

/// The PROXY protocol on every connection of a listen
/// ([`ListenOptions::proxy_protocol`](crate::ListenOptions::proxy_protocol)): each
/// connection must start with a version 1 or version 2 header, told apart by their
/// signatures, which the reactor reads before it asks the factory for a handler.
///
/// | setting | default |
/// |---|---|
/// | [`trust`](ProxyProtocol::trust): who may send a header | anyone |
/// | [`header_timeout`](ProxyProtocol::header_timeout) | 5 s |
/// | [`max_header_len`](ProxyProtocol::max_header_len) (version 2 with TLVs; version 1 is at most 107 bytes) | 4096 B |
///
/// The spec's rule is that a receiver configured for the protocol accepts no connection
/// without a header: a client that connects around the balancer cannot pose as another by
/// sending no header, nor by sending one of its own when only the balancer is trusted.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::{ListenOptions, ProxyProtocol};
///
/// let proxy = ProxyProtocol::default()
///     .trust("10.0.0.0/8")?
///     .trust("192.0.2.7")?
///     .header_timeout(Duration::from_secs(2));
/// assert!(proxy.is_trusted("10.1.2.3".parse().unwrap()));
/// assert!(!proxy.is_trusted("198.51.100.1".parse().unwrap()));
/// let options = ListenOptions::default().proxy_protocol(proxy);
/// assert!(options.get_proxy_protocol().is_some());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    trusted: Vec<IpNet>,
    header_timeout: Duration,
    max_header_len: usize,
}

impl Default for ProxyProtocol {
    fn default() -> ProxyProtocol {
        ProxyProtocol {
            trusted: Vec::new(),
            // Sent by the balancer with the connection's first segment: seconds are
            // generous, and a slot held by a silent peer is freed quickly.
            header_timeout: Duration::from_secs(5),
            max_header_len: 4096,
        }
    }
}

impl ProxyProtocol {
    /// Accepts headers only from `network`: an address (`192.0.2.7`, `::1`) or a network in
    /// CIDR notation (`10.0.0.0/8`, `fd00::/8`). Called again, it adds to the list; with no
    /// list every TCP peer may send a header. A connection from anyone else is closed with
    /// [`CloseReason::UntrustedProxy`](crate::CloseReason::UntrustedProxy) before a byte
    /// is read. Unix-domain peers are always trusted: the socket file's mode decides who
    /// connects ([`ListenOptions::unix_mode`](crate::ListenOptions::unix_mode)).
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `network` is neither.
    pub fn trust(mut self, network: &str) -> io::Result<ProxyProtocol> {
        let parsed = match network.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => network.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not an address or a network: {network:?}"),
                )
            })?,
        };
        self.trusted.push(parsed.trunc());
        Ok(self)
    }

    /// Whether a header from `addr` is accepted (see [`trust`](ProxyProtocol::trust)). An
    /// IPv4 address seen as IPv6 by a dual-stack socket (`::ffff:10.1.2.3`) is taken as the
    /// IPv4 address.
    pub fn is_trusted(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.trusted.is_empty() || self.trusted.iter().any(|net| net.contains(&addr))
    }

    /// Whether a connection from `peer` may send a header.
    pub(crate) fn admits(&self, peer: &PeerAddr) -> bool {
        peer.tcp().is_none_or(|addr| self.is_trusted(addr.ip()))
    }

    /// How long a connection has to send its whole header, from when it is accepted; past it
    /// the connection is closed with
    /// [`CloseReason::ProxyHeaderTimeout`](crate::CloseReason::ProxyHeaderTimeout), so a
    /// peer that sends nothing holds no slot for long (as nginx's
    /// `proxy_protocol_timeout`).
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> ProxyProtocol {
        self.header_timeout = timeout;
        self
    }

    /// The timeout [`header_timeout`](ProxyProtocol::header_timeout) set.
    pub fn get_header_timeout(&self) -> Duration {
        self.header_timeout
    }

    /// The longest header accepted, in bytes: a version 2 header's TLVs make it as long as
    /// the sender likes (up to 16 + 65535 bytes), and the reactor holds it whole. Raised to
    /// 232 bytes (two Unix-domain addresses) if set lower. A version 1 header is at most
    /// 107 bytes whatever this says. A longer header closes the connection with
    /// [`CloseReason::ProxyHeader`](crate::CloseReason::ProxyHeader).
    #[must_use]
    pub fn max_header_len(mut self, bytes: usize) -> ProxyProtocol {
        self.max_header_len = bytes.max(MIN_HEADER_LIMIT);
        self
    }

    /// The limit [`max_header_len`](ProxyProtocol::max_header_len) set.
    pub fn get_max_header_len(&self) -> usize {
        self.max_header_len
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// What a connection's PROXY protocol header said
/// ([`Context::proxy_header`](crate::Context::proxy_header)).
///
/// With a header that names a TCP client (v1 `TCP4`/`TCP6`, v2 `PROXY` over IPv4 or IPv6),
/// [`Context::peer_addr`](crate::Context::peer_addr) is the client's address and
/// [`proxy_addr`](ProxyHeader::proxy_addr) the balancer's. A header that names no client
/// (v2 `LOCAL`, v1 `UNKNOWN`: a balancer's own health checks; or v2 over Unix-domain or
/// unspecified addresses) leaves the connection as the balancer's own: the peer is the
/// balancer.
///
/// # Examples
/// ```
/// use mio_reactor::{PeerAddr, ProxyHeader};
///
/// let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
/// let balancer = PeerAddr::Tcp("10.0.0.5:40000".parse().unwrap());
/// let (header, len) = ProxyHeader::parse(line, balancer.clone()).unwrap().unwrap();
/// assert_eq!(len, 45); // the bytes after it are the client's
/// assert_eq!(header.version(), 1);
/// assert_eq!(header.source(), Some("192.0.2.1:56324".parse().unwrap()));
/// assert_eq!(header.destination(), Some("198.51.100.2:443".parse().unwrap()));
/// assert_eq!(header.proxy_addr(), &balancer);
/// assert!(ProxyHeader::parse(b"PROXY TCP4 192.0", balancer.clone()).unwrap().is_none());
/// assert!(ProxyHeader::parse(b"GET / HTTP/1.1\r\n", balancer).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    version: u8,
    proxy: PeerAddr,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
    tlvs: Vec<(u8, Vec<u8>)>,
}

impl ProxyHeader {
    /// `PP2_TYPE_ALPN`: the application protocol the client negotiated with the balancer.
    pub const TLV_ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (its TLS SNI, typically).
    pub const TLV_AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_UNIQUE_ID`: an opaque id of the connection, up to 128 bytes (HAProxy's
    /// `unique-id-format`).
    pub const TLV_UNIQUE_ID: u8 = 0x05;

    /// Parses a header at the start of `bytes`, received on a connection from `proxy`.
    /// Returns the header and its length in bytes (what follows is the client's stream),
    /// `Ok(None)` if `bytes` may be the start of a header that is not complete yet.
    ///
    /// # Errors
    /// Why `bytes` cannot start a header: no version 1 or 2 signature, a malformed field, a
    /// version 1 line longer than 107 bytes, malformed TLVs. The text is for a log.
    pub fn parse(bytes: &[u8], proxy: PeerAddr) -> Result<Option<(ProxyHeader, usize)>, String> {
        if is_unfinished_v1_line(bytes) {
            return Ok(None);
        }
        match HeaderResult::parse(bytes) {
            HeaderResult::V2(Ok(header)) => from_v2(&header, proxy).map(Some),
            HeaderResult::V1(Ok(header)) => Ok(Some(from_v1(&header, proxy))),
            result if result.is_incomplete() => Ok(None),
            HeaderResult::V2(Err(err)) => Err(format!("PROXY v2 header: {err}")),
            HeaderResult::V1(Err(v1::BinaryParseError::Parse(v1::ParseError::InvalidPrefix))) => {
                Err("no PROXY protocol signature (v1 or v2)".to_string())
            }
            HeaderResult::V1(Err(err)) => Err(format!("PROXY v1 header: {err}")),
        }
    }

    /// How long the header whose first bytes are `bytes` will be, once known: a version 2
    /// header's length field, read before the rest arrives so that an oversized header is
    /// refused at once.
    pub(crate) fn announced_len(bytes: &[u8]) -> Option<usize> {
        if bytes.len() < V2_FIXED_LEN || !bytes.starts_with(v2::PROTOCOL_PREFIX) {
            return None;
        }
        Some(V2_FIXED_LEN + usize::from(u16::from_be_bytes([bytes[14], bytes[15]])))
    }

    /// The protocol version the header was sent in: 1 (text) or 2 (binary).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The address the connection actually came from: the balancer.
    pub fn proxy_addr(&self) -> &PeerAddr {
        &self.proxy
    }

    /// The client's address, if the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        self.source
    }

    /// The address the client connected to (the balancer's frontend), if the header names
    /// one.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.destination
    }

    /// Whether the header names no client (v2 `LOCAL`, v1 `UNKNOWN`, or addresses that are
    /// not TCP's): the connection is the balancer's own, such as a health check.
    pub fn is_local(&self) -> bool {
        self.source.is_none()
    }

    /// The value of the first TLV of type `kind` (version 2 only), such as
    /// [`TLV_AUTHORITY`](ProxyHeader::TLV_AUTHORITY).
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs()
            .find(|&(found, _)| found == kind)
            .map(|(_, value)| value)
    }

    /// Every TLV, in the order sent, as (type, value).
    pub fn tlvs(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.tlvs
            .iter()
            .map(|(kind, value)| (*kind, value.as_slice()))
    }

    /// The `PP2_TYPE_ALPN` TLV: the protocol the client negotiated, such as `b"h2"`.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(Self::TLV_ALPN)
    }

    /// The `PP2_TYPE_AUTHORITY` TLV, if it is UTF-8: the host name the client asked for.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(Self::TLV_AUTHORITY)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The `PP2_TYPE_UNIQUE_ID` TLV.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(Self::TLV_UNIQUE_ID)
    }
}

fn from_v1(header: &v1::Header<'_>, proxy: PeerAddr) -> (ProxyHeader, usize) {
    let (source, destination) = match header.addresses {
        v1::Addresses::Tcp4(ip) => (
            Some(SocketAddr::from((ip.source_address, ip.source_port))),
            Some(SocketAddr::from((
                ip.destination_address,
                ip.destination_port,
            ))),
        ),
        v1::Addresses::Tcp6(ip) => (
            Some(SocketAddr::from((ip.source_address, ip.source_port))),
            Some(SocketAddr::from((
                ip.destination_address,
                ip.destination_port,
            ))),
        ),
        v1::Addresses::Unknown => (None, None),
    };
    let parsed = ProxyHeader {
        version: 1,
        proxy,
        source,
        destination,
        tlvs: Vec::new(),
    };
    // `ppp` keeps exactly the line, CRLF included.
    (parsed, header.header.len())
}

fn from_v2(header: &v2::Header<'_>, proxy: PeerAddr) -> Result<(ProxyHeader, usize), String> {
    let tlvs = header
        .tlvs()
        .map(|tlv| tlv.map(|tlv| (tlv.kind, tlv.value.into_owned())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("PROXY v2 TLVs: {err}"))?;
    // The spec: with LOCAL, the receiver must ignore the addresses.
    let addresses = match header.command {
        v2::Command::Local => v2::Addresses::Unspecified,
        v2::Command::Proxy => header.addresses,
    };
    let (source, destination) = match addresses {
        v2::Addresses::IPv4(ip) => (
            Some(SocketAddr::from((ip.source_address, ip.source_port))),
            Some(SocketAddr::from((
                ip.destination_address,
                ip.destination_port,
            ))),
        ),
        v2::Addresses::IPv6(ip) => (
            Some(SocketAddr::from((ip.source_address, ip.source_port))),
            Some(SocketAddr::from((
                ip.destination_address,
                ip.destination_port,
            ))),
        ),
        v2::Addresses::Unix(_) | v2::Addresses::Unspecified => (None, None),
    };
    let parsed = ProxyHeader {
        version: 2,
        proxy,
        source,
        destination,
        tlvs,
    };
    Ok((parsed, header.len()))
}

impl fmt::Display for ProxyHeader {
    /// `PROXY v1 from 192.0.2.1:56324 via 10.0.0.5:40000`, or `PROXY v2 LOCAL via ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Some(source) => write!(f, "PROXY v{} from {source}", self.version)?,
            None => write!(f, "PROXY v{} LOCAL", self.version)?,
        }
        write!(f, " via {}", self.proxy)
    }
}

/// The longest version 1 header, its CRLF included (the spec's 107 bytes).
const V1_MAX_LEN: usize = 107;

/// Whether `bytes` start a version 1 line whose CRLF has not arrived. Such a line is parsed
/// only once it is whole: cut after a field's separator (`... 56324 ` then `443\r\n`), its
/// start reads to `ppp` as a complete line with an invalid field rather than as an
/// incomplete one. A line already over the limit is left to `ppp`, which says why.
fn is_unfinished_v1_line(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PROXY ")
        && bytes.len() < V1_MAX_LEN
        && !bytes.windows(2).any(|pair| pair == b"\r\n")
}
