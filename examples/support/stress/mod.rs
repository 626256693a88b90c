//! The stress and fault suite's machinery, shared by the `stress` example and the
//! `tests/stress_*.rs` files (both include this directory with `#[path]`).
//!
//! - [`server`]: the server under test, as it runs in a child process;
//! - [`child`]: starting that child and watching it (`/proc` figures, its final report);
//! - [`swarm`]: thousands of scripted clients on one poll loop, checking every echoed byte;
//! - [`probe`]: one well-behaved client measuring round trips while others misbehave;
//! - [`pattern`], [`process_figures`], [`report`]: byte streams, process figures, verdicts;
//! - [`scenarios`]: the plaintext scenarios, each a function of its size;
//! - [`upgrade`]: restarts under load (SIGUSR2 upgrades beside plain restarts of
//!   echo_server), also run by `tests/upgrade.rs` and `tests/deploy.rs`;
//! - [`tls_scenarios`] (the `tls` feature): hostile TLS peers, with [`tls_peer`] (a TLS
//!   client that can stop reading), [`pki`] (certificates made in-process) and [`tls`] (the
//!   examples' rustls glue, which also lets the server child listen with TLS).
#![allow(dead_code)] // each includer uses a different part

pub mod child;
pub mod pattern;
#[path = "../pki.rs"]
pub mod pki;
pub mod post_flood;
pub mod probe;
pub mod process_figures;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod swarm;
#[path = "../tls.rs"]
pub mod tls;
#[cfg(feature = "tls")]
pub mod tls_peer;
#[cfg(feature = "tls")]
pub mod tls_scenarios;
pub mod upgrade;
