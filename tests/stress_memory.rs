//! Stress, small enough for `cargo test`: peers that try to make the server's memory grow,
//! and peers that send garbage (raw, and malformed application-protocol frames).
//! The server's resident memory is read from `/proc/PID/status` of its child process.
//! Full-size runs: `cargo run --release --example stress` (`docs/reliability.md`).

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::time::Duration;

use stress::child::Launcher;
use stress::scenarios;

#[test]
fn a_client_that_never_reads_cannot_grow_the_servers_memory_and_loses_nothing() {
    let name = "a_client_that_never_reads_cannot_grow_the_servers_memory_and_loses_nothing";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::never_reads(&launcher, 64 * 1024 * 1024, Duration::from_millis(500)).assert_passed();
}

#[test]
fn garbage_at_volume_closes_only_the_offenders_and_memory_stays_bounded() {
    let name = "garbage_at_volume_closes_only_the_offenders_and_memory_stays_bounded";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::garbage(&launcher, 8, 4 * 1024 * 1024).assert_passed();
}

#[test]
fn malformed_frames_get_an_error_reply_and_close_only_their_own_connection() {
    let name = "malformed_frames_get_an_error_reply_and_close_only_their_own_connection";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::malformed_frames(&launcher, 60, 256 * 1024).assert_passed();
}
