//! `--listen ENDPOINT` in every example server (issue 19): the library's endpoint grammar on
//! the command line, shown by `--help`, a bad endpoint refused with exit code 2 and a
//! message that names it, and each endpoint served and announced in the grammar.
//!
//! The older flags (`--addr`, `--unix`, `--udp`, app_server's HOST PORT) are aliases; the
//! tests of each example run them.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;

use util::programs::{example, output_within, stderr, stdout, Spawned, TIMEOUT};

/// Every example that listens, and how its announcements start.
const SERVERS: [(&str, &str); 7] = [
    ("echo_server", "echo server listening on "),
    ("chat_server", "chat server listening on "),
    ("app_server", "app server listening on "),
    ("http_server", "http server listening on "),
    ("slow_kv", "slow_kv listening on "),
    ("kv_server", "kv server listening on "),
    ("blocking_echo", ""),
];

/// Runs `name args...` to completion.
fn run(name: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(example(name));
    command.args(args);
    output_within(command)
}

/// Starts `name` with `args` and `--stop-on-stdin-eof`.
fn start(name: &str, args: &[&str]) -> Spawned {
    let mut command = Command::new(example(name));
    command.args(args).arg("--stop-on-stdin-eof");
    Spawned::spawn(&mut command)
}

/// What follows `prefix` in `line`, or a panic that shows the line.
fn after<'a>(line: &'a str, prefix: &str) -> &'a str {
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}..., got {line:?}"))
}

fn tcp_addr(line: &str, prefix: &str) -> SocketAddr {
    after(line, prefix)
        .parse()
        .unwrap_or_else(|err| panic!("{line:?}: {err}"))
}

/// Writes `message` and reads the same number of bytes back.
fn round_trip(stream: &mut (impl Read + Write), message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut echo = vec![0; message.len()];
    stream.read_exact(&mut echo).unwrap();
    echo
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mio-reactor-listen-")
        .tempdir()
        .unwrap()
}

#[test]
fn a_bad_endpoint_exits_2_with_a_message_that_names_it() {
    for (name, _) in SERVERS {
        let output = run(name, &["--listen", "tpc:1"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with(&format!("{name}: ")), "{name}: {err}");
        assert!(
            err.contains("bad endpoint `tpc:1`") && err.contains("unknown scheme `tpc`"),
            "{name}: {err}"
        );
        assert!(stdout(&output).is_empty(), "{name}: nothing served");
    }
}

#[test]
fn each_malformed_endpoint_is_refused_with_the_reason() {
    let cases = [
        ("tcp:127.0.0.1:70000", "`70000` is not a port"),
        ("unix:", "no path"),
        ("fd:three", "is not a descriptor number"),
        ("handover:", "not for a command line"),
    ];
    for (endpoint, reason) in cases {
        let output = run("echo_server", &["--listen", endpoint]);
        assert_eq!(output.status.code(), Some(2), "{endpoint}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("bad endpoint `{endpoint}`")) && err.contains(reason),
            "{endpoint}: {err}"
        );
    }
}

#[test]
fn a_stream_server_refuses_udp_with_exit_code_2() {
    for name in [
        "chat_server",
        "app_server",
        "http_server",
        "slow_kv",
        "kv_server",
    ] {
        let output = run(name, &["--listen", "udp:127.0.0.1:0"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let err = stderr(&output);
        assert!(err.contains("udp:127.0.0.1:0"), "{name}: {err}");
    }
}

#[test]
fn help_shows_the_endpoint_grammar() {
    for (name, _) in SERVERS {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name}");
        let help = stdout(&output);
        assert!(help.contains("--listen <ENDPOINT>"), "{name}: {help}");
        if name == "blocking_echo" {
            // One blocking accept, one tcp: socket.
            assert!(help.contains("tcp:HOST:PORT"), "{name}: {help}");
            continue;
        }
        for form in [
            "tcp:HOST:PORT",
            "[::1]:PORT",
            "tcp:NAME:PORT",
            "udp:HOST:PORT",
            "unix:PATH",
            "fd:N",
            "systemd:NAME",
        ] {
            assert!(help.contains(form), "{name} --help lacks {form}: {help}");
        }
    }
}

#[test]
fn one_echo_server_serves_tcp_unix_and_udp_listens() {
    let dir = temp_dir();
    let path = dir.path().join("echo.sock");
    let unix = format!("unix:{}", path.display());
    let mut server = start(
        "echo_server",
        &[
            "--listen",
            "tcp:127.0.0.1:0",
            "--listen",
            &unix,
            "--listen",
            "udp:127.0.0.1:0",
        ],
    );
    let prefix = "echo server listening on ";
    let tcp = tcp_addr(&server.next_line(), &format!("{prefix}tcp:"));
    assert_eq!(after(&server.next_line(), prefix), unix);
    let udp = tcp_addr(&server.next_line(), &format!("{prefix}udp:"));

    let mut over_tcp = TcpStream::connect(tcp).unwrap();
    over_tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(round_trip(&mut over_tcp, b"over tcp"), b"over tcp");
    let mut over_unix = UnixStream::connect(PathBuf::from(&path)).unwrap();
    over_unix.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(round_trip(&mut over_unix, b"over unix"), b"over unix");
    let datagrams = UdpSocket::bind("127.0.0.1:0").unwrap();
    datagrams.set_read_timeout(Some(TIMEOUT)).unwrap();
    datagrams.send_to(b"over udp", udp).unwrap();
    let mut reply = [0; 64];
    let (n, from) = datagrams.recv_from(&mut reply).unwrap();
    assert_eq!((&reply[..n], from), (&b"over udp"[..], udp));
    drop((over_tcp, over_unix));

    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished
            .stdout
            .contains("echo server stopped: 2 connections accepted, 1 datagrams"),
        "{}",
        finished.stdout
    );
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

#[test]
fn listen_and_the_older_flags_go_together_each_announced_its_own_way() {
    let mut server = start(
        "echo_server",
        &["--listen", "[::1]:0", "--addr", "127.0.0.1:0"],
    );
    let prefix = "echo server listening on ";
    let first = server.next_line();
    let v6 = tcp_addr(&first, &format!("{prefix}tcp:"));
    assert!(v6.is_ipv6(), "{first}");
    let v4 = tcp_addr(&server.next_line(), prefix); // --addr: no `tcp:`, as always
    for addr in [v6, v4] {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(round_trip(&mut stream, b"hi"), b"hi");
    }
    assert!(server.finish().status.success());
}

#[test]
fn every_server_serves_a_tcp_listen_and_announces_it_in_the_grammar() {
    for (name, prefix) in SERVERS {
        if name == "blocking_echo" {
            continue; // its lines carry a time stamp; below
        }
        let mut server = start(name, &["--listen", "tcp:127.0.0.1:0"]);
        let addr = tcp_addr(&server.next_line(), &format!("{prefix}tcp:"));
        TcpStream::connect(addr).unwrap_or_else(|err| panic!("{name}: {err}"));
        let finished = server.finish();
        assert!(finished.status.success(), "{name}: {}", finished.stderr);
    }
}

#[test]
fn blocking_echo_takes_one_tcp_listen() {
    let mut server = start("blocking_echo", &["--listen", "tcp:127.0.0.1:0"]);
    let line = server.next_line();
    let addr = line
        .split_once("listening on tcp:")
        .and_then(|(_, addr)| addr.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(round_trip(&mut stream, b"blocking"), b"blocking");
    drop(stream);
    drop(server); // it exits on its standard input's EOF, or is killed here

    let output = run("blocking_echo", &["--listen", "unix:/tmp/nowhere.sock"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("one tcp: endpoint"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn chat_and_app_servers_serve_a_unix_listen() {
    let dir = temp_dir();
    for (name, prefix) in [
        ("chat_server", "chat server listening on "),
        ("app_server", "app server listening on "),
        ("slow_kv", "slow_kv listening on "),
        ("http_server", "http server listening on "),
        ("kv_server", "kv server listening on "),
    ] {
        let path = dir.path().join(format!("{name}.sock"));
        let unix = format!("unix:{}", path.display());
        let mut server = start(name, &["--listen", &unix]);
        assert_eq!(after(&server.next_line(), prefix), unix, "{name}");
        UnixStream::connect(&path).unwrap_or_else(|err| panic!("{name}: {err}"));
        let finished = server.finish();
        assert!(finished.status.success(), "{name}: {}", finished.stderr);
    }
}

#[test]
fn threads_share_one_tcp_listen() {
    for name in ["echo_server", "chat_server", "http_server"] {
        let prefix = SERVERS.iter().find(|(n, _)| *n == name).unwrap().1;
        let mut server = start(name, &["--listen", "tcp:127.0.0.1:0", "--threads", "2"]);
        let line = server.next_line();
        let addr = after(&line, &format!("{prefix}tcp:"));
        let addr: SocketAddr = addr
            .split(' ')
            .next()
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {line:?}"));
        TcpStream::connect(addr).unwrap_or_else(|err| panic!("{name}: {err}"));
        let finished = server.finish();
        assert!(finished.status.success(), "{name}: {}", finished.stderr);
    }
    // SO_REUSEPORT shares TCP ports only.
    let output = run(
        "echo_server",
        &["--listen", "unix:/tmp/x.sock", "--threads", "2"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// An argument that is not UTF-8 (a Unix path may be any bytes) is a usage error, exit 2,
/// in every server: never a panic.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"unix:/tmp/zz\xff.sock");
    for (name, _) in SERVERS {
        let mut command = Command::new(example(name));
        command.arg("--listen").arg(bad);
        let output = output_within(command);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(err.contains("UTF-8"), "{name}: {err}");
    }
}
