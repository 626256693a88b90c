//! Stress, small enough for `cargo test`: hostile TLS peers against a TLS echo server in a
//! child process. Each costs only its own connection, with the close reason that names what
//! it did, while a well-behaved TLS client gets its round trips back byte for byte; the
//! server's descriptors return to the baseline and its memory stays bounded.
//! Full-size runs: `cargo run --release --features tls --example stress`
//! (`docs/reliability.md`).

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::time::Duration;

use stress::child::Launcher;
use stress::tls_scenarios;

#[test]
fn plaintext_and_random_bytes_instead_of_a_client_hello_cost_only_their_connections() {
    let name = "plaintext_and_random_bytes_instead_of_a_client_hello_cost_only_their_connections";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    tls_scenarios::tls_garbage(&launcher, 40, 16 * 1024).assert_passed();
}

#[test]
fn handshakes_that_stop_halfway_are_closed_at_the_handshake_deadline() {
    let name = "handshakes_that_stop_halfway_are_closed_at_the_handshake_deadline";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    tls_scenarios::tls_stalled_handshake(&launcher, 30, Duration::from_millis(500)).assert_passed();
}

#[test]
fn a_tls_client_that_never_reads_cannot_grow_the_servers_memory_and_loses_nothing() {
    let name = "a_tls_client_that_never_reads_cannot_grow_the_servers_memory_and_loses_nothing";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    tls_scenarios::tls_never_reads(&launcher, 32 * 1024 * 1024, Duration::from_millis(500))
        .assert_passed();
}

#[test]
fn a_tcp_fin_without_close_notify_is_reported_as_a_truncation() {
    let name = "a_tcp_fin_without_close_notify_is_reported_as_a_truncation";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    tls_scenarios::tls_truncation(&launcher, 40, 16 * 1024).assert_passed();
}

#[test]
fn client_certificates_that_do_not_verify_cost_only_their_connections() {
    let name = "client_certificates_that_do_not_verify_cost_only_their_connections";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    tls_scenarios::tls_bad_client_cert(&launcher, 20).assert_passed();
}
