//! The chat_server example: lines broadcast to everyone else, TCP and Unix clients in one
//! room, and a member that stops reading dropped once its backlog passes the bound, while
//! the others keep receiving.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use std::process::Command;

use util::programs::{example, Spawned};
use util::WAIT;

/// A chat member: reads lines, writes lines.
struct Member<S: std::io::Read + Write> {
    reader: BufReader<S>,
}

impl<S: std::io::Read + Write> Member<S> {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a line");
        line.trim_end().to_string()
    }

    fn say(&mut self, text: &str) {
        self.reader.get_mut().write_all(text.as_bytes()).unwrap();
    }
}

fn tcp_member(addr: std::net::SocketAddr) -> Member<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    Member {
        reader: BufReader::new(stream),
    }
}

fn unix_member(path: &std::path::Path) -> Member<UnixStream> {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    Member {
        reader: BufReader::new(stream),
    }
}

#[test]
fn lines_reach_everyone_else_and_a_member_that_stops_reading_is_dropped() {
    let dir = std::env::temp_dir().join(format!("mio-reactor-chat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chat.sock");
    let mut server = Spawned::spawn(
        Command::new(example("chat_server"))
            .args(["--addr", "127.0.0.1:0", "--unix", path.to_str().unwrap()])
            .args(["--max-backlog", "65536", "--stop-on-stdin-eof"]),
    );
    let first = server.next_line();
    let addr: std::net::SocketAddr = first
        .strip_prefix("chat server listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(server
        .next_line()
        .starts_with("chat server listening on unix:"));

    let mut alice = tcp_member(addr);
    assert!(alice.line().starts_with("* welcome, guest1"));
    let mut bob = unix_member(&path);
    assert!(bob.line().starts_with("* welcome, guest2"));
    assert!(alice.line().starts_with("* guest2 joined from unix:"));

    alice.say("hello from TCP\n");
    assert_eq!(bob.line(), "guest1: hello from TCP");
    bob.say("hello from a Unix socket\n");
    assert_eq!(alice.line(), "guest2: hello from a Unix socket");

    // Dave joins with a tiny receive window and never reads again. (Loopback TCP buffers
    // would otherwise absorb megabytes before the server's own backlog grows.)
    let dave = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    dave.set_recv_buffer_size(4096).unwrap();
    dave.connect(&addr.into()).unwrap();
    assert!(alice.line().starts_with("* guest3 joined"));
    assert!(bob.line().starts_with("* guest3 joined"));

    // Alice talks, in batches that Bob hears before the next one (a chat is paced; a burst
    // larger than --max-backlog would drop any reader), until the room announces that Dave
    // was dropped. Dave's backlog only grows.
    let mut said = 0;
    let mut dave_left = None;
    while dave_left.is_none() {
        assert!(said < 50_000, "Dave was never dropped");
        for _ in 0..100 {
            alice.say(&format!("line {said:05} {}\n", "x".repeat(80)));
            said += 1;
        }
        for expected in said - 100..said {
            let mut line = bob.line();
            if line.starts_with("* guest3 left") {
                dave_left = Some(line);
                line = bob.line();
            }
            assert!(
                line.starts_with(&format!("guest1: line {expected:05} ")),
                "Bob hears every line in order: {line}"
            );
        }
    }
    let dave_left = dave_left.unwrap();
    assert!(dave_left.contains("output limit exceeded"), "{dave_left}");
    drop(dave);
    // Bob still hears Alice after Dave is gone.
    alice.say("still here?\n");
    assert_eq!(bob.line(), "guest1: still here?");

    drop((alice, bob)); // members leave, so the shutdown need not wait for them
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    let stopped = "chat server stopped: 3 members joined";
    assert!(finished.stdout.contains(stopped), "{}", finished.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
