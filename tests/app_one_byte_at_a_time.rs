//! A request that trickles in one byte per write is still one request to the real server:
//! it waits for the whole message, parsing the header once, then replies once.

mod util;

use std::io::Write;

use mio_reactor::protocol::encode_binary;
use serde_json::json;
use util::programs::AppServer;
use util::wire::{connect, read_reply, search};

/// Sends `request` one byte per write (`TCP_NODELAY` is on, so each leaves on its own) and
/// returns the reply.
fn trickle(server: &AppServer, request: &[u8]) -> util::wire::Reply {
    let mut stream = connect(server.addr);
    for byte in request {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    read_reply(&mut stream)
}

#[test]
fn json_request_one_byte_at_a_time() {
    let server = AppServer::start(&[]);
    let reply = trickle(&server, &search("\u{1F436}"));
    assert_eq!(
        reply.json(),
        json!({"result": "\u{1F43E} Playing ball! \u{1F3D0}"})
    );
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains("connections: 1, protocol errors: 0"),
        "{stats}"
    );
}

#[test]
fn binary_request_one_byte_at_a_time() {
    let server = AppServer::start(&[]);
    let mut request = Vec::new();
    encode_binary(
        "binary/custom-client-binary-type",
        b"trickle trickle",
        &mut request,
    )
    .unwrap();
    let reply = trickle(&server, &request);
    assert_eq!(reply.content, b"First 10 bytes of request: trickle tr");
    server.stop();
}
