//! The kv_server example's unit tests: its RESP codec (with proptests), the keyspace, the
//! active expiry cycle, the glob rules of pub/sub patterns and client eviction's
//! bookkeeping.
//!
//! They live in the example's files (`#[cfg(test)] mod tests`) and run here, where the
//! files are included by path, because `test = true` on the example would make `cargo
//! test` build it as a test harness instead of the program that tests/kv_server*.rs run.

// The server's request path (client.rs, commands.rs) is not included: what only it uses
// is dead code here.
#![allow(dead_code)]

#[path = "../examples/kv_server/eviction.rs"]
mod eviction;
#[path = "../examples/kv_server/expiry.rs"]
mod expiry;
#[path = "../examples/kv_server/keyspace.rs"]
mod keyspace;
#[path = "../examples/kv_server/pubsub.rs"]
mod pubsub;
#[path = "../examples/kv_server/resp.rs"]
mod resp;
#[path = "../examples/kv_server/server.rs"]
mod server;
