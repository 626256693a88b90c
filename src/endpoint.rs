//! Where a socket lives, named once: the same [`Endpoint`] in code, on a command line and in
//! the logs.
//!
//! Before endpoints, every kind of socket had its own methods (`listen`, `listen_unix`,
//! `listen_tls`, `adopt_listener`...), and every example its own flags for the same things.
//! Twisted went the same way (`listenTCP`, `listenUNIX`, `listenSSL`) and out of it with
//! *endpoints* (`serverFromString(reactor, "tcp:8080")`), so that a program and its command
//! line name a socket alike; systemd's `ListenStream=` and Go's `net.Listen(network,
//! address)` do the same. Here the name says *where*; what is done to the connections (TLS,
//! `SO_REUSEPORT`, backlog) is an option of the listen or connect that uses it
//! ([`ListenOptions`](crate::ListenOptions), [`ConnectOptions`](crate::ConnectOptions)).
//!
//! The grammar is written in [`Endpoint`]'s docs, where users meet it.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// Where a socket lives: an address to bind or connect, a path, or an inherited descriptor.
///
/// Parsed from and printed in one grammar, so a program, its command line and its logs
/// name a socket the same way. Printing gives back what was parsed, with the scheme written
/// out: a host name stays a name.
///
/// # Grammar
/// | text | meaning |
/// |---|---|
/// | `tcp:127.0.0.1:7000`, `tcp:[::1]:7000` | TCP on an IPv4 or IPv6 address |
/// | `127.0.0.1:7000`, `[::1]:7000` | the same: a bare IP literal with a port means TCP |
/// | `tcp:localhost:7000` | TCP on every address a host name resolves to |
/// | `udp:127.0.0.1:9000`, `udp:localhost:9000` | a UDP socket |
/// | `unix:/run/app.sock` | a Unix-domain stream socket at a path |
/// | `fd:3` | a socket inherited as descriptor 3, announced by `LISTEN_FDS` |
/// | `systemd:web` | the inherited socket that `LISTEN_FDNAMES` names `web` |
/// | `handover:` | no socket: streams other threads hand to this reactor |
///
/// A port is a decimal number from 0 to 65535 (0 asks the kernel for a free one). A host is
/// an IPv4 literal, an IPv6 literal in brackets, or a DNS name (letters, digits, `-`, `.`,
/// `_`). Any other `WORD:` prefix is an unknown scheme, and an error that names it.
///
/// `fd:N` and `systemd:NAME` follow systemd's socket activation protocol
/// (`sd_listen_fds(3)`): `LISTEN_PID` is this process, `LISTEN_FDS` counts the descriptors
/// from 3 (or from `LISTEN_FDS_FIRST_FD`), `LISTEN_FDNAMES` names them, colon-separated.
/// `systemd-socket-activate --fdname=web` and systemd's `FileDescriptorName=` set the
/// names. Each inherited socket serves one listen (or one `bind_udp`).
///
/// # Names are resolved outside the loop
/// Name resolution (`getaddrinfo`) blocks, so it never happens inside a callback: a
/// [`Reactor`](crate::Reactor) method resolves a name before the loop runs, but a connect
/// from a [`Context`](crate::Context) or a [`LoopContext`](crate::LoopContext) takes only
/// endpoints that need no lookup (IP literals and paths), and says so for a name.
///
/// # Examples
/// ```
/// use mio_reactor::Endpoint;
///
/// let web: Endpoint = "tcp:localhost:8080".parse()?;
/// assert_eq!(web.to_string(), "tcp:localhost:8080"); // a name stays a name
///
/// let bare: Endpoint = "[::1]:7000".parse()?; // a bare IP literal means TCP
/// assert_eq!(bare, Endpoint::Tcp("[::1]:7000".parse().unwrap()));
/// assert_eq!(bare.to_string(), "tcp:[::1]:7000");
///
/// let err = "http://example.com".parse::<Endpoint>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "bad endpoint `http://example.com`: unknown scheme `http` \
///      (expected tcp, udp, unix, fd, systemd or handover)"
/// );
/// # Ok::<(), mio_reactor::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// TCP on an IP address and port: `tcp:127.0.0.1:7000`, `tcp:[::1]:7000`, or bare.
    Tcp(SocketAddr),
    /// TCP on a host name and port, `tcp:localhost:7000`: resolved (outside the loop) to
    /// every address of the name; a listen binds each, a connect tries them in order.
    TcpName {
        /// The name, as written.
        host: String,
        /// The port.
        port: u16,
    },
    /// UDP on an IP address and port: `udp:127.0.0.1:9000`.
    Udp(SocketAddr),
    /// UDP on a host name and port, `udp:localhost:9000`: bound on the first address.
    UdpName {
        /// The name, as written.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix-domain stream socket at a path: `unix:/run/app.sock`.
    Unix(PathBuf),
    /// A socket this process inherited as descriptor `N` (`fd:N`), announced by `LISTEN_FDS`.
    Fd(i32),
    /// The inherited socket whose `LISTEN_FDNAMES` name is this (`systemd:NAME`).
    Systemd(String),
    /// No socket (`handover:`): the streams other threads hand to this reactor with
    /// [`LoopHandle::hand_over`](crate::LoopHandle::hand_over). In-process only.
    Handover,
}

impl Endpoint {
    /// The address, if this endpoint names one IP address and port (TCP or UDP) and so
    /// needs no lookup.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(addr) | Endpoint::Udp(addr) => Some(*addr),
            _ => None,
        }
    }

    /// Whether using this endpoint needs a name lookup (`getaddrinfo`), which blocks: a host
    /// name. Such endpoints are refused inside the loop's callbacks.
    pub fn needs_lookup(&self) -> bool {
        matches!(self, Endpoint::TcpName { .. } | Endpoint::UdpName { .. })
    }

    /// The socket addresses of a TCP or UDP endpoint, looking a name up (blocking) if it is
    /// one; empty for the other kinds.
    pub(crate) fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        match self {
            Endpoint::Tcp(addr) | Endpoint::Udp(addr) => Ok(vec![*addr]),
            Endpoint::TcpName { host, port } | Endpoint::UdpName { host, port } => {
                let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|err| {
                        std::io::Error::new(err.kind(), format!("resolve {self}: {err}"))
                    })?
                    .collect();
                if addrs.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("resolve {self}: the name has no address"),
                    ));
                }
                Ok(addrs)
            }
            _ => Ok(Vec::new()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
            Endpoint::TcpName { host, port } => write!(f, "tcp:{host}:{port}"),
            Endpoint::Udp(addr) => write!(f, "udp:{addr}"),
            Endpoint::UdpName { host, port } => write!(f, "udp:{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Fd(fd) => write!(f, "fd:{fd}"),
            Endpoint::Systemd(name) => write!(f, "systemd:{name}"),
            Endpoint::Handover => f.write_str("handover:"),
        }
    }
}

/// Why a text is not an [`Endpoint`]: its [`Display`](fmt::Display) names the text and
/// what is wrong with it, fit for a command line's error message.
///
/// Converts into an [`io::Error`](std::io::Error) of kind
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput) with the same message, which is how
/// `listen` and `connect` report it when they are given a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError {
    input: String,
    problem: String,
}

impl EndpointError {
    fn new(input: &str, problem: impl Into<String>) -> EndpointError {
        EndpointError {
            input: input.to_string(),
            problem: problem.into(),
        }
    }

    /// The text that did not parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad endpoint `{}`: {}", self.input, self.problem)
    }
}

impl std::error::Error for EndpointError {}

impl From<EndpointError> for std::io::Error {
    fn from(err: EndpointError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, err.to_string())
    }
}

const SCHEMES: &str = "tcp, udp, unix, fd, systemd or handover";

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Endpoint, EndpointError> {
        let fail = |problem: String| EndpointError::new(text, problem);
        if text.is_empty() {
            return Err(fail(
                "empty (expected SCHEME:ADDRESS, e.g. tcp:127.0.0.1:7000)".into(),
            ));
        }
        if text.parse::<IpAddr>().is_ok() {
            return Err(fail(
                "an address without a port (write 127.0.0.1:PORT or [::1]:PORT)".into(),
            ));
        }
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(fail(format!(
                "no scheme (expected SCHEME:ADDRESS with a scheme of {SCHEMES})"
            )));
        };
        // A bare IP literal with a port means TCP: an IPv6 literal starts with `[`, an IPv4
        // one with a digit, so neither can be a scheme.
        if text.starts_with('[') || scheme.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return tcp_or_udp(text, Endpoint::Tcp, |host, port| Endpoint::TcpName {
                host,
                port,
            })
            .map_err(|problem| fail(format!("{problem} (expected IP:PORT or [IPv6]:PORT)")));
        }
        match scheme {
            "tcp" => tcp_or_udp(rest, Endpoint::Tcp, |host, port| Endpoint::TcpName {
                host,
                port,
            })
            .map_err(|problem| fail(format!("{problem} (expected tcp:HOST:PORT)"))),
            "udp" => tcp_or_udp(rest, Endpoint::Udp, |host, port| Endpoint::UdpName {
                host,
                port,
            })
            .map_err(|problem| fail(format!("{problem} (expected udp:HOST:PORT)"))),
            "unix" => unix_path_problem(rest).map_or_else(
                || Ok(Endpoint::Unix(PathBuf::from(rest))),
                |p| Err(fail(p.into())),
            ),
            "fd" => match decimal(rest).and_then(|n| i32::try_from(n).ok()) {
                Some(fd) => Ok(Endpoint::Fd(fd)),
                None => Err(fail(format!(
                    "`{rest}` is not a descriptor number (expected fd:N, e.g. fd:3)"
                ))),
            },
            "systemd" => match systemd_name_problem(rest) {
                None => Ok(Endpoint::Systemd(rest.to_string())),
                Some(problem) => Err(fail(format!("{problem} (expected systemd:NAME)"))),
            },
            "handover" if rest.is_empty() => Ok(Endpoint::Handover),
            "handover" => Err(fail("`handover:` takes no address".into())),
            _ if decimal(rest).is_some() => Err(fail(format!(
                "unknown scheme `{scheme}`; a host name with a port needs one: \
                 tcp:{scheme}:{rest}"
            ))),
            _ => Err(fail(format!(
                "unknown scheme `{scheme}` (expected {SCHEMES})"
            ))),
        }
    }
}

/// The number `text` writes in decimal digits only (no sign, no spaces), if it is one.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `HOST:PORT`, where HOST is an IPv4 literal, an IPv6 literal in brackets (with a numeric
/// scope id, `[fe80::1%2]`, as `SocketAddr` prints it) or a DNS name: an address made by
/// `addr`, or a name made by `name`.
fn tcp_or_udp(
    text: &str,
    addr: fn(SocketAddr) -> Endpoint,
    name: fn(String, u16) -> Endpoint,
) -> Result<Endpoint, String> {
    if text.is_empty() {
        return Err("no address".to_string());
    }
    if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err(format!("no `]` closes `[{bracketed}`"));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("no port after `[{inner}]`"));
        };
        let port = parse_port(port)?;
        return format!("[{inner}]:{port}")
            .parse::<SocketAddr>()
            .map(addr)
            .map_err(|_| format!("`{inner}` is not an IPv6 address"));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("no port after `{text}`"));
    };
    if host.contains(':') {
        return Err(format!("an IPv6 address needs brackets: [{host}]:{port}"));
    }
    let port = parse_port(port)?;
    if host.is_empty() {
        return Err("no host (write 0.0.0.0 or [::] for every address)".to_string());
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Ok(addr(SocketAddr::new(IpAddr::V4(ip), port)));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{host}` is not an IPv4 address"));
    }
    if !is_host_name(host) {
        return Err(format!("`{host}` is neither an IP address nor a host name"));
    }
    Ok(name(host.to_string(), port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    decimal(text)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("`{text}` is not a port (0 to 65535)"))
}

/// A DNS name (RFC 1123): dot-separated labels of 1 to 63 letters, digits, `-` (not first
/// or last) and `_` (which resolvers accept), 253 characters at most, an optional final dot.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What is wrong with a Unix socket path, if anything.
fn unix_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("no path (expected unix:PATH)")
    } else if path.contains('\0') {
        Some("a path cannot contain a NUL byte")
    } else if path.starts_with('@') {
        Some(
            "abstract socket names (`@name`) are not supported; \
             a file named so is written ./@name",
        )
    } else {
        None
    }
}

/// What is wrong with a `LISTEN_FDNAMES` name, if anything: systemd allows 1 to 255 printable
/// ASCII characters without `:` (the separator).
fn systemd_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("no name")
    } else if name.len() > 255 {
        Some("a name is at most 255 characters")
    } else if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        Some("a name is printable ASCII without `:` or spaces")
    } else {
        None
    }
}

/// What the doors that take an endpoint accept: an [`Endpoint`], a `&str` or `String` in its
/// grammar (parsed at the call, an error naming the text if it does not parse), or a
/// [`SocketAddr`] (TCP).
///
/// Sealed: implemented here only.
pub trait IntoEndpoint: private::Sealed {
    /// The endpoint, or why the text is not one.
    ///
    /// # Errors
    /// [`EndpointError`] for text outside the grammar.
    fn into_endpoint(self) -> Result<Endpoint, EndpointError>;
}

mod private {
    pub trait Sealed {}
}

impl private::Sealed for Endpoint {}
impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self)
    }
}

impl private::Sealed for &Endpoint {}
impl IntoEndpoint for &Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self.clone())
    }
}

impl private::Sealed for &str {}
impl IntoEndpoint for &str {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl private::Sealed for String {}
impl IntoEndpoint for String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl private::Sealed for &String {}
impl IntoEndpoint for &String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl private::Sealed for SocketAddr {}
impl IntoEndpoint for SocketAddr {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(Endpoint::Tcp(self))
    }
}

/// One endpoint or several, for the doors that open more than one listen at once
/// ([`ReactorThreads::serve`](crate::ReactorThreads::serve)): anything [`IntoEndpoint`]
/// takes, or a `Vec` or array of them (a program's `--listen` options, say), in order.
///
/// Sealed: implemented here only.
///
/// # Examples
/// ```
/// use mio_reactor::{Endpoint, IntoEndpoints};
///
/// assert_eq!("tcp:127.0.0.1:80".into_endpoints()?.len(), 1);
/// let both = ["tcp:127.0.0.1:80", "unix:/run/app.sock"].into_endpoints()?;
/// assert_eq!(both[1], Endpoint::Unix("/run/app.sock".into()));
/// assert!(vec!["tcp:127.0.0.1:80", "tpc:127.0.0.1:80"].into_endpoints().is_err()); // the second does not parse
/// # Ok::<(), mio_reactor::EndpointError>(())
/// ```
pub trait IntoEndpoints: list::Sealed {
    /// The endpoints, in order, or why one of them is not an endpoint.
    ///
    /// # Errors
    /// [`EndpointError`] for the first text outside the grammar.
    fn into_endpoints(self) -> Result<Vec<Endpoint>, EndpointError>;
}

mod list {
    pub trait Sealed {}
}

impl<T: IntoEndpoint> list::Sealed for T {}
impl<T: IntoEndpoint> IntoEndpoints for T {
    fn into_endpoints(self) -> Result<Vec<Endpoint>, EndpointError> {
        Ok(vec![self.into_endpoint()?])
    }
}

impl<T: IntoEndpoint> list::Sealed for Vec<T> {}
impl<T: IntoEndpoint> IntoEndpoints for Vec<T> {
    fn into_endpoints(self) -> Result<Vec<Endpoint>, EndpointError> {
        self.into_iter().map(IntoEndpoint::into_endpoint).collect()
    }
}

impl<T: IntoEndpoint, const N: usize> list::Sealed for [T; N] {}
impl<T: IntoEndpoint, const N: usize> IntoEndpoints for [T; N] {
    fn into_endpoints(self) -> Result<Vec<Endpoint>, EndpointError> {
        self.into_iter().map(IntoEndpoint::into_endpoint).collect()
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint::Tcp(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Endpoint {
        text.parse()
            .unwrap_or_else(|err| panic!("{text} should parse: {err}"))
    }

    fn problem(text: &str) -> String {
        text.parse::<Endpoint>()
            .expect_err("should not parse")
            .to_string()
    }

    #[test]
    fn every_example_of_the_grammar_round_trips() {
        for text in [
            "tcp:127.0.0.1:7000",
            "tcp:[::1]:7000",
            "tcp:localhost:7000",
            "tcp:0.0.0.0:0",
            "udp:127.0.0.1:9000",
            "udp:[::1]:9000",
            "udp:localhost:9000",
            "unix:/run/app.sock",
            "unix:relative/app.sock",
            "fd:3",
            "systemd:web",
            "handover:",
            "tcp:[fe80::1%2]:80",
            "tcp:example.com.:443",
        ] {
            assert_eq!(parse(text).to_string(), text);
            assert_eq!(parse(&parse(text).to_string()), parse(text));
        }
    }

    #[test]
    fn an_ipv6_scope_id_is_kept() {
        let parsed = parse("[fe80::1%2]:80");
        let Endpoint::Tcp(std::net::SocketAddr::V6(addr)) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(addr.scope_id(), 2);
        assert_eq!(parse(&parsed.to_string()), parsed);
    }

    #[test]
    fn a_bare_ip_literal_with_a_port_means_tcp() {
        assert_eq!(
            parse("127.0.0.1:7000"),
            Endpoint::Tcp("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(
            parse("[::1]:7000"),
            Endpoint::Tcp("[::1]:7000".parse().unwrap())
        );
        assert_eq!(parse("[::1]:7000").to_string(), "tcp:[::1]:7000");
    }

    #[test]
    fn a_host_name_stays_a_name() {
        assert_eq!(
            parse("tcp:localhost:80"),
            Endpoint::TcpName {
                host: "localhost".into(),
                port: 80
            }
        );
        assert!(parse("tcp:localhost:80").needs_lookup());
        assert!(!parse("tcp:127.0.0.1:80").needs_lookup());
    }

    #[test]
    fn an_unknown_scheme_is_named() {
        assert_eq!(
            problem("http://x"),
            "bad endpoint `http://x`: unknown scheme `http` (expected tcp, udp, unix, fd, \
             systemd or handover)"
        );
    }

    #[test]
    fn a_name_without_a_scheme_is_told_how_to_write_it() {
        assert_eq!(
            problem("localhost:7000"),
            "bad endpoint `localhost:7000`: unknown scheme `localhost`; a host name with a \
             port needs one: tcp:localhost:7000"
        );
    }

    #[test]
    fn each_malformed_address_says_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("7000", "no scheme"),
            ("tcp:", "no address"),
            ("tcp:localhost", "no port after `localhost`"),
            ("tcp:127.0.0.1:70000", "`70000` is not a port"),
            ("tcp:127.0.0.1:", "`` is not a port"),
            ("tcp::7000", "no host"),
            ("tcp:::1:7000", "needs brackets"),
            ("tcp:[::g]:7000", "`::g` is not an IPv6 address"),
            ("tcp:a b:7000", "neither an IP address nor a host name"),
            ("udp:nowhere", "no port"),
            ("unix:", "no path"),
            ("fd:", "is not a descriptor number"),
            ("fd:-1", "is not a descriptor number"),
            ("fd:three", "is not a descriptor number"),
            ("systemd:", "no name"),
            ("systemd:a:b", "without `:`"),
            ("handover:x", "takes no address"),
            ("::1", "an address without a port"),
            ("[::1]", "no port after `[::1]`"),
            ("[::1]:99999", "`99999` is not a port"),
            ("127.0.0.1:99999", "`99999` is not a port"),
            ("tcp:[::1", "no `]` closes `[::1`"),
            ("tcp:[::1]", "no port after `[::1]`"),
            ("tcp:127.0.0.1:+80", "`+80` is not a port"),
            ("fd:+3", "is not a descriptor number"),
            ("tcp:127.1:80", "`127.1` is not an IPv4 address"),
            ("tcp:-:80", "neither an IP address nor a host name"),
            ("tcp:...:80", "`...` is not an IPv4 address"),
            ("tcp:a..b:80", "neither an IP address nor a host name"),
            ("unix:/tmp/a\0b", "NUL"),
            ("unix:@name", "abstract socket names"),
        ];
        for (text, expected) in cases {
            let message = problem(text);
            assert!(
                message.contains(expected) && message.contains(&format!("`{text}`")),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn a_parse_error_becomes_invalid_input() {
        let err = std::io::Error::from("nope:1".parse::<Endpoint>().unwrap_err());
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`nope:1`"));
    }
}
