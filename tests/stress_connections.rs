//! Stress, small enough for `cargo test`: many connections, big transfers, fragmentation (of
//! raw bytes and of application-protocol frames).
//! Every byte is checked. The full-size runs are `cargo run --release --example stress`
//! (`docs/reliability.md`); the scenarios are in `examples/support/stress/scenarios.rs`.
//!
//! Each test starts its server as a child process: this test binary again, running only
//! that test, which then serves instead (`Launcher::for_test`).

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use stress::child::Launcher;
use stress::scenarios;

#[test]
fn a_thousand_concurrent_connections_from_ten_source_addresses_each_get_their_bytes_back() {
    let name =
        "a_thousand_concurrent_connections_from_ten_source_addresses_each_get_their_bytes_back";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::many_connections(&launcher, 1_000, 2048, 10).assert_passed();
}

#[test]
fn sixty_four_mib_come_back_intact_with_and_without_a_half_close_right_after_sending() {
    let name = "sixty_four_mib_come_back_intact_with_and_without_a_half_close_right_after_sending";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::big_transfer(&launcher, 64 * 1024 * 1024).assert_passed();
}

#[test]
fn messages_cut_into_one_to_seven_byte_pieces_are_echoed_byte_exact() {
    let name = "messages_cut_into_one_to_seven_byte_pieces_are_echoed_byte_exact";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::fragmentation(&launcher, 20, 1024).assert_passed();
}

#[test]
fn frames_cut_into_one_to_seven_byte_pieces_are_decoded_and_echoed_whole() {
    let name = "frames_cut_into_one_to_seven_byte_pieces_are_decoded_and_echoed_whole";
    let Some(launcher) = Launcher::for_test(name) else {
        return;
    };
    scenarios::fragmented_frames(&launcher, 20, 2048).assert_passed();
}
