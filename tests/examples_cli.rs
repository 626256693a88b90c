//! The examples as a user meets them: `--help`, `--version` and bad usage the same way in
//! every one, and an echo client that notices every wrong byte, counts its errors by kind,
//! and reports each second of a timed run.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};

use mio_reactor::{Config, Context, Handler, ListenOptions};
use util::programs::{example, output_within, stderr, stdout};
use util::{loopback, Server};

/// Every example, with one option it takes, as `--help` must show it.
const EXAMPLES: [(&str, &str); 10] = [
    ("echo_server", "--addr"),
    ("echo_client", "--addr"),
    ("chat_server", "--max-backlog"),
    ("app_server", "--max-content"),
    ("app_client", "--timeout"),
    ("blocking_echo", "--stop-on-stdin-eof"),
    ("readiness_demo", "--read-once"),
    ("stress", "--quick"),
    ("timeline", "--html"),
    ("kv_server", "--maxclients"),
];

/// Runs example `name` with `args` to completion.
fn run(name: &str, args: &[&str]) -> Output {
    let mut command = Command::new(example(name));
    command.args(args);
    output_within(command)
}

#[test]
fn a_bad_option_gets_one_line_and_exit_code_2() {
    for (name, _) in EXAMPLES {
        let output = run(name, &["--no-such-option"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with(&format!("{name}: ")), "{name}: {err}");
        assert!(err.contains("--no-such-option"), "{name}: {err}");
    }
}

#[test]
fn a_bad_value_names_its_option_and_exits_2() {
    let cases: [(&str, &[&str], &str); 6] = [
        ("echo_client", &["--connections", "0"], "--connections"),
        ("echo_client", &["--duration", "-1"], "--duration"),
        ("echo_server", &["--idle-timeout", "soon"], "--idle-timeout"),
        ("chat_server", &["--max-backlog", "5"], "--max-backlog"),
        // The kernel takes at most 32767 s (tcp(7)).
        (
            "app_server",
            &["--tcp-keepalive", "40000"],
            "--tcp-keepalive",
        ),
        (
            "echo_server",
            &["--tcp-user-timeout", "-1"],
            "--tcp-user-timeout",
        ),
    ];
    for (name, args, option) in cases {
        let output = run(name, args);
        assert_eq!(output.status.code(), Some(2), "{name} {args:?}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{name} {args:?}: {err}");
        assert!(err.contains(option), "{name} {args:?}: {err}");
    }
}

#[test]
fn options_that_do_not_go_together_are_refused_with_exit_code_2() {
    let output = run("echo_client", &["--messages", "5", "--duration", "1"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("--messages") && err.contains("--duration"),
        "{err}"
    );
}

#[test]
fn a_server_whose_address_is_taken_says_which_and_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("its address").to_string();
    for args in [&["--addr", &addr][..], &["--addr", &addr, "--threads", "2"]] {
        let output = run("echo_server", args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!(
                "echo_server: listen on tcp:{addr}: Address already in use"
            )),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn help_explains_the_options_and_exits_0() {
    for (name, option) in EXAMPLES {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name}");
        let help = stdout(&output);
        assert!(help.contains(&format!("Usage: {name}")), "{name}: {help}");
        assert!(help.contains(option), "{name}: {help}");
        assert!(help.contains("--version"), "{name}: {help}");
    }
}

#[test]
fn every_server_takes_the_dead_peer_options() {
    let servers = [
        "echo_server",
        "chat_server",
        "app_server",
        "http_server",
        "slow_kv",
        "kv_server",
    ];
    for name in servers {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name}");
        let help = stdout(&output);
        for option in ["--tcp-keepalive <SECS>", "--tcp-user-timeout <MS>"] {
            assert!(help.contains(option), "{name} lacks {option}: {help}");
        }
    }
}

#[test]
fn version_prints_the_name_and_the_crate_version() {
    for (name, _) in EXAMPLES {
        let output = run(name, &["--version"]);
        assert!(output.status.success(), "{name}");
        let expected = format!("{name} {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(stdout(&output), expected, "{name}");
    }
}

#[test]
fn the_echo_client_reports_success_against_an_echo_server() {
    let server = Server::echo(Config::default());
    let mut command = Command::new(example("echo_client"));
    command.args(["--addr", &server.addr.to_string()]);
    command.args(["--connections", "10", "--messages", "50", "--size", "100"]);
    let output = output_within(command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("messages: 500 of 100 bytes"),
        "{}",
        stdout(&output)
    );
    server.stop();
}

/// Only a build without the `tls` feature (`cargo test`, not `--all-features`) can say
/// this; the files are never read, so they need not exist.
#[cfg(not(feature = "tls"))]
#[test]
fn without_the_tls_feature_every_tls_option_is_refused_with_a_hint() {
    let server_tls = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    let client_tls = ["--tls", "--ca", "ca.pem"];
    let cases: [(&str, Vec<&str>, &str); 4] = [
        ("echo_server", server_tls.to_vec(), "--tls-cert/--tls-key"),
        (
            "app_server",
            [&["127.0.0.1", "0"][..], &server_tls].concat(),
            "--tls-cert/--tls-key",
        ),
        ("echo_client", client_tls.to_vec(), "--tls"),
        (
            "app_client",
            [&["127.0.0.1", "65432", "search", "ring"][..], &client_tls].concat(),
            "--tls",
        ),
    ];
    for (name, args, option) in cases {
        let output = run(name, &args);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let expected = format!(
            "{name}: {option}: built without TLS: run with `--features tls` (try --help)\n"
        );
        assert_eq!(stderr(&output), expected);
    }
}

/// Echoes, but changes one byte in every 1,000th.
struct Corrupting {
    seen: usize,
}

impl Handler for Corrupting {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let mut echo = data.to_vec();
        for (i, byte) in echo.iter_mut().enumerate() {
            if (self.seen + i) % 1000 == 999 {
                *byte ^= 0x20;
            }
        }
        self.seen += data.len();
        ctx.write(&echo);
        data.len()
    }
}

#[test]
fn the_echo_client_fails_loudly_on_a_corrupted_byte() {
    let server = Server::start(Config::default(), |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), |_| {
            Some(Corrupting { seen: 0 })
        })
    });
    let mut command = Command::new(example("echo_client"));
    command.args(["--addr", &server.addr.to_string()]);
    command.args(["--connections", "2", "--messages", "20", "--size", "100"]);
    let output = output_within(command);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("echoed bytes differ"),
        "{}",
        stderr(&output)
    );
    server.stop();
}

/// A loopback port on which nothing listens (it was free a moment ago).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("its address")
}

#[test]
fn the_echo_client_counts_each_distinct_error_once_and_hints_at_the_server() {
    let addr = closed_port();
    let mut command = Command::new(example("echo_client"));
    command.args(["--addr", &addr.to_string(), "--connections", "200"]);
    let output = output_within(command);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "echo_client: 200 × closed early: connect failed: connection refused",
            &format!("echo_client: is a server listening on {addr}?"),
            "echo_client: 200 errors",
        ],
        "{err}"
    );
}

#[test]
fn the_echo_client_with_a_duration_prints_a_line_each_second() {
    let server = Server::echo(Config::default());
    let mut command = Command::new(example("echo_client"));
    command.args(["--addr", &server.addr.to_string()]);
    command.args(["--connections", "2", "--duration", "2.5"]);
    let output = output_within(command);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let per_second: Vec<&str> = out.lines().filter(|l| l.contains(" s  ")).collect();
    assert_eq!(per_second.len(), 2, "{out}");
    for line in per_second {
        assert!(line.contains("messages/s") && line.contains("p99"), "{out}");
    }
    assert!(out.contains("latency: p50"), "{out}");
    server.stop();
}
