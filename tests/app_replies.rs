//! Every kind of reply of the application server, through the real `app_server` and
//! `app_client` programs (and a raw client for the one reply `app_client` cannot ask for).

mod util;

use mio_reactor::protocol::native_byteorder;
use serde_json::json;
use util::programs::{app_client, stderr, stdout, AppServer};
use util::wire::{exchange, json_request, search};

/// Runs `app_client` with `args` and returns its one line of output, checking it succeeded.
fn client_says(server: &AppServer, args: &[&str]) -> String {
    let output = app_client(server.addr, args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

#[test]
fn search_table_hits() {
    let server = AppServer::start(&[]);
    let table = [
        ("morpheus", "Follow the white rabbit. \u{1F430}"),
        (
            "ring",
            "In the caves beneath the Misty Mountains. \u{1F48D}",
        ),
        ("\u{1F436}", "\u{1F43E} Playing ball! \u{1F3D0}"),
    ];
    for (value, result) in table {
        assert_eq!(
            client_says(&server, &["search", value]),
            format!("result: {result}\n")
        );
    }
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains("connections: 3, protocol errors: 0"),
        "{stats}"
    );
}

#[test]
fn search_miss() {
    let server = AppServer::start(&[]);
    assert_eq!(
        client_says(&server, &["search", "neo"]),
        "result: No match for 'neo'.\n"
    );
    server.stop();
}

#[test]
fn other_actions_are_binary_and_quoted_up_to_ten_bytes() {
    let server = AppServer::start(&[]);
    assert_eq!(
        client_says(&server, &["double", "some bytes"]),
        "binary reply (binary/custom-server-binary-type, 37 B): \
         \"First 10 bytes of request: doublesome\"\n"
    );
    // Shorter than ten bytes: all of it.
    assert_eq!(
        client_says(&server, &["ab", "c"]),
        "binary reply (binary/custom-server-binary-type, 30 B): \
         \"First 10 bytes of request: abc\"\n"
    );
    server.stop();
}

#[test]
fn binary_reply_header() {
    let server = AppServer::start(&[]);
    let mut request = Vec::new();
    mio_reactor::protocol::encode_binary(
        "binary/custom-client-binary-type",
        b"\x00\x01\x02\xff0123456789",
        &mut request,
    )
    .unwrap();
    let reply = exchange(server.addr, &request);
    assert_eq!(
        reply.header.content_type,
        "binary/custom-server-binary-type"
    );
    assert_eq!(reply.header.content_encoding, "binary");
    assert_eq!(reply.header.byteorder, native_byteorder());
    assert_eq!(
        reply.content,
        b"First 10 bytes of request: \x00\x01\x02\xff012345"
    );
    server.stop();
}

#[test]
fn json_reply_header() {
    let server = AppServer::start(&[]);
    let reply = exchange(server.addr, &search("ring"));
    assert_eq!(reply.header.byteorder, native_byteorder());
    // `read_reply` checked that content-length is exact: one frame, then the close.
    assert_eq!(reply.header.content_length, reply.content.len());
    assert_eq!(
        reply.json(),
        json!({"result": "In the caves beneath the Misty Mountains. \u{1F48D}"})
    );
    server.stop();
}

#[test]
fn invalid_action_gets_an_error_result() {
    // app_client turns any action but search into a binary request, so this one is raw.
    let server = AppServer::start(&[]);
    let reply = exchange(
        server.addr,
        &json_request(br#"{"action": "find", "value": "x"}"#),
    );
    assert_eq!(
        reply.json(),
        json!({"result": "Error: invalid action 'find'."})
    );
    let stats = server.stop().stats().to_string();
    assert!(stats.contains("protocol errors: 0"), "{stats}");
}
