//! `chat_server --threads 4`: one room across four reactors. With 200 members each sending
//! lines, every member hears every other member's lines exactly once, each sender's in the
//! order sent, whichever reactor either of them is on.

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Barrier};

use util::programs::{example, Spawned};
use util::WAIT;

const MEMBERS: usize = 200;
const LINES_EACH: usize = 3;

/// One member: joins, waits for everyone, says its lines, then reads until it heard every
/// other member's. Returns what it heard from each sender, in arrival order.
fn member(addr: SocketAddr, me: usize, all_joined: Arc<Barrier>) -> HashMap<usize, Vec<usize>> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("the welcome");
    assert!(line.starts_with("* welcome"), "{line:?}");
    all_joined.wait();
    let said: String = (0..LINES_EACH).map(|k| format!("m {me} {k}\n")).collect();
    reader.get_mut().write_all(said.as_bytes()).unwrap();
    let mut heard: HashMap<usize, Vec<usize>> = HashMap::new();
    let expected = (MEMBERS - 1) * LINES_EACH;
    let mut count = 0;
    while count < expected {
        line.clear();
        reader.read_line(&mut line).expect("a line");
        // "guestN: m SENDER K"; notices ("* ...") are not messages.
        let Some((_, text)) = line.trim_end().split_once(": m ") else {
            continue;
        };
        let (sender, k) = text.split_once(' ').expect("sender and number");
        heard
            .entry(sender.parse().unwrap())
            .or_default()
            .push(k.parse().unwrap());
        count += 1;
    }
    heard
}

#[test]
fn every_line_reaches_every_other_member_once_in_order_across_four_reactors() {
    let mut server = Spawned::spawn(
        Command::new(example("chat_server"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--threads",
                "4",
                "--stop-on-stdin-eof",
            ])
            .env("RUST_LOG", "warn"),
    );
    let first = server.next_line();
    let addr: SocketAddr = first
        .strip_prefix("chat server listening on ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let all_joined = Arc::new(Barrier::new(MEMBERS));
    let members: Vec<_> = (0..MEMBERS)
        .map(|me| {
            let all_joined = all_joined.clone();
            std::thread::spawn(move || member(addr, me, all_joined))
        })
        .collect();
    let heard: Vec<_> = members.into_iter().map(|m| m.join().unwrap()).collect();
    let in_order: Vec<usize> = (0..LINES_EACH).collect();
    for (me, heard) in heard.iter().enumerate() {
        assert!(!heard.contains_key(&me), "member {me} heard itself");
        assert_eq!(heard.len(), MEMBERS - 1, "member {me} missed a sender");
        for (sender, lines) in heard {
            assert_eq!(lines, &in_order, "member {me} from {sender}");
        }
    }
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished
            .stdout
            .contains(&format!("{MEMBERS} members joined")),
        "{}",
        finished.stdout
    );
}
