//! Helpers shared by the integration tests. Each test file uses a different part of them.
#![allow(dead_code)]

pub mod programs;
pub mod wire;
