//! The stress and fault suite at full size: can the reactor survive a hostile world?
//!
//! ```text
//! cargo run --release --example stress                       # every scenario, full size
//! cargo run --release --example stress -- --quick            # reduced sizes (CI)
//! cargo run --release --example stress -- --scenario resets  # one scenario (repeatable)
//! cargo run --release --example stress -- --list
//! ```
//! Each scenario starts its own server: a copy of this program in a child process (so that
//! its memory, descriptors and CPU time can be read from `/proc/PID`, and a descriptor limit
//! applied to it alone), and drives clients at it from this process. It prints one line per
//! scenario with its figures, then `N passed, N failed`, and exits with 1 if any failed. On a
//! terminal a progress bar shows the scenario running and the time left; in a log (CI), a
//! plain line announces each scenario instead.
//! `docs/reliability.md` explains each scenario and what the reactor does about it.
//!
//! The TLS scenarios (`tls-*`) need the `tls` feature
//! (`cargo run --release --features tls --example stress`); built without it, `--list`
//! marks them and a full run leaves them out.
//!
//! The same scenarios run small in `cargo test` (`tests/stress_*.rs`); the code lives in
//! `examples/support/stress/`.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/progress.rs"]
mod progress;
#[path = "support/stress/mod.rs"]
mod stress;

use std::time::Duration;

use clap::Parser;

use progress::Progress;
use stress::child::Launcher;
use stress::report::Report;
use stress::scenarios;

/// Runs the stress and fault scenarios against an echo (or line) server in a child
/// process, printing one line of figures per scenario and a final `N passed, N failed`.
#[derive(Parser)]
#[command(
    name = "stress",
    version,
    after_help = "Signals: SIGTERM and SIGINT (Ctrl-C) end it at once (their default action); \
                  a server child drains and exits when its standard input closes with it (or \
                  on the same signal)."
)]
struct Args {
    /// Reduced sizes (well under a minute)
    #[arg(long)]
    quick: bool,
    /// Run only this scenario (repeatable; see --list)
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(SCENARIOS.iter().chain(&TLS_SCENARIOS)))]
    scenario: Vec<String>,
    /// List the scenarios
    #[arg(long)]
    list: bool,
}

/// Every scenario, with its full and quick sizes.
const SCENARIOS: [&str; 15] = [
    "many-connections",
    "big-transfer",
    "never-reads",
    "slowloris",
    "resets",
    "fragmentation",
    "fragmented-frames",
    "fd-exhaustion",
    "garbage",
    "malformed-frames",
    "shutdown-under-load",
    "sigterm-under-load",
    "panic-storm",
    "post-flood",
    "upgrade",
];

/// The TLS scenarios: hostile TLS peers against a TLS echo server (the `tls` feature).
const TLS_SCENARIOS: [&str; 5] = [
    "tls-garbage",
    "tls-stalled-handshake",
    "tls-never-reads",
    "tls-truncation",
    "tls-bad-client-cert",
];

fn run(name: &str, quick: bool, launcher: &Launcher) -> Report {
    let s = Duration::from_secs;
    const MIB: u64 = 1024 * 1024;
    match (name, quick) {
        ("many-connections", false) => scenarios::many_connections(launcher, 10_000, 4096, 100),
        ("many-connections", true) => scenarios::many_connections(launcher, 5_000, 2048, 50),
        ("big-transfer", false) => scenarios::big_transfer(launcher, 64 * MIB),
        ("big-transfer", true) => scenarios::big_transfer(launcher, 64 * MIB),
        ("never-reads", false) => scenarios::never_reads(launcher, 1024 * MIB, s(2)),
        ("never-reads", true) => scenarios::never_reads(launcher, 256 * MIB, s(1)),
        ("slowloris", false) => scenarios::slowloris(launcher, 1_000, s(1), s(5), s(20)),
        ("slowloris", true) => scenarios::slowloris(launcher, 1_000, s(1), s(2), s(20)),
        ("resets", false) => scenarios::resets(launcher, 5_000),
        ("resets", true) => scenarios::resets(launcher, 2_000),
        ("fragmentation", false) => scenarios::fragmentation(launcher, 200, 4096),
        ("fragmentation", true) => scenarios::fragmentation(launcher, 100, 2048),
        ("fragmented-frames", false) => scenarios::fragmented_frames(launcher, 200, 8192),
        ("fragmented-frames", true) => scenarios::fragmented_frames(launcher, 100, 4096),
        ("fd-exhaustion", false) => scenarios::fd_exhaustion(launcher, 512, 100, s(3)),
        ("fd-exhaustion", true) => scenarios::fd_exhaustion(launcher, 256, 100, s(1)),
        ("garbage", false) => scenarios::garbage(launcher, 32, 64 * MIB),
        ("garbage", true) => scenarios::garbage(launcher, 16, 32 * MIB),
        ("malformed-frames", false) => scenarios::malformed_frames(launcher, 600, 4 * MIB),
        ("malformed-frames", true) => scenarios::malformed_frames(launcher, 240, 2 * MIB),
        ("shutdown-under-load", false) => {
            scenarios::shutdown_under_load(launcher, 2_000, 2048, s(5))
        }
        ("shutdown-under-load", true) => {
            scenarios::shutdown_under_load(launcher, 1_000, 2048, s(2))
        }
        ("sigterm-under-load", false) => scenarios::sigterm_under_load(launcher, 2_000, 2048, s(5)),
        ("sigterm-under-load", true) => scenarios::sigterm_under_load(launcher, 1_000, 2048, s(2)),
        ("panic-storm", false) => scenarios::panic_storm(launcher, 1_000, 1_000, 16 * 1024),
        ("panic-storm", true) => scenarios::panic_storm(launcher, 1_000, 1_000, 4096),
        ("post-flood", false) => stress::post_flood::post_flood(4, s(10)),
        ("post-flood", true) => stress::post_flood::post_flood(2, s(3)),
        ("upgrade", false) => stress::upgrade::upgrade_under_load(20, 4, 4),
        ("upgrade", true) => stress::upgrade::upgrade_under_load(3, 2, 2),
        (name, quick) => run_tls(name, quick, launcher),
    }
}

#[cfg(feature = "tls")]
fn run_tls(name: &str, quick: bool, launcher: &Launcher) -> Report {
    use stress::tls_scenarios as tls;
    let s = Duration::from_secs;
    const MIB: u64 = 1024 * 1024;
    match (name, quick) {
        ("tls-garbage", false) => tls::tls_garbage(launcher, 1_000, 64 * 1024),
        ("tls-garbage", true) => tls::tls_garbage(launcher, 200, 16 * 1024),
        ("tls-stalled-handshake", false) => tls::tls_stalled_handshake(launcher, 1_000, s(2)),
        ("tls-stalled-handshake", true) => tls::tls_stalled_handshake(launcher, 200, s(1)),
        ("tls-never-reads", false) => tls::tls_never_reads(launcher, 1024 * MIB, s(2)),
        ("tls-never-reads", true) => tls::tls_never_reads(launcher, 32 * MIB, s(1)),
        ("tls-truncation", false) => tls::tls_truncation(launcher, 1_000, 64 * 1024),
        ("tls-truncation", true) => tls::tls_truncation(launcher, 200, 16 * 1024),
        ("tls-bad-client-cert", false) => tls::tls_bad_client_cert(launcher, 500),
        ("tls-bad-client-cert", true) => tls::tls_bad_client_cert(launcher, 100),
        _ => unreachable!("names are checked when parsing the options"),
    }
}

/// Built without TLS: a TLS scenario asked for by name fails, saying why.
#[cfg(not(feature = "tls"))]
fn run_tls(name: &str, _quick: bool, _launcher: &Launcher) -> Report {
    let name = TLS_SCENARIOS
        .into_iter()
        .find(|tls| *tls == name)
        .expect("names are checked when parsing the options");
    Report::run(name, |_| {
        Err("built without TLS: run with `--features tls`".to_string())
    })
}

fn main() {
    // A copy of this program started as the server under test serves and exits here.
    if stress::server::serve_if_asked() {
        return;
    }
    let args: Args = cli::parse();
    let with_tls = cfg!(feature = "tls");
    if args.list {
        SCENARIOS.iter().for_each(|name| println!("{name}"));
        for name in TLS_SCENARIOS {
            match with_tls {
                true => println!("{name}"),
                false => println!("{name} (needs --features tls)"),
            }
        }
        return;
    }
    let selected: Vec<&str> = match args.scenario.is_empty() {
        true => SCENARIOS
            .iter()
            .chain(TLS_SCENARIOS.iter().filter(|_| with_tls))
            .copied()
            .collect(),
        false => args.scenario.iter().map(String::as_str).collect(),
    };
    if std::env::var_os("RUST_LOG").is_some() {
        cli::init_logging();
    }

    let launcher = Launcher::this_program();
    let (mut passed, mut failed) = (0, 0);
    let mut progress = Progress::new(selected.len() as u64);
    for name in selected {
        progress.start(name);
        let report = run(name, args.quick, &launcher);
        progress.println(&report.line());
        progress.step_done();
        if report.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    progress.finish();
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
