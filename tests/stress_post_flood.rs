//! Stress, small enough for `cargo test`: threads flooding a reactor with posted work. The
//! queue fills and hands items back, every accepted item runs exactly once, a probe
//! connection is still served, and memory stays flat. Full size:
//! `cargo run --release --example stress -- --scenario post-flood`.

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::time::Duration;

#[test]
fn a_flood_of_posts_fills_the_queue_loses_nothing_accepted_and_keeps_serving() {
    stress::post_flood::post_flood(2, Duration::from_secs(1)).assert_passed();
}
