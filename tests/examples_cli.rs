//! The echo examples as a user meets them: `--help`, a bad option, and a client that notices
//! every wrong byte.

mod util;

use std::process::Command;

use mio_reactor::{Config, Context, Handler};
use util::programs::{example, output_within, stderr, stdout};
use util::{loopback, Server};

#[test]
fn a_bad_option_gets_one_line_and_exit_code_2() {
    for name in ["echo_server", "echo_client"] {
        let mut command = Command::new(example(name));
        command.arg("--no-such-option");
        let output = output_within(command);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains("--no-such-option"), "{name}: {err}");
    }
}

#[test]
fn help_explains_the_options_and_exits_0() {
    for name in ["echo_server", "echo_client"] {
        let mut command = Command::new(example(name));
        command.arg("--help");
        let output = output_within(command);
        assert!(output.status.success(), "{name}");
        assert!(stdout(&output).contains("--addr"), "{name}");
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
        reactor.listen(loopback(), |_| Some(Corrupting { seen: 0 }))
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
