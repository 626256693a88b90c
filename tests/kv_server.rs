//! The `kv_server` example as a Redis client meets it, over raw sockets: the bytes Redis
//! 7.0 answers, pipelining, protocol errors, the active expiry cycle, `--maxclients`,
//! `--timeout`, a large value to a slow reader, the pub/sub output limits, and client
//! eviction (`--maxmemory-clients`).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use util::programs::{example, output_within, stdout, TIMEOUT};
use util::redis::KvServer;

/// The process id of `server`, from `INFO`.
fn pid(server: &KvServer) -> u32 {
    let mut client = server.connect();
    client.write_all(b"INFO server\r\n").unwrap();
    let info = String::from_utf8(read_reply(&mut client)).unwrap();
    let line = info
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .expect("process_id in INFO");
    line.trim().parse().unwrap()
}

/// Reads exactly `len` bytes.
fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).expect("the expected reply");
    bytes
}

/// Sends `request` and checks that exactly `expected` comes back.
fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).unwrap();
    let reply = read_exact(stream, expected.len());
    assert_eq!(
        String::from_utf8_lossy(&reply),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Reads one bulk string reply's contents (`$len\r\n...\r\n`).
fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        header.extend(read_exact(stream, 1));
    }
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    let mut body = read_exact(stream, len + 2);
    body.truncate(len);
    body
}

/// Whether the server closed `stream`: EOF or a reset (after unread input) before `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut sink = [0; 64 * 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// An integer reply as a number.
fn integer(stream: &mut TcpStream, request: &[u8]) -> i64 {
    stream.write_all(request).unwrap();
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend(read_exact(stream, 1));
    }
    assert_eq!(line[0], b':', "{:?}", String::from_utf8_lossy(&line));
    std::str::from_utf8(&line[1..line.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let process = procfs::process::Process::new(pid as i32).unwrap();
    process.status().unwrap().vmrss.unwrap() * 1024
}

/// The most resident memory process `pid` has had (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let process = procfs::process::Process::new(pid as i32).unwrap();
    process.status().unwrap().vmhwm.unwrap() * 1024
}

/// A numeric field of `INFO`.
fn info_field(server: &KvServer, field: &str) -> u64 {
    let mut client = server.connect();
    client.write_all(b"INFO\r\n").unwrap();
    let info = String::from_utf8(read_reply(&mut client)).unwrap();
    let prefix = format!("{field}:");
    let line = info
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{field} in INFO: {info}"));
    line.trim().parse().unwrap()
}

#[test]
fn help_says_the_data_lives_in_the_process() {
    let mut help = Command::new(example("kv_server"));
    help.arg("--help");
    let output = output_within(help);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("restart empties it"), "{text}");
    for option in [
        "--listen",
        "--maxclients",
        "--timeout",
        "--hz",
        "--proto-max-bulk-len",
        "--maxmemory-clients",
    ] {
        assert!(text.contains(option), "{option} missing from --help");
    }
}

#[test]
fn replies_are_redis_7_bytes_errors_included() {
    // Each reply was checked against redis-server 7.0.15 with the same bytes in.
    let server = KvServer::start(&[]);
    let mut client = server.connect();
    let cases: [(&[u8], &[u8]); 12] = [
        (b"PING\r\n", b"+PONG\r\n"),
        (b"*2\r\n$4\r\necho\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (
            b"get\r\n",
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            b"foo a b\r\n",
            b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            b"set k v ex 0\r\n",
            b"-ERR invalid expire time in 'set' command\r\n",
        ),
        (b"set k v nx xx\r\n", b"-ERR syntax error\r\n"),
        (
            b"set k v\r\nincr k\r\n",
            b"+OK\r\n-ERR value is not an integer or out of range\r\n",
        ),
        (b"set k v nx get\r\n", b"$1\r\nv\r\n"),
        (
            b"expire k 10 nx xx\r\n",
            b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            b"set 'a b' \"c\\x41\"\r\nget \"a b\"\r\n",
            b"+OK\r\n$2\r\ncA\r\n",
        ),
        (b"del k 'a b' k\r\nexists k\r\n", b":2\r\n:0\r\n"),
        (b"config get save\r\n", b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
    ];
    for (request, expected) in cases {
        exchange(&mut client, request, expected);
    }
    drop(client);
    server.stop();
}

#[test]
fn integer_overflow_is_refused_and_the_value_kept() {
    let server = KvServer::start(&[]);
    let mut client = server.connect();
    exchange(
        &mut client,
        b"set n 9223372036854775806\r\nincr n\r\n",
        b"+OK\r\n:9223372036854775807\r\n",
    );
    exchange(
        &mut client,
        b"incr n\r\n",
        b"-ERR increment or decrement would overflow\r\n",
    );
    exchange(&mut client, b"incrby n -1\r\n", b":9223372036854775806\r\n");
    exchange(
        &mut client,
        b"decrby n -9223372036854775808\r\n",
        b"-ERR decrement would overflow\r\n",
    );
    exchange(
        &mut client,
        b"incrby n 9223372036854775808\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    exchange(&mut client, b"get n\r\n", b"$19\r\n9223372036854775806\r\n");
    drop(client);
    server.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = KvServer::start(&[]);
    let mut client = server.connect();
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for i in 0..500 {
        requests.extend_from_slice(format!("SET key{i} {i}\r\nINCR key{i}\r\n").as_bytes());
        expected.extend_from_slice(format!("+OK\r\n:{}\r\n", i + 1).as_bytes());
    }
    requests.extend_from_slice(b"*1\r\n$6\r\nDBSIZE\r\n");
    expected.extend_from_slice(b":500\r\n");
    exchange(&mut client, &requests, &expected);
    drop(client);
    server.stop();
}

#[test]
fn a_protocol_error_is_answered_then_closed_and_other_clients_carry_on() {
    let server = KvServer::start(&[]);
    let mut other = server.connect();
    exchange(&mut other, b"SET k v\r\n", b"+OK\r\n");
    let mut bad = server.connect();
    // The request before the error is answered; nothing after it is.
    bad.write_all(b"PING\r\n*1\r\nx\r\nPING\r\n").unwrap();
    let expected = b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n";
    assert_eq!(read_exact(&mut bad, expected.len()), expected);
    assert!(closed_within(&mut bad, TIMEOUT));
    exchange(&mut other, b"GET k\r\n", b"$1\r\nv\r\n");
    drop(other);
    server.stop();
}

#[test]
fn keys_that_expire_together_untouched_are_removed_by_the_active_cycle() {
    let server = KvServer::start(&[]);
    let mut client = server.connect();
    let mut requests = Vec::new();
    for i in 0..1000 {
        requests.extend_from_slice(format!("SET volatile{i} x PX 100\r\n").as_bytes());
    }
    exchange(&mut client, &requests, &b"+OK\r\n".repeat(1000));
    exchange(&mut client, b"SET lasting x\r\n", b"+OK\r\n");
    // DBSIZE counts expired keys until they are removed; it touches none of them.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut keys = integer(&mut client, b"DBSIZE\r\n");
    while keys > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20)); // polling an outside state
        keys = integer(&mut client, b"DBSIZE\r\n");
    }
    assert_eq!(keys, 1, "keys left 3 s after they expired");
    drop(client);
    server.stop();
}

#[test]
fn a_client_over_maxclients_gets_redis_error_and_is_closed() {
    let server = KvServer::start(&["--maxclients", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    exchange(&mut first, b"PING\r\n", b"+PONG\r\n");
    exchange(&mut second, b"PING\r\n", b"+PONG\r\n");
    let mut third = server.connect();
    let error = b"-ERR max number of clients reached\r\n";
    assert_eq!(read_exact(&mut third, error.len()), error);
    assert!(closed_within(&mut third, TIMEOUT));
    // A place freed is a place taken.
    drop(first);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut fourth = server.connect();
        fourth.write_all(b"PING\r\n").unwrap();
        let mut reply = [0; 7];
        if fourth.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "no place after a client left");
    }
    drop(second);
    server.stop();
}

#[test]
fn a_client_that_quit_frees_its_place_before_it_closes_its_socket() {
    // Redis frees a client once QUIT's reply is written; the peer may take its time to
    // close its own side, and a new client must not be refused meanwhile.
    let server = KvServer::start(&["--maxclients", "1"]);
    let mut leaving = server.connect();
    exchange(&mut leaving, b"QUIT\r\n", b"+OK\r\n");
    let mut next = server.connect();
    exchange(&mut next, b"PING\r\n", b"+PONG\r\n");
    drop(leaving);
    drop(next);
    server.stop();
}

#[test]
fn timeout_closes_an_idle_client_but_not_a_subscriber() {
    let server = KvServer::start(&["--timeout", "1"]);
    let mut subscriber = server.connect();
    exchange(
        &mut subscriber,
        b"SUBSCRIBE news\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    let mut idle = server.connect();
    exchange(&mut idle, b"PING\r\n", b"+PONG\r\n");
    // The subscriber has been idle longer than the client that is closed.
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
    subscriber.set_read_timeout(Some(TIMEOUT)).unwrap();
    exchange(
        &mut subscriber,
        b"PING\r\n",
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
    );
    drop(subscriber);
    server.stop();
}

#[test]
fn a_64_mib_get_read_slowly_arrives_whole_in_bounded_memory() {
    const VALUE: usize = 64 << 20;
    let server = KvServer::start(&[]);
    let pid = pid(&server);
    let mut client = server.connect();
    let value: Vec<u8> = (0..VALUE).map(|i| (i % 251) as u8).collect();
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${VALUE}\r\n").into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    exchange(&mut client, &set, b"+OK\r\n");
    drop(set);
    let before = rss(pid);
    // A request pipelined behind the large reply is answered after it.
    client.write_all(b"GET big\r\nPING\r\n").unwrap();
    let header = format!("${VALUE}\r\n");
    assert_eq!(read_exact(&mut client, header.len()), header.as_bytes());
    let mut received = Vec::with_capacity(VALUE + 9);
    let mut piece = vec![0; 1 << 20];
    let mut peak = before;
    while received.len() < VALUE + 2 + 7 {
        let want = piece.len().min(VALUE + 9 - received.len());
        let n = client.read(&mut piece[..want]).unwrap();
        assert!(n > 0, "closed after {} B", received.len());
        received.extend_from_slice(&piece[..n]);
        peak = peak.max(rss(pid));
        std::thread::sleep(Duration::from_millis(2)); // a slow reader
    }
    assert!(received[..VALUE] == value[..], "the value arrived changed");
    assert_eq!(&received[VALUE..], b"\r\n+PONG\r\n");
    // The reply was not copied whole into the output: memory grew by far less than it.
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew by {grown} B while sending {VALUE} B"
    );
    assert!(
        peak < 2 * VALUE as u64 + (32 << 20),
        "RSS peaked at {peak} B"
    );
    drop(client);
    server.stop();
}

#[test]
fn a_large_value_asked_for_with_the_clients_fin_arrives_whole() {
    const VALUE: usize = 8 << 20;
    let server = KvServer::start(&[]);
    let mut client = server.connect();
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${VALUE}\r\n").into_bytes();
    set.extend(std::iter::repeat_n(b'v', VALUE));
    set.extend_from_slice(b"\r\n");
    exchange(&mut client, &set, b"+OK\r\n");
    // The request, one behind it, and the end of the client's requests, all at once. The
    // FIN is not acted on before the reply: reading, the FIN's included, waits while the
    // value drains, and the request behind it is answered first.
    client.write_all(b"GET big\r\nPING\r\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    let header = format!("${VALUE}\r\n");
    assert_eq!(received.len(), header.len() + VALUE + 2 + 7, "then closed");
    assert!(received.starts_with(header.as_bytes()));
    assert!(received.ends_with(b"v\r\n+PONG\r\n"));
    server.stop();
}

/// A connection whose receive buffer is small, so that what the server sends it piles up
/// in the server once it stops reading.
fn connect_small_window(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

#[test]
fn a_slow_subscriber_is_closed_at_its_pubsub_limit_while_a_fast_one_gets_every_message() {
    const MESSAGES: usize = 400;
    const SIZE: usize = 16 * 1024;
    let server = KvServer::start(&["--pubsub-hard-limit", "1048576", "--pubsub-soft-limit", "0"]);
    let subscribe = b"SUBSCRIBE feed\r\n";
    let subscribed = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n";
    let mut slow = connect_small_window(server.addr);
    exchange(&mut slow, subscribe, subscribed);
    let mut fast = server.connect();
    exchange(&mut fast, subscribe, subscribed);
    let message = vec![b'm'; SIZE];
    let mut frame = format!("*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n${SIZE}\r\n").into_bytes();
    frame.extend_from_slice(&message);
    frame.extend_from_slice(b"\r\n");
    let every_message = frame.repeat(MESSAGES);
    let expected_len = every_message.len();
    let reader = std::thread::spawn(move || read_exact(&mut fast, expected_len));
    let mut publisher = server.connect();
    let mut receivers = Vec::new();
    for _ in 0..MESSAGES {
        let mut publish = format!("*3\r\n$7\r\nPUBLISH\r\n$4\r\nfeed\r\n${SIZE}\r\n").into_bytes();
        publish.extend_from_slice(&message);
        publish.extend_from_slice(b"\r\n");
        receivers.push(integer(&mut publisher, &publish));
    }
    assert!(
        reader.join().unwrap() == every_message,
        "the fast subscriber missed messages"
    );
    assert_eq!(receivers[0], 2);
    assert_eq!(
        receivers[MESSAGES - 1],
        1,
        "the slow subscriber is still subscribed"
    );
    assert!(closed_within(&mut slow, TIMEOUT));
    drop(publisher);
    server.stop();
}

/// A subscriber to `feed`, `SUBSCRIBE` answered.
fn subscribe(mut stream: TcpStream) -> TcpStream {
    exchange(
        &mut stream,
        b"SUBSCRIBE feed\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n",
    );
    stream
}

/// `PUBLISH feed message` and the message frame each subscriber of `feed` gets.
fn publish_and_frame(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let size = message.len();
    let mut publish = format!("*3\r\n$7\r\nPUBLISH\r\n$4\r\nfeed\r\n${size}\r\n").into_bytes();
    publish.extend_from_slice(message);
    publish.extend_from_slice(b"\r\n");
    let mut frame = format!("*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n${size}\r\n").into_bytes();
    frame.extend_from_slice(message);
    frame.extend_from_slice(b"\r\n");
    (publish, frame)
}

#[test]
fn past_maxmemory_clients_the_subscribers_that_never_read_are_evicted_in_bounded_memory() {
    const NON_READERS: usize = 8;
    const MESSAGES: usize = 100;
    const SIZE: usize = 256 * 1024;
    // Each non-reader would hold 25 MiB (under its 32 MiB hard cap): 200 MiB in all.
    let server = KvServer::start(&["--maxmemory-clients", "8mb"]);
    let pid = pid(&server);
    let mut non_readers: Vec<TcpStream> = (0..NON_READERS)
        .map(|_| subscribe(connect_small_window(server.addr)))
        .collect();
    let mut reader = subscribe(server.connect());
    let (publish, frame) = publish_and_frame(&vec![b'm'; SIZE]);
    // The reader reports each message it got; the publisher waits for it before the next,
    // so that the reader never holds more than one message in the server.
    let (got, progress) = std::sync::mpsc::channel();
    let expected = frame.clone();
    let reading = std::thread::spawn(move || {
        for _ in 0..MESSAGES {
            if read_exact(&mut reader, expected.len()) != expected {
                return false;
            }
            got.send(()).unwrap();
        }
        true
    });
    let before = rss(pid);
    let mut publisher = server.connect();
    let mut receivers = Vec::new();
    for _ in 0..MESSAGES {
        receivers.push(integer(&mut publisher, &publish));
        progress
            .recv_timeout(TIMEOUT)
            .expect("the reader got the message");
    }
    let growth = peak_rss(pid).saturating_sub(before);
    assert!(
        reading.join().unwrap(),
        "the reader got every message intact"
    );
    assert!(
        growth < 48 << 20,
        "the server grew by {} MiB past an 8 MiB maxmemory-clients",
        growth >> 20
    );
    assert_eq!(receivers[0], NON_READERS as i64 + 1);
    assert_eq!(receivers[MESSAGES - 1], 1, "only the reader is left");
    for non_reader in &mut non_readers {
        assert!(closed_within(non_reader, TIMEOUT), "a non-reader stays");
    }
    assert_eq!(info_field(&server, "evicted_clients"), NON_READERS as u64);
    drop(publisher);
    let finished = server.stop();
    assert_eq!(
        finished.stderr.matches("client evicted").count(),
        NON_READERS,
        "one log line per eviction: {}",
        finished.stderr
    );
}

#[test]
fn a_client_under_maxmemory_clients_is_never_evicted() {
    const MESSAGES: usize = 28;
    const SIZE: usize = 256 * 1024;
    // 7 MiB for one subscriber that reads only at the end: under 8 MiB, with the
    // publisher's and the subscriber's overhead.
    let server = KvServer::start(&["--maxmemory-clients", "8mb"]);
    let mut late_reader = subscribe(connect_small_window(server.addr));
    let (publish, frame) = publish_and_frame(&vec![b'm'; SIZE]);
    let mut publisher = server.connect();
    for _ in 0..MESSAGES {
        assert_eq!(integer(&mut publisher, &publish), 1);
    }
    // Most of it waits in the server (the kernel's socket buffers take the rest).
    assert!(info_field(&server, "mem_clients_normal") > 1 << 20);
    let every_message = frame.repeat(MESSAGES);
    assert!(
        read_exact(&mut late_reader, every_message.len()) == every_message,
        "the subscriber missed messages"
    );
    assert_eq!(info_field(&server, "evicted_clients"), 0);
    drop((publisher, late_reader));
    server.stop();
}

#[test]
fn an_evicted_subscriber_no_longer_counts_in_the_next_publish_of_the_same_read() {
    // Two subscribers that never read, fed until their sockets are full and the server
    // holds some of their output; then one write: a PUBLISH of 2 MiB, which takes them past
    // a 4 MiB maxmemory-clients together (the publisher's own input stays under it), and a
    // small one. The first evicts the biggest until the total is under the limit; the
    // second, handled in the same read before their connections are gone, must not count
    // the evicted (Redis frees them at once).
    let server = KvServer::start(&["--maxmemory-clients", "4mb"]);
    let _non_readers: Vec<TcpStream> = (0..2)
        .map(|_| subscribe(connect_small_window(server.addr)))
        .collect();
    let mut publisher = server.connect();
    let (fill, _) = publish_and_frame(&vec![b'f'; 64 << 10]);
    for _ in 0..1_000 {
        if info_field(&server, "mem_clients_normal") >= 512 << 10 {
            break;
        }
        assert_eq!(integer(&mut publisher, &fill), 2);
    }
    assert_eq!(info_field(&server, "evicted_clients"), 0);
    let (mut both, _) = publish_and_frame(&vec![b'm'; 2 << 20]);
    let (small, _) = publish_and_frame(b"after");
    both.extend_from_slice(&small);

    assert_eq!(integer(&mut publisher, &both), 2);
    let after = integer(&mut publisher, b""); // the small one's reply, already sent

    // Evicted at the big PUBLISH (one at least, maybe both), or later at the end of the
    // read: those evicted later may still count, those evicted before may not.
    let evicted = info_field(&server, "evicted_clients") as i64;
    assert!(
        evicted >= 1,
        "nobody evicted: the test needs a larger message"
    );
    assert!(after < 2, "the small PUBLISH counted an evicted subscriber");
    assert!(
        after >= 2 - evicted,
        "{after} receivers after {evicted} evicted"
    );
    drop(publisher);
    server.stop();
}

#[test]
fn a_publisher_is_not_evicted_for_the_message_it_has_already_published() {
    // A 4 MiB PUBLISH to eight subscribers that never read takes the clients past an 8 MiB
    // maxmemory-clients. Once published, the message is the subscribers' to hold, not the
    // publisher's: they are evicted, and the publisher gets its reply.
    let server = KvServer::start(&["--maxmemory-clients", "8mb"]);
    let _non_readers: Vec<TcpStream> = (0..8)
        .map(|_| subscribe(connect_small_window(server.addr)))
        .collect();
    let (publish, _) = publish_and_frame(&vec![b'm'; 4 << 20]);
    let mut publisher = server.connect();

    assert_eq!(integer(&mut publisher, &publish), 8);

    assert!(info_field(&server, "evicted_clients") >= 1);
    assert_eq!(
        integer(&mut publisher, b"DBSIZE\r\n"),
        0,
        "the publisher still served"
    );
    drop(publisher);
    server.stop();
}
