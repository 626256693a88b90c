//! Interoperability with an independent implementation of the protocol: the Python peer in
//! `tests/interop/tutorial_peer.py` (stdlib only, written from the format description).
//! Our `app_client` talks to its server, and its client talks to our `app_server`.
//!
//! Skipped, with a note, only where `python3` is missing; it is present in CI.

mod util;

use std::net::SocketAddr;

use serde_json::{json, Value};
use util::programs::{app_client, python_client, python_peer, stderr, stdout, AppServer, Spawned};

/// Our client's requests, and what its output must be with either server.
const EXCHANGES: [(&str, &str, &str); 4] = [
    (
        "search",
        "morpheus",
        "result: Follow the white rabbit. \u{1F430}\n",
    ),
    (
        "search",
        "\u{1F436}",
        "result: \u{1F43E} Playing ball! \u{1F3D0}\n",
    ),
    ("search", "neo", "result: No match for 'neo'.\n"),
    (
        "play",
        "ball",
        "binary reply (binary/custom-server-binary-type, 35 B): \
         \"First 10 bytes of request: playball\"\n",
    ),
];

#[test]
fn our_client_against_the_python_server() {
    let count = EXCHANGES.len().to_string();
    let Some(mut command) = python_peer(&["server", "127.0.0.1", "0", "--count", &count]) else {
        return;
    };
    let mut server = Spawned::spawn(&mut command);
    let listening: Value = serde_json::from_str(&server.next_line()).expect("a JSON line");
    let port = listening["listening"]["port"].as_u64().expect("a port");
    let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).unwrap()));
    for (action, value, expected) in EXCHANGES {
        let output = app_client(addr, &[action, value]);
        assert!(
            output.status.success(),
            "{action} {value}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), expected);
    }
    // The peer exits after --count connections; it reports its own errors on stderr.
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(finished.stderr, "");
}

/// Runs the Python client against `addr`; its one JSON line and its success.
fn python_says(addr: SocketAddr, action: &str, value: &str) -> Option<(Value, bool)> {
    let output = python_client(addr, &[action, value])?;
    let line = stdout(&output);
    let reply = serde_json::from_str(&line)
        .unwrap_or_else(|err| panic!("{err}: {line:?}, stderr: {}", stderr(&output)));
    Some((reply, output.status.success()))
}

#[test]
fn python_client_against_our_server() {
    let server = AppServer::start(&["--max-content", "64"]);
    let addr = server.addr;
    let Some(search) = python_says(addr, "search", "ring") else {
        return;
    };
    assert_eq!(
        search,
        (
            json!({"result": "In the caves beneath the Misty Mountains. \u{1F48D}"}),
            true
        )
    );
    let (binary, ok) = python_says(addr, "hello", "\u{1F436}world").unwrap();
    assert!(ok);
    assert_eq!(
        binary,
        // Python's repr of the bytes: the dog emoji is cut after its 4 UTF-8 bytes.
        json!({
            "binary": "b'First 10 bytes of request: hello\\xf0\\x9f\\x90\\xb6w'",
            "content-type": "binary/custom-server-binary-type",
        })
    );
    // Our error reply, as the Python client sees it.
    let (error, ok) = python_says(addr, "long", &"x".repeat(100)).unwrap();
    assert!(!ok);
    assert_eq!(
        error,
        json!({"error": "content-length 104 exceeds the limit of 64 bytes"})
    );
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains("connections: 3, protocol errors: 1,"),
        "{stats}"
    );
}
