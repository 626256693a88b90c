//! Stress, small enough for `cargo test`: hostile and broken peers. Slowloris tricklers,
//! resets mid-stream, more clients than the server has descriptors for. The server runs as a
//! child process, so its descriptors and CPU time are its own (`/proc/PID`).
//! Full-size runs: `cargo run --release --example stress` (`docs/reliability.md`).

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::time::Duration;

use stress::child::Launcher;
use stress::scenarios;

#[test]
fn slowloris_tricklers_are_shed_by_a_message_deadline_while_a_polite_client_is_served() {
    let name = "slowloris_tricklers_are_shed_by_a_message_deadline_while_a_polite_client_is_served";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    let ms = Duration::from_millis;
    // A byte every 200 ms keeps each trickler active far within the 5 s idle timeout; only
    // the 1 s deadline for a complete line sheds it.
    scenarios::slowloris(&launcher, 100, ms(200), ms(1000), ms(5000)).assert_passed();
}

#[test]
fn resets_mid_stream_cost_only_their_connections_and_descriptors_return_to_baseline() {
    let name = "resets_mid_stream_cost_only_their_connections_and_descriptors_return_to_baseline";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::resets(&launcher, 500).assert_passed();
}

#[test]
fn a_server_out_of_descriptors_stays_idle_and_serves_waiting_clients_as_others_leave() {
    let name = "a_server_out_of_descriptors_stays_idle_and_serves_waiting_clients_as_others_leave";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::fd_exhaustion(&launcher, 64, 40, Duration::from_secs(1)).assert_passed();
}

#[test]
fn a_panic_storm_costs_only_the_panicking_connections_and_descriptors_return_to_baseline() {
    let name =
        "a_panic_storm_costs_only_the_panicking_connections_and_descriptors_return_to_baseline";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::panic_storm(&launcher, 200, 200, 4096).assert_passed();
}
