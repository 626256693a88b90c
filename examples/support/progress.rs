//! Progress of long work (the stress suite, the benchmark): a bar with the current step and
//! an ETA on a terminal, plain lines when standard error is not one (CI logs, pipes), where a
//! redrawn bar would only be noise. Results go to standard output either way.
//!
//! Included with `#[path = ".../support/progress.rs"] mod progress;`.
#![allow(dead_code)] // each program uses a different part

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A count of steps, each with a name, and the time they take so far.
pub struct Progress {
    /// `None` when standard error is not a terminal.
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
}

impl Progress {
    /// Progress over `total` steps.
    pub fn new(total: u64) -> Progress {
        let bar = ProgressBar::new(total);
        // indicatif hides the bar itself when standard error is not a terminal.
        let bar = (!bar.is_hidden()).then(|| {
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}  (ETA {eta})",
            )
            .expect("a valid template");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            started: Instant::now(),
        }
    }

    /// A step starts: the bar shows its name; without a terminal, a line says which step
    /// out of how many, and the time left judged by the steps so far.
    pub fn start(&mut self, step: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(step.to_string()),
            None => {
                let elapsed = self.started.elapsed().as_secs_f64();
                let left = match self.done {
                    0 => String::new(),
                    done => {
                        let per_step = elapsed / done as f64;
                        let secs = per_step * (self.total - done) as f64;
                        format!(", about {secs:.0} s left")
                    }
                };
                eprintln!(
                    "[{}/{}] {step} ({elapsed:.0} s elapsed{left})",
                    self.done + 1,
                    self.total
                );
            }
        }
    }

    /// A result line on standard output, above the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// The current step is done.
    pub fn step_done(&mut self) {
        self.done = (self.done + 1).min(self.total);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// All done: the bar goes away, leaving the result lines.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
