//! Stress, small enough for `cargo test`: a shutdown request while hundreds of connections
//! are mid-transfer. Full-size runs: `cargo run --release --example stress`
//! (`docs/reliability.md`).

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::time::Duration;

use stress::child::Launcher;
use stress::scenarios;

/// Readers get everything the reactor accepted for sending, then EOF; one in ten never
/// reads, so its output cannot be flushed and it is aborted at the shutdown deadline. Then
/// `run()` returns and the server process holds no more descriptors than before.
#[test]
fn shutdown_under_load_delivers_every_accepted_byte_or_reports_the_abort() {
    let name = "shutdown_under_load_delivers_every_accepted_byte_or_reports_the_abort";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    let deadline = Duration::from_secs(2);
    scenarios::shutdown_under_load(&launcher, 200, 2048, deadline).assert_passed();
}

/// The same, stopped as `docker stop`, `systemctl stop` and Kubernetes stop a service:
/// SIGTERM drains exactly as a shutdown request does, and the process exits 0.
#[test]
fn sigterm_under_load_delivers_every_accepted_byte_and_exits_0() {
    let name = "sigterm_under_load_delivers_every_accepted_byte_and_exits_0";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    let deadline = Duration::from_secs(2);
    scenarios::sigterm_under_load(&launcher, 200, 2048, deadline).assert_passed();
}
