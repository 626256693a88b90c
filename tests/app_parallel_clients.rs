//! Dozens of `app_client` processes at once against one `app_server`: every one gets its
//! own answer, and the server counts them all.

mod util;

use std::thread;

use util::programs::{app_client, stderr, stdout, AppServer};

const CLIENTS: usize = 32;

#[test]
fn dozens_of_clients_at_once() {
    let server = AppServer::start(&[]);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                // A mix of the three kinds of reply, each request distinct.
                let (args, expected) = match i % 3 {
                    0 => (
                        vec!["search".to_string(), "morpheus".to_string()],
                        "result: Follow the white rabbit. \u{1F430}\n".to_string(),
                    ),
                    1 => (
                        vec!["search".to_string(), format!("value-{i}")],
                        format!("result: No match for 'value-{i}'.\n"),
                    ),
                    _ => (
                        // `--`: a VALUE that starts with a dash is not an option.
                        vec![format!("a{i:03}"), "--".to_string(), "-payload".to_string()],
                        format!(
                            "binary reply (binary/custom-server-binary-type, 37 B): \
                             \"First 10 bytes of request: a{i:03}-paylo\"\n"
                        ),
                    ),
                };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let output = app_client(addr, &args);
                assert!(output.status.success(), "client {i}: {}", stderr(&output));
                assert_eq!(stdout(&output), expected, "client {i}");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains(&format!("connections: {CLIENTS}, protocol errors: 0,")),
        "{stats}"
    );
}
