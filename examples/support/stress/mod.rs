//! The stress and fault suite's machinery, shared by the `stress` example and the
//! `tests/stress_*.rs` files (both include this directory with `#[path]`).
//!
//! - [`server`]: the server under test, as it runs in a child process;
//! - [`child`]: starting that child and watching it (`/proc` figures, its final report);
//! - [`swarm`]: thousands of scripted clients on one poll loop, checking every echoed byte;
//! - [`probe`]: one well-behaved client measuring round trips while others misbehave;
//! - [`pattern`], [`process_figures`], [`report`]: byte streams, process figures, verdicts;
//! - [`scenarios`]: the nine scenarios, each a function of its size.
#![allow(dead_code)] // each includer uses a different part

pub mod child;
pub mod pattern;
pub mod post_flood;
pub mod probe;
pub mod process_figures;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod swarm;
