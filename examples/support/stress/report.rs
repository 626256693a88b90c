//! A scenario's verdict: its figures and the checks that failed, as one line.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The figures a scenario measured and the checks it failed.
#[derive(Debug)]
pub struct Report {
    pub name: &'static str,
    figures: Vec<(&'static str, String)>,
    failures: Vec<String>,
    started: Instant,
}

impl Report {
    /// Runs `body` as scenario `name`. An `Err` from it is one more failure.
    pub fn run(name: &'static str, body: impl FnOnce(&mut Report) -> Result<(), String>) -> Report {
        let mut report = Report {
            name,
            figures: Vec::new(),
            failures: Vec::new(),
            started: Instant::now(),
        };
        if let Err(why) = body(&mut report) {
            report.failures.push(why);
        }
        let elapsed = report.started.elapsed();
        report.figure("time", secs(elapsed));
        report
    }

    /// Records a figure (no spaces in `value`, so that the line stays easy to read and parse).
    pub fn figure(&mut self, key: &'static str, value: impl Display) {
        self.figures.push((key, value.to_string()));
    }

    /// Records a failure unless `ok`.
    pub fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(why());
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// `ok   name  key=value ...` or `FAIL name  key=value ... -- why; why`.
    pub fn line(&self) -> String {
        let status = if self.passed() { "ok  " } else { "FAIL" };
        let figures: Vec<String> = self
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut line = format!("{status} {:<20} {}", self.name, figures.join(" "));
        if !self.passed() {
            line.push_str(" -- ");
            line.push_str(&self.failures.join("; "));
        }
        line
    }

    /// For tests: prints the line, and panics with it if a check failed.
    pub fn assert_passed(&self) {
        println!("{}", self.line());
        assert!(self.passed(), "{}", self.line());
    }
}

/// Turns an I/O error into a failure that says what was being done.
pub trait OrFail<T> {
    fn or_fail(self, doing: &str) -> Result<T, String>;
}

impl<T> OrFail<T> for std::io::Result<T> {
    fn or_fail(self, doing: &str) -> Result<T, String> {
        self.map_err(|err| format!("{doing}: {err}"))
    }
}

/// `512B`, `4.0KiB`, `64.0MiB`, `1.00GiB`.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes}B")
    } else if b < KIB * KIB {
        format!("{:.1}KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1}MiB", b / (KIB * KIB))
    } else {
        format!("{:.2}GiB", b / (KIB * KIB * KIB))
    }
}

pub fn kib_as_mib(kib: i64) -> String {
    format!("{:.1}MiB", kib as f64 / 1024.0)
}

pub fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

pub fn millis(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}
